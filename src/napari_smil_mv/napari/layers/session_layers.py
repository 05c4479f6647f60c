"""Pure layer builders for a :class:`~napari_smil_mv.sessions.Session` (no viewer, no Qt).

``session_layer_data(session)`` returns napari ``LayerDataTuple``\\ s ``(data, kwargs, layer_type)``:

* per camera, contiguous and always in this order (``LAYERS_PER_CAMERA`` = 4, so a grid with that stride puts one
  camera per cell): ``video`` (lazy Image), ``skeleton`` (Vectors), ``reprojection`` (Points: the 3D points
  projected into the camera, coloured by their pixel error; empty without 3D points) and ``keypoints`` (Points);
* then the world layers (see :mod:`napari_smil_mv.napari.layers.world_layers`): ``points3d``, ``skeleton3d``,
  ``frustums`` and ``camera_names``. With ``world=False`` they are left out and each camera layer's metadata
  holds ``world_spec`` (cameras, frames, 3D points, frustum depth, name prefix) instead, from which
  :func:`~napari_smil_mv.napari.layers.world_layers.deferred_world_layer_data` builds the same four layers later
  (the viewer does so when it first switches to the world layout: napari's per-layer cost is then paid only by
  users who look at the 3D view).

**Axes.** Per-camera layers have axes ``(frame, row, col)``: the frame coordinate is the *video* frame index
(also when only some frames are chosen), ``row = y`` and ``col = x`` of the session's ``(x, y)`` pixels. The swap
from ``(x, y)`` to ``(row, col)`` happens only in this package (:func:`xy_to_rowcol`). World layers have axes
``(z, frame, y, x)``, see :data:`napari_smil_mv.napari.layers.world_layers.WORLD_AXES` for why.

Every layer's ``metadata["napari_smil_mv"]`` holds ``session`` (registry id, see :mod:`.registry`),
``session_name``, ``camera`` (None for world layers), ``role``, ``axes``, ``units`` and ``layers_per_camera``.
Layer names (``"back · video"``) are for humans only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from napari_smil_mv.cameras import Camera
from napari_smil_mv.napari.layers.coords import rowcol_at, skeleton_vectors, xy_to_rowcol
from napari_smil_mv.napari.layers.styles import (
    BORDER,
    ERROR_SCALE_PX,
    LOW_SCORE_BORDER,
    PREDICTED_SYMBOL,
    REPROJECTION_SYMBOL,
    USER_SYMBOL,
    animal_colors,
    error_colors,
    hex_to_rgba,
    node_colors,
)
from napari_smil_mv.napari.layers.video_array import VideoArray
from napari_smil_mv.sessions import LazyVideo, Session
from napari_smil_mv.sessions.video import open_videos

LayerDataTuple = tuple[Any, dict, str]

#: Roles of the per-camera layers, in their fixed order.
CAMERA_ROLES = ("video", "skeleton", "reprojection", "keypoints")
LAYERS_PER_CAMERA = len(CAMERA_ROLES)
CAMERA_AXES = ("frame", "y", "x")


def frame_selection(frames: Any, n_frames: int) -> range:
    """Normalise a frame choice to a ``range`` of video frame indices.

    Parameters
    ----------
    frames
        None (all ``n_frames``), a ``range``, a ``slice``, or ``(start, stop[, step])`` (stop exclusive).
    n_frames
        Number of frames to choose from (video length, or last labelled frame + 1).
    """
    if frames is None:
        return range(n_frames)
    if isinstance(frames, range):
        return frames
    if isinstance(frames, slice):
        return range(*frames.indices(n_frames))
    vals = tuple(int(v) for v in frames)
    if len(vals) not in (2, 3) or (len(vals) == 3 and vals[2] <= 0):
        raise ValueError(f"frames must be None, a range, a slice or (start, stop[, step]); got {frames!r}")
    return range(*vals)


def session_meta(session: Session, session_id: str | None) -> dict:
    """The session part of the layer metadata: ``session`` (registry id), ``session_name``, ``session_path``."""
    return {"session": session_id, "session_name": session.name, "session_path": str(session.path)}


def _meta(base: dict, camera: str | None, role: str, axes, units: str, **extra) -> dict:
    return {
        "napari_smil_mv": {
            **base,
            "camera": camera,
            "role": role,
            "axes": tuple(axes),
            "units": units,
            "layers_per_camera": LAYERS_PER_CAMERA,
            **extra,
        }
    }


@dataclass
class ViewData:
    """What the per-camera builders need: one view's arrays plus the shared skeleton and frame axis.

    Attributes
    ----------
    name
        Camera (or video) name.
    video
        Lazy video or None (black frames of ``image_size``).
    image_size
        ``(W, H)`` px.
    keypoints, scores, visible, is_user
        ``(T, A, N, 2)`` ``(x, y)`` px, ``(T, A, N)``, ``(T, A, N)``, ``(T, A)`` as in
        :class:`~napari_smil_mv.sessions.CameraView`.
    frame_indices
        ``(T,)`` video frame index of each row.
    nodes, edges, animal_names
        Skeleton node names, node-index pairs and animal identities.
    camera
        Calibrated camera (for reprojection), or None for an uncalibrated view.
    source_path
        Labels file.
    """

    name: str
    video: LazyVideo | None
    image_size: tuple[int, int]
    keypoints: np.ndarray
    scores: np.ndarray
    visible: np.ndarray
    is_user: np.ndarray
    frame_indices: np.ndarray
    nodes: list[str]
    edges: list[tuple[int, int]]
    animal_names: list[str]
    camera: Camera | None = None
    source_path: Path | None = None

    @classmethod
    def of(cls, session: Session, camera: str) -> ViewData:
        """The view of ``camera`` in ``session``."""
        v = session.views[camera]
        return cls(
            camera,
            v.video,
            tuple(v.camera.size),
            v.keypoints,
            v.scores,
            v.visible,
            v.is_user,
            session.frame_indices,
            list(session.skeleton.nodes),
            list(session.skeleton.edges),
            list(session.animal_names),
            v.camera,
            v.source_path,
        )


def default_point_size(image_size: tuple[int, int]) -> float:
    """Keypoint marker diameter in image pixels: about 1.8 % of the larger image side (23 px at 1280 px)."""
    return float(max(6.0, 0.018 * max(image_size)))


def camera_layer_data(
    session: Session,
    camera: str,
    frames: range,
    session_id: str,
    points3d: np.ndarray | None = None,
    score_threshold: float = 0.5,
    point_size: float | None = None,
    name_prefix: str = "",
) -> list[LayerDataTuple]:
    """The four layers of one camera of a session (``CAMERA_ROLES`` order); see :func:`view_layer_data`."""
    base = session_meta(session, session_id)
    base["points3d_source"] = session.points3d_source
    return view_layer_data(
        ViewData.of(session, camera), frames, base, points3d, score_threshold, point_size, name_prefix
    )


def view_layer_data(
    view: ViewData,
    frames: range,
    base_meta: dict,
    points3d: np.ndarray | None = None,
    score_threshold: float = 0.5,
    point_size: float | None = None,
    name_prefix: str = "",
) -> list[LayerDataTuple]:
    """The four layers of one view (``CAMERA_ROLES`` order), see the module docstring.

    Parameters
    ----------
    view
        The view's arrays.
    frames
        Video frame indices to show (from :func:`frame_selection`).
    base_meta
        Metadata shared by the layers (:func:`session_meta`).
    points3d
        ``(T, A, N, 3)`` world points for the reprojection layer, or None (empty layer; also without camera).
    score_threshold
        Predicted keypoints with a score below this get a thick red border (scores are not probabilities).
    point_size
        Marker diameter in pixels (default :func:`default_point_size`).
    name_prefix
        Prepended to the layer names (e.g. ``"S01/"`` when several sessions are shown).
    """
    camera = view.name
    nodes = view.nodes
    size = float(point_size) if point_size is not None else default_point_size(view.image_size)
    rows = np.flatnonzero(np.isin(view.frame_indices, np.asarray(frames, dtype=np.int64)))
    fidx = view.frame_indices[rows].astype(np.float64)
    kp = view.keypoints[rows]  # (T', A, N, 2) x, y
    units = "px"
    out: list[LayerDataTuple] = []

    # -- video -----------------------------------------------------------------------------------------------
    if view.video is not None:
        vid = VideoArray(view.video, frames)
    else:  # no video named: black frames at the calibration size
        vid = VideoArray(LazyVideo(None, max(frames.stop, 1), view.image_size, name=camera), frames)
    out.append(
        (
            vid,
            {
                "name": f"{name_prefix}{camera} · video",
                "rgb": vid.rgb,
                "contrast_limits": (0, 255),
                "colormap": "gray",
                "scale": (frames.step, 1.0, 1.0),
                "translate": (float(frames.start), 0.0, 0.0),
                "axis_labels": CAMERA_AXES,
                "metadata": _meta(
                    base_meta,
                    camera,
                    "video",
                    CAMERA_AXES,
                    units,
                    video_path=str(view.video.path) if view.video is not None else None,
                    video_missing=view.video.missing_reason if view.video is not None else "no video",
                ),
            },
            "image",
        )
    )

    # -- skeleton edges (Vectors: start + direction) ---------------------------------------------------------
    vdata, vec_animal, vec_edge = skeleton_vectors(kp, fidx, view.edges, rowcol_at)
    ecol = animal_colors(vec_animal)
    ecol[:, 3] = 0.8
    edge_names = [f"{nodes[i]}-{nodes[j]}" for i, j in view.edges]
    out.append(
        (
            vdata,
            {
                "name": f"{name_prefix}{camera} · skeleton",
                "features": pd.DataFrame(
                    {
                        "animal": [view.animal_names[a] for a in vec_animal],
                        "edge": [edge_names[e] for e in vec_edge],
                    }
                ),
                "edge_color": ecol if len(vdata) else "white",
                "edge_width": max(1.5, size / 6.0),
                "vector_style": "line",
                "axis_labels": CAMERA_AXES,
                "metadata": _meta(base_meta, camera, "skeleton", CAMERA_AXES, units),
            },
            "vectors",
        )
    )

    # -- reprojected 3D points, coloured by error --------------------------------------------------------------
    t_idx = a_idx = n_idx = np.zeros(0, dtype=np.int64)
    proj_rc = np.zeros((0, 2))
    err = np.zeros(0)
    if points3d is not None and view.camera is not None and len(rows):
        pts = np.asarray(points3d, dtype=np.float64)[rows]
        proj = view.camera.project(pts)  # (T', A, N, 2), NaN behind the camera
        w, h = view.image_size
        inside = (
            np.all(np.isfinite(proj), -1)
            & (proj[..., 0] > -0.5 * w)
            & (proj[..., 0] < 1.5 * w)
            & (proj[..., 1] > -0.5 * h)
            & (proj[..., 1] < 1.5 * h)
        )
        t_idx, a_idx, n_idx = np.nonzero(inside)
        proj_rc = xy_to_rowcol(proj[t_idx, a_idx, n_idx])
        err = np.linalg.norm(proj[t_idx, a_idx, n_idx] - kp[t_idx, a_idx, n_idx], axis=-1)
    rdata = np.column_stack([fidx[t_idx], proj_rc]) if len(t_idx) else np.zeros((0, 3))
    out.append(
        (
            rdata,
            {
                "name": f"{name_prefix}{camera} · reprojected 3D",
                "features": pd.DataFrame(
                    {
                        "node": pd.Categorical([nodes[k] for k in n_idx], categories=nodes),
                        "animal": [view.animal_names[k] for k in a_idx],
                        "err_px": err,
                    }
                ),
                "symbol": REPROJECTION_SYMBOL,
                "face_color": error_colors(err) if len(err) else "white",
                "border_width": 0,
                "size": size * 0.8,
                "axis_labels": CAMERA_AXES,
                "metadata": _meta(
                    base_meta,
                    camera,
                    "reprojection",
                    CAMERA_AXES,
                    units,
                    error_scale_px=ERROR_SCALE_PX,
                ),
            },
            "points",
        )
    )

    # -- 2D keypoints --------------------------------------------------------------------------------------------
    finite = np.all(np.isfinite(kp), -1)
    t_idx, a_idx, n_idx = np.nonzero(finite)
    user = view.is_user[rows][t_idx, a_idx]
    score = view.scores[rows][t_idx, a_idx, n_idx]
    low = ~user & np.isfinite(score) & (score < score_threshold)
    kdata = np.column_stack([fidx[t_idx], xy_to_rowcol(kp[t_idx, a_idx, n_idx])]) if len(t_idx) else None
    features = pd.DataFrame(
        {
            "node": pd.Categorical([nodes[k] for k in n_idx], categories=nodes),
            "animal": pd.Categorical([view.animal_names[k] for k in a_idx], categories=view.animal_names),
            "score": score,
            "visible": view.visible[rows][t_idx, a_idx, n_idx],
            "source": pd.Categorical(np.where(user, "user", "predicted"), categories=["user", "predicted"]),
            "low_score": low,
        }
    )
    border = np.tile(hex_to_rgba([BORDER]), (len(t_idx), 1))
    border[low] = hex_to_rgba([LOW_SCORE_BORDER])[0]
    out.append(
        (
            kdata if kdata is not None else np.zeros((0, 3)),
            {
                "name": f"{name_prefix}{camera} · keypoints",
                "features": features,
                "face_color": node_colors(len(nodes))[n_idx] if len(n_idx) else "white",
                "border_color": border if len(t_idx) else "black",
                "border_width": np.where(low, 0.35, 0.1) if len(t_idx) else 0.1,
                "border_width_is_relative": True,
                "symbol": np.where(user, USER_SYMBOL, PREDICTED_SYMBOL) if len(t_idx) else PREDICTED_SYMBOL,
                "size": size,
                "axis_labels": CAMERA_AXES,
                "metadata": _meta(
                    base_meta,
                    camera,
                    "keypoints",
                    CAMERA_AXES,
                    units,
                    score_threshold=float(score_threshold),
                    nodes=list(nodes),
                    source_path=str(view.source_path) if view.source_path else None,
                ),
            },
            "points",
        )
    )
    return out


def mosaic_offsets(sizes: Sequence[tuple[int, int]], gap: float = 0.03) -> list[tuple[float, float]]:
    """``(row, col)`` offsets in px that tile views of ``(W, H)`` sizes in a near-square mosaic, rig order."""
    if not sizes:
        return []
    n_col = int(np.ceil(np.sqrt(len(sizes))))
    cell_w = max(w for w, _ in sizes) * (1 + gap)
    cell_h = max(h for _, h in sizes) * (1 + gap)
    return [(float((k // n_col) * cell_h), float((k % n_col) * cell_w)) for k in range(len(sizes))]


def apply_layout(layer_data: list[LayerDataTuple], layout: str | None) -> list[LayerDataTuple]:
    """Set visibility and tiling of freshly built layer data (no viewer needed).

    ``None``: unchanged. ``"grid"``: world layers hidden (the viewer's grid, set by
    :func:`napari_smil_mv.napari.scripting.set_layout`, places the cameras). ``"mosaic"``: world layers hidden
    and each camera's layers shifted by :func:`mosaic_offsets` (``translate``), so the cameras sit side by side
    in one canvas without changing any viewer setting; what readers return.
    """
    if layout is None:
        return layer_data
    if layout not in ("grid", "mosaic"):
        raise ValueError(f"layout must be None, 'grid' or 'mosaic', got {layout!r}")
    cams: list[str] = []
    sizes: list[tuple[int, int]] = []
    for data, kw, _ in layer_data:
        m = kw["metadata"]["napari_smil_mv"]
        if m["role"] == "video":
            cams.append(m["camera"])
            sizes.append((int(data.shape[2]), int(data.shape[1])))
    offsets = dict(zip(cams, mosaic_offsets(sizes), strict=True))
    for _, kw, _ in layer_data:
        m = kw["metadata"]["napari_smil_mv"]
        if m["camera"] is None:
            kw["visible"] = False
        elif m["camera"] in offsets:
            m["mosaic_offset"] = offsets[m["camera"]]
            if layout == "mosaic":
                t = tuple(kw.get("translate", (0.0, 0.0, 0.0)))
                kw["translate"] = (t[0], *offsets[m["camera"]])
    return layer_data


def _n_frames(session: Session, cameras: Sequence[str]) -> int:
    """Frames to choose from: the longest video, or the last labelled frame + 1 when longer."""
    n = int(session.frame_indices[-1]) + 1 if session.n_frames else 1
    open_videos(session.views[c].video for c in cameras)  # headers read in parallel threads
    for c in cameras:
        v = session.views[c].video
        if v is not None:
            n = max(n, int(v.shape[0]))
    return n


def session_layer_data(
    session: Session,
    cameras: Sequence[str] | None = None,
    frames: Any = None,
    *,
    session_id: str | None = None,
    points3d: str | np.ndarray | None = "auto",
    score_threshold: float = 0.5,
    point_size: float | None = None,
    frustum_depth: float | None = None,
    name_prefix: str = "",
    layout: str | None = None,
    world: bool = True,
) -> list[LayerDataTuple]:
    """All layers of a session: per camera (``CAMERA_ROLES``) in rig order, then the world layers.

    Parameters
    ----------
    session
        The session (videos stay lazy; nothing is decoded here).
    cameras
        Camera names to show, in rig order (default all). Unknown names raise KeyError.
    frames
        Video frames to show: None (all), a ``range``/``slice`` or ``(start, stop[, step])``.
    session_id
        Registry id for the metadata (default ``session.name``).
    points3d
        ``"auto"``: the session's 3D points, triangulated (DLT, all cameras, stored in the session) when it has
        none; an array ``(T, A, N, 3)``; or None for no 3D layers' content (they are still created, empty).
    score_threshold
        Predicted keypoints scoring below this get a thick red border.
    point_size
        Keypoint diameter in image pixels (default about 1.8 % of the image side).
    frustum_depth
        Length of the camera frustums in world units (default: a quarter of the median camera-to-animal distance).
    name_prefix
        Prepended to every layer name.
    layout
        None, ``"grid"`` or ``"mosaic"``, see :func:`apply_layout`.
    world
        Build the four world layers now (default), or leave them out and record in every camera layer's
        metadata (``world_spec``) what they need to be built later, see the module docstring.

    Returns
    -------
    list of (data, kwargs, layer_type)
        ``4 * n_cameras + 4`` tuples (``4 * n_cameras`` with ``world=False``).
    """
    from napari_smil_mv.napari.layers.world_layers import WorldSpec, world_layer_data

    names = list(session.camera_names) if cameras is None else list(cameras)
    unknown = [c for c in names if c not in session.views]
    if unknown:
        raise KeyError(f"unknown cameras {unknown}; session {session.name!r} has {session.camera_names}")
    names = [c for c in session.camera_names if c in names]  # rig order
    sel = frame_selection(frames, _n_frames(session, names))
    sid = session_id if session_id is not None else session.name
    if isinstance(points3d, str):
        if points3d != "auto":
            raise ValueError(f"points3d must be 'auto', an array or None, got {points3d!r}")
        pts = session.ensure_points3d() if session.n_frames and len(session.views) >= 2 else session.points3d
    else:
        pts = None if points3d is None else np.asarray(points3d, dtype=np.float64)
    out: list[LayerDataTuple] = []
    for cam in names:
        out += camera_layer_data(session, cam, sel, sid, pts, score_threshold, point_size, name_prefix)
    if world:
        out += world_layer_data(session, names, sel, sid, pts, frustum_depth, name_prefix)
    else:
        spec = WorldSpec(tuple(names), sel, pts, frustum_depth, name_prefix)
        for _, kw, _ in out:
            kw["metadata"]["napari_smil_mv"]["world_spec"] = spec
    return apply_layout(out, layout)
