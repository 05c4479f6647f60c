"""Implementation of the public scripting API (:mod:`napari_smil_mv.api`): sessions in a napari viewer.

napari is imported lazily (inside the functions), so importing this module stays cheap. Layers are found by
their metadata (``layer.metadata["napari_smil_mv"]``), never by name.
"""

from __future__ import annotations

import weakref
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_smil_mv.napari.batch_add import add_layers, gc_paused
from napari_smil_mv.napari.dims_sliders import hide_unused_sliders, keep_sliders_hidden, restore_ranges
from napari_smil_mv.napari.layers.session_layers import LAYERS_PER_CAMERA, session_layer_data
from napari_smil_mv.napari.layers.video_array import prefetch_first_frames
from napari_smil_mv.napari.registry import get_session, register_session, session_id_of
from napari_smil_mv.sessions import Session
from napari_smil_mv.sessions import load_session as _load_session

if TYPE_CHECKING:  # pragma: no cover
    import napari

LAYOUTS = ("grid", "mosaic", "world")
#: Camera orientation of the world view: right-handed, like an OpenCV camera (x right, y down, z away).
WORLD_ORIENTATION = ("away", "down", "right")
GRID_SPACING = 0.02
#: The world view looks this many degrees to the side of the cameras' mean optical axis (frustums in profile).
VIEW_ANGLE = 60.0
_KEY = "napari_smil_mv"
#: viewer -> {"layout": str, "orientation": tuple} (weak: forgotten with the viewer)
_STATE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def meta(layer: Any) -> dict:
    """Our metadata of a layer (empty dict for other layers)."""
    md = getattr(layer, "metadata", None) or {}
    value = md.get(_KEY)
    return value if isinstance(value, dict) else {}


def session_layers(
    viewer: napari.Viewer,
    session: Session | str | None = None,
    role: str | Sequence[str] | None = None,
    camera: str | None = None,
) -> list:
    """Layers of ``viewer`` created for sessions, in layer-list order, optionally filtered.

    Parameters
    ----------
    viewer
        The viewer.
    session
        A Session (or its registry id); default any session.
    role
        One role or several (``"video"``, ``"keypoints"``, ``"points3d"``, ...).
    camera
        Camera name.
    """
    sid = session_id_of(session) if isinstance(session, Session) else session
    roles = {role} if isinstance(role, str) else (set(role) if role is not None else None)
    out = []
    for layer in viewer.layers:
        m = meta(layer)
        if not m or "role" not in m:
            continue
        if sid is not None and m.get("session") != sid:
            continue
        if roles is not None and m["role"] not in roles:
            continue
        if camera is not None and m.get("camera") != camera:
            continue
        out.append(layer)
    return out


def session_of(obj: Any) -> Session:
    """The Session behind a layer, or behind a viewer's session layers.

    For a viewer: the session of the selected layer when it is a session layer, else the only session shown.

    Raises
    ------
    ValueError
        When the layer is not a session layer, or a viewer shows no session or several (select a layer).
    KeyError
        When the session was removed from the registry.
    """
    m = meta(obj)
    if m:
        return _session_by_id(m.get("session"), getattr(obj, "name", ""))
    layers = getattr(obj, "layers", None)
    if layers is None:
        raise ValueError(f"{obj!r} is neither a napari viewer nor a layer made by napari-smil-mv")
    active = layers.selection.active
    if active is not None and meta(active).get("session") is not None:
        return get_session(meta(active)["session"])
    ids = list(dict.fromkeys(meta(la)["session"] for la in layers if meta(la).get("session") is not None))
    if not ids:
        raise ValueError(
            "the viewer shows no session; load one with napari_smil_mv.api.load_session(viewer, path)"
        )
    if len(ids) > 1:
        raise ValueError(
            f"the viewer shows several sessions {ids}; select one of their layers or pass a layer"
        )
    return get_session(ids[0])


def _session_by_id(session_id: str | None, layer_name: str) -> Session:
    if session_id is None:
        raise ValueError(
            f"layer {layer_name!r} comes from a plain .slp file without calibration, not from a session; open "
            "the session folder (or a .slp holding a recording session) instead"
        )
    return get_session(session_id)


def add_layer_data(viewer: napari.Viewer, layer_data: Sequence[tuple]) -> list:
    """Add ``(data, kwargs, layer_type)`` tuples to the viewer (main thread only); returns the layers."""
    return add_layers(viewer, layer_data)


def show_session(
    viewer: napari.Viewer,
    session: Session,
    *,
    cameras: Sequence[str] | None = None,
    frames: Any = None,
    layout: str | None = "grid",
    **layer_options: Any,
) -> list:
    """Add a session's layers to ``viewer`` and apply a layout.

    Parameters
    ----------
    viewer
        The viewer.
    session
        A loaded session (registered here, so :func:`session_of` finds it).
    cameras, frames, layer_options
        Passed to :func:`napari_smil_mv.napari.layers.session_layers.session_layer_data` (``points3d``, ``score_threshold``,
        ``point_size``, ``frustum_depth``).
    layout
        ``"grid"``, ``"mosaic"``, ``"world"`` or None (leave the viewer's layout alone).

    Returns
    -------
    list of napari layers
        ``4 * n_cameras`` camera layers, then the 4 world layers when the viewer shows (or is switched to) the
        world layout. In the 2D layouts the world layers are created by the first switch to the world layout
        (:func:`set_layout`, the Session widget's "World view" button) or by :func:`add_world_layers`: napari's
        cost of creating them is then not part of opening a session.
    """
    sid = register_session(session)
    if "name_prefix" not in layer_options:
        others = {meta(layer).get("session") for layer in viewer.layers if meta(layer)} - {sid}
        layer_options["name_prefix"] = f"{sid}/" if others else ""
    world = (layout or layout_of(viewer)) == "world"
    data = session_layer_data(
        session,
        cameras,
        frames,
        session_id=sid,
        layout="mosaic" if layout == "mosaic" else "grid",
        world=world,
        **layer_options,
    )
    if layout_of(viewer) == "world":  # added to the 3D view: camera layers wait hidden for the 2D layouts
        for _, kwargs, _ in data:
            kwargs["visible"] = kwargs["metadata"][_KEY]["camera"] is None
    empty = len(viewer.layers) == 0
    prefetch_first_frames(data, 0 if empty else None)  # decoded while napari builds the layers
    with gc_paused():  # napari's many new objects: see napari.batch_add
        layers = add_layers(viewer, data, first_step=True)  # an empty viewer starts at the first frame
        if layout is not None:
            set_layout(viewer, layout)
    return layers


def load_session(
    viewer: napari.Viewer,
    path: str | Path,
    *,
    cameras: Sequence[str] | None = None,
    frames: Any = None,
    units: str | None = None,
    camera_map: dict[str, str] | None = None,
    layout: str | None = "grid",
    **layer_options: Any,
) -> Session:
    """Load a session (folder, its ``calibration.toml`` or a ``.slp``) and show it in ``viewer``.

    See :func:`napari_smil_mv.sessions.load_session` for ``units``/``camera_map`` and :func:`show_session` for
    the rest. Returns the Session (also available later through :func:`session_of`).
    """
    session = _load_session(path, camera_map=camera_map, units=units)
    show_session(viewer, session, cameras=cameras, frames=frames, layout=layout, **layer_options)
    return session


def add_world_layers(viewer: napari.Viewer, session: Session | str | None = None) -> list:
    """Create the world layers (``WORLD_ROLES``) of sessions shown without them; returns the new layers.

    Sessions opened in the 2D layouts (:func:`show_session`, :func:`load_session`, the readers) get their 3D
    keypoints, 3D skeleton, camera frustums and names only when needed: :func:`set_layout` calls this when it
    switches to ``"world"``. Call it directly to have them without switching (they are added hidden in the 2D
    layouts, shown in the world layout). Sessions that already have world layers, and layers not built with
    ``world=False``, are left alone.

    Parameters
    ----------
    viewer
        The viewer.
    session
        Only this session (or registry id); default every session in the viewer.
    """
    from napari_smil_mv.napari.layers.world_layers import WORLD_ROLES, deferred_world_layer_data

    sid_filter = session_id_of(session) if isinstance(session, Session) else session
    specs: dict[str, Any] = {}
    have_world = set()
    for layer in session_layers(viewer, sid_filter):
        m = meta(layer)
        if m.get("role") in WORLD_ROLES:
            have_world.add(m.get("session"))
        elif m.get("world_spec") is not None and m.get("session") is not None:
            specs.setdefault(m["session"], m["world_spec"])
    data = []
    for sid, spec in specs.items():
        if sid in have_world:
            continue
        try:
            session_obj = get_session(sid)
        except KeyError:  # forgotten session: its layers stay as they are
            continue
        data += deferred_world_layer_data(session_obj, spec, sid)
    shown = layout_of(viewer) == "world"
    for _, kwargs, _ in data:
        kwargs["visible"] = shown
    return add_layer_data(viewer, data) if data else []


def frame_axis(viewer: napari.Viewer) -> int:
    """Viewer axis of the video frame index (per-camera layers are ``(frame, row, col)``, trailing-aligned)."""
    return max(viewer.dims.ndim - 3, 0)


def set_frame(viewer: napari.Viewer, frame: int) -> None:
    """Show video frame ``frame`` (moves the frame slider).

    The frame axis is in video frame numbers (frame subsets are placed with the layers' ``translate``/``scale``),
    so this sets the dims *point*, not the slider step: with layers holding frames 20..79, frame 30 is step 10.
    """
    viewer.dims.set_point(frame_axis(viewer), float(frame))


def _remember_visibility(layers: Sequence, key: str) -> None:
    for layer in layers:
        meta(layer)[key] = bool(layer.visible)


def _restore_visibility(layers: Sequence, key: str, default: bool = True) -> None:
    for layer in layers:
        layer.visible = bool(meta(layer).pop(key, default))


def _group_camera_layers_first(viewer: napari.Viewer) -> None:
    """Move session camera layers to the bottom of the layer list (in their order) so stride groups align."""
    cam_idx = [i for i, layer in enumerate(viewer.layers) if meta(layer).get("camera") is not None]
    if cam_idx and cam_idx != list(range(len(cam_idx))):
        viewer.layers.move_multiple(cam_idx, 0)


def _world_view_direction(viewer: napari.Viewer) -> tuple[np.ndarray, np.ndarray] | None:
    """View and up directions (napari displayed ``(z, y, x)``): ``VIEW_ANGLE`` degrees off the cameras' mean optical
    axis, towards their mean image x axis, with their mean image-up direction up."""
    fwd, up = [], []
    seen = set()
    for layer in session_layers(viewer, role="frustums"):
        sid = meta(layer)["session"]
        if sid in seen:
            continue
        seen.add(sid)
        try:
            session = get_session(sid)
        except KeyError:
            continue
        cams = list(dict.fromkeys(layer.features["camera"])) if len(layer.features) else []
        for c in cams:
            rot = session.views[c].camera.R
            fwd.append(rot[2])  # optical axis in world = R^T @ (0, 0, 1)
            up.append(-rot[1])  # image up in world = -(R^T @ (0, 1, 0))
    if not fwd:
        return None
    f = np.mean(fwd, axis=0)
    u = np.mean(up, axis=0)
    if np.linalg.norm(f) < 1e-6:
        return None
    f = f / np.linalg.norm(f)
    u = u - f * (u @ f)
    if np.linalg.norm(u) < 1e-6:
        return None
    u = u / np.linalg.norm(u)
    right = np.cross(f, -u)  # image x axis of the "mean camera" (x right, y down, z forward)
    view = f * np.cos(np.radians(VIEW_ANGLE)) + right * np.sin(np.radians(VIEW_ANGLE))
    return view[::-1], u[::-1]  # world (x, y, z) -> napari displayed (z, y, x)


def _world_positions(layer, ndim: int) -> np.ndarray:
    """``(M, ndim)`` positions covering a layer in world coordinates (trailing-aligned, NaN-padded).

    Points: the points; Vectors: both ends of every vector; other layers: the corners of their extent box.
    ``scale`` and ``translate`` are applied (the session layers use no rotation or affine).
    """
    from napari.layers import Points, Vectors

    k = layer.ndim
    if isinstance(layer, (Points, Vectors)) and len(layer.data):
        data = np.asarray(layer.data, dtype=np.float64)
        pts = data if isinstance(layer, Points) else np.concatenate([data[:, 0], data[:, 0] + data[:, 1]])
        pts = pts * np.asarray(layer.scale) + np.asarray(layer.translate)
        if isinstance(layer, Points) and layer.text.values.size:  # labels drawn away from their points
            offset = np.zeros(k)
            offset[-len(np.atleast_1d(layer.text.translation)) :] = layer.text.translation
            pts = np.concatenate([pts, pts + offset])
    else:
        ext = np.asarray(layer.extent.world, dtype=np.float64)
        if ext.size == 0 or not np.all(np.isfinite(ext)):
            return np.zeros((0, ndim))
        pts = np.array([[ext[b >> i & 1, i] for i in range(k)] for b in range(2**k)]) if k <= 4 else ext
    out = np.full((len(pts), ndim), np.nan)
    out[:, ndim - k :] = pts[:, -ndim:] if k > ndim else pts
    return out


def fit_view(viewer: napari.Viewer, layers: Sequence, margin: float = 0.05) -> None:
    """Centre and zoom the camera on ``layers`` only (napari's ``fit_to_view(layers=...)`` fails when they
    have fewer axes than the viewer). Works for 2D (also in grid mode: per viewbox) and 3D, where the fit uses
    the layers' points projected on the current view (tighter than their bounding box)."""
    ndim = viewer.dims.ndim
    disp = list(viewer.dims.displayed)
    pos = [_world_positions(layer, ndim)[:, disp] for layer in layers]
    pos = np.concatenate(pos) if pos else np.zeros((0, len(disp)))
    pos = pos[np.all(np.isfinite(pos), axis=1)]
    if not len(pos):
        viewer.reset_view(reset_camera_angle=False)
        return
    camera = viewer.scene.camera
    viewbox = np.asarray(viewer.canvas.viewbox_size(viewer.layers), dtype=np.float64)  # (height, width)
    lo, hi = pos.min(axis=0), pos.max(axis=0)
    if len(disp) == 2:
        size = np.maximum(hi - lo, 1e-9)
        camera.center = (0.0, *(lo + size / 2))
        camera.zoom = float((1 - margin) * np.min(viewbox / size))
        return
    view = np.asarray(camera.view_direction, dtype=np.float64)
    up = np.asarray(camera.up_direction, dtype=np.float64)
    right = np.cross(view, up)
    axes = np.stack([up, right, view])  # orthonormal
    proj = pos @ axes.T
    p_lo, p_hi = proj.min(axis=0), proj.max(axis=0)
    camera.center = tuple(((p_lo + p_hi) / 2) @ axes)
    box = np.maximum(p_hi[:2] - p_lo[:2], 1e-9)
    camera.zoom = float((1 - margin) * np.min(viewbox / box))


def _set_tiling(cam_layers: Sequence, mosaic: bool) -> None:
    """Shift each camera's layers by its ``mosaic_offset`` (mosaic) or back to the origin (grid)."""
    for layer in cam_layers:
        offset = meta(layer).get("mosaic_offset", (0.0, 0.0)) if mosaic else (0.0, 0.0)
        t = np.asarray(layer.translate, dtype=np.float64).copy()
        if t.size >= 2 and not np.allclose(t[-2:], offset):
            t[-2:] = offset
            layer.translate = t


def _layers_per_camera(cam_layers: Sequence) -> int:
    """Grid stride: the most layers one (session, camera) has (4 for a session, 6 with fit results)."""
    counts = Counter((meta(la).get("session"), meta(la)["camera"]) for la in cam_layers)
    return max(counts.values(), default=LAYERS_PER_CAMERA)


def set_layout(viewer: napari.Viewer, layout: str) -> None:
    """Switch between the camera grid, the camera mosaic and the 3D world view.

    ``"grid"``: per-camera layers visible (as they were before the world view), world layers hidden, one camera
    per grid cell (``viewer.canvas.grid`` with stride = layers per camera), 2D display, view fitted.
    ``"mosaic"``: the same without napari's grid: each camera's layers are shifted (``translate``) to their own
    tile of one canvas (what the readers return; pan/zoom then covers all cameras at once).
    ``"world"``: per-camera layers hidden (their visibility is remembered), world layers shown, grid off, 3D
    display of the world axes ``(z, y, x)`` with a right-handed camera looking along the cameras' mean
    optical axis, view fitted to the world layers.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if layout == "world":  # sessions opened in a 2D layout get their world layers now (shown below)
        add_world_layers(viewer)
    # Session layers and the fit-result layers that go with them (roles of napari.results_layers): a camera
    # name means a per-camera layer, camera None a world layer.
    ours = [la for la in session_layers(viewer) if "camera" in meta(la)]
    cam_layers = [la for la in ours if meta(la)["camera"] is not None]
    world_layers = [la for la in ours if meta(la)["camera"] is None]
    grid = viewer.canvas.grid
    camera = viewer.scene.camera
    state = _STATE.setdefault(viewer, {})
    current = state.get("layout")
    if layout in ("grid", "mosaic"):
        if current == "world":
            _remember_visibility(world_layers, "_visible_in_world")
        for layer in world_layers:
            if layer.visible:  # each visibility event costs O(layers²) in napari's grid: skip no-ops
                layer.visible = False
        viewer.dims.ndisplay = 2  # before showing videos: in 3D napari would ask for whole videos
        viewer.dims.order = tuple(range(viewer.dims.ndim))
        if current == "world":
            _restore_visibility(cam_layers, "_visible_in_grid")
            if state.get("orientation") is not None:
                camera.orientation = state["orientation"]
        _set_tiling(cam_layers, mosaic=layout == "mosaic")
        if layout == "grid":
            _group_camera_layers_first(viewer)
            grid.stride = _layers_per_camera(cam_layers)
            grid.shape = (-1, -1)
            grid.spacing = GRID_SPACING
        grid.enabled = layout == "grid" and bool(cam_layers)
        _only_frame_slider(viewer)
        fit_view(viewer, [la for la in cam_layers if la.visible] or cam_layers)
    else:
        if current != "world":
            _remember_visibility(cam_layers, "_visible_in_grid")
            state["orientation"] = tuple(str(o) for o in camera.orientation)
        for layer in cam_layers:
            if layer.visible:
                layer.visible = False
        _restore_visibility(world_layers, "_visible_in_world")
        grid.enabled = False
        restore_ranges(viewer)  # the world axes get their range back (see dims_sliders)
        ndim = viewer.dims.ndim
        fa = frame_axis(viewer)
        viewer.dims.order = (fa, *[d for d in range(ndim) if d != fa])
        viewer.dims.ndisplay = 3
        camera.orientation = WORLD_ORIENTATION
        direction = _world_view_direction(viewer)
        if direction is not None:
            camera.set_view_direction(tuple(direction[0]), tuple(direction[1]))
        fit_view(viewer, [la for la in world_layers if la.visible] or world_layers, margin=0.12)
    state["layout"] = layout


def _only_frame_slider(viewer: napari.Viewer) -> None:
    """2D layouts: no slider for the world ``z`` axis of the hidden world layers (napari.dims_sliders)."""
    hide_unused_sliders(viewer)
    keep_sliders_hidden(viewer, lambda: layout_of(viewer) in ("grid", "mosaic"))


def layout_of(viewer: napari.Viewer) -> str | None:
    """The layout last set by :func:`set_layout` (None if never)."""
    return _STATE.get(viewer, {}).get("layout")


__all__ = [
    "LAYOUTS",
    "add_layer_data",
    "add_world_layers",
    "frame_axis",
    "layout_of",
    "load_session",
    "meta",
    "session_layers",
    "session_of",
    "set_frame",
    "set_layout",
    "show_session",
]
