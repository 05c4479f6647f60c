"""Initialisation without user input: similarity alignment of the rest-pose model to 3D keypoints.

The model's mapped joints in the rest pose are aligned frame by frame to the 3D points (given or triangulated) with
Umeyama's least-squares similarity transform, so any world unit (mm, m) and any world orientation work. One scale is
kept for the clip (the median of the per-frame scales), frames with too few joints borrow the placement of their
nearest good frame, and grossly wrong joints are dropped by a second, trimmed alignment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def umeyama(
    source: np.ndarray, target: np.ndarray, weights: np.ndarray | None = None, with_scale: bool = True
) -> tuple[np.ndarray, np.ndarray, float]:
    """Least-squares similarity transform ``target ≈ s · R · source + t`` (Umeyama 1991).

    Parameters
    ----------
    source, target
        (N, 3) corresponding points (N ≥ 3, not all collinear).
    weights
        (N,) non-negative weights, or None for equal weights.
    with_scale
        Estimate ``s``; otherwise ``s = 1``.

    Returns
    -------
    R : (3, 3) proper rotation, t : (3,), s : float
    """
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if source.shape != target.shape or source.ndim != 2 or source.shape[1] != 3:
        raise ValueError(
            f"umeyama: source and target must both be (N, 3), got {source.shape} and {target.shape}"
        )
    w = np.ones(len(source)) if weights is None else np.asarray(weights, dtype=np.float64)
    if len(source) < 3 or w.sum() <= 0:
        raise ValueError(f"umeyama: need at least 3 weighted point pairs, got {int((w > 0).sum())}")
    w = w / w.sum()
    mu_s = w @ source
    mu_t = w @ target
    xs = source - mu_s
    xt = target - mu_t
    cov = (xt * w[:, None]).T @ xs  # (3, 3) = Σ w (t − μt)(s − μs)ᵀ
    U, D, Vt = np.linalg.svd(cov)
    S = np.eye(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        S[2, 2] = -1.0
    R = U @ S @ Vt
    var_s = float((w * (xs**2).sum(1)).sum())
    s = float(np.trace(np.diag(D) @ S) / var_s) if with_scale and var_s > 0 else 1.0
    t = mu_t - s * R @ mu_s
    return R, t, s


@dataclass
class InitResult:
    """Rigid placement of the rest-pose model per frame.

    Attributes
    ----------
    rotations : (T, 3, 3) root rotations
    trans : (T, 3) world translation of the root joint
    mesh_scale : float, model units → world units
    valid : (T,) bool, frames aligned from their own points (others copied from the nearest valid frame)
    residual : (T,) RMS alignment residual in world units (NaN for copied frames)
    """

    rotations: np.ndarray
    trans: np.ndarray
    mesh_scale: float
    valid: np.ndarray
    residual: np.ndarray


def _is_degenerate(points: np.ndarray) -> bool:
    """True when the points are (nearly) collinear, so a rotation is not determined."""
    centred = points - points.mean(0)
    sv = np.linalg.svd(centred, compute_uv=False)
    return sv.size < 2 or sv[1] <= 1e-6 * max(sv[0], 1e-300)


def align_rest_pose(
    rest_joints: np.ndarray,
    points_3d: np.ndarray,
    min_joints: int = 3,
    trim_factor: float = 3.0,
) -> InitResult:
    """Align the rest-pose model joints (relative to the root) to 3D points, frame by frame.

    Parameters
    ----------
    rest_joints
        (N, 3) rest-pose model keypoints with the root at the origin (model units), in the same joint order as
        ``points_3d``.
    points_3d
        (T, N, 3) target 3D points, NaN where missing (world units).
    min_joints
        Frames with fewer finite, non-collinear points are filled from their nearest valid frame.
    trim_factor
        Points whose residual exceeds this × the median residual are dropped and the frame re-aligned once.

    Returns
    -------
    InitResult

    Raises
    ------
    ValueError
        If no frame has ``min_joints`` usable points (the message says what is needed).
    """
    points_3d = np.asarray(points_3d, dtype=np.float64)
    rest_joints = np.asarray(rest_joints, dtype=np.float64)
    T = points_3d.shape[0]
    finite = np.isfinite(points_3d).all(-1)  # (T, N)
    rotations = np.tile(np.eye(3), (T, 1, 1))
    trans = np.zeros((T, 3))
    scales = np.full(T, np.nan)
    valid = np.zeros(T, dtype=bool)
    usable = []
    for t in range(T):
        idx = np.flatnonzero(finite[t])
        if (
            idx.size < max(min_joints, 3)
            or _is_degenerate(points_3d[t, idx])
            or _is_degenerate(rest_joints[idx])
        ):
            continue
        R, tr, s = umeyama(rest_joints[idx], points_3d[t, idx])
        res = np.linalg.norm(s * rest_joints[idx] @ R.T + tr - points_3d[t, idx], axis=1)
        keep = res <= trim_factor * max(np.median(res), 1e-12)
        if (
            keep.sum() >= max(min_joints, 3)
            and not keep.all()
            and not _is_degenerate(points_3d[t, idx[keep]])
        ):
            R, tr, s = umeyama(rest_joints[idx[keep]], points_3d[t, idx[keep]])
            idx = idx[keep]
        if not np.isfinite(s) or s <= 0:
            continue
        rotations[t], trans[t], scales[t] = R, tr, s
        valid[t] = True
        usable.append(idx)
    if not valid.any():
        raise ValueError(
            f"cannot initialise the fit: no frame has at least {max(min_joints, 3)} mapped model joints with "
            "finite, non-collinear 3D points. Map more data nodes to model joints (joint map), or provide 3D "
            "points / at least two calibrated cameras that see the same keypoints."
        )
    scale = float(np.median(scales[valid]))
    # Re-solve rotation and translation with the clip's common scale.
    residual = np.full(T, np.nan)
    for t, idx in zip(np.flatnonzero(valid), usable, strict=True):
        src = scale * rest_joints[idx]
        R, tr, _ = umeyama(src, points_3d[t, idx], with_scale=False)
        rotations[t], trans[t] = R, tr
        residual[t] = float(np.sqrt(np.mean(np.sum((src @ R.T + tr - points_3d[t, idx]) ** 2, axis=1))))
    # Fill invalid frames from the nearest valid one.
    valid_idx = np.flatnonzero(valid)
    for t in np.flatnonzero(~valid):
        nearest = valid_idx[np.argmin(np.abs(valid_idx - t))]
        rotations[t], trans[t] = rotations[nearest], trans[nearest]
    return InitResult(rotations=rotations, trans=trans, mesh_scale=scale, valid=valid, residual=residual)


def triangulate_weighted(
    keypoints_2d: np.ndarray, weights: np.ndarray, rig, min_cameras: int = 2
) -> np.ndarray:
    """Weighted linear (DLT) triangulation of distorted pixel keypoints, batched over all points.

    Each camera's two DLT equations are multiplied by its keypoint weight, so low-confidence detections count
    less; keypoints with weight 0 or NaN are ignored.

    Parameters
    ----------
    keypoints_2d
        (C, ..., 2) distorted pixels (x, y) in rig order, NaN = missing.
    weights
        (C, ...) non-negative weights.
    rig
        :class:`napari_smil_mv.cameras.CameraRig` with C cameras.
    min_cameras
        Points seen (with weight > 0) by fewer cameras are NaN.

    Returns
    -------
    (..., 3) world points, NaN where under-determined.
    """
    kp = np.asarray(keypoints_2d, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    C = kp.shape[0]
    lead = kp.shape[1:-1]
    kp = kp.reshape(C, -1, 2)
    w = w.reshape(C, -1)
    ok = np.isfinite(kp).all(-1) & (w > 0)
    rows = []
    for c, cam in enumerate(rig):
        xy = np.full_like(kp[c], np.nan)
        if ok[c].any():
            xy[ok[c]] = cam.undistort_normalized(kp[c, ok[c]])
        good = ok[c] & np.isfinite(xy).all(-1)
        ok[c] = good
        P = np.hstack([cam.R, cam.tvec[:, None]])  # (3, 4)
        wc = np.where(good, w[c], 0.0)[:, None]
        xy = np.nan_to_num(xy)
        rows.append(wc * (xy[:, :1] * P[2] - P[0]))
        rows.append(wc * (xy[:, 1:] * P[2] - P[1]))
    A = np.stack(rows, axis=1)  # (M, 2C, 4)
    n_views = ok.sum(0)
    out = np.full((A.shape[0], 3), np.nan)
    solvable = n_views >= max(min_cameras, 2)
    if solvable.any():
        _, _, vt = np.linalg.svd(A[solvable])
        X = vt[:, -1]
        with np.errstate(divide="ignore", invalid="ignore"):
            pts = X[:, :3] / X[:, 3:]
        out[solvable] = np.where(np.abs(X[:, 3:]) > 1e-12, pts, np.nan)
    return out.reshape(lead + (3,))
