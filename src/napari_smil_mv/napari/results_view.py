"""Fit results in a napari viewer: adding the result layers next to their session's layers, per-frame mesh
updates for long clips, and the scripting entry points re-exported by :mod:`napari_smil_mv.api`.

Placement: each camera's ``mesh_proj`` layer goes right after that camera's video layer and its ``kp_pred`` layer
after the camera's last layer, so every camera's layers stay contiguous and in the same order and the grid
(stride = layers per camera, see :func:`napari_smil_mv.napari.scripting.set_layout`) keeps one camera per cell.
World result layers go to the end. Main thread only; napari is imported lazily.
"""

from __future__ import annotations

import os
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_smil_mv.napari.batch_add import gc_paused
from napari_smil_mv.napari.empty_text import skip_empty_text
from napari_smil_mv.napari.layers.results_layers import (
    RESULT_CAMERA_ROLES,
    RESULT_ROLES,
    results_layer_data,
)
from napari_smil_mv.napari.layers.results_mesh import (
    baked_shading,
    light_direction,
    mesh_vertices,
    model_for_results,
    project_mesh,
)
from napari_smil_mv.napari.layers.session_layers import session_meta
from napari_smil_mv.napari.layers.world_layers import world_to_napari
from napari_smil_mv.napari.registry import get_session, registered_sessions, session_id_of
from napari_smil_mv.napari.scripting import (
    add_layer_data,
    frame_axis,
    layout_of,
    meta,
    session_layers,
    set_layout,
)
from napari_smil_mv.results import Results, read_results
from napari_smil_mv.sessions import Session

if TYPE_CHECKING:  # pragma: no cover
    import napari

#: viewer -> list of PerFrameMeshes (weak: forgotten with the viewer)
_UPDATERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class PerFrameMeshes:
    """Keeps ``per_frame`` mesh layers on the viewer's current frame (see :mod:`.results_layers`).

    Connected to ``viewer.dims.events.current_step``; poses the body model for the frame shown (a small LRU
    cache keeps recent frames), projects it into each camera layer and replaces the layers' data. Frames without
    results show no mesh. Disconnects itself when its layers have left the viewer.

    Parameters
    ----------
    viewer
        The viewer.
    results
        The results shown.
    model
        Their body model (SMILModelData).
    layers
        The ``mesh_proj`` / ``mesh_world`` layers in ``per_frame`` mode.
    cache_size
        Frames of posed vertices kept.
    """

    def __init__(
        self, viewer: Any, results: Results, model: Any, layers: Sequence, cache_size: int = 32
    ) -> None:
        import torch

        from napari_smil_mv.body import SMILModel

        self._viewer = weakref.ref(viewer)
        self.results = results
        self.model = model
        self.faces = np.asarray(model.faces)
        self._smil = SMILModel(model, dtype=torch.float32)
        self._light = light_direction(results)
        self._layers = [weakref.ref(la) for la in layers]
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cache_size = int(cache_size)
        self._row: int | None = -1
        self._rows = {int(f): i for i, f in enumerate(results.frame_indices)}
        viewer.dims.events.current_step.connect(self._on_step)
        self._connected = True
        self.update()

    def vertices(self, row: int) -> np.ndarray:
        """Posed vertices ``(V, 3)`` float32 of results row ``row``."""
        if row in self._cache:
            self._cache.move_to_end(row)
            return self._cache[row]
        v = mesh_vertices(self.results, self.model, [row], smil=self._smil)[0]
        self._cache[row] = v
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return v

    def _alive(self) -> list:
        viewer = self._viewer()
        if viewer is None:
            return []
        return [la for la in (r() for r in self._layers) if la is not None and la in viewer.layers]

    def disconnect(self) -> None:
        """Stop following the frame slider (idempotent)."""
        viewer = self._viewer()
        if viewer is not None and self._connected:
            viewer.dims.events.current_step.disconnect(self._on_step)
        self._connected = False

    def _on_step(self, event: Any = None) -> None:
        self.update()

    def reconnect(self) -> None:
        """Follow the frame slider again (after its layers were put back in the viewer) and redraw."""
        viewer = self._viewer()
        if viewer is None:
            return
        if not self._connected:
            viewer.dims.events.current_step.connect(self._on_step)
            self._connected = True
        self._row = -1
        self.update()

    def update(self) -> None:
        """Show the mesh of the viewer's current frame."""
        viewer = self._viewer()
        layers = self._alive()
        if viewer is None or not layers:
            self.disconnect()
            return
        frame = int(round(viewer.dims.point[frame_axis(viewer)]))
        row = self._rows.get(frame)
        if row == self._row:
            return
        self._row = row
        verts = self.vertices(row) if row is not None else None
        for layer in layers:
            m = meta(layer)
            if m.get("role") == "mesh_proj":
                if verts is None:
                    layer.data = _empty_surface(3)
                    continue
                cam = self.results.cameras[self.results.camera_names.index(m["camera"])]
                rc, tris, values = project_mesh(verts, self.faces, cam)
                layer.data = (np.column_stack([np.zeros(len(rc), np.float32), rc]), tris, values)
            elif m.get("role") == "mesh_world":
                if verts is None:
                    layer.data = _empty_surface(4)
                    continue
                world = world_to_napari(verts, 0.0).astype(np.float32)
                # (x, y, z) -> (z, y, x) is a reflection: reversed winding keeps the faces outward-oriented
                shade = baked_shading(verts, self.faces, self._light)
                layer.data = (world, self.faces[:, ::-1], shade)


def _track(viewer: Any, updater: PerFrameMeshes) -> None:
    """Keep ``updater`` alive with the viewer; drop (and disconnect) those whose layers are gone."""
    kept = []
    for old in _UPDATERS.get(viewer, []):
        if old._alive():
            kept.append(old)
        else:
            old.disconnect()
    _UPDATERS[viewer] = [*kept, updater]


def _empty_surface(ndim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A surface that draws nothing: one degenerate triangle (napari needs at least one vertex)."""
    return np.zeros((3, ndim), np.float32), np.array([[0, 1, 2]]), np.zeros(3, np.float32)


def _match_session(viewer: napari.Viewer, results: Results) -> str | None:
    """Registry id of the session in ``viewer`` that the results were fitted on, or None."""
    shown = {meta(la).get("session") for la in session_layers(viewer)} - {None}
    sessions = {sid: s for sid, s in registered_sessions().items() if sid in shown}
    path = results.provenance.get("session")
    for sid, s in sessions.items():
        if path and Path(s.path) == Path(path):
            return sid
    cams = set(results.camera_names)
    candidates = [sid for sid, s in sessions.items() if cams <= set(s.camera_names)]
    named = [sid for sid in candidates if sessions[sid].name == results.provenance.get("session_name")]
    if len(named) == 1:
        return named[0]
    return candidates[0] if len(candidates) == 1 else None


def remove_results(viewer: napari.Viewer, session: Session | str | None = None, relayout: bool = True) -> int:
    """Remove result layers (of one session, or all); returns how many were removed.

    With ``relayout`` the current layout is applied again (the grid stride follows the layers per camera).
    """
    layers = session_layers(viewer, session, role=RESULT_ROLES)
    for layer in layers:
        viewer.layers.remove(layer)
    if layers and relayout and layout_of(viewer) is not None:
        set_layout(viewer, layout_of(viewer))
    return len(layers)


def _place(viewer: napari.Viewer, layer: Any) -> bool:
    """Insert a result layer next to its session's layers (module docstring); False when its camera is not shown."""
    m = meta(layer)
    if m["camera"] is None:
        viewer.layers.append(layer)
        return True
    mine = session_layers(viewer, m["session"], camera=m["camera"])
    if not mine:
        return False
    anchor = [la for la in mine if meta(la).get("role") == "video"] if m["role"] == "mesh_proj" else []
    viewer.layers.insert(viewer.layers.index((anchor or mine)[-1]) + 1, layer)
    return True


def detach_results(viewer: napari.Viewer, session: Session | str) -> list:
    """Take a session's result layers out of ``viewer`` to put them back later with :func:`reattach_results`.

    Used when the session's own layers are rebuilt (e.g. another camera or frame selection). Each layer's
    visibility in the grid and in the world layout is kept in its metadata. Returns the layers, in list order.
    """
    world = layout_of(viewer) == "world"
    layers = session_layers(viewer, session, role=RESULT_ROLES)
    for layer in layers:
        m = meta(layer)
        if m["camera"] is not None and not world:
            m["_visible_in_grid"] = bool(layer.visible)
        elif m["camera"] is not None:
            m.setdefault("_visible_in_grid", True)  # set_layout("world") remembered it
        elif world:
            m["_visible_in_world"] = bool(layer.visible)
        viewer.layers.remove(layer)
    return layers


def reattach_results(viewer: napari.Viewer, layers: Sequence) -> list:
    """Put result layers from :func:`detach_results` back next to their session's (rebuilt) layers.

    Layers of a camera the viewer no longer shows are left out; the others get the visibility they had in the
    current layout, which is applied again, and their per-frame meshes follow the frame slider again. Returns
    the layers put back.
    """
    world = layout_of(viewer) == "world"
    viewer.canvas.grid.enabled = False  # see add_results_layers; set_layout turns it back on
    added = []
    for layer in layers:
        m = meta(layer)
        if m["camera"] is not None:
            grid_vis = bool(m.pop("_visible_in_grid", layer.visible))
            if world:
                m["_visible_in_grid"] = grid_vis
            layer.visible = grid_vis and not world
        else:
            m["_visible_in_world"] = bool(m.pop("_visible_in_world", True))
            layer.visible = False  # set_layout("world") restores the remembered visibility
        if _place(viewer, layer):
            added.append(layer)
    back = {id(la) for la in added}
    for updater in _UPDATERS.get(viewer, []):
        if any(id(r()) in back for r in updater._layers):
            updater.reconnect()
    if layers:
        set_layout(viewer, layout_of(viewer) or "grid")
    return added


def add_results_layers(
    viewer: napari.Viewer,
    layer_data: Sequence[tuple],
    results: Results | None = None,
    model: Any = None,
    layout: str | None = None,
) -> list:
    """Add result layer data built for a session shown in ``viewer`` (see the module docstring for placement).

    Camera layers whose camera the viewer does not show are skipped. Earlier result layers of the same session
    are replaced. ``per_frame`` meshes get a :class:`PerFrameMeshes` (needs ``results`` and ``model``). The
    layout (``layout``, else the current one, else ``"grid"``) is applied again. Returns the added layers.
    """
    from napari.layers import Layer

    sids = {kw["metadata"]["napari_smil_mv"]["session"] for _, kw, _ in layer_data}
    for sid in sids:
        remove_results(viewer, sid, relayout=False)
    current = layout_of(viewer)
    # napari's grid makes every insertion cost O(layers²): off while inserting, set_layout turns it back on
    viewer.canvas.grid.enabled = False
    with gc_paused():  # napari's many new objects (see napari.batch_add)
        added = []
        for data, kwargs, layer_type in layer_data:
            m = kwargs["metadata"]["napari_smil_mv"]
            if m["camera"] is not None and not session_layers(viewer, m["session"], camera=m["camera"]):
                continue
            kwargs = dict(kwargs, visible=(current == "world") == (m["camera"] is None))
            layer = Layer.create(data, kwargs, layer_type)
            _place(viewer, layer)
            added.append(layer)
        skip_empty_text(viewer, added)
        per_frame = [la for la in added if meta(la).get("mesh_mode") == "per_frame"]
        if per_frame and results is not None and model is not None:
            _track(viewer, PerFrameMeshes(viewer, results, model, per_frame))
        set_layout(viewer, layout or current or "grid")
    return added


def show_results(
    viewer: napari.Viewer,
    results: Results | str | os.PathLike,
    model: Any = None,
    *,
    session: Session | str | None = "auto",
    cameras: Sequence[str] | None = None,
    mesh: bool = True,
    mesh_mode: str = "auto",
    joints: str = "mapped",
    layout: str | None = None,
) -> list:
    """Show fit results in ``viewer``: with their session's layers when that session is shown, else on their own.

    Parameters
    ----------
    viewer
        The viewer.
    results
        A :class:`~napari_smil_mv.results.Results` or a ``*.smilmv.h5`` path.
    model
        The body model (SMILModelData or ``.pkl``); ``results_mesh.RECORDED_MODEL``: the ``.pkl`` recorded in
        the results (loaded only when its SHA-256 matches); None: the embedded demo model when the results were
        made with it, else no mesh (a file the results merely name is not loaded without your choice).
    session
        ``"auto"``: the shown session the results were fitted on (by path, name and cameras); a Session or its
        registry id; None: show the results on their own (video, data keypoints and cameras from the file).
    cameras, mesh, mesh_mode, joints
        See :func:`napari_smil_mv.napari.layers.results_layers.results_layer_data`.
    layout
        ``"grid"``, ``"mosaic"``, ``"world"``, or None (the current layout, else ``"grid"``).

    Returns
    -------
    list of napari layers
        The added layers.
    """
    if not isinstance(results, Results):
        results = read_results(results)
    sid = None
    if isinstance(session, Session):
        sid = session_id_of(session)
        if sid is None:
            raise ValueError(f"session {session.name!r} is not shown; show it first (api.show_session)")
    elif session == "auto":
        sid = _match_session(viewer, results)
    elif session is not None:
        sid = session
    found = model_for_results(results, model) if mesh else None
    opts = {"cameras": cameras, "mesh": mesh and found is not None, "mesh_mode": mesh_mode, "joints": joints}
    if sid is None:
        data = results_layer_data(results, found, standalone=True, layout="grid", **opts)
        added = add_layer_data(viewer, data)
        per_frame = [la for la in added if meta(la).get("mesh_mode") == "per_frame"]
        if per_frame:
            _track(viewer, PerFrameMeshes(viewer, results, found, per_frame))
        set_layout(viewer, layout or "grid")
        return added
    base = session_meta(get_session(sid), sid)
    data = results_layer_data(results, found, base_meta=base, **opts)
    return add_results_layers(viewer, data, results, found, layout)


def load_results(
    viewer: napari.Viewer, path: str | os.PathLike, model: Any = None, **options: Any
) -> Results:
    """Read a results file and show it (:func:`show_results`); returns the Results."""
    results = read_results(path)
    show_results(viewer, results, model, **options)
    return results


def fit_session(
    viewer: napari.Viewer,
    model: Any = None,
    joint_map: Any = None,
    frames: tuple[int | None, int | None] = (None, None),
    config: Any = None,
    *,
    session: Session | None = None,
    show: bool = True,
    device: str | None = None,
) -> Results:
    """Fit the viewer's session (blocking; the Fit widget runs the same in a worker) and show the results.

    Parameters
    ----------
    viewer
        The viewer showing the session.
    model
        SMILModelData or ``.pkl`` path; None = the demo model.
    joint_map
        JointMap or ``joint_lookup.csv``; None = the session's ``joint_lookup.csv`` or an automatic match.
    frames
        ``(start, stop)`` video frames (stop exclusive).
    config
        :class:`~napari_smil_mv.fitting.FitConfig` (default settings when None).
    session
        The session (default: :func:`napari_smil_mv.api.session_of` the viewer).
    show
        Add the result layers next to the session's layers.
    device
        Torch device (default CPU).

    Returns
    -------
    Results
        Save them with :func:`napari_smil_mv.results.write_results`.
    """
    from napari_smil_mv.napari.jobs.fit_job import prepare_fit, run_fit_job
    from napari_smil_mv.napari.scripting import session_of

    session = session if session is not None else session_of(viewer)
    job = prepare_fit(session, model, joint_map, frames)
    events = run_fit_job(job, config, session_id=session_id_of(session), build_layers=show, device=device)
    while True:
        try:
            next(events)
        except StopIteration as stop:
            outcome = stop.value
            break
    if show:
        add_results_layers(viewer, outcome.layer_data, outcome.results, outcome.model)
    return outcome.results


def results_layers(viewer: napari.Viewer, role: str | Sequence[str] | None = None) -> list:
    """The result layers in ``viewer`` (optionally of some roles: ``mesh_proj``, ``kp_pred``, ...)."""
    roles = RESULT_ROLES if role is None else role
    return session_layers(viewer, role=roles)


__all__ = [
    "RESULT_CAMERA_ROLES",
    "PerFrameMeshes",
    "add_results_layers",
    "detach_results",
    "fit_session",
    "load_results",
    "reattach_results",
    "remove_results",
    "results_layers",
    "show_results",
]
