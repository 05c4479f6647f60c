"""Metrics of fitted/predicted keypoints: reprojection error, PCK, 3D joint error, body length.

The array functions are plain numpy so training and benchmarking code can reuse them; :func:`evaluate` applies them
to a :class:`Results` against its own data, a session, or a ground truth.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from napari_smil_mv.results.model import Results


def reprojection_errors(projected: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Pixel distances ``(C, T, J)`` between projections and observations ``(C, T, J, 2)`` (NaN if either is)."""
    return np.linalg.norm(np.asarray(projected, float) - np.asarray(observed, float), axis=-1)


def pck(errors: np.ndarray, threshold_px: float) -> float:
    """Fraction of the finite errors that are ``<= threshold_px`` (NaN when there are none)."""
    e = np.asarray(errors, dtype=np.float64)
    e = e[np.isfinite(e)]
    return float(np.mean(e <= threshold_px)) if e.size else float("nan")


def finite_median(values: np.ndarray) -> float:
    """Median of the finite values (NaN when there are none)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(np.median(v)) if v.size else float("nan")


def joint_errors_3d(predicted: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Euclidean distance ``(T, J)`` between predicted and reference 3D joints ``(T, J, 3)`` (NaN where missing).

    Absolute (no root or Procrustes alignment), in the world units of the inputs.
    """
    return np.linalg.norm(np.asarray(predicted, float) - np.asarray(reference, float), axis=-1)


def body_length(joints: np.ndarray) -> float:
    """Body length: median over frames of the largest distance between two joints (world units).

    Parameters
    ----------
    joints
        (T, J, 3) or (J, 3) joints; NaN joints are ignored.
    """
    j = np.asarray(joints, dtype=np.float64)
    j = j[None] if j.ndim == 2 else j
    lengths = []
    for frame in j:
        ok = frame[np.isfinite(frame).all(-1)]
        if len(ok) >= 2:
            lengths.append(np.max(np.linalg.norm(ok[:, None] - ok[None], axis=-1)))
    return float(np.median(lengths)) if lengths else float("nan")


def reprojection_summary(
    errors: np.ndarray, camera_names: Sequence[str], used: np.ndarray | None = None
) -> dict[str, Any]:
    """Reprojection statistics of ``(C, T, J)`` errors: overall over the ``used`` cameras, and per camera."""
    errors = np.asarray(errors, dtype=np.float64)
    used = np.ones(len(camera_names), dtype=bool) if used is None else np.asarray(used, dtype=bool)
    sel = errors[used]
    finite = sel[np.isfinite(sel)]
    return {
        "reprojection_px_median": finite_median(finite),
        "reprojection_px_mean": float(np.mean(finite)) if finite.size else float("nan"),
        "reprojection_px_per_camera": {n: finite_median(errors[c]) for c, n in enumerate(camera_names)},
        "pck_5px": pck(finite, 5.0),
        "pck_10px": pck(finite, 10.0),
        "n_keypoints": int(finite.size),
        "cameras_used": [n for n, u in zip(camera_names, used, strict=True) if u],
    }


# ------------------------------------------------------------------------------------------------ references
def _session_observations(
    results: Results, session, animal: int | str | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Observed 2D (C, T, J, 2) in results' camera/frame/joint order, and 3D points (T, J, 3) or None."""
    if results.data_names is None:
        raise ValueError(
            "the results do not record which data node each model joint observes (data_names); "
            "evaluate against the stored observations instead (no --session)"
        )
    if animal is None:
        animal = results.provenance.get("animal", 0)
    names = list(session.animal_names)
    a = names.index(animal) if isinstance(animal, str) else int(animal)
    nodes = list(session.skeleton.nodes)
    pairs = [(j, nodes.index(n)) for j, n in enumerate(results.data_names) if n and n in nodes]
    if not pairs:
        raise ValueError(
            f"none of the results' data nodes {sorted(set(results.data_names) - {''})} is in the "
            f"skeleton of session {session.name!r} ({nodes})"
        )
    rows = {int(f): i for i, f in enumerate(session.frame_indices)}
    missing_frames = [int(f) for f in results.frame_indices if int(f) not in rows]
    if missing_frames:
        raise ValueError(
            f"session {session.name!r} has no keypoints for frames {missing_frames[:5]} of the results"
        )
    r = np.array([rows[int(f)] for f in results.frame_indices])
    j_idx = np.array([p[0] for p in pairs])
    n_idx = np.array([p[1] for p in pairs])
    obs = np.full(results.projections_2d.shape, np.nan)
    for c, name in enumerate(results.camera_names):
        if name not in session.views:
            continue
        kp = session.views[name].keypoints[r, a]  # (T, N, 2)
        obs[c][:, j_idx] = kp[:, n_idx]
    pts = None
    if session.points3d is not None:
        pts = np.full(results.joints_3d.shape, np.nan)
        pts[:, j_idx] = session.points3d[r, a][:, n_idx]
    return obs, pts


def _ground_truth_joints(results: Results, gt: Any) -> np.ndarray:
    """Ground-truth joints (T, J, 3) in the results' frame and joint order."""
    if isinstance(gt, (str, os.PathLike)):
        path = Path(gt)
        from napari_smil_mv.sessions.synthetic_truth import read_ground_truth

        gt = read_ground_truth(path)
    arrays: Mapping[str, Any] = gt.arrays if hasattr(gt, "arrays") else gt
    key = next((k for k in ("joints3d", "joints_3d", "joints") if k in arrays), None)
    if key is None:
        raise KeyError(f"ground truth has no 3D joints: expected a 'joints3d' array, found {sorted(arrays)}")
    joints = np.asarray(arrays[key], dtype=np.float64)
    frames = np.asarray(arrays["frame_indices"]) if "frame_indices" in arrays else np.arange(len(joints))
    names = [str(n) for n in arrays["joint_names"]] if "joint_names" in arrays else list(results.joint_names)
    if joints.ndim != 3 or joints.shape[1] != len(names):
        raise ValueError(f"ground-truth joints have shape {joints.shape}; expected (T, {len(names)}, 3)")
    rows = {int(f): i for i, f in enumerate(frames)}
    out = np.full(results.joints_3d.shape, np.nan)
    for j, name in enumerate(results.joint_names):
        if name in names:
            col = names.index(name)
            for t, f in enumerate(results.frame_indices):
                if int(f) in rows:
                    out[t, j] = joints[rows[int(f)], col]
    if not np.isfinite(out).any():
        raise ValueError("the ground truth shares no frame and joint name with the results")
    return out


def evaluate(results: Results, reference: Any = None, animal: int | str | None = None) -> dict[str, Any]:
    """Metrics of ``results`` against their stored observations, a session, or a ground truth.

    Parameters
    ----------
    results
        The results to evaluate.
    reference
        None: the 2D observations stored in the results (their ``reprojection_error``);
        a :class:`napari_smil_mv.sessions.Session`: its 2D keypoints (and 3D points when present), matched by
        camera name, frame number and the results' data node names;
        a ground truth (``ground_truth.npz`` path, :class:`~napari_smil_mv.sessions.synthetic_truth.GroundTruth`
        or a mapping with ``joints3d`` (T, J, 3), optional ``frame_indices`` and ``joint_names``): 3D joint error
        over every model joint and the body length, plus the 2D metrics against the stored observations.
    animal
        Animal of the session (default: the one recorded in the results' provenance, else 0).

    Returns
    -------
    dict
        ``reprojection_px_median``, ``reprojection_px_mean``, ``reprojection_px_per_camera`` (name → median),
        ``pck_5px``, ``pck_10px``, ``n_keypoints``, ``cameras_used``, ``units``; with 3D references
        ``joint_error_3d_median`` (and ``_mean``); with a ground truth also ``body_length`` and
        ``joint_error_3d_relative`` (median / body length), in the results' units.
    """
    out: dict[str, Any] = {"units": results.units, "n_frames": results.n_frames}
    reference_3d = None
    is_session = reference is not None and hasattr(reference, "views") and hasattr(reference, "rig")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if is_session:
            observed, reference_3d = _session_observations(results, reference, animal)
            errors = reprojection_errors(results.projections_2d, observed)
            out["reference"] = f"session {reference.name}"
        else:
            errors = results.reprojection_error
            out["reference"] = "stored observations"
        out.update(reprojection_summary(errors, results.camera_names, results.camera_used))
        if reference is not None and not is_session:
            reference_3d = _ground_truth_joints(results, reference)
            out["reference"] = "ground truth"
            length = body_length(reference_3d)
            out["body_length"] = length
        if reference_3d is not None:
            err3d = joint_errors_3d(results.joints_3d, reference_3d)
            out["joint_error_3d_median"] = finite_median(err3d)
            finite = err3d[np.isfinite(err3d)]
            out["joint_error_3d_mean"] = float(np.mean(finite)) if finite.size else float("nan")
            if "body_length" in out and out["body_length"] > 0:
                out["joint_error_3d_relative"] = out["joint_error_3d_median"] / out["body_length"]
    return out
