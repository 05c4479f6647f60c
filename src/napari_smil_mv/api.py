"""Scripting API for sessions in napari (also available as ``smil`` in napari's console once the Session
widget is open).

Example::

    import napari
    from napari_smil_mv import api

    viewer = napari.Viewer()
    session = api.load_session(viewer, "minimal_session")   # 4 layers per camera, grid layout
    api.set_layout(viewer, "world")                         # 3D: adds the 3D keypoints, skeleton, camera frustums
    api.add_world_layers(viewer)                            # (or: the world layers without switching)
    api.set_frame(viewer, 60)
    api.session_of(viewer.layers[0]) is session             # the Session behind any of its layers

Functions taking a viewer import napari only when called; importing this module does not import Qt.
Layer roles, axes and metadata are described in ``docs/sessions.md`` (section "napari").
"""

from napari_smil_mv.napari.layers.session_layers import CAMERA_ROLES, LAYERS_PER_CAMERA, session_layer_data
from napari_smil_mv.napari.layers.world_layers import WORLD_AXES, WORLD_ROLES
from napari_smil_mv.napari.registry import forget_session, get_session, register_session, registered_sessions
from napari_smil_mv.napari.scripting import (
    LAYOUTS,
    add_layer_data,
    add_world_layers,
    fit_view,
    frame_axis,
    layout_of,
    load_session,
    session_layers,
    session_of,
    set_frame,
    set_layout,
    show_session,
)

__all__ = [
    "CAMERA_ROLES",
    "LAYERS_PER_CAMERA",
    "LAYOUTS",
    "WORLD_AXES",
    "WORLD_ROLES",
    "add_layer_data",
    "add_world_layers",
    "fit_view",
    "forget_session",
    "frame_axis",
    "get_session",
    "layout_of",
    "load_session",
    "register_session",
    "registered_sessions",
    "session_layer_data",
    "session_layers",
    "session_of",
    "set_frame",
    "set_layout",
    "show_session",
]

# -- fit results (napari_smil_mv.napari.results_view): fit the shown session, show/remove results -------------------
from napari_smil_mv.napari.layers.results_layers import (  # noqa: E402
    RESULT_CAMERA_ROLES,
    RESULT_ROLES,
    RESULT_WORLD_ROLES,
    results_layer_data,
)
from napari_smil_mv.napari.results_view import (  # noqa: E402
    fit_session,
    load_results,
    remove_results,
    results_layers,
    show_results,
)

__all__ += [
    "RESULT_CAMERA_ROLES",
    "RESULT_ROLES",
    "RESULT_WORLD_ROLES",
    "fit_session",
    "load_results",
    "remove_results",
    "results_layer_data",
    "results_layers",
    "show_results",
]
