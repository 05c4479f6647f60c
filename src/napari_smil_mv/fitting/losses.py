"""Loss terms of the multi-view fit: robust data terms and priors (all dimensionless, torch)."""

from __future__ import annotations

import torch

from napari_smil_mv.results.metrics import SIDE_MARKERS


def robust(sq_norm: torch.Tensor, kind: str) -> torch.Tensor:
    """Robust penalty of a squared, already sigma-normalised residual norm.

    Parameters
    ----------
    sq_norm
        (...,) squared residual norms divided by sigma².
    kind
        ``"gmof"``: Geman-McClure ``x / (1 + x)`` (≈ x for small residuals, bounded by 1);
        ``"huber"``: ``x`` below 1, ``2·sqrt(x) − 1`` above; ``"cauchy"``: ``log(1 + x)``; ``"l2"``: ``x``.
    """
    if kind == "gmof":
        return sq_norm / (1.0 + sq_norm)
    if kind == "cauchy":
        return torch.log1p(sq_norm)
    if kind == "huber":
        r = torch.sqrt(sq_norm.clamp_min(1e-12))
        return torch.where(sq_norm < 1.0, sq_norm, 2.0 * r - 1.0)
    if kind == "l2":
        return sq_norm
    raise ValueError(f"unknown robust loss {kind!r}; use 'gmof', 'huber', 'cauchy' or 'l2'")


def weighted_mean(values: torch.Tensor, weights: torch.Tensor, total: torch.Tensor | float) -> torch.Tensor:
    """``Σ w·v / total`` with zero-weight entries (possibly NaN values) contributing nothing."""
    return torch.where(weights > 0, values * weights, torch.zeros_like(values)).sum() / total


def reprojection_loss(
    projected: torch.Tensor, observed: torch.Tensor, weights: torch.Tensor, sigma_px: float, kind: str
) -> torch.Tensor:
    """Robust 2D keypoint loss over every camera.

    Parameters
    ----------
    projected, observed
        (C, T, N, 2) pixel coordinates (x, y); observed may hold NaN where weights are 0.
    weights
        (C, T, N) per-keypoint weights (confidence × visibility × camera weight).
    sigma_px
        Pixel scale of the robust loss.
    """
    diff = torch.nan_to_num(projected - observed)
    sq = (diff**2).sum(-1) / sigma_px**2
    return weighted_mean(robust(sq, kind), weights, weights.sum().clamp_min(1e-9))


def points3d_loss(
    joints: torch.Tensor, points: torch.Tensor, weights: torch.Tensor, sigma: float, kind: str
) -> torch.Tensor:
    """Robust 3D keypoint loss; joints, points (T, N, 3) world units, weights (T, N), sigma in world units."""
    diff = torch.nan_to_num(joints - points)
    sq = (diff**2).sum(-1) / sigma**2
    return weighted_mean(robust(sq, kind), weights, weights.sum().clamp_min(1e-9))


def pose_prior(rotmats: torch.Tensor) -> torch.Tensor:
    """Mean over frames and joints 1..J-1 of ``||R − I||_F² / 2 = 2(1 − cos θ)`` (≈ θ²); root excluded.

    rotmats: (B, J, 3, 3).
    """
    local = rotmats[:, 1:]
    trace = local.diagonal(dim1=-2, dim2=-1).sum(-1)
    return (3.0 - trace).mean()


def symmetric_pairs(joint_names: list[str]) -> list[tuple[int, int]]:
    """Index pairs of left/right joints recognised by name (``_L``/``_R``, ``_l``/``_r``, ``left``/``right``)."""
    index = {n: i for i, n in enumerate(joint_names)}
    pairs = []
    for name, i in index.items():
        for left, right in SIDE_MARKERS:
            if left in name:
                other = name.replace(left, right)
                if other in index and other != name:
                    pairs.append((i, index[other]))
                    break
    return pairs


def mirror_scales(log_beta_scales: torch.Tensor, pairs: list[tuple[int, int]]) -> torch.Tensor:
    """Mean squared left/right difference of per-joint log-scales; (J, 3) or (B, J, 3) input."""
    if not pairs:
        return log_beta_scales.new_zeros(())
    left = torch.as_tensor([p[0] for p in pairs], device=log_beta_scales.device)
    right = torch.as_tensor([p[1] for p in pairs], device=log_beta_scales.device)
    return ((log_beta_scales[..., left, :] - log_beta_scales[..., right, :]) ** 2).sum(-1).mean()


def temporal_smoothness(
    joints: torch.Tensor,
    pair_mask: torch.Tensor,
    scale: float,
    acc_scale: float = float("inf"),
    kind: str = "gmof",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Squared joint velocity and robust squared acceleration over neighbouring frames, in body lengths.

    Parameters
    ----------
    joints
        (T, J, 3) world joints.
    pair_mask
        (T-1,) 1 where frames t and t+1 are neighbours (gap small enough), else 0.
    scale
        Body length in world units.
    acc_scale, kind
        Robust scale ``s`` (body lengths per frame²) and penalty of each joint's acceleration: ``s² ρ(|a|²/s²)``
        (``kind`` as in :func:`robust`; ``inf`` or ``"l2"``: plain ``|a|²``).

    Returns
    -------
    velocity, acceleration : scalar tensors (0 when fewer than 2 / 3 frames); means over joints and pairs/triples.
    """
    zero = joints.new_zeros(())
    if joints.shape[0] < 2 or pair_mask.sum() == 0:
        return zero, zero
    vel = (joints[1:] - joints[:-1]) / scale  # (T-1, J, 3)
    vel_sq = (vel**2).sum(-1).mean(-1)
    velocity = (vel_sq * pair_mask).sum() / pair_mask.sum()
    if joints.shape[0] < 3:
        return velocity, zero
    acc_mask = pair_mask[1:] * pair_mask[:-1]
    if acc_mask.sum() == 0:
        return velocity, zero
    acc = vel[1:] - vel[:-1]
    acc_sq = (acc**2).sum(-1)  # (T-2, J)
    if kind != "l2" and acc_scale != float("inf"):
        acc_sq = acc_scale**2 * robust(acc_sq / acc_scale**2, kind)
    acc_sq = acc_sq.mean(-1)
    return velocity, (acc_sq * acc_mask).sum() / acc_mask.sum()
