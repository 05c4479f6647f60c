"""What a session would show, rebuilt from a results file alone (so ``*.smilmv.h5`` opens without its session):
per camera the video and the observed keypoints with their skeleton; in the world the camera frustums and names.
Pure (no viewer).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from napari_smil_mv.napari.layers.results_mesh import marker_size
from napari_smil_mv.napari.layers.session_layers import ViewData
from napari_smil_mv.napari.layers.world_layers import rig_layer_data
from napari_smil_mv.results import Results


def standalone_meta(results: Results) -> dict:
    """Metadata base of results shown without their session (``session`` None)."""
    path = results.provenance.get("path")
    name = Path(path).name.removesuffix(".smilmv.h5") if path else "results"
    return {"session": None, "session_name": name, "session_path": results.provenance.get("session")}


def observed_edges(parents: np.ndarray | None, mapped: np.ndarray) -> list[tuple[int, int]]:
    """Skeleton of the observed joints: each mapped joint to its nearest mapped ancestor (indices into the
    mapped joints)."""
    from napari_smil_mv.body.kinematics import subset_edges  # lazy: torch only when needed

    return subset_edges(parents, np.flatnonzero(mapped))


def results_view_data(results: Results, c: int) -> ViewData:
    """The :class:`~napari_smil_mv.napari.layers.session_layers.ViewData` of camera ``c``: its video and the observed keypoints
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
    target = np.nanmedian(results.joints_3d.reshape(-1, 3), axis=0)
    dist = float(np.median(np.linalg.norm(rig.centers - target, axis=1))) if len(rig) else 1.0
    return rig_layer_data(
        list(rig),
        frames,
        dist * 0.25,
        dist,
        marker_size(results) * 1.5,
        target,
        base_meta,
        results.units,
        name_prefix,
    )


__all__ = ["observed_edges", "results_view_data", "rig_world_layer_data", "standalone_meta"]
