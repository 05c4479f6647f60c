"""Metrics of fitted/predicted keypoints: reprojection error, PCK, 3D joint error, body length.

Body length (:func:`body_length`): the median over frames of the largest distance between two *axial* joints
(joints without a left/right partner: head, spine, abdomen, tail; not legs, antennae or ears).

The array functions are plain numpy so training and benchmarking code can reuse them; :func:`evaluate` applies them
to a :class:`Results` against its own data, a session, or a ground truth.
"""

from __future__ import annotations

import json
import math
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


#: Name markers ``(left, right)`` of left/right joints (also the pairs of the fit's ``limb_scale_sym`` prior).
SIDE_MARKERS = (("_L", "_R"), ("_l", "_r"), ("left", "right"), ("Left", "Right"))

BODY_LENGTH_DEFINITION = (
    "median over frames of the largest distance between two axial reference joints (axial: joints without a "
    "left/right partner by name, i.e. not legs, antennae or ears; all joints when fewer than two are axial)"
)


def axial_joints(joint_names: Sequence[str]) -> np.ndarray:
    """(J,) bool: joints that have no left/right partner by name (head, spine, abdomen, tail; not limbs).

    A joint is paired when its name contains ``_L``/``_l``/``left``/``Left`` (or the right-hand marker) and the
    name with the marker swapped is also a joint, e.g. ``leg_front_l_claw`` / ``leg_front_r_claw``.
    """
    names = [str(n) for n in joint_names]
    index = set(names)
    axial = np.ones(len(names), dtype=bool)
    for i, name in enumerate(names):
        for left, right in SIDE_MARKERS:
            for a, b in ((left, right), (right, left)):
                if a in name and name.replace(a, b) in index and name.replace(a, b) != name:
                    axial[i] = False
    return axial


def body_length(joints: np.ndarray, joint_names: Sequence[str] | None = None) -> float:
    """Body length: median over frames of the largest distance between two axial joints (world units).

    Parameters
    ----------
    joints
        (T, J, 3) or (J, 3) joints; NaN joints are ignored.
    joint_names
        (J,) names. Given, only the axial joints (:func:`axial_joints`: no left/right partner, so legs, antennae
        and ears are left out) count, e.g. head to abdomen tip for the demo insect, nose to tail tip for the
        SMILy mouse. None, or fewer than two axial joints: every joint counts (the skeleton's extent).
    """
    j = np.asarray(joints, dtype=np.float64)
    j = j[None] if j.ndim == 2 else j
    if joint_names is not None:
        axial = axial_joints(joint_names)
        if axial.sum() >= 2:
            j = j[:, axial]
    lengths = []
    for frame in j:
        ok = frame[np.isfinite(frame).all(-1)]
        if len(ok) >= 2:
            lengths.append(np.max(np.linalg.norm(ok[:, None] - ok[None], axis=-1)))
    return float(np.median(lengths)) if lengths else float("nan")


def _error_stats(err3d: np.ndarray, joints: np.ndarray) -> tuple[float, float]:
    """Median and mean of the finite errors ``(T, J)`` over the selected joints ``(J,)`` bool."""
    e = err3d[:, joints]
    e = e[np.isfinite(e)]
    return (float(np.median(e)), float(np.mean(e))) if e.size else (float("nan"), float("nan"))


def _observed_joints(results: Results) -> np.ndarray:
    """(J,) bool: joints the fit's data observe (a data node mapped to them; else any stored observation)."""
    if results.data_names is not None:
        return results.mapped
    if results.reprojection_error is not None:
        return np.isfinite(results.reprojection_error).any(axis=(0, 1))
    return np.ones(results.n_joints, dtype=bool)


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


def _read_truth(gt: Any) -> Any:
    """A ground truth given as a path (``ground_truth.npz`` or its folder), read; anything else as is."""
    if isinstance(gt, (str, os.PathLike)):
        from napari_smil_mv.sessions.synthetic_truth import read_ground_truth

        return read_ground_truth(Path(gt))
    return gt


def _ground_truth_joints(results: Results, gt: Any) -> np.ndarray:
    """Ground-truth joints (T, J, 3) in the results' frame and joint order."""
    gt = _read_truth(gt)
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


#: What the reprojection error of each reference measures against (``reprojection_reference``).
STORED_2D = (
    "the 2D keypoints stored in the results (the ones it was fitted to; noisy labels for a synthetic session)"
)
TRUTH_2D = "the noise-free 2D keypoints of the ground truth (keypoints_2d_clean) at the visible tracked nodes"


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
        or a mapping with ``joints3d`` (T, J, 3), optional ``frame_indices`` and ``joint_names``): 3D joint errors
        and the body length, plus the 2D metrics against its noise-free 2D keypoints (``keypoints_2d_clean`` of
        a ``GroundTruth``, visible nodes only; a mapping without them: against the stored observations).
    animal
        Animal of the session (default: the one recorded in the results' provenance, else 0).

    Returns
    -------
    dict
        Always: ``units``, ``n_frames``, ``reference``, ``reprojection_reference`` (what the 2D errors are
        measured against, in words), ``reprojection_px_median``, ``reprojection_px_mean``,
        ``reprojection_px_per_camera`` (name → median), ``pck_5px``, ``pck_10px``, ``n_keypoints``,
        ``cameras_used``.

        With 3D references (a session's 3D points, a ground truth), absolute errors (no alignment) in ``units``:
        ``joint_error_3d_median`` / ``_mean`` over the *observed* joints (the model joints a data keypoint is
        mapped to: the standard MPJPE over tracked keypoints), listed in ``joints_compared``.

        With a ground truth also: ``joint_error_3d_median_all_joints`` / ``_mean_all_joints`` over every model
        joint, ``joint_error_3d_median_unobserved_joints`` (joints no keypoint observes: placed by the model and
        the priors alone), ``n_joints_observed``, ``n_joints_all``; ``body_length`` (:func:`body_length` of the
        ground truth: the largest distance between two axial joints, listed in ``body_length_joints``, defined in
        ``body_length_definition``); ``joint_error_3d_relative`` and ``joint_error_3d_relative_all_joints``
        (medians / body length).
    """
    out: dict[str, Any] = {"units": results.units, "n_frames": results.n_frames}
    reference_3d = None
    is_session = reference is not None and hasattr(reference, "views") and hasattr(reference, "rig")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        is_truth = reference is not None and not is_session
        if is_session:
            observed, reference_3d = _session_observations(results, reference, animal)
            errors = reprojection_errors(results.projections_2d, observed)
            out["reference"] = f"session {reference.name}"
            out["reprojection_reference"] = f"the 2D keypoints of session {reference.name}"
        elif is_truth:
            from napari_smil_mv.results.references import ground_truth_2d

            reference = _read_truth(reference)
            reference_3d = _ground_truth_joints(results, reference)
            out["reference"] = "ground truth"
            clean = ground_truth_2d(results, reference)
            if clean is None:
                errors = results.reprojection_error
                out["reprojection_reference"] = (
                    STORED_2D + " (the ground truth has no noise-free 2D keypoints)"
                )
            else:
                errors = reprojection_errors(results.projections_2d, clean)
                out["reprojection_reference"] = TRUTH_2D
        else:
            errors = results.reprojection_error
            out["reference"] = "stored observations"
            out["reprojection_reference"] = STORED_2D
        out.update(reprojection_summary(errors, results.camera_names, results.camera_used))
        if reference_3d is None:
            return out
        err3d = joint_errors_3d(results.joints_3d, reference_3d)
        observed_joints = _observed_joints(results) & np.isfinite(err3d).any(axis=0)
        names = list(results.joint_names)
        out["joint_error_3d_median"], out["joint_error_3d_mean"] = _error_stats(err3d, observed_joints)
        out["joints_compared"] = [n for n, o in zip(names, observed_joints, strict=True) if o]
        if is_truth:
            every = np.isfinite(err3d).any(axis=0)
            unobserved = every & ~observed_joints
            med_all, mean_all = _error_stats(err3d, every)
            out["joint_error_3d_median_all_joints"] = med_all
            out["joint_error_3d_mean_all_joints"] = mean_all
            out["joint_error_3d_median_unobserved_joints"] = _error_stats(err3d, unobserved)[0]
            out["n_joints_observed"] = int(observed_joints.sum())
            out["n_joints_all"] = int(every.sum())
            length = body_length(reference_3d, names)
            axial = axial_joints(names)
            out["body_length"] = length
            out["body_length_joints"] = (
                [n for n, a in zip(names, axial, strict=True) if a] if axial.sum() >= 2 else names
            )
            out["body_length_definition"] = BODY_LENGTH_DEFINITION
            if length > 0:
                out["joint_error_3d_relative"] = out["joint_error_3d_median"] / length
                out["joint_error_3d_relative_all_joints"] = med_all / length
    return out


def json_safe(value: Any) -> Any:
    """JSON-safe copy of nested dicts/lists/tuples: NaN/inf floats become None (null)."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def metrics_json(metrics: dict[str, Any]) -> str:
    """The JSON text ``evaluate --json`` prints for ``metrics`` (NaN/inf as null, no trailing newline)."""
    return json.dumps(json_safe(metrics), indent=2, allow_nan=False, default=str)
