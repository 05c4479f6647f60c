"""The loss of a multi-view fit: observations as tensors, batched projection, and every loss term."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch

from napari_smil_mv.body import SMILModelData
from napari_smil_mv.body.kinematics import JointsModel
from napari_smil_mv.cameras import project_points_torch
from napari_smil_mv.fitting import losses as L
from napari_smil_mv.fitting.config import FitConfig
from napari_smil_mv.fitting.data import FitData
from napari_smil_mv.fitting.params import BodyParams
from napari_smil_mv.fitting.smoothing import index_pairs


class Projector:
    """All cameras of a rig as stacked tensors; projects (T, M, 3) points into every camera at once."""

    def __init__(self, rig, device: torch.device, dtype: torch.dtype) -> None:
        kw = {"device": device, "dtype": dtype}
        n_dist = max(len(c.dist) for c in rig)
        self.K = torch.as_tensor(np.stack([c.K for c in rig]), **kw)
        self.R = torch.as_tensor(np.stack([c.R for c in rig]), **kw)
        self.t = torch.as_tensor(np.stack([c.tvec for c in rig]), **kw)
        self.dist = torch.as_tensor(np.stack([np.pad(c.dist, (0, n_dist - len(c.dist))) for c in rig]), **kw)
        fisheye = np.array([c.fisheye for c in rig])
        self.groups = [
            (flag, torch.as_tensor(np.flatnonzero(fisheye == flag), device=device))
            for flag in (False, True)
            if (fisheye == flag).any()
        ]
        self.single = len(self.groups) == 1

    def __call__(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """points (T, M, 3) → pixels (C, T, M, 2) and depths (C, T, M)."""
        T, M, _ = points.shape
        flat = points.reshape(1, T * M, 3)
        if self.single:
            flag = self.groups[0][0]
            dist = self.dist[:, :4] if flag else self.dist
            px, z = project_points_torch(flat, self.K, self.R, self.t, dist, fisheye=flag, return_depth=True)
        else:
            px = points.new_zeros(self.K.shape[0], T * M, 2)
            z = points.new_zeros(self.K.shape[0], T * M)
            for flag, idx in self.groups:
                dist = self.dist[idx, :4] if flag else self.dist[idx]
                p, d = project_points_torch(
                    flat, self.K[idx], self.R[idx], self.t[idx], dist, fisheye=flag, return_depth=True
                )
                px = px.index_copy(0, idx, p)
                z = z.index_copy(0, idx, d)
        return px.reshape(-1, T, M, 2), z.reshape(-1, T, M)


class Problem:
    """Everything a loss evaluation needs, as tensors on the fit's device."""

    def __init__(self, model: SMILModelData, data: FitData, config: FitConfig, device, dtype) -> None:
        self.config = config
        self.kw = {"device": device, "dtype": dtype}
        self.joints_model = JointsModel.from_model_data(model, device=device, dtype=dtype)
        self.mapped = np.flatnonzero(data.mapped)
        if self.mapped.size == 0:
            raise ValueError(
                "no model joint has any observation: check the joint map (data node → model joint) "
                "and that the keypoint weights are not all zero"
            )
        self.mapped_t = torch.as_tensor(self.mapped, device=device)
        self.rig = data.cameras
        self.projector = Projector(data.cameras, torch.device(device), dtype)
        m = self.mapped
        self.obs2d = torch.as_tensor(np.nan_to_num(data.keypoints_2d[:, :, m]), **self.kw)
        self.base_w2d = data.weights[:, :, m]
        self.w2d = torch.as_tensor(self.base_w2d, **self.kw)
        self.has3d = data.points_3d is not None and config.use_points3d
        if self.has3d:
            p3 = data.points_3d[:, m]
            self.obs3d = torch.as_tensor(np.nan_to_num(p3), **self.kw)
            self.w3d = torch.as_tensor(np.isfinite(p3).all(-1).astype(np.float64), **self.kw)
            self.has3d = bool(self.w3d.sum() > 0)
        self.pair_mask = torch.as_tensor(
            index_pairs(data.frame_indices, config.smooth_max_gap).astype(np.float64), **self.kw
        )
        self.acc_scale = (
            math.inf if config.smooth_loss == "l2" else float(config.smooth_acc_scale or math.inf)
        )
        self.sym_pairs = L.symmetric_pairs(list(model.joint_names))
        self.reproj_sigma_px = float(config.reproj_sigma_px)  # the running stage's (StageConfig override)
        self.body_length = 1.0
        self.acc_weight_gain = 1.0  # data-adaptive factor of the smooth_acc weight (SmoothingPlan)

    def set_smoothing(self, pair_mask: np.ndarray, acc_scale: float) -> None:
        """Neighbour pairs (T-1,) and robust acceleration scale (body lengths/frame²) of the smoothness terms."""
        self.pair_mask = torch.as_tensor(np.asarray(pair_mask, dtype=np.float64), **self.kw)
        self.acc_scale = float(acc_scale)

    def set_camera_weights(self, camera_weights: np.ndarray) -> None:
        self.w2d = torch.as_tensor(self.base_w2d * camera_weights[:, None, None], **self.kw)

    def losses(
        self, params: BodyParams, weights: Mapping[str, float], rotmats: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Weighted total and the unweighted terms with non-zero weight.

        ``rotmats`` (T, J, 3, 3) replaces ``params.rotmats()`` (the Levenberg-Marquardt stage differentiates
        through rotation increments instead of the 6D parameters).
        """
        cfg = self.config
        rot = params.rotmats() if rotmats is None else rotmats
        joints = self.joints_model(
            rot,
            params.betas(),
            params.log_beta_scales,
            params.betas_trans,
            params.trans(),
            params.mesh_scale(),
        )
        terms: dict[str, torch.Tensor] = {}
        if weights.get("reproj", 0) > 0:
            px, depth = self.projector(joints[:, self.mapped_t])
            w = self.w2d * (depth > 0)
            terms["reproj"] = L.reprojection_loss(px, self.obs2d, w, self.reproj_sigma_px, cfg.robust_loss)
        if self.has3d and weights.get("points3d", 0) > 0:
            sigma = cfg.points3d_sigma * self.body_length
            terms["points3d"] = L.points3d_loss(
                joints[:, self.mapped_t], self.obs3d, self.w3d, sigma, cfg.robust_loss
            )
        if weights.get("shape_prior", 0) > 0 and params.betas_z.numel():
            terms["shape_prior"] = (params.betas_z**2).sum()
        if weights.get("pose_prior", 0) > 0:
            terms["pose_prior"] = L.pose_prior(rot)
        if weights.get("limb_scale", 0) > 0:
            terms["limb_scale"] = (params.log_beta_scales**2).sum(-1).mean()
        if weights.get("limb_scale_sym", 0) > 0 and self.sym_pairs:
            terms["limb_scale_sym"] = L.mirror_scales(params.log_beta_scales, self.sym_pairs)
        if weights.get("betas_trans", 0) > 0:
            terms["betas_trans"] = (params.betas_trans**2).sum(-1).mean()
        if weights.get("smooth_vel", 0) > 0 or weights.get("smooth_acc", 0) > 0:
            vel, acc = L.temporal_smoothness(
                joints, self.pair_mask, self.body_length, self.acc_scale, cfg.smooth_loss
            )
            terms["smooth_vel"], terms["smooth_acc"] = vel, acc
        total = sum(weights.get(k, 0.0) * v for k, v in terms.items())
        return total, terms
