"""Meshes of fit results for napari: the body model behind a results file, posed vertices, their projection into a
camera (front faces only), time-stacking and the stretched frame axis of per-frame layers. Pure numpy/torch.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from napari_smil_mv.napari.layers.coords import xy_to_rowcol
from napari_smil_mv.napari.layers.world_layers import static_frame_transform
from napari_smil_mv.results import Results

#: Largest ``n_frames * n_vertices`` shown as time-stacked surfaces by ``mesh_mode="auto"``.
STACKED_MAX_VERTEX_FRAMES = 1_000_000
MESH_MODES = ("auto", "stacked", "per_frame")


#: ``model=RECORDED_MODEL``: load the ``.pkl`` the results name, after its bytes match the recorded SHA-256.
RECORDED_MODEL = "<recorded model>"


def recorded_model_file(results: Results) -> Path | None:
    """The existing model ``.pkl`` the results name (None for the demo model, nothing recorded, or no file)."""
    from napari_smil_mv.body.model_file import DEMO_SOURCE

    src = results.model_source
    if not src or src == DEMO_SOURCE or not Path(src).is_file():
        return None
    return Path(src)


def model_for_results(results: Results, model: Any = None) -> Any:
    """The body model of ``results`` (SMILModelData), or None with a warning when it is not loaded.

    A model file that the results merely name is never loaded on its own (opening a results file must not
    unpickle a file the user did not choose): pass it, or ``RECORDED_MODEL`` to accept the recorded one.

    Parameters
    ----------
    results
        The results.
    model
        A SMILModelData or a model ``.pkl`` path to use (checked against the results: ValueError when it is
        another model). ``RECORDED_MODEL``: the ``.pkl`` path recorded at fit time, loaded only when its bytes
        have the recorded SHA-256 (checked before unpickling; else a warning and None). None: the embedded demo
        model when the results were made with it, else a warning and None (no mesh).
    """
    from napari_smil_mv.body import load_smil_model
    from napari_smil_mv.body.model_file import DEMO_SOURCE
    from napari_smil_mv.body.recorded_model import load_recorded_model
    from napari_smil_mv.results import check_model

    src = results.model_source
    if isinstance(model, str) and model == RECORDED_MODEL:
        if src == DEMO_SOURCE:
            model = None
        else:
            try:
                found = load_recorded_model(src, results.model_sha256, "the results", "choose the model file")
            except (OSError, ValueError) as exc:
                warnings.warn(f"the fitted mesh is not shown: {exc}", stacklevel=2)
                return None
            model = found
    if model is not None:
        if isinstance(model, (str, os.PathLike)):
            model = load_smil_model(model)
        check_model(results, model)
        return model
    if src == DEMO_SOURCE:
        found = load_smil_model(None)
    elif src and Path(src).is_file():
        warnings.warn(
            f"the results name body model {src}; a model file is loaded only when you choose it, so the fitted "
            "mesh is not shown (Fit widget: Show results... asks; or api.show_results(viewer, results, "
            "model=path_or_RECORDED_MODEL))",
            stacklevel=2,
        )
        return None
    else:
        warnings.warn(
            f"the body model of the results ({src or 'not recorded'}) was not found: the fitted mesh is not "
            "shown (pass the model file, e.g. api.show_results(viewer, results, model='model.pkl'))",
            stacklevel=2,
        )
        return None
    try:
        check_model(results, found)
    except ValueError as exc:
        warnings.warn(f"the fitted mesh is not shown: {exc}", stacklevel=2)
        return None
    return found


def mesh_vertices(
    results: Results, model: Any, rows: Sequence[int] | None = None, smil: Any = None
) -> np.ndarray:
    """Posed mesh vertices ``(T', V, 3)`` float32 (world units) of the results' rows (default all).

    ``smil`` is an optional ready :class:`napari_smil_mv.body.SMILModel` (float32) of ``model``, reused by
    per-frame updates.
    """
    import torch

    from napari_smil_mv.body import SMILModel
    from napari_smil_mv.body.animation import evaluate_animation

    anim = results.to_animation()
    if rows is not None:
        anim = anim.take(rows)
    smil = smil if smil is not None else SMILModel(model, dtype=torch.float32)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not writable.*")  # read-only broadcast arrays
        return evaluate_animation(smil, anim).vertices


def choose_mesh_mode(n_frames: int, n_vertices: int, mode: str = "auto") -> str:
    """``"stacked"`` or ``"per_frame"`` (see the module docstring)."""
    if mode not in MESH_MODES:
        raise ValueError(f"mesh_mode must be one of {MESH_MODES}, got {mode!r}")
    if mode != "auto":
        return mode
    return "stacked" if n_frames * n_vertices <= STACKED_MAX_VERTEX_FRAMES else "per_frame"


def light_direction(results: Results) -> np.ndarray:
    """``(3,)`` unit world direction towards the light of the world mesh: from the animal towards the cameras,
    tilted towards the cameras' mean image-up direction (a lamp above the cameras)."""
    centre = np.nanmedian(results.joints_3d.reshape(-1, 3), axis=0)
    d = np.mean(results.cameras.centers, axis=0) - centre
    d = d / max(float(np.linalg.norm(d)), 1e-12)
    up = -np.mean([cam.R[1] for cam in results.cameras], axis=0)
    d = d + up / max(float(np.linalg.norm(up)), 1e-12)
    n = float(np.linalg.norm(d))
    return d / n if n > 0 and np.isfinite(n) else np.array([0.0, 0.0, 1.0])


def baked_shading(
    vertices: np.ndarray, faces: np.ndarray, light: np.ndarray, ambient: float = 0.3
) -> np.ndarray:
    """Lambert shading ``(V,)`` float32 in ``ambient..1`` of one posed mesh, lit from the world direction ``light``.

    Used as the world mesh's vertex values (napari ``shading="none"``): napari's own light follows the camera
    and comes from behind in the right-handed world view (a flipped axis), so the lighting is baked in here,
    fixed in the world. ``faces`` are outward-oriented in world ``(x, y, z)``.
    """
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])  # area-weighted face normals
    vn = np.zeros_like(v)
    for k in range(3):
        np.add.at(vn, f[:, k], fn)
    vn /= np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-12)
    lambert = np.clip(vn @ np.asarray(light, dtype=np.float64), 0.0, 1.0)
    return (ambient + (1.0 - ambient) * lambert).astype(np.float32)


def project_mesh(
    vertices: np.ndarray, faces: np.ndarray, camera: Any, cull_backfaces: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One frame's mesh in one camera's image.

    Parameters
    ----------
    vertices
        ``(V, 3)`` world coordinates.
    faces
        ``(F, 3)`` triangles, counter-clockwise seen from outside (SMIL files).
    camera
        :class:`napari_smil_mv.cameras.Camera`.
    cull_backfaces
        Keep only triangles facing the camera.

    Returns
    -------
    rowcol : (V, 2) float32
        Image ``(row, col)`` px; vertices behind the camera or far outside the image are moved onto a kept one.
    faces : (F', 3) int32
        The drawable triangles (all vertices in front of the camera and near the image).
    value : (V,) float32
        Nearness in 0..1 over the kept vertices (1 = nearest to the camera), for colouring.
    """
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    cam = camera.world_to_camera(v)
    px = camera.project(v)
    w, h = camera.size
    ok = (
        np.all(np.isfinite(px), axis=1)
        & (cam[:, 2] > 1e-9)
        & (px[:, 0] > -w)
        & (px[:, 0] < 2 * w)
        & (px[:, 1] > -h)
        & (px[:, 1] < 2 * h)
    )
    keep = f[ok[f].all(axis=1)]
    if cull_backfaces and len(keep):
        a, b, c = cam[keep[:, 0]], cam[keep[:, 1]], cam[keep[:, 2]]
        normal = np.cross(b - a, c - a)
        keep = keep[np.einsum("ij,ij->i", normal, a + b + c) < 0]
    depth = cam[:, 2]
    value = np.zeros(len(v), dtype=np.float32)
    if ok.any():
        lo, hi = float(depth[ok].min()), float(depth[ok].max())
        value[ok] = (1.0 - (depth[ok] - lo) / max(hi - lo, 1e-12)).astype(np.float32)
        px[~ok] = px[ok][0]
    else:
        px[:] = 0.0
    return xy_to_rowcol(px).astype(np.float32), keep.astype(np.int32), value


def stack_frames(
    frame_vertices: Sequence[np.ndarray], frame_faces: Sequence[np.ndarray], frames: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Time-stacked surface: vertices ``(ΣV, 1 + D)`` float32 with the frame number first, faces offset."""
    verts, faces, offset = [], [], 0
    for v, f, t in zip(frame_vertices, frame_faces, frames, strict=True):
        verts.append(np.column_stack([np.full(len(v), float(t), np.float32), np.asarray(v, np.float32)]))
        faces.append(np.asarray(f, np.int64) + offset)
        offset += len(v)
    return np.concatenate(verts).astype(np.float32), np.concatenate(faces).astype(np.int32)


def marker_size(results: Results) -> float:
    """Marker size in world units: 3 % of the body length (from the fit, else from the 3D joints)."""
    from napari_smil_mv.results import body_length

    length = results.provenance.get("init", {}).get("body_length") if results.provenance else None
    if not length or not np.isfinite(length):
        length = body_length(results.joints_3d)
    return float(length) * 0.03 if np.isfinite(length) and length > 0 else 1.0


__all__ = [
    "MESH_MODES",
    "RECORDED_MODEL",
    "recorded_model_file",
    "STACKED_MAX_VERTEX_FRAMES",
    "choose_mesh_mode",
    "marker_size",
    "mesh_vertices",
    "model_for_results",
    "baked_shading",
    "light_direction",
    "project_mesh",
    "stack_frames",
    "static_frame_transform",
]
