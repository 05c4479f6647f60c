"""Rodrigues vectors <-> rotation matrices: numpy (cv2.Rodrigues-equivalent) and differentiable torch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["rodrigues_to_matrix", "matrix_to_rodrigues", "rodrigues_to_matrix_torch"]


def _skew(v: np.ndarray) -> np.ndarray:
    z = np.zeros(v.shape[:-1])
    x, y, w = v[..., 0], v[..., 1], v[..., 2]
    return np.stack([np.stack([z, -w, y], -1), np.stack([w, z, -x], -1), np.stack([-y, x, z], -1)], -2)


def rodrigues_to_matrix(rvec: Any) -> np.ndarray:
    """Rotation vectors (axis * angle, radians) to rotation matrices, like ``cv2.Rodrigues``.

    Parameters
    ----------
    rvec
        Array of shape ``(..., 3)``.

    Returns
    -------
    np.ndarray
        Rotation matrices of shape ``(..., 3, 3)``.
    """
    r = np.asarray(rvec, dtype=np.float64)
    if r.shape[-1:] != (3,):
        raise ValueError(f"rotation vectors must have shape (..., 3), got {r.shape}.")
    theta2 = np.sum(r * r, axis=-1)
    theta = np.sqrt(theta2)
    small = theta2 < 1e-12
    safe = np.where(small, 1.0, theta)
    a = np.where(small, 1.0 - theta2 / 6.0, np.sin(safe) / safe)
    b = np.where(small, 0.5 - theta2 / 24.0, (1.0 - np.cos(safe)) / (safe * safe))
    k = _skew(r)
    return np.eye(3) + a[..., None, None] * k + b[..., None, None] * (k @ k)


def matrix_to_rodrigues(matrix: Any) -> np.ndarray:
    """Rotation matrices to rotation vectors (angle in [0, pi]), like ``cv2.Rodrigues``.

    The matrix is first projected onto SO(3) with an SVD (as OpenCV does), then converted through a unit
    quaternion (Shepperd's method), which is stable at every angle including 0 and pi.

    Parameters
    ----------
    matrix
        Array of shape ``(..., 3, 3)``.

    Returns
    -------
    np.ndarray
        Rotation vectors of shape ``(..., 3)``. At exactly pi the sign of the axis is arbitrary (both
        vectors describe the same rotation).
    """
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape[-2:] != (3, 3):
        raise ValueError(f"rotation matrices must have shape (..., 3, 3), got {m.shape}.")
    u, _, vt = np.linalg.svd(m)
    rot = u @ vt
    if np.any(np.linalg.det(rot) < 0):
        raise ValueError("matrix_to_rodrigues: got a reflection (determinant < 0), not a rotation.")
    with np.errstate(divide="ignore", invalid="ignore"):
        return _rotation_to_rvec(rot)


def _rotation_to_rvec(rot: np.ndarray) -> np.ndarray:
    tr = np.trace(rot, axis1=-2, axis2=-1)
    d = np.stack([rot[..., 0, 0], rot[..., 1, 1], rot[..., 2, 2]], -1)
    # 4 candidate quaternions (w, x, y, z); use the one with the largest pivot for stability.
    pivots = np.concatenate([tr[..., None], d], -1)  # 4*q_i^2 - 1 proportional
    i = np.argmax(pivots, axis=-1)
    r = rot
    q = np.empty(rot.shape[:-2] + (4,))
    s0 = np.sqrt(np.maximum(1.0 + tr, 1e-300)) * 2  # 4w
    s1 = np.sqrt(np.maximum(1.0 + 2 * d[..., 0] - tr, 1e-300)) * 2  # 4x
    s2 = np.sqrt(np.maximum(1.0 + 2 * d[..., 1] - tr, 1e-300)) * 2  # 4y
    s3 = np.sqrt(np.maximum(1.0 + 2 * d[..., 2] - tr, 1e-300)) * 2  # 4z
    cand = [
        np.stack(
            [
                s0 / 4,
                (r[..., 2, 1] - r[..., 1, 2]) / s0,
                (r[..., 0, 2] - r[..., 2, 0]) / s0,
                (r[..., 1, 0] - r[..., 0, 1]) / s0,
            ],
            -1,
        ),
        np.stack(
            [
                (r[..., 2, 1] - r[..., 1, 2]) / s1,
                s1 / 4,
                (r[..., 0, 1] + r[..., 1, 0]) / s1,
                (r[..., 0, 2] + r[..., 2, 0]) / s1,
            ],
            -1,
        ),
        np.stack(
            [
                (r[..., 0, 2] - r[..., 2, 0]) / s2,
                (r[..., 0, 1] + r[..., 1, 0]) / s2,
                s2 / 4,
                (r[..., 1, 2] + r[..., 2, 1]) / s2,
            ],
            -1,
        ),
        np.stack(
            [
                (r[..., 1, 0] - r[..., 0, 1]) / s3,
                (r[..., 0, 2] + r[..., 2, 0]) / s3,
                (r[..., 1, 2] + r[..., 2, 1]) / s3,
                s3 / 4,
            ],
            -1,
        ),
    ]
    for k in range(4):
        q = np.where((i == k)[..., None], cand[k], q)
    q = np.where(q[..., :1] < 0, -q, q)  # w >= 0  ->  angle in [0, pi]
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    vnorm = np.linalg.norm(q[..., 1:], axis=-1)
    angle = 2.0 * np.arctan2(vnorm, q[..., 0])
    small = vnorm < 1e-12
    factor = np.where(small, 2.0 / np.maximum(q[..., 0], 1e-300), angle / np.where(small, 1.0, vnorm))
    return q[..., 1:] * factor[..., None]


def rodrigues_to_matrix_torch(rvec: torch.Tensor) -> torch.Tensor:
    """Differentiable Rodrigues: rotation vectors ``(..., 3)`` to matrices ``(..., 3, 3)``.

    Uses Taylor expansions near zero so the gradient is finite at the identity.
    """
    import torch

    theta2 = (rvec * rvec).sum(-1)
    small = theta2 < 1e-8
    safe2 = torch.where(small, torch.ones_like(theta2), theta2)
    theta = torch.sqrt(safe2)
    a = torch.where(small, 1 - theta2 / 6 + theta2 * theta2 / 120, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24 + theta2 * theta2 / 720, (1 - torch.cos(theta)) / safe2)
    x, y, z = rvec.unbind(-1)
    o = torch.zeros_like(x)
    k = torch.stack(
        [torch.stack([o, -z, y], -1), torch.stack([z, o, -x], -1), torch.stack([-y, x, o], -1)], -2
    )
    eye = torch.eye(3, dtype=rvec.dtype, device=rvec.device)
    return eye + a[..., None, None] * k + b[..., None, None] * (k @ k)
