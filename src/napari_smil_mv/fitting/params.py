"""The optimised body parameters, in a normalised parameterisation, and their conversion to model inputs.

Internal parameterisation (chosen so that one learning rate suits every unit system):

* rotations: PyTorch3D 6D (root ``(T, 6)``, joints ``(T, J-1, 6)``);
* translation: ``trans = trans0 + body_length · delta`` (``delta`` dimensionless);
* mesh scale: ``mesh_scale = exp(log_scale0 + d)``, one value for the clip (or per frame);
* betas: whitened, ``betas = mean + z · chol(cov)ᵀ`` when the model has a shape covariance, else ``betas = z``;
* per-joint log-scales and offsets: as used by the model, one ``(J, 3)`` set for the clip.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from napari_smil_mv.body import (
    as_rotation_matrices,
    matrix_to_axis_angle,
    matrix_to_rotation_6d,
    rotation_6d_to_matrix,
)


def _np(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float64)


class BodyParams:
    """Leaf tensors of a fit and the model inputs they produce.

    Parameters
    ----------
    n_frames, n_joints, n_betas
        T, J, K.
    rotations
        (T, J, 3, 3) initial rotations (root first).
    trans
        (T, 3) initial world translation.
    mesh_scale
        (T,) or scalar initial mesh scale (> 0).
    body_length
        World length used to normalise translation updates.
    betas, log_beta_scales, betas_trans
        Initial (K,), (J, 3), (J, 3) values (zeros when None).
    shape_mean, shape_cov
        Shape prior of the model, used for the whitened betas (None = identity).
    per_frame_mesh_scale
        One mesh scale per frame instead of one for the clip.
    isotropic_scales
        Optimise one log-scale per joint (applied to x, y, z) instead of three.
    """

    GROUPS = ("global_orient", "trans", "mesh_scale", "body_pose", "log_beta_scales", "betas", "betas_trans")

    def __init__(
        self,
        n_frames: int,
        n_joints: int,
        n_betas: int,
        rotations: np.ndarray,
        trans: np.ndarray,
        mesh_scale: np.ndarray | float,
        body_length: float,
        betas: np.ndarray | None = None,
        log_beta_scales: np.ndarray | None = None,
        betas_trans: np.ndarray | None = None,
        shape_mean: np.ndarray | None = None,
        shape_cov: np.ndarray | None = None,
        per_frame_mesh_scale: bool = False,
        isotropic_scales: bool = True,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        kw = {"device": device, "dtype": dtype}
        self.kw = kw
        T, J, K = n_frames, n_joints, n_betas
        rot = torch.as_tensor(_np(rotations), **kw)
        d6 = matrix_to_rotation_6d(rot)
        self.root6d = d6[:, 0].clone()
        self.pose6d = d6[:, 1:].clone()
        self.trans0 = torch.as_tensor(_np(trans).reshape(T, 3), **kw)
        self.body_length = float(body_length)
        self.trans_delta = torch.zeros(T, 3, **kw)
        scale = np.broadcast_to(_np(mesh_scale).reshape(-1), (T,))
        if np.any(scale <= 0) or not np.all(np.isfinite(scale)):
            raise ValueError(f"mesh_scale must be finite and > 0, got {scale.min()}..{scale.max()}")
        log0 = np.log(scale) if per_frame_mesh_scale else np.full(1, np.log(np.median(scale)))
        self.log_scale0 = torch.as_tensor(log0, **kw)
        self.log_scale_delta = torch.zeros_like(self.log_scale0)
        self.shape_mean = torch.as_tensor(_np(shape_mean), **kw) if shape_mean is not None and K else None
        if shape_cov is not None and K:
            cov = _np(shape_cov) + 1e-8 * np.eye(K)
            self.shape_chol = torch.as_tensor(np.linalg.cholesky(cov), **kw)
        else:
            self.shape_chol = None
        betas0 = np.zeros(K) if betas is None else _np(betas).reshape(-1, K).mean(0)
        self.betas_z = torch.as_tensor(self._whiten(betas0), **kw)
        lbs0 = np.zeros((J, 3)) if log_beta_scales is None else _reduce_clip(_np(log_beta_scales), (J, 3))
        self.isotropic_scales = isotropic_scales
        self.lbs_anisotropy = torch.as_tensor(lbs0 - lbs0.mean(1, keepdims=True), **kw)  # kept fixed
        self.lbs_param = torch.as_tensor(lbs0.mean(1, keepdims=True) if isotropic_scales else lbs0, **kw)
        self.betas_trans = torch.as_tensor(
            np.zeros((J, 3)) if betas_trans is None else _reduce_clip(_np(betas_trans), (J, 3)), **kw
        )
        self._tensors = {
            "global_orient": [self.root6d],
            "trans": [self.trans_delta],
            "mesh_scale": [self.log_scale_delta],
            "body_pose": [self.pose6d],
            "log_beta_scales": [self.lbs_param],
            "betas": [self.betas_z],
            "betas_trans": [self.betas_trans],
        }

    def _whiten(self, betas: np.ndarray) -> np.ndarray:
        centred = betas - (0.0 if self.shape_mean is None else self.shape_mean.cpu().numpy())
        if self.shape_chol is None:
            return centred
        return np.linalg.solve(self.shape_chol.cpu().numpy().astype(np.float64), centred)

    def tensors(self, groups: tuple[str, ...]) -> list[torch.Tensor]:
        """Leaf tensors of the given groups, with ``requires_grad`` set on them and cleared on all others."""
        chosen = []
        for name, tensors in self._tensors.items():
            for t in tensors:
                t.requires_grad_(name in groups and t.numel() > 0)
                if name in groups and t.numel() > 0:
                    chosen.append(t)
        return chosen

    # ------------------------------------------------------------------------------------------------ outputs
    def rotmats(self) -> torch.Tensor:
        """(T, J, 3, 3) rotations, root first."""
        return torch.cat(
            [rotation_6d_to_matrix(self.root6d).unsqueeze(1), rotation_6d_to_matrix(self.pose6d)], 1
        )

    def trans(self) -> torch.Tensor:
        """(T, 3) world translation."""
        return self.trans0 + self.body_length * self.trans_delta

    def mesh_scale(self) -> torch.Tensor:
        """(T,) or (1,) mesh scale."""
        return torch.exp(self.log_scale0 + self.log_scale_delta)

    @property
    def log_beta_scales(self) -> torch.Tensor:
        """(J, 3) per-joint log-scales."""
        if self.isotropic_scales:
            return self.lbs_param + self.lbs_anisotropy
        return self.lbs_param

    def betas(self) -> torch.Tensor:
        """(K,) shape coefficients."""
        b = self.betas_z if self.shape_chol is None else self.betas_z @ self.shape_chol.T
        return b if self.shape_mean is None else b + self.shape_mean

    def as_numpy(self) -> dict[str, np.ndarray]:
        """Per-frame parameters as float64 arrays (the layout of a results file / animation export)."""
        with torch.no_grad():
            rot = self.rotmats()
            T, J = rot.shape[:2]
            scale = self.mesh_scale().expand(T) if self.mesh_scale().numel() == 1 else self.mesh_scale()
            return {
                "poses": _np(matrix_to_axis_angle(rot.double())),
                "betas": _np(self.betas()),
                "trans": _np(self.trans()),
                "mesh_scale": _np(scale),
                "log_beta_scales": np.broadcast_to(_np(self.log_beta_scales), (T, J, 3)).copy(),
                "betas_trans": np.broadcast_to(_np(self.betas_trans), (T, J, 3)).copy(),
            }


def _reduce_clip(values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(T, J, 3) or (J, 3) per-joint values to one (J, 3) set for the clip (median over frames)."""
    if values.shape == shape:
        return values
    if values.ndim == 3 and values.shape[1:] == shape:
        return np.median(values, axis=0)
    raise ValueError(f"expected per-joint values of shape {shape} or (T, {shape[0]}, 3), got {values.shape}")


def rotations_from_init(poses: Any, n_frames: int, n_joints: int) -> np.ndarray:
    """Initial rotations from ``(T, J, 3)`` axis-angle, ``(T, J, 6)`` 6D or ``(T, J, 3, 3)`` matrices."""
    t = torch.as_tensor(_np(poses), dtype=torch.float64)
    rot = as_rotation_matrices(t)
    if rot.shape != (n_frames, n_joints, 3, 3):
        raise ValueError(
            f"init_params['poses'] must describe (T, J) = {(n_frames, n_joints)} rotations, "
            f"got shape {tuple(t.shape)}"
        )
    return rot.numpy()


def check_init_params(init_params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate the keys of ``init_params`` (raise ValueError naming unknown ones)."""
    if init_params is None:
        return {}
    known = {"poses", "trans", "mesh_scale", "betas", "log_beta_scales", "betas_trans"}
    unknown = sorted(set(init_params) - known)
    if unknown:
        raise ValueError(f"init_params: unknown key(s) {unknown}; known keys are {sorted(known)}")
    return {k: v for k, v in init_params.items() if v is not None}
