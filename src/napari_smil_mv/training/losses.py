"""Loss terms of multi-view training (all dimensionless, so the default weights fit any image size or unit).

* ``keypoint_2d``: per view slot ``v``, ``L_v = Σ_bj w_bvj ||p̂ − p||² / (2 S² Σ_bj w_bvj)`` with ``w`` = visibility ×
  valid view × joint importance and ``S`` the crop side (so residuals are fractions of the image); the views are
  combined by their total visibility, ``Σ_v L_v W_v / Σ_v W_v`` with ``W_v = Σ_bj w_bvj`` (plan §4.2).
* ``keypoint_3d``: ``Σ w ||X̂ − X||² / (3 L² Σ w)`` over valid 3D joints (× joint importance), ``L`` = body length.
* ``betas``: mean squared error on samples with known betas; ``global_rot`` / ``joint_rot``: mean Frobenius
  distance of the rotation matrices on samples with a known pose.
* ``cam_rot`` ``||R̂ − R||²_F``, ``cam_trans`` ``||t̂ − t||² / |t|²``, ``cam_focal`` ``log(f̂/f)²``, ``cam_pp``
  ``||ĉ − c||² / S²`` against the calibrated cameras, averaged over valid views (with calibrated cameras these
  keep the bounded corrections small).
* ``joint_angle``: mean over non-root joints of ``||R_j − I||²_F / 2 = 2(1 − cos θ_j)`` (≈ ``θ²``, smooth at 0).
* ``limb_scale``: mean squared per-joint log-scale; ``limb_trans``: mean squared per-joint offset (model units).
* ``ief_intermediate``: the 2D and 3D keypoint terms of the earlier refinement iterations, weighted ``(i+1)/n``.
"""

from __future__ import annotations

import torch

from napari_smil_mv.body.rotations import rotation_6d_to_matrix
from napari_smil_mv.network.multiview_net import body_joints, project
from napari_smil_mv.network.parameterisation import pose_6d


def keypoint_2d_loss(
    pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor, image_size: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Visibility-weighted 2D loss per view slot, combined by total visibility.

    Parameters
    ----------
    pred, target
        ``(B, V, J, 2)`` pixels.
    weights
        ``(B, V, J)`` visibility × view mask × joint importance.
    image_size
        Crop side ``S`` (px).

    Returns
    -------
    tuple
        ``(loss, per_view_loss (V,), per_view_weight (V,))``.
    """
    err = ((pred - target) / image_size).pow(2).sum(-1) / 2.0  # (B, V, J)
    w = weights.to(err.dtype)
    W_v = w.sum(dim=(0, 2))  # (V,)
    L_v = (w * err).sum(dim=(0, 2)) / W_v.clamp_min(1e-12)
    return (L_v * W_v).sum() / W_v.sum().clamp_min(1e-12), L_v, W_v


def keypoint_3d_loss(
    pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor, body_length: float
) -> torch.Tensor:
    """``Σ w ||X̂ − X||² / (3 L² Σ w)`` over ``(B, J, 3)`` joints with weights ``(B, J)``."""
    w = weights.to(pred.dtype)
    err = ((pred - target) / body_length).pow(2).sum(-1) / 3.0
    return (w * err).sum() / w.sum().clamp_min(1e-12)


def camera_losses(out: dict, batch: dict, image_size: float) -> dict[str, torch.Tensor]:
    """``cam_rot``, ``cam_trans``, ``cam_focal``, ``cam_pp`` of the predicted vs calibrated cameras."""
    m = out["view_mask"].to(out["K"].dtype)
    n = m.sum().clamp_min(1.0)
    K, R, t = out["K"], out["R"], out["t"]
    K0, R0, t0 = batch["K"], batch["R"], batch["t"]
    rot = ((R - R0) ** 2).sum(dim=(-1, -2))
    trans = ((t - t0) ** 2).sum(-1) / (t0**2).sum(-1).clamp_min(1e-12)
    focal = (
        torch.log(K[..., 0, 0].clamp_min(1e-6) / K0[..., 0, 0].clamp_min(1e-6)) ** 2
        + torch.log(K[..., 1, 1].clamp_min(1e-6) / K0[..., 1, 1].clamp_min(1e-6)) ** 2
    )
    pp = ((K[..., :2, 2] - K0[..., :2, 2]) / image_size).pow(2).sum(-1)
    return {
        "cam_rot": (rot * m).sum() / n,
        "cam_trans": (trans * m).sum() / n,
        "cam_focal": (focal / 2 * m).sum() / n,
        "cam_pp": (pp * m).sum() / n,
    }


def _rotation_distance(pred6: torch.Tensor, target6: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean Frobenius distance ``||R̂ − R||_F`` over the masked samples (6D inputs ``(B, ..., 6)``)."""
    if not bool(mask.any()):
        return pred6.sum() * 0.0
    d = (rotation_6d_to_matrix(pred6[mask]) - rotation_6d_to_matrix(target6[mask])).flatten(1).norm(dim=-1)
    return d.mean()


def regularisers(out: dict) -> dict[str, torch.Tensor]:
    """``joint_angle``, ``limb_scale``, ``limb_trans`` of predicted parameters."""
    R = rotation_6d_to_matrix(out["joint_rot"])
    eye = torch.eye(3, dtype=R.dtype, device=R.device)
    return {
        "joint_angle": ((R - eye) ** 2).sum(dim=(-1, -2)).mean() / 2.0,
        "limb_scale": out["log_beta_scales"][:, 1:].pow(2).mean(),
        "limb_trans": out["betas_trans"][:, 1:].pow(2).mean(),
    }


def compute_losses(
    out: dict,
    batch: dict,
    smil,
    weights: dict[str, float],
    joint_weights: torch.Tensor,
    image_size: int,
    body_length: float,
    history: list[dict] | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Weighted total loss and every term (unweighted) for one batch.

    Parameters
    ----------
    out
        Network output (:meth:`~napari_smil_mv.network.MultiViewRegressor.forward`).
    batch
        :func:`~napari_smil_mv.training.data.to_device` output.
    smil
        The SMIL body model (on the batch's device).
    weights
        Weight per loss term (terms with weight 0 are still computed when cheap, for monitoring).
    joint_weights
        ``(J,)`` joint importance (0 = ignored joint).
    image_size, body_length
        Crop side (px) and body length (training world units) for normalisation.
    history
        Decoded body parameters of the refinement iterations (for ``ief_intermediate``), or None.

    Returns
    -------
    tuple
        ``(total, terms, extra)``; ``extra`` holds ``joints (B, J, 3)`` and ``pixels (B, V, J, 2)`` of the
        final prediction (through the predicted cameras).
    """
    joints = body_joints(smil, out)
    pixels, _ = project(joints, out["K"], out["R"], out["t"], batch["dist"])
    jw = joint_weights.to(joints.dtype)
    w2 = batch["vis"] * jw
    w3 = batch["kp3d_valid"].to(joints.dtype) * jw
    terms: dict[str, torch.Tensor] = {}
    terms["keypoint_2d"], _, _ = keypoint_2d_loss(pixels, batch["kp2d"], w2, image_size)
    terms["keypoint_3d"] = keypoint_3d_loss(joints, batch["kp3d"], w3, body_length)
    has_b = batch["has_betas"]
    if out["betas"].shape[-1] and bool(has_b.any()) and batch["betas"].shape[-1] == out["betas"].shape[-1]:
        terms["betas"] = (out["betas"][has_b] - batch["betas"][has_b]).pow(2).mean()
    else:
        terms["betas"] = joints.sum() * 0.0
    has_p = batch["has_pose"]
    terms["global_rot"] = _rotation_distance(out["global_rot"], batch["pose"][:, 0], has_p)
    terms["joint_rot"] = _rotation_distance(out["joint_rot"], batch["pose"][:, 1:], has_p)
    terms.update(camera_losses(out, batch, image_size))
    terms.update(regularisers(out))
    ief = joints.sum() * 0.0
    if history and len(history) > 1 and weights.get("ief_intermediate", 0.0) > 0:
        n = len(history)
        for i, params in enumerate(history[:-1]):
            j_i = body_joints(smil, params)
            p_i, _ = project(j_i, out["K"], out["R"], out["t"], batch["dist"])
            l2, _, _ = keypoint_2d_loss(p_i, batch["kp2d"], w2, image_size)
            l3 = keypoint_3d_loss(j_i, batch["kp3d"], w3, body_length)
            ief = ief + (i + 1) / n * (
                weights.get("keypoint_2d", 0.0) * l2 + weights.get("keypoint_3d", 0.0) * l3
            )
    terms["ief_intermediate"] = ief
    return weighted_total(terms, weights), terms, {"joints": joints, "pixels": pixels}


def weighted_total(terms: dict[str, torch.Tensor], weights: dict[str, float]) -> torch.Tensor:
    """``Σ_k w_k · term_k`` as one product (two operations forward and backward instead of two per term).

    Terms with weight 0 are left out: they add nothing to the total and no gradient, so the backward pass does
    not visit them (a non-finite monitoring-only term then cannot turn the total into NaN either).
    """
    used = [(k, float(weights.get(k, 0.0))) for k in terms if float(weights.get(k, 0.0)) != 0.0]
    if not used:
        return next(iter(terms.values())) * 0.0
    values = torch.stack([terms[k] for k, _ in used])
    w = torch.tensor([w for _, w in used], dtype=values.dtype).to(values.device, non_blocking=True)
    return torch.dot(values, w)


def joint_weight_vector(
    joint_names: list[str], multipliers: dict[str, float], ignored: list[str]
) -> torch.Tensor:
    """``(J,)`` joint importance from name -> multiplier and ignored names (KeyError lists unknown names)."""
    unknown = sorted((set(multipliers) | set(ignored)) - set(joint_names))
    if unknown:
        raise KeyError(
            f"loss.joint_weights / loss.ignored_joints name joints {unknown} that the body model does not have; "
            f"its joints are {joint_names}"
        )
    w = torch.ones(len(joint_names))
    for name, m in multipliers.items():
        w[joint_names.index(name)] = float(m)
    for name in ignored:
        w[joint_names.index(name)] = 0.0
    return w


def pose_of(out: dict) -> torch.Tensor:
    """``(B, J, 6)`` predicted pose (root first)."""
    return pose_6d(out)
