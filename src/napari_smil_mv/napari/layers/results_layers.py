"""Pure layer builders for fit results (:class:`~napari_smil_mv.results.Results`): no viewer, no Qt.

Per camera (two layers, placed with that camera's session layers, see :mod:`.results_view`):

* ``mesh_proj`` — the fitted mesh projected into the camera as a translucent 2D Surface ``(frame, row, col)``,
  front-facing triangles only (a flat overlay has no depth test), coloured by camera depth (near = bright);
* ``kp_pred`` — the fitted model keypoints projected into the camera (Points, symbol ``cross``, unlike the data
  keypoints' discs/squares), coloured by their reprojection error (green 0 px → red ≥ 20 px, grey where the
  joint was not observed); features ``joint``, ``node``, ``err_px``, ``observed``.

World (axes ``(z, frame, y, x)`` as in :mod:`.world_layers`): ``mesh_world`` (Surface), ``kp3d_pred`` (Points,
coloured by the median reprojection error over the cameras used) and ``skeleton3d_pred`` (Vectors along the
model's kinematic tree).

**Meshes over time.** ``mesh_mode="stacked"`` stores every frame in one Surface (the vertices of frame ``t``
carry its video frame number as frame coordinate, faces are offset per frame), so napari's slider shows the
current frame's faces with no code running; memory is about ``T·V·(3·C + 4)·4`` bytes (float32) plus the faces,
and napari re-slices all of it on every step. ``"per_frame"`` layers hold one frame on a frame axis stretched over
the whole clip (the trick of the static world layers) and
:class:`napari_smil_mv.napari.results_view.PerFrameMeshes` poses and projects the mesh of the frame shown when
the slider moves (memory independent of the clip length). ``"auto"`` stacks up to
:data:`~napari_smil_mv.napari.layers.results_mesh.STACKED_MAX_VERTEX_FRAMES` frame·vertices (the 3 594-vertex demo
insect up to 278 frames) and updates per frame beyond (the 11 263-vertex mouse from 89 frames on); measured on
the 120-frame mouse session, a slider step took about 0.6 s stacked and 0.26 s per frame (docs/fitting.md).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from napari_smil_mv.napari.layers.coords import skeleton_vectors, xy_to_rowcol
from napari_smil_mv.napari.layers.results_mesh import (
    MESH_MODES,
    STACKED_MAX_VERTEX_FRAMES,
    baked_shading,
    choose_mesh_mode,
    light_direction,
    marker_size,
    mesh_vertices,
    model_for_results,
    project_mesh,
    stack_frames,
    static_frame_transform,
)
from napari_smil_mv.napari.layers.results_standalone import (
    results_view_data,
    rig_world_layer_data,
    standalone_meta,
)
from napari_smil_mv.napari.layers.session_layers import (
    CAMERA_AXES,
    LAYERS_PER_CAMERA,
    LayerDataTuple,
    _meta,
    apply_layout,
    default_point_size,
    view_layer_data,
)
from napari_smil_mv.napari.layers.styles import error_colors
from napari_smil_mv.napari.layers.world_layers import WORLD_AXES, world_to_napari
from napari_smil_mv.results import Results

#: Roles of the per-camera result layers, in their order (mesh right after the video, keypoints last).
RESULT_CAMERA_ROLES = ("mesh_proj", "kp_pred")
#: Roles of the world result layers.
RESULT_WORLD_ROLES = ("mesh_world", "kp3d_pred", "skeleton3d_pred")
RESULT_ROLES = RESULT_CAMERA_ROLES + RESULT_WORLD_ROLES
#: Layers per camera when results (with a mesh) are shown with a session.
LAYERS_PER_CAMERA_WITH_RESULTS = LAYERS_PER_CAMERA + len(RESULT_CAMERA_ROLES)
PRED_SYMBOL = "cross"
MESH_COLORMAP = "plasma"
MESH_OPACITY = 0.45
WORLD_MESH_COLORMAP = "pink"


# ------------------------------------------------------------------------------------------ per camera
def _result_meta(
    base: dict, camera: str | None, role: str, axes, units: str, results: Results, **extra
) -> dict:
    return _meta(
        base,
        camera,
        role,
        axes,
        units,
        layers_per_camera=LAYERS_PER_CAMERA_WITH_RESULTS,
        results_path=results.provenance.get("path"),
        **extra,
    )


def camera_verdicts(results: Results) -> dict[str, dict]:
    """Per camera name the fit's verdict from the provenance (``fit_median_px``, ``used``, ``note``, ...)."""
    out = {}
    for rep in results.provenance.get("cameras", []) or []:
        if isinstance(rep, dict) and "name" in rep:
            out[str(rep["name"])] = rep
    return out


def camera_mesh_layer(
    results: Results,
    camera_index: int,
    vertices: np.ndarray,
    faces: np.ndarray,
    base_meta: dict,
    mesh_mode: str = "stacked",
    name_prefix: str = "",
    opacity: float = MESH_OPACITY,
    colormap: str = MESH_COLORMAP,
    wireframe: bool = False,
) -> LayerDataTuple:
    """The ``mesh_proj`` Surface of one camera.

    Parameters
    ----------
    results
        The results.
    camera_index
        Index into ``results.cameras``.
    vertices
        ``(T, V, 3)`` world vertices of every results frame (``"stacked"``) or ``(1, V, 3)`` of the frame to show
        first (``"per_frame"``).
    faces
        ``(F, 3)`` model triangles.
    base_meta
        Shared metadata (:func:`napari_smil_mv.napari.layers.session_layers.session_meta` or :func:`standalone_meta`).
    mesh_mode
        ``"stacked"`` (data ``(ΣF', 3)`` ``(frame, row, col)``) or ``"per_frame"`` (one frame on a stretched frame
        axis; see the module docstring).
    name_prefix, opacity, colormap, wireframe
        Display options (``wireframe`` draws the triangle edges too).
    """
    cam = results.cameras[camera_index]
    per = [project_mesh(v, faces, cam) for v in vertices]
    frames = results.frame_indices[: len(per)] if mesh_mode == "stacked" else np.zeros(1)
    verts, tris = stack_frames([p[0] for p in per], [p[1] for p in per], frames)
    values = np.concatenate([p[2] for p in per]).astype(np.float32)
    kwargs: dict[str, Any] = {
        "name": f"{name_prefix}{cam.name} · fit mesh",
        "opacity": float(opacity),
        "blending": "translucent",
        "colormap": colormap,
        "contrast_limits": (0.0, 1.0),
        "shading": "none",
        "axis_labels": CAMERA_AXES,
        "metadata": _result_meta(
            base_meta,
            cam.name,
            "mesh_proj",
            CAMERA_AXES,
            "px",
            results,
            mesh_mode=mesh_mode,
            n_vertices=int(vertices.shape[1]),
        ),
    }
    if wireframe:
        kwargs["wireframe"] = {"visible": True, "color": (1.0, 1.0, 1.0, 0.35), "width": 0.5}
    if mesh_mode == "per_frame":
        kwargs["scale"], kwargs["translate"] = static_frame_transform(results.frame_indices, 3)
    return ((verts, tris, values), kwargs, "surface")


def camera_keypoint_layer(
    results: Results,
    camera_index: int,
    base_meta: dict,
    joints: str = "mapped",
    point_size: float | None = None,
    name_prefix: str = "",
) -> LayerDataTuple:
    """The ``kp_pred`` Points of one camera: fitted keypoints projected, coloured by reprojection error.

    ``joints``: ``"mapped"`` (the model joints that have a data keypoint) or ``"all"``.
    """
    if joints not in ("mapped", "all"):
        raise ValueError(f"joints must be 'mapped' or 'all', got {joints!r}")
    cam = results.cameras[camera_index]
    proj = results.projections_2d[camera_index]  # (T, J, 2) x, y
    err = results.reprojection_error[camera_index]  # (T, J)
    sel = results.mapped if joints == "mapped" else np.ones(results.n_joints, dtype=bool)
    w, h = cam.size
    ok = (
        np.all(np.isfinite(proj), axis=-1)
        & sel[None]
        & (np.abs(proj[..., 0] - w / 2) < 1.5 * w)
        & (np.abs(proj[..., 1] - h / 2) < 1.5 * h)
    )
    t_idx, j_idx = np.nonzero(ok)
    e = err[t_idx, j_idx]
    names = results.joint_names
    nodes = results.data_names or [""] * results.n_joints
    data = np.column_stack(
        [results.frame_indices[t_idx].astype(np.float64), xy_to_rowcol(proj[t_idx, j_idx])]
    )
    size = float(point_size) if point_size is not None else default_point_size(cam.size)
    verdict = camera_verdicts(results).get(cam.name, {})
    return (
        data if len(t_idx) else np.zeros((0, 3)),
        {
            "name": f"{name_prefix}{cam.name} · fit keypoints",
            "features": pd.DataFrame(
                {
                    "joint": pd.Categorical([names[j] for j in j_idx], categories=names),
                    "node": [nodes[j] for j in j_idx],
                    "err_px": e,
                    "observed": np.isfinite(e),
                }
            ),
            "symbol": PRED_SYMBOL,
            "face_color": error_colors(e) if len(e) else "white",
            "border_width": 0,
            "size": size * 0.9,
            "axis_labels": CAMERA_AXES,
            "metadata": _result_meta(
                base_meta,
                cam.name,
                "kp_pred",
                CAMERA_AXES,
                "px",
                results,
                camera_used=bool(results.camera_used[camera_index]),
                fit_median_px=verdict.get("fit_median_px"),
                verdict=verdict.get("note", ""),
            ),
        },
        "points",
    )


# ------------------------------------------------------------------------------------------ world
def world_result_layer_data(
    results: Results,
    vertices: np.ndarray | None,
    faces: np.ndarray | None,
    base_meta: dict,
    mesh_mode: str = "stacked",
    name_prefix: str = "",
) -> list[LayerDataTuple]:
    """World layers: ``mesh_world`` (when ``vertices`` is given), ``kp3d_pred``, ``skeleton3d_pred``.

    ``vertices`` is ``(T, V, 3)`` (``"stacked"``) or ``(1, V, 3)`` (``"per_frame"``) world coordinates. The mesh's
    vertex values are its shading, lit from the cameras' side (:func:`~.results_mesh.baked_shading`).
    """
    units = results.units
    out: list[LayerDataTuple] = []
    frames = results.frame_indices.astype(np.float64)
    if vertices is not None and faces is not None:
        n_v = vertices.shape[1]
        fr = frames[: len(vertices)] if mesh_mode == "stacked" else np.zeros(1)
        per = [world_to_napari(v, f).astype(np.float32) for v, f in zip(vertices, fr, strict=True)]
        verts = np.concatenate(per)
        # (x, y, z) -> (z, y, x) is a reflection: reversed winding keeps the faces outward-oriented in napari's
        # axis order (napari's lighting is two-sided, but normals and exported faces stay consistent)
        world_faces = np.asarray(faces, np.int64)[:, ::-1]
        tris = (world_faces[None] + (np.arange(len(per)) * n_v)[:, None, None]).reshape(-1, 3)
        light = light_direction(results)
        values = np.concatenate([baked_shading(v, faces, light) for v in vertices])
        kwargs: dict[str, Any] = {
            "name": f"{name_prefix}world · fit mesh",
            "colormap": WORLD_MESH_COLORMAP,
            "contrast_limits": (0.0, 1.0),
            "shading": "none",  # shading baked into the values
            "opacity": 1.0,
            "axis_labels": WORLD_AXES,
            "metadata": _result_meta(
                base_meta, None, "mesh_world", WORLD_AXES, units, results, mesh_mode=mesh_mode, n_vertices=n_v
            ),
        }
        if mesh_mode == "per_frame":
            kwargs["scale"], kwargs["translate"] = static_frame_transform(results.frame_indices, 4, 1)
        out.append(((verts, tris.astype(np.int32), values.astype(np.float32)), kwargs, "surface"))

    j3 = results.joints_3d
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # joints not observed by any used camera
        used = results.camera_used if results.camera_used.any() else np.ones(results.n_cameras, bool)
        err = np.nanmedian(results.reprojection_error[used], axis=0)  # (T, J)
    t_idx, j_idx = np.nonzero(np.all(np.isfinite(j3), axis=-1))
    marker = marker_size(results)
    names = results.joint_names
    out.append(
        (
            world_to_napari(j3[t_idx, j_idx], frames[t_idx]),
            {
                "name": f"{name_prefix}world · fit joints",
                "features": pd.DataFrame(
                    {
                        "joint": pd.Categorical([names[j] for j in j_idx], categories=names),
                        "err_px": err[t_idx, j_idx],
                    }
                ),
                "face_color": error_colors(err[t_idx, j_idx]) if len(t_idx) else "white",
                "border_width": 0.1,
                "border_color": "black",
                "symbol": PRED_SYMBOL,
                "size": marker,
                "axis_labels": WORLD_AXES,
                "metadata": _result_meta(base_meta, None, "kp3d_pred", WORLD_AXES, units, results),
            },
            "points",
        )
    )
    parents = results.parents if results.parents is not None else []
    bones = [(int(parent), child) for child, parent in enumerate(parents) if parent >= 0]
    out.append(
        (
            skeleton_vectors(j3[:, None], frames, bones, world_to_napari)[0],
            {
                "name": f"{name_prefix}world · fit skeleton",
                "edge_color": "white",
                "edge_width": marker * 0.3,
                "vector_style": "line",
                "opacity": 0.9,
                "axis_labels": WORLD_AXES,
                "metadata": _result_meta(base_meta, None, "skeleton3d_pred", WORLD_AXES, units, results),
            },
            "vectors",
        )
    )
    return out


# ------------------------------------------------------------------------------------------ everything
def results_layer_data(
    results: Results,
    model: Any = None,
    *,
    vertices: np.ndarray | None = None,
    base_meta: dict | None = None,
    cameras: Sequence[str] | None = None,
    standalone: bool = False,
    mesh: bool = True,
    mesh_mode: str = "auto",
    joints: str = "mapped",
    point_size: float | None = None,
    name_prefix: str = "",
    layout: str | None = None,
) -> list[LayerDataTuple]:
    """Layer data of fit results.

    Parameters
    ----------
    results
        The results.
    model
        The body model (SMILModelData or ``.pkl`` path); None looks it up (:func:`model_for_results`). Without a
        model no mesh layers are made.
    vertices
        Precomputed ``(T, V, 3)`` world vertices (skips posing the model).
    base_meta
        Metadata base: the session's (:func:`napari_smil_mv.napari.layers.session_layers.session_meta`) when the layers go with
        a session shown in the viewer; default :func:`standalone_meta`.
    cameras
        Camera names to include (default all of the results).
    standalone
        Also build what a session would show (per camera video, data keypoints with their skeleton, an empty
        reprojection layer; world frustums and names), so a results file opens on its own.
    mesh
        Build the mesh layers (needs the model).
    mesh_mode
        ``"auto"``, ``"stacked"`` or ``"per_frame"`` (module docstring).
    joints
        Fitted keypoints per camera: ``"mapped"`` joints only, or ``"all"``.
    point_size
        Keypoint marker diameter in px (default about 1.8 % of the image side).
    name_prefix
        Prepended to the layer names.
    layout
        For ``standalone``: None, ``"grid"`` or ``"mosaic"`` (:func:`napari_smil_mv.napari.layers.session_layers.apply_layout`).

    Returns
    -------
    list of (data, kwargs, layer_type)
        Per camera in rig order (standalone: ``video, mesh_proj, skeleton, reprojection, keypoints, kp_pred``;
        otherwise ``mesh_proj, kp_pred``), then the world layers (standalone: ``frustums, camera_names`` first).
        Each result layer's metadata has ``results_path`` and, for meshes, ``mesh_mode``.
    """
    base = dict(base_meta) if base_meta is not None else standalone_meta(results)
    names = (
        results.camera_names if cameras is None else [c for c in results.camera_names if c in set(cameras)]
    )
    unknown = sorted(set(cameras or ()) - set(results.camera_names))
    if unknown:
        raise KeyError(f"unknown cameras {unknown}; the results have {results.camera_names}")
    faces = None
    mode = "stacked"
    if mesh:
        model = model_for_results(results, model)
        if model is not None:
            mode = choose_mesh_mode(results.n_frames, model.n_vertices, mesh_mode)
            if vertices is None:
                vertices = mesh_vertices(results, model, None if mode == "stacked" else [0])
            elif mode == "per_frame" or len(vertices) != results.n_frames:
                mode, vertices = "per_frame", np.asarray(vertices)[:1]
            faces = np.asarray(model.faces)
    if faces is None:
        vertices = None
    frames = range(int(results.frame_indices.min()), int(results.frame_indices.max()) + 1)
    out: list[LayerDataTuple] = []
    for name in names:
        c = results.camera_names.index(name)
        mesh_layer = (
            [camera_mesh_layer(results, c, vertices, faces, base, mode, name_prefix)]
            if vertices is not None
            else []
        )
        kp = camera_keypoint_layer(results, c, base, joints, point_size, name_prefix)
        if standalone:
            session_like = view_layer_data(
                results_view_data(results, c), frames, base, None, 0.0, point_size, name_prefix
            )
            out += session_like[:1] + mesh_layer + session_like[1:] + [kp]
        else:
            out += mesh_layer + [kp]
    if standalone:
        out += rig_world_layer_data(results, base, frames, name_prefix)
    out += world_result_layer_data(results, vertices, faces, base, mode, name_prefix)
    per_camera = LAYERS_PER_CAMERA + (2 if vertices is not None else 1)
    for _, kw, _ in out:
        m = kw["metadata"]["napari_smil_mv"]
        if standalone or m["role"] in RESULT_ROLES:
            m["layers_per_camera"] = per_camera
    return apply_layout(out, layout) if standalone else out


__all__ = [
    "LAYERS_PER_CAMERA_WITH_RESULTS",
    "MESH_MODES",
    "RESULT_CAMERA_ROLES",
    "RESULT_ROLES",
    "RESULT_WORLD_ROLES",
    "STACKED_MAX_VERTEX_FRAMES",
    "camera_keypoint_layer",
    "camera_mesh_layer",
    "camera_verdicts",
    "choose_mesh_mode",
    "mesh_vertices",
    "model_for_results",
    "project_mesh",
    "results_layer_data",
    "world_result_layer_data",
]
