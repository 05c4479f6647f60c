"""Batched, differentiable rotation conversions (torch, any dtype and device).

Conventions
-----------
* Rotation matrices act on column vectors: ``x' = R @ x``.
* Axis-angle vectors ``θ`` (shape ``(..., 3)``) encode the rotation by the angle ``|θ|`` (radians) about the unit
  axis ``θ / |θ|`` (right-hand rule).
* The 6D representation follows **PyTorch3D** (Zhou et al., CVPR 2019, as implemented in
  ``pytorch3d.transforms.rotation_6d_to_matrix``): the 6 numbers are the **first two rows** of the rotation
  matrix, ``d6 = [R[0, 0], R[0, 1], R[0, 2], R[1, 0], R[1, 1], R[1, 2]]``. Decoding applies Gram–Schmidt to the two
  3-vectors ``a1 = d6[:3]``, ``a2 = d6[3:]``: ``b1 = a1/|a1|``, ``b2 = normalise(a2 − (b1·a2) b1)``,
  ``b3 = b1 × b2``, and stacks ``b1, b2, b3`` as the **rows** of ``R``. The identity is ``[1, 0, 0, 0, 1, 0]``.
  (The column-stacking variant gives the transposed rotation for the same 6 numbers; it is not used here.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "axis_angle_to_matrix",
    "matrix_to_axis_angle",
    "rotation_6d_to_matrix",
    "matrix_to_rotation_6d",
    "as_rotation_matrices",
]


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula: axis-angle vectors to rotation matrices.

    Follows the reference SMIL implementation exactly: ``angle = |θ + 1e-8|``, ``r = θ / angle``,
    ``R = cos(angle) I + (1 − cos(angle)) r rᵀ + sin(angle) [r]×``. The small offset keeps the function finite and
    differentiable at ``θ = 0`` (where it returns the identity).

    Parameters
    ----------
    axis_angle
        ``(..., 3)`` rotation vectors in radians.

    Returns
    -------
    torch.Tensor
        ``(..., 3, 3)`` rotation matrices, same dtype and device.
    """
    if axis_angle.shape[-1] != 3:
        raise ValueError(
            f"axis-angle rotations need a last dimension of 3, got shape {tuple(axis_angle.shape)}"
        )
    angle = torch.linalg.vector_norm(axis_angle + 1e-8, dim=-1, keepdim=True)  # (..., 1)
    r = axis_angle / angle
    cos = torch.cos(angle)[..., None]  # (..., 1, 1)
    sin = torch.sin(angle)[..., None]
    x, y, z = r.unbind(-1)
    zero = torch.zeros_like(x)
    skew = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(*r.shape[:-1], 3, 3)
    outer = r[..., :, None] * r[..., None, :]
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device)
    return cos * eye + (1.0 - cos) * outer + sin * skew


def _sqrt_positive(x: torch.Tensor) -> torch.Tensor:
    """``sqrt(max(x, 0))`` with a zero (not infinite) gradient where ``x <= 0``."""
    positive = x > 0
    return torch.where(
        positive, torch.sqrt(torch.where(positive, x, torch.ones_like(x))), torch.zeros_like(x)
    )


def _matrix_to_quaternion(matrix: torch.Tensor) -> torch.Tensor:
    """Rotation matrices ``(..., 3, 3)`` to unit quaternions ``(..., 4)`` ``(w, x, y, z)`` with ``w >= 0``.

    Uses the best-conditioned of the four classical candidate formulas for every matrix, so it is accurate for
    every angle including π.
    """
    m = matrix
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    # |4 q_k|² for each component k.
    q_abs = _sqrt_positive(
        torch.stack(
            [
                1.0 + m00 + m11 + m22,
                1.0 + m00 - m11 - m22,
                1.0 - m00 + m11 - m22,
                1.0 - m00 - m11 + m22,
            ],
            dim=-1,
        )
    )
    # Candidate quaternions (unnormalised, each scaled by 2 |q_k|), one per row.
    candidates = torch.stack(
        [
            torch.stack([q_abs[..., 0] ** 2, m21 - m12, m02 - m20, m10 - m01], dim=-1),
            torch.stack([m21 - m12, q_abs[..., 1] ** 2, m10 + m01, m02 + m20], dim=-1),
            torch.stack([m02 - m20, m10 + m01, q_abs[..., 2] ** 2, m12 + m21], dim=-1),
            torch.stack([m10 - m01, m20 + m02, m21 + m12, q_abs[..., 3] ** 2], dim=-1),
        ],
        dim=-2,
    )
    floor = torch.tensor(0.1, dtype=q_abs.dtype, device=q_abs.device)
    candidates = candidates / (2.0 * torch.maximum(q_abs[..., None], floor))
    best = q_abs.argmax(dim=-1)
    quat = torch.gather(candidates, -2, best[..., None, None].expand(*best.shape, 1, 4)).squeeze(-2)
    quat = F.normalize(quat, dim=-1)
    return torch.where(quat[..., :1] < 0, -quat, quat)


def matrix_to_axis_angle(matrix: torch.Tensor) -> torch.Tensor:
    """Rotation matrices to axis-angle vectors with angle in ``[0, π]``.

    Goes through a unit quaternion chosen with the best-conditioned formula, so rotations near π (where the
    ``(R − Rᵀ)`` axis formula breaks down) and near 0 are both handled accurately.

    Parameters
    ----------
    matrix
        ``(..., 3, 3)`` rotation matrices.

    Returns
    -------
    torch.Tensor
        ``(..., 3)`` axis-angle vectors in radians.
    """
    if matrix.shape[-2:] != (3, 3):
        raise ValueError(f"rotation matrices need shape (..., 3, 3), got {tuple(matrix.shape)}")
    quat = _matrix_to_quaternion(matrix)
    vec = quat[..., 1:]
    sin_half = torch.linalg.vector_norm(vec, dim=-1, keepdim=True)
    half = torch.atan2(sin_half, quat[..., :1])
    small = sin_half < 1e-6
    safe_sin = torch.where(small, torch.ones_like(sin_half), sin_half)
    # angle / sin(angle / 2) = 2 h / sin(h) ≈ 2 (1 + h² / 6) for small h.
    factor = torch.where(small, 2.0 + half * half / 3.0, 2.0 * half / safe_sin)
    return vec * factor


def rotation_6d_to_matrix(d6: torch.Tensor) -> torch.Tensor:
    """PyTorch3D 6D representation to rotation matrices (Gram–Schmidt, rows ``b1, b2, b1 × b2``).

    Parameters
    ----------
    d6
        ``(..., 6)``; the first two rows of the (unnormalised) rotation matrix.

    Returns
    -------
    torch.Tensor
        ``(..., 3, 3)`` rotation matrices.
    """
    if d6.shape[-1] != 6:
        raise ValueError(f"6D rotations need a last dimension of 6, got shape {tuple(d6.shape)}")
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = F.normalize(a1, dim=-1)
    b2 = F.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.linalg.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-2)


def matrix_to_rotation_6d(matrix: torch.Tensor) -> torch.Tensor:
    """Rotation matrices to the PyTorch3D 6D representation (first two rows, flattened).

    Parameters
    ----------
    matrix
        ``(..., 3, 3)`` rotation matrices.

    Returns
    -------
    torch.Tensor
        ``(..., 6)``.
    """
    if matrix.shape[-2:] != (3, 3):
        raise ValueError(f"rotation matrices need shape (..., 3, 3), got {tuple(matrix.shape)}")
    return matrix[..., :2, :].reshape(*matrix.shape[:-2], 6)


def as_rotation_matrices(pose: torch.Tensor) -> torch.Tensor:
    """Convert a pose in any supported representation to rotation matrices.

    Parameters
    ----------
    pose
        ``(..., 3)`` axis-angle, ``(..., 6)`` PyTorch3D 6D, or ``(..., 3, 3)`` rotation matrices. A trailing
        ``(3, 3)`` is always read as matrices.

    Returns
    -------
    torch.Tensor
        ``(..., 3, 3)`` rotation matrices.
    """
    if pose.ndim >= 2 and pose.shape[-2:] == (3, 3):
        return pose
    if pose.shape[-1] == 3:
        return axis_angle_to_matrix(pose)
    if pose.shape[-1] == 6:
        return rotation_6d_to_matrix(pose)
    raise ValueError(
        f"cannot read rotations of shape {tuple(pose.shape)}: expected (..., 3) axis-angle, (..., 6) 6D "
        "or (..., 3, 3) matrices"
    )
