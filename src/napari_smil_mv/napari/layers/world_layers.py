"""World (3D) layers of a session: 3D keypoints, 3D skeleton, camera frustums and camera names. Pure (no viewer).

**World axes in napari.** The calibration's world point ``(X, Y, Z)`` becomes napari coordinates
``(Z, frame, Y, X)``: the spatial axes are reversed (napari lists the slowest axis first, so ``X`` is the
horizontal screen axis and ``Y`` the vertical one, as in the camera images), and the *frame* axis sits second.
napari aligns layers of different dimensionality by their trailing axes, so the per-camera layers
``(frame, row, col)`` share the viewer's axes 1..3 with the world layers: the frame axis is the same axis for both,
and the world ``Z`` axis (axis 0) is one that per-camera layers do not have. (With ``(frame, Z, Y, X)`` the
per-camera frame axis would line up with world ``Z``.) The world view
(:func:`napari_smil_mv.napari.scripting.set_layout`) displays axes ``(0, 2, 3) = (Z, Y, X)`` in 3D with the camera
orientation ``("away", "down", "right")``, a right-handed frame that looks like an OpenCV camera at the world
origin (``X`` right, ``Y`` down, ``Z`` into the screen), so the scene is not mirrored.

Frustums and camera names do not change over time. They are stored once (data frame 0) with a frame-axis
``scale`` equal to the number of chosen frames and a ``translate`` at their centre, so that napari's slicing
(one data unit thick) shows them on every frame without copying them per frame.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from napari_smil_mv.cameras import Camera
from napari_smil_mv.napari.layers.coords import skeleton_vectors
from napari_smil_mv.napari.layers.session_layers import LayerDataTuple, _meta, session_meta
from napari_smil_mv.napari.layers.styles import PALETTE, animal_colors, hex_to_rgba, node_colors
from napari_smil_mv.sessions import Session

#: napari axis labels of the world layers (world ``(X, Y, Z)`` -> ``(Z, frame, Y, X)``).
WORLD_AXES = ("z", "frame", "y", "x")
WORLD_ROLES = ("points3d", "skeleton3d", "frustums", "camera_names")
#: Camera colours (frustum and name); distinct from the node palette's first entries.
CAMERA_PALETTE = ("#ff9f1c", "#2ec4b6", "#e71d36", "#a06cd5", "#f4d35e", "#3a86ff", "#8ac926", "#ff5d8f")


@dataclass(frozen=True, eq=False)
class WorldSpec:
    """What the world layers of a session shown without them need (``metadata["world_spec"]``).

    Attributes
    ----------
    cameras
        Cameras shown, in rig order (their frustums and names are drawn).
    frames
        Video frames shown.
    points3d
        ``(T, A, N, 3)`` world points the camera layers were built with (the same array object), or None.
    frustum_depth
        Frustum length in world units, or None (the default).
    name_prefix
        Layer-name prefix.
    """

    cameras: tuple[str, ...]
    frames: range
    points3d: np.ndarray | None = None
    frustum_depth: float | None = None
    name_prefix: str = ""


def world_to_napari(xyz: np.ndarray, frame: np.ndarray | float = 0.0) -> np.ndarray:
    """``(..., 3)`` world ``(X, Y, Z)`` -> ``(..., 4)`` napari ``(Z, frame, Y, X)``."""
    xyz = np.asarray(xyz, dtype=np.float64)
    f = np.broadcast_to(np.asarray(frame, dtype=np.float64), xyz.shape[:-1])
    return np.stack([xyz[..., 2], f, xyz[..., 1], xyz[..., 0]], axis=-1)


def scene_scale(
    session: Session, cameras: Sequence[str], points3d: np.ndarray | None
) -> tuple[float, float, np.ndarray | None]:
    """``(animal_size, camera_distance, centroid)`` in world units, for marker sizes and frustum depth.

    ``animal_size`` is the median over frames and animals of the largest extent of the 3D points (NaN when
    none); ``camera_distance`` the median distance from the camera centres to the centroid of the 3D points,
    or the median distance between camera centres when there are no 3D points (1.0 for a single camera);
    ``centroid`` the median 3D point ``(3,)`` (None without 3D points).
    """
    centres = np.array([session.views[c].camera.center for c in cameras]).reshape(-1, 3)
    animal = float("nan")
    centroid = None
    if points3d is not None and np.isfinite(points3d).any():
        p = np.asarray(points3d, dtype=np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN frames
            ext = np.nanmax(p, axis=2) - np.nanmin(p, axis=2)  # (T, A, 3)
            per = np.nanmax(ext, axis=-1)
        per = per[np.isfinite(per)]
        animal = float(np.median(per)) if per.size else float("nan")
        centroid = np.nanmedian(p.reshape(-1, 3), axis=0)
    if centroid is not None and len(centres):
        dist = float(np.median(np.linalg.norm(centres - centroid, axis=1)))
    elif len(centres) >= 2:
        d = np.linalg.norm(centres[:, None] - centres[None], axis=-1)[np.triu_indices(len(centres), 1)]
        dist = float(np.median(d[d > 0])) if np.any(d > 0) else 1.0
    else:
        dist = 1.0
    return animal, dist, centroid


def camera_frustum(camera, depth: float) -> np.ndarray:
    """``Camera.frustum(depth)`` ``(5, 3)`` with a guard against spurious undistortion roots.

    Beyond the invertible region of a strong barrel distortion, the undistortion of an image corner can
    converge to a root on the opposite side of the optical axis (a mirrored, far too wide frustum). A corner
    whose direction from the image centre flips is replaced by its pinhole corner (distortion ignored).
    """
    corners = np.asarray(camera.frustum(depth), dtype=np.float64)
    w, h = camera.size
    px = np.array([[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]])
    k_inv = np.linalg.inv(np.asarray(camera.K, dtype=np.float64))
    pin = (np.column_stack([px, np.ones(4)]) @ k_inv.T)[:, :2]  # pinhole normalised coordinates
    cam_xyz = camera.world_to_camera(corners[1:])
    xy = cam_xyz[:, :2] / cam_xyz[:, 2:3]
    bad = np.sum(xy * pin, axis=1) <= 0
    if np.any(bad):
        pin_cam = np.column_stack([pin * depth, np.full(4, float(depth))])
        pin_world = (pin_cam - np.asarray(camera.tvec, dtype=np.float64)) @ camera.R
        corners[1:][bad] = pin_world[bad]
    return corners


def frustum_edges(corners: np.ndarray, axis_end: np.ndarray | None = None) -> np.ndarray:
    """Line segments ``(K, 2, 3)`` ``(start, end)`` of a frustum from ``Camera.frustum`` output ``(5, 3)``.

    Four edges from the centre to the image corners, the image rectangle, a small triangle on the top edge
    that marks the image's up direction (10 segments), and, when ``axis_end`` is given, the optical axis from
    the centre to ``axis_end`` (11 segments).
    """
    apex, tl, tr, br, bl = np.asarray(corners, dtype=np.float64)
    seg = [(apex, tl), (apex, tr), (apex, br), (apex, bl), (tl, tr), (tr, br), (br, bl), (bl, tl)]
    width = np.linalg.norm(tr - tl)
    up = tl - bl
    up = up / (np.linalg.norm(up) or 1.0) * 0.25 * width
    p1, p2 = tl + 0.3 * (tr - tl), tl + 0.7 * (tr - tl)
    tip = 0.5 * (tl + tr) + up
    seg += [(p1, tip), (tip, p2)]
    if axis_end is not None:
        seg.append((apex, np.asarray(axis_end, dtype=np.float64)))
    return np.array([[a, b] for a, b in seg])


def static_frame_transform(frames: np.ndarray, n_axes: int, frame_axis: int = 0) -> tuple[tuple, tuple]:
    """Scale/translate that show data frame 0 on every frame from ``frames.min()`` to ``frames.max()``."""
    first, last = float(np.min(frames)), float(np.max(frames))
    scale, translate = [1.0] * n_axes, [0.0] * n_axes
    scale[frame_axis] = last - first + 1.0
    translate[frame_axis] = 0.5 * (first + last)
    return tuple(scale), tuple(translate)


def rig_layer_data(
    cameras: Sequence[Camera],
    frames: range,
    depth: float,
    camera_distance: float,
    name_size: float,
    target: np.ndarray | None,
    base_meta: dict,
    units: str,
    name_prefix: str = "",
) -> list[LayerDataTuple]:
    """The ``frustums`` (Vectors) and ``camera_names`` (Points) world layers, shown on every frame of ``frames``.

    Parameters
    ----------
    cameras
        The cameras, in rig order (colour ``k`` of ``CAMERA_PALETTE`` for camera ``k``).
    frames
        Video frame indices shown.
    depth
        Frustum length in world units.
    camera_distance
        Typical camera-to-animal distance in world units (sets the line width).
    name_size
        Diameter of the camera-centre markers in world units.
    target
        ``(3,)`` world point the optical axes are drawn towards (when farther than ``depth``), or None.
    base_meta, units, name_prefix
        Metadata base, world units and layer-name prefix.
    """
    scale, translate = static_frame_transform(
        np.array([frames.start, frames[-1] if frames else frames.start]), 4, 1
    )
    names = [cam.name for cam in cameras]
    cam_rgba = hex_to_rgba([CAMERA_PALETTE[k % len(CAMERA_PALETTE)] for k in range(len(cameras))])
    common = {"depth": depth, "world_units": units}
    segs, seg_cam, seg_col = [], [], []
    for k, cam in enumerate(cameras):
        axis_end = None
        if target is not None:  # optical axis, as far as the animal's depth in this camera
            along = float((target - cam.center) @ cam.R[2])
            axis_end = cam.center + cam.R[2] * along if along > depth else None
        e = frustum_edges(camera_frustum(cam, depth), axis_end)
        segs.append(np.stack([world_to_napari(e[:, 0]), world_to_napari(e[:, 1] - e[:, 0])], axis=1))
        seg_cam += [cam.name] * len(e)
        seg_col.append(np.repeat(cam_rgba[k : k + 1], len(e), axis=0))
    centres = np.array([cam.center for cam in cameras]).reshape(-1, 3)
    # names float above the cameras (mean image-up direction), clear of the frustum lines
    up = -np.mean([cam.R[1] for cam in cameras], axis=0) if len(cameras) else np.zeros(3)
    up = up / (np.linalg.norm(up) or 1.0) * depth * 0.3
    labels = []
    for k, c in enumerate(names):  # cameras sharing a centre (a copied calibration) share one label
        same = [names[j] for j in range(len(names)) if np.allclose(centres[j], centres[k], atol=1e-6)]
        labels.append(" = ".join(same) if same[0] == c else "")
    return [
        (
            np.concatenate(segs) if segs else np.zeros((0, 2, 4)),
            {
                "name": f"{name_prefix}world · cameras",
                "features": pd.DataFrame({"camera": seg_cam}),
                "edge_color": np.concatenate(seg_col) if seg_col else "white",
                "edge_width": camera_distance * 0.004,
                "vector_style": "line",
                "opacity": 1.0,
                "scale": scale,
                "translate": translate,
                "axis_labels": WORLD_AXES,
                "metadata": _meta(base_meta, None, "frustums", WORLD_AXES, units, **common),
            },
            "vectors",
        ),
        (
            world_to_napari(centres) if len(centres) else np.zeros((0, 4)),
            {
                "name": f"{name_prefix}world · camera names",
                "features": pd.DataFrame({"camera": names, "label": labels}),
                "face_color": cam_rgba if len(cameras) else "white",
                "border_width": 0,
                "size": name_size,
                "text": {
                    "string": "{label}",
                    "color": "white",
                    "size": 12,
                    "anchor": "center",
                    "translation": world_to_napari(up, 0.0),
                },
                "scale": scale,
                "translate": translate,
                "axis_labels": WORLD_AXES,
                "metadata": _meta(base_meta, None, "camera_names", WORLD_AXES, units, **common),
            },
            "points",
        ),
    ]


def world_layer_data(
    session: Session,
    cameras: Sequence[str],
    frames: range,
    session_id: str,
    points3d: np.ndarray | None,
    frustum_depth: float | None = None,
    name_prefix: str = "",
) -> list[LayerDataTuple]:
    """The four world layers (``WORLD_ROLES`` order) with axes ``WORLD_AXES``.

    Parameters
    ----------
    session
        The session.
    cameras
        Cameras whose frustums and names are drawn.
    frames
        Video frame indices shown.
    session_id
        Registry id for the metadata.
    points3d
        ``(T, A, N, 3)`` world points, or None (empty point and skeleton layers).
    frustum_depth
        Frustum length in world units (default a quarter of the median camera-to-animal distance).
    name_prefix
        Prepended to every layer name.
    """
    units = session.units
    nodes = session.skeleton.nodes
    animal_size, cam_dist, centroid = scene_scale(session, cameras, points3d)
    depth = float(frustum_depth) if frustum_depth else cam_dist * 0.25
    marker = animal_size * 0.08 if np.isfinite(animal_size) and animal_size > 0 else cam_dist * 0.012
    marker = float(max(marker, cam_dist * 0.01))
    rows = np.flatnonzero(np.isin(session.frame_indices, np.asarray(frames, dtype=np.int64)))
    fidx = session.frame_indices[rows].astype(np.float64)
    base = session_meta(session, session_id)
    base["points3d_source"] = session.points3d_source
    common = {"depth": depth, "world_units": units}
    out: list[LayerDataTuple] = []

    # -- 3D keypoints --------------------------------------------------------------------------------------------
    if points3d is not None and len(rows):
        p = np.asarray(points3d, dtype=np.float64)[rows]
        t_idx, a_idx, n_idx = np.nonzero(np.all(np.isfinite(p), -1))
        pdata = world_to_napari(p[t_idx, a_idx, n_idx], fidx[t_idx])
    else:
        p = None
        t_idx = a_idx = n_idx = np.zeros(0, dtype=np.int64)
        pdata = np.zeros((0, 4))
    out.append(
        (
            pdata,
            {
                "name": f"{name_prefix}world · points 3D",
                "features": pd.DataFrame(
                    {
                        "node": pd.Categorical([nodes[k] for k in n_idx], categories=nodes),
                        "animal": [session.animal_names[k] for k in a_idx],
                    }
                ),
                "face_color": node_colors(len(nodes))[n_idx] if len(n_idx) else "white",
                "border_width": 0.1,
                "border_color": "black",
                "size": marker,
                "axis_labels": WORLD_AXES,
                "metadata": _meta(base, None, "points3d", WORLD_AXES, units, **common),
            },
            "points",
        )
    )

    # -- 3D skeleton ---------------------------------------------------------------------------------------------
    sdata, vec_animal, _ = skeleton_vectors(
        p if p is not None else np.zeros((0, session.n_animals, len(nodes), 3)),
        fidx,
        session.skeleton.edges,
        world_to_napari,
    )
    out.append(
        (
            sdata,
            {
                "name": f"{name_prefix}world · skeleton 3D",
                "features": pd.DataFrame({"animal": [session.animal_names[a] for a in vec_animal]}),
                "edge_color": animal_colors(vec_animal) if len(sdata) else "white",
                "edge_width": marker * 0.3,
                "vector_style": "line",
                "opacity": 0.9,
                "axis_labels": WORLD_AXES,
                "metadata": _meta(base, None, "skeleton3d", WORLD_AXES, units, **common),
            },
            "vectors",
        )
    )

    # -- frustums and names (static: shown on every frame) -------------------------------------------------------
    rig = [session.views[c].camera for c in cameras]
    out += rig_layer_data(rig, frames, depth, cam_dist, marker * 1.5, centroid, base, units, name_prefix)
    return out


def deferred_world_layer_data(session: Session, spec: WorldSpec, session_id: str) -> list[LayerDataTuple]:
    """The four world layers of a session whose camera layers were built with ``world=False``.

    Parameters
    ----------
    session
        The session.
    spec
        ``metadata["napari_smil_mv"]["world_spec"]`` of its camera layers.
    session_id
        Registry id for the metadata.

    Returns
    -------
    list of (data, kwargs, layer_type)
        What :func:`~napari_smil_mv.napari.layers.session_layers.session_layer_data` would have added with
        ``world=True`` (same cameras, frames, 3D points, frustum depth and name prefix).
    """
    return world_layer_data(
        session, spec.cameras, spec.frames, session_id, spec.points3d, spec.frustum_depth, spec.name_prefix
    )


__all__ = [
    "CAMERA_PALETTE",
    "PALETTE",
    "WORLD_AXES",
    "WORLD_ROLES",
    "WorldSpec",
    "camera_frustum",
    "deferred_world_layer_data",
    "frustum_edges",
    "rig_layer_data",
    "scene_scale",
    "static_frame_transform",
    "world_layer_data",
    "world_to_napari",
]
