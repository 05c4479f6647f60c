"""What a session would show, rebuilt from a results file alone (so ``*.smilmv.h5`` opens without its session):
per camera the video and the observed keypoints with their skeleton; in the world the camera frustums and names.
Pure (no viewer).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from napari_smil_mv.napari.layers import ViewData, _meta
from napari_smil_mv.napari.results_mesh import marker_size, static_frame_transform
from napari_smil_mv.napari.styles import hex_to_rgba
from napari_smil_mv.napari.world_layers import (
    CAMERA_PALETTE,
    WORLD_AXES,
    camera_frustum,
    frustum_edges,
    world_to_napari,
)
from napari_smil_mv.results import Results


def standalone_meta(results: Results) -> dict:
    """Metadata base of results shown without their session (``session`` None)."""
    path = results.provenance.get("path")
    name = Path(path).name.removesuffix(".smilmv.h5") if path else "results"
    return {"session": None, "session_name": name, "session_path": results.provenance.get("session")}


def observed_edges(parents: np.ndarray | None, mapped: np.ndarray) -> list[tuple[int, int]]:
    """Skeleton of the observed joints: each mapped joint to its nearest mapped ancestor (indices into the
    mapped joints)."""
    idx = np.flatnonzero(mapped)
    if parents is None:
        return []
    pos = {int(j): k for k, j in enumerate(idx)}
    edges = []
    for j in idx:
        p = int(parents[j])
        while p >= 0 and p not in pos:
            p = int(parents[p])
        if p >= 0:
            edges.append((pos[p], pos[int(j)]))
    return edges


def results_view_data(results: Results, c: int) -> ViewData:
    """The :class:`~napari_smil_mv.napari.layers.ViewData` of camera ``c``: its video and the observed keypoints
    (mapped joints, named by their data node) stored in the results."""
    from napari_smil_mv.sessions import LazyVideo

    cam = results.cameras[c]
    mapped = results.mapped
    idx = np.flatnonzero(mapped)
    T = results.n_frames
    obs = (
        results.observed_2d[c][:, idx]
        if results.observed_2d is not None
        else np.full((T, len(idx), 2), np.nan)
    )
    wts = (
        results.observed_weights[c][:, idx]
        if results.observed_weights is not None
        else np.ones(obs.shape[:2])
    )
    obs = np.where((wts > 0)[..., None], obs, np.nan)
    nodes = [(results.data_names or results.joint_names)[j] or results.joint_names[j] for j in idx]
    video_path = results.videos[c] if results.videos else None
    video = None
    if video_path:
        n = int(results.frame_indices.max()) + 1 if T else 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a missing video shows black frames
            video = LazyVideo(video_path, n, tuple(cam.size), name=cam.name)
    return ViewData(
        name=cam.name,
        video=video,
        image_size=tuple(cam.size),
        keypoints=obs[:, None],
        scores=wts[:, None],
        visible=(wts > 0)[:, None],
        is_user=np.zeros((T, 1), dtype=bool),
        frame_indices=results.frame_indices,
        nodes=nodes,
        edges=observed_edges(results.parents, mapped),
        animal_names=[str(results.provenance.get("animal_name", "animal"))],
        camera=cam,
        source_path=None,
    )


def rig_world_layer_data(results: Results, base_meta: dict, frames: range, name_prefix: str = "") -> list:
    """``frustums`` and ``camera_names`` world layers of the results' cameras (shown on every frame)."""
    rig = results.cameras
    centres = rig.centers
    target = np.nanmedian(results.joints_3d.reshape(-1, 3), axis=0)
    dist = float(np.median(np.linalg.norm(centres - target, axis=1))) if len(centres) else 1.0
    depth = dist * 0.25
    scale, translate = static_frame_transform(np.array([frames.start, frames[-1]]), 4, 1)
    rgba = hex_to_rgba([CAMERA_PALETTE[k % len(CAMERA_PALETTE)] for k in range(len(rig))])
    segs, seg_cam, seg_col = [], [], []
    for k, cam in enumerate(rig):
        along = float((target - cam.center) @ cam.R[2])
        e = frustum_edges(
            camera_frustum(cam, depth), cam.center + cam.R[2] * along if along > depth else None
        )
        segs.append(np.stack([world_to_napari(e[:, 0]), world_to_napari(e[:, 1] - e[:, 0])], axis=1))
        seg_cam += [cam.name] * len(e)
        seg_col.append(np.repeat(rgba[k : k + 1], len(e), axis=0))
    common = {"depth": depth, "world_units": results.units}
    up = -np.mean([cam.R[1] for cam in rig], axis=0)
    up = up / (np.linalg.norm(up) or 1.0) * depth * 0.3
    return [
        (
            np.concatenate(segs),
            {
                "name": f"{name_prefix}world · cameras",
                "features": pd.DataFrame({"camera": seg_cam}),
                "edge_color": np.concatenate(seg_col),
                "edge_width": dist * 0.004,
                "vector_style": "line",
                "scale": scale,
                "translate": translate,
                "axis_labels": WORLD_AXES,
                "metadata": _meta(base_meta, None, "frustums", WORLD_AXES, results.units, **common),
            },
            "vectors",
        ),
        (
            world_to_napari(centres),
            {
                "name": f"{name_prefix}world · camera names",
                "features": pd.DataFrame({"camera": rig.names, "label": rig.names}),
                "face_color": rgba,
                "border_width": 0,
                "size": marker_size(results) * 1.5,
                "text": {
                    "string": "{label}",
                    "color": "white",
                    "size": 12,
                    "translation": world_to_napari(up),
                },
                "scale": scale,
                "translate": translate,
                "axis_labels": WORLD_AXES,
                "metadata": _meta(base_meta, None, "camera_names", WORLD_AXES, results.units, **common),
            },
            "points",
        ),
    ]


__all__ = ["observed_edges", "results_view_data", "rig_world_layer_data", "standalone_meta"]
