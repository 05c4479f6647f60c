"""Exports of a results file: meshes, animation ``.npz``, 3D joints CSV, per-camera SLEAP ``.slp`` files."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from napari_smil_mv.results.results import Results
from napari_smil_mv.utils.atomic import atomic_path, check_can_write


def export_animation(results: Results, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write the body parameters as an animation ``.npz`` (SMILify export schema).

    Keys: ``poses`` (T, J, 3), ``trans`` (T, 3), ``betas`` (K,) (mean), ``betas_per_frame`` (T, K),
    ``log_beta_scales`` (T, J, 3), ``betas_trans`` (T, J, 3), ``mesh_scale`` (T,), ``fps`` (when known),
    ``joint_names``; world placement ``x = (x − root) · mesh_scale + trans`` in the results' units.
    """
    from napari_smil_mv.body.animation import write_animation_npz

    return write_animation_npz(
        path,
        poses=results.poses,
        betas=results.betas,
        trans=results.trans,
        log_beta_scales=results.log_beta_scales,
        betas_trans=results.betas_trans,
        mesh_scale=results.mesh_scale,
        fps=results.fps,
        joint_names=results.joint_names,
        overwrite=overwrite,
    )


def check_model(results: Results, model) -> None:
    """Raise ValueError when ``model`` (SMILModelData) is not the model the results were made with."""
    if list(model.joint_names) != list(results.joint_names):
        raise ValueError(
            f"model {model.source} has joints {list(model.joint_names)[:4]}... but the results were "
            f"made with {results.joint_names[:4]}... ({results.model_source}); give the same model file"
        )
    if results.model_sha256 and model.sha256 and model.sha256 != results.model_sha256:
        raise ValueError(
            f"model {model.source} (sha256 {model.sha256[:12]}...) is not the model of the results "
            f"({results.model_source}, sha256 {results.model_sha256[:12]}...); give the same model file"
        )


def evaluate_meshes(results: Results, model, batch_size: int = 64):
    """Posed meshes of every frame (world units) as a :class:`napari_smil_mv.body.animation.MeshSequence`."""
    import torch

    from napari_smil_mv.body import SMILModel
    from napari_smil_mv.body.animation import evaluate_animation

    check_model(results, model)
    return evaluate_animation(
        SMILModel(model, dtype=torch.float32), results.to_animation(), batch_size=batch_size
    )


def export_meshes(results: Results, model, path: str | os.PathLike, overwrite: bool = False) -> list[Path]:
    """Write the posed mesh of every frame: one ``.npz`` mesh sequence, or a folder of ``.obj`` files.

    Parameters
    ----------
    results
        The results.
    model
        The body model (SMILModelData) the results were made with (checked by joint names and sha256).
    path
        ``*.npz``: one mesh-sequence file (``vertices`` (T, V, 3), ``joints``, ``faces``, ``joint_names``,
        ``parents``, ``fps``). Anything else: a folder receiving ``frame_<video frame number>.obj`` files.
    overwrite
        Replace existing files.

    Returns
    -------
    The written files.
    """
    from napari_smil_mv.body.animation import write_mesh_sequence_npz, write_obj

    path = Path(path)
    if path.suffix.lower() == ".npz":
        check_can_write(path, overwrite)
        return [write_mesh_sequence_npz(path, evaluate_meshes(results, model), overwrite=overwrite)]
    names = [path / f"frame_{int(f):06d}.obj" for f in results.frame_indices]  # named by video frame number
    for name in names:  # refuse before computing or writing anything
        check_can_write(name, overwrite)
    meshes = evaluate_meshes(results, model)
    return [
        write_obj(n, v, meshes.faces, overwrite=overwrite)
        for n, v in zip(names, meshes.vertices, strict=True)
    ]


def export_joints_csv(results: Results, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write the 3D keypoints as CSV with columns ``frame, joint, x, y, z, units`` (one row per frame and joint)."""
    path = Path(path)
    with atomic_path(path, overwrite=overwrite) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["frame", "joint", "x", "y", "z", "units"])
        for t, frame in enumerate(results.frame_indices):
            for j, name in enumerate(results.joint_names):
                x, y, z = results.joints_3d[t, j]
                w.writerow([int(frame), name, f"{x:.6g}", f"{y:.6g}", f"{z:.6g}", results.units])
    return path


def _slp_skeleton(results: Results, joints: np.ndarray):
    """sleap-io Skeleton of the given model joints; each joint is linked to its nearest exported ancestor."""
    import sleap_io as sio

    from napari_smil_mv.body.kinematics import subset_edges  # lazy: torch only when needed

    names = [results.joint_names[j] for j in joints]
    edges = [(names[a], names[b]) for a, b in subset_edges(results.parents, joints)]
    return sio.Skeleton(names, edges=edges, name="smil-model-keypoints")


def export_slp(
    results: Results, folder: str | os.PathLike, overwrite: bool = False, all_joints: bool = False
) -> list[Path]:
    """Write one SLEAP ``.slp`` per camera with the reprojected model keypoints as PredictedInstances.

    Parameters
    ----------
    results
        The results.
    folder
        Output folder; files are named ``<camera>.slp``.
    overwrite
        Replace existing files.
    all_joints
        Export every model joint instead of only those mapped to a data node.

    Returns
    -------
    The written files, in camera order. Each references the camera's original video by file name (the video is
    not opened; a missing file keeps its name), with frame numbers from ``results.frame_indices``.
    """
    import sleap_io as sio

    folder = Path(folder)
    joints = np.arange(results.n_joints) if all_joints else np.flatnonzero(results.mapped)
    skeleton = _slp_skeleton(results, joints)
    paths = [folder / f"{name}.slp" for name in results.camera_names]
    for p in paths:
        check_can_write(p, overwrite)
    for c, (name, out) in enumerate(zip(results.camera_names, paths, strict=True)):
        video_path = (results.videos[c] if results.videos is not None else None) or f"{name}.mp4"
        if Path(video_path).exists():
            video = sio.Video.from_filename(str(video_path), keep_open=False)
        else:
            video = sio.Video(filename=str(video_path), open_backend=False)
        frames = []
        for t, frame in enumerate(results.frame_indices):
            pts = results.projections_2d[c, t, joints]
            ok = np.isfinite(pts).all(-1)
            if not ok.any():
                continue
            inst = sio.PredictedInstance.from_numpy(
                pts, skeleton=skeleton, point_scores=ok.astype(np.float64), score=1.0
            )
            frames.append(sio.LabeledFrame(video=video, frame_idx=int(frame), instances=[inst]))
        labels = sio.Labels(frames, videos=[video], skeletons=[skeleton])
        labels.provenance["napari_smil_mv"] = f"reprojected model keypoints, camera {name}"
        with atomic_path(out, overwrite=overwrite) as tmp:
            sio.save_slp(labels, str(tmp), verbose=False)
    return paths
