"""The SMIL body model as a differentiable, batched torch module.

Semantics follow the reference SMIL implementation exactly (see ``docs/body_model.md``): shape blend, joints
regressed from the shaped mesh (or the fixed ``J`` of ``static_joint_locs`` models), optional pose blend shapes,
forward kinematics with per-joint log-scales (propagated to children) and bone-offset translations (y negated),
linear blend skinning, keypoints regressed from the posed mesh (or the FK joints for static models), and the
root-centred placement ``(x − root) · mesh_scale + trans``.

Speed notes: the skinning weights and the joint regressor are sparse, so both products are sparse matrix
products (CSR) on a batch-last layout ``(V, 3, B)``; the shape blend of the joints uses the pre-multiplied
``J_regressor @ shapedirs``; forward kinematics runs one batched matrix product per tree depth level.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from napari_smil_mv.body._sparse_ops import blend_skinning, skinning_blocks, sparse_mm
from napari_smil_mv.body.kinematics import compose_frames, tree_levels
from napari_smil_mv.body.model_file import SMILModelData
from napari_smil_mv.body.rotations import axis_angle_to_matrix, rotation_6d_to_matrix

__all__ = ["SMILModel", "SMILOutput"]

#: Multiplier applied to the translation PCA (``transdirs``) weights, as in the reference implementation.
TRANSLATION_FACTOR = 0.01


@dataclass
class SMILOutput:
    """Result of :meth:`SMILModel.forward` (all in model units, batch first).

    Attributes
    ----------
    vertices : torch.Tensor
        ``(B, V, 3)`` placed vertices ``(v − root) · mesh_scale + trans``.
    joints : torch.Tensor
        ``(B, J, 3)`` placed keypoints (regressed from the posed mesh, or the FK joints for static models).
    vertices_unplaced : torch.Tensor
        ``(B, V, 3)`` posed vertices before placement (a non-contiguous view of a batch-last array).
    joints_unplaced : torch.Tensor
        ``(B, J, 3)`` keypoints before placement.
    fk_joints : torch.Tensor
        ``(B, J, 3)`` placed forward-kinematics joint positions (equal to ``joints`` for static models).
    joint_transforms : torch.Tensor
        ``(B, J, 3, 4)`` world transforms ``[M | t]`` of the joint frames before placement (``M`` includes the
        accumulated scales, ``t`` is the FK joint position).
    root : torch.Tensor
        ``(B, 3)`` unplaced root keypoint (output joint 0) used as the placement centre.
    """

    vertices: torch.Tensor
    joints: torch.Tensor
    vertices_unplaced: torch.Tensor
    joints_unplaced: torch.Tensor
    fk_joints: torch.Tensor
    joint_transforms: torch.Tensor
    root: torch.Tensor


class SMILModel(nn.Module):
    """Differentiable SMIL body model.

    Parameters
    ----------
    data
        A validated model (:func:`~napari_smil_mv.body.load_smil_model`).
    dtype
        Floating dtype of the model buffers and outputs (float32 or float64).
    device
        Device of the buffers; ``.to()`` moves the module later as usual.
    """

    def __init__(self, data: SMILModelData, dtype: torch.dtype = torch.float32, device=None) -> None:
        super().__init__()
        #: Target size in bytes of the per-block skinning temporaries on CPU (cache-sized) and on GPUs.
        self.block_bytes = 1 << 20
        self.block_bytes_gpu = 1 << 30
        #: Largest number of vertex blocks, and fewest vertices per block.
        self.max_blocks = 256
        self.min_block_vertices = 32
        self.data = data
        self.n_vertices = data.n_vertices
        self.n_joints = data.n_joints
        self.n_betas = data.n_betas
        self.static_joint_locs = bool(data.static_joint_locs)
        self.joint_names = list(data.joint_names)
        parents = np.asarray(data.parents, dtype=np.int64)
        V, J, K = self.n_vertices, self.n_joints, self.n_betas

        def buf(name: str, array, dt=dtype) -> None:
            self.register_buffer(
                name, torch.as_tensor(np.ascontiguousarray(array), dtype=dt, device=device), persistent=False
            )

        buf("v_template", data.v_template)
        buf("faces", data.faces, torch.int64)
        buf("shapedirs_flat", data.shapedirs.reshape(3 * V, K))  # (3V, K), row = 3 v + c
        buf("parents", parents, torch.int64)
        buf("parent_index", np.maximum(parents, 0), torch.int64)
        nonroot = (parents >= 0).astype(np.float64)
        buf("nonroot", nonroot)
        buf("offset_sign", nonroot[:, None] * np.array([1.0, -1.0, 1.0]))  # y negated, root excluded
        regressor = sp.csr_matrix(data.J_regressor, dtype=np.float64)
        if self.static_joint_locs:
            buf("joints_template", data.J)
            buf("joints_shapedirs", np.zeros((K, 3 * J)))
        else:
            buf("joints_template", regressor @ data.v_template)
            buf(
                "joints_shapedirs",
                (regressor @ data.shapedirs.reshape(V, 3 * K))
                .reshape(J, 3, K)
                .transpose(2, 0, 1)
                .reshape(K, 3 * J),
            )
        self.has_posedirs = data.posedirs is not None
        if self.has_posedirs:
            buf("posedirs_flat", data.posedirs.reshape(3 * V, -1))
        self._skin_weights = sp.csr_matrix(data.weights, dtype=np.float64)
        self._block_cache: dict[tuple, list] = {}
        self._register_csr("regressor", regressor, dtype, device)
        self.has_scaledirs = data.scaledirs is not None
        self.has_transdirs = data.transdirs is not None
        if self.has_scaledirs:
            buf("scaledirs", data.scaledirs)
        if self.has_transdirs:
            buf("transdirs", data.transdirs)
        levels, parent_positions = tree_levels(parents)
        order = np.concatenate(levels)
        buf("depth_order", order, torch.int64)
        buf("depth_inverse", np.argsort(order), torch.int64)
        ends = np.cumsum([lv.size for lv in levels])
        self._levels = [(int(e - lv.size), int(e)) for lv, e in zip(levels, ends, strict=True)]
        for i, parent_pos in enumerate(parent_positions):
            buf(f"level_parent_{i}", parent_pos, torch.int64)

    def _register_csr(self, name: str, matrix: sp.csr_matrix, dtype, device) -> None:
        matrix = sp.csr_matrix(matrix, dtype=np.float64)
        matrix.sort_indices()
        transposed = sp.csr_matrix(matrix.T)
        transposed.sort_indices()
        for suffix, m in (("", matrix), ("_t", transposed)):
            self.register_buffer(
                f"{name}{suffix}_crow",
                torch.as_tensor(m.indptr.astype(np.int64), device=device),
                persistent=False,
            )
            self.register_buffer(
                f"{name}{suffix}_col",
                torch.as_tensor(m.indices.astype(np.int64), device=device),
                persistent=False,
            )
            self.register_buffer(
                f"{name}{suffix}_val", torch.as_tensor(m.data, dtype=dtype, device=device), persistent=False
            )
        setattr(self, f"_{name}_shape", (matrix.shape, transposed.shape))

    def _csr_parts(self, name: str) -> tuple[tuple, tuple]:
        shape, shape_t = getattr(self, f"_{name}_shape")
        return (
            (
                getattr(self, f"{name}_crow"),
                getattr(self, f"{name}_col"),
                getattr(self, f"{name}_val"),
                shape,
            ),
            (
                getattr(self, f"{name}_t_crow"),
                getattr(self, f"{name}_t_col"),
                getattr(self, f"{name}_t_val"),
                shape_t,
            ),
        )

    def _skinning_blocks(self, batch: int) -> list:
        """Vertex blocks for skinning: about ``block_bytes`` of temporaries each (one block on GPUs)."""
        target = self.block_bytes if self.device.type == "cpu" else self.block_bytes_gpu
        itemsize = torch.finfo(self.dtype).bits // 8
        need = self.n_vertices * 12 * batch * itemsize / target
        n_blocks, most = 1, max(1, min(self.max_blocks, self.n_vertices // self.min_block_vertices))
        while n_blocks < need and n_blocks * 2 <= most:
            n_blocks *= 2
        key = (n_blocks, self.device, self.dtype)
        if key not in self._block_cache:
            self._block_cache[key] = skinning_blocks(self._skin_weights, n_blocks, self.dtype, self.device)
        return self._block_cache[key]

    # ------------------------------------------------------------------------------------------ properties

    @property
    def dtype(self) -> torch.dtype:
        """Floating dtype of the buffers (and of the outputs)."""
        return self.v_template.dtype

    @property
    def device(self) -> torch.device:
        """Device of the buffers."""
        return self.v_template.device

    # ------------------------------------------------------------------------------------------ inputs

    def _tensor(self, value, name: str, tail: tuple[int, ...], batch: int) -> torch.Tensor:
        """Convert ``value`` to ``(batch, *tail)`` (accepting ``tail`` or ``(1, *tail)`` for broadcasting)."""
        t = torch.as_tensor(value, dtype=self.dtype, device=self.device)
        if tuple(t.shape) == tail:
            t = t.unsqueeze(0)
        if t.ndim != len(tail) + 1 or tuple(t.shape[1:]) != tail or t.shape[0] not in (1, batch):
            expected = ", ".join(str(s) for s in tail)
            raise ValueError(
                f"SMIL model ({self.data.source}): '{name}' has shape {tuple(t.shape)}; expected ({batch}, {expected}) "
                f"or ({expected},)"
            )
        return t.expand(batch, *tail)

    def rotation_matrices(self, pose) -> torch.Tensor:
        """Convert a pose ``(B, J, 3)`` axis-angle, ``(B, J, 6)`` 6D or ``(B, J, 3, 3)`` to ``(B, J, 3, 3)``."""
        pose = torch.as_tensor(pose, dtype=self.dtype, device=self.device)
        J = self.n_joints
        if pose.ndim == 4 and tuple(pose.shape[1:]) == (J, 3, 3):
            return pose
        if pose.ndim == 3 and pose.shape[1] == J and pose.shape[2] == 3:
            return axis_angle_to_matrix(pose)
        if pose.ndim == 3 and pose.shape[1] == J and pose.shape[2] == 6:
            return rotation_6d_to_matrix(pose)
        raise ValueError(
            f"SMIL model ({self.data.source}): pose has shape {tuple(pose.shape)}; expected (B, {J}, 3) axis-angle, "
            f"(B, {J}, 6) 6D or (B, {J}, 3, 3) matrices for this model's {J} joints (root first)"
        )

    # ------------------------------------------------------------------------------------------ model

    def rest_joints(self, betas: torch.Tensor | None, batch: int) -> torch.Tensor:
        """Rest joint locations ``(B, J, 3)``: regressed from the shaped mesh (or the fixed ``J``)."""
        base = self.joints_template.unsqueeze(0)
        if betas is None or self.static_joint_locs or self.n_betas == 0:
            return base.expand(batch, -1, -1)
        return base + (betas @ self.joints_shapedirs).view(batch, self.n_joints, 3)

    def _shaped_vertices(self, betas: torch.Tensor | None, batch: int) -> torch.Tensor:
        """Shaped vertices in batch-last layout ``(V, 3, B)``."""
        if betas is None or self.n_betas == 0:
            return self.v_template.unsqueeze(-1).expand(-1, -1, batch)
        flat = torch.addmm(self.v_template.reshape(-1, 1), self.shapedirs_flat, betas.transpose(0, 1))
        return flat.view(self.n_vertices, 3, batch)

    def _kinematics(self, rotations, rest, log_scales, offsets, propagate: bool) -> torch.Tensor:
        """World joint transforms ``(B, J, 3, 4)`` (before placement)."""
        local_rot = rotations
        if log_scales is not None:
            masked = log_scales * self.nonroot[None, :, None]
            local_rot = local_rot * torch.exp(masked)[:, :, None, :]  # R_i S_i (column scaling)
            if not propagate:  # S_p^-1 R_i S_i (row scaling); uses the root scale for the root's children
                parent_log = log_scales.index_select(1, self.parent_index) * self.nonroot[None, :, None]
                local_rot = torch.exp(-parent_log)[:, :, :, None] * local_rot
        parent_rest = rest.index_select(1, self.parent_index) * self.nonroot[None, :, None]
        offset = rest - parent_rest
        if offsets is not None:
            offset = offset + offsets * self.offset_sign
        top = torch.cat([local_rot, offset.unsqueeze(-1)], dim=-1)  # (B, J, 3, 4)
        parents = [getattr(self, f"level_parent_{i}") for i in range(1, len(self._levels))]
        return compose_frames(top, self.depth_order, self._levels, parents, self.depth_inverse)

    def forward(
        self,
        pose,
        betas=None,
        log_beta_scales=None,
        betas_trans=None,
        trans=None,
        mesh_scale=None,
        propagate_scaling: bool = True,
    ) -> SMILOutput:
        """Evaluate the model.

        Parameters
        ----------
        pose
            ``(B, J, 3)`` axis-angle (radians), ``(B, J, 6)`` PyTorch3D 6D, or ``(B, J, 3, 3)`` rotation matrices.
            Index 0 is the global (root) rotation, the others are rotations relative to the parent joint.
        betas
            ``(B, K)`` shape coefficients (or ``(K,)``, broadcast); None = zeros.
        log_beta_scales
            ``(B, J, 3)`` natural-log per-joint scales (or ``(J, 3)``); None = no scaling. The root's own scale is
            never applied (reference behaviour).
        betas_trans
            ``(B, J, 3)`` per-joint bone-offset translations in model units (or ``(J, 3)``); the y component is
            negated inside the kinematic chain; ignored for the root. None = zeros.
        trans
            ``(B, 3)`` world translation (or ``(3,)``); None = zeros.
        mesh_scale
            ``(B,)`` or ``(B, 1)`` global scale about the root keypoint (or a scalar); None = 1.
        propagate_scaling
            True: a joint's scale is inherited by its whole subtree (the neural regressor's mode). False: the
            parent's scale is cancelled for the child's rotation (the optimisation fitter's mode).

        Returns
        -------
        SMILOutput

        Raises
        ------
        ValueError
            If an input has the wrong shape (e.g. a pose for a different number of joints).
        """
        rotations = self.rotation_matrices(pose)
        batch = rotations.shape[0]
        J, V, K = self.n_joints, self.n_vertices, self.n_betas
        betas_t = None if betas is None else self._tensor(betas, "betas", (K,), batch)
        scales_t = (
            None
            if log_beta_scales is None
            else self._tensor(log_beta_scales, "log_beta_scales", (J, 3), batch)
        )
        offsets_t = None if betas_trans is None else self._tensor(betas_trans, "betas_trans", (J, 3), batch)

        rest = self.rest_joints(betas_t, batch)
        shaped = self._shaped_vertices(betas_t, batch)  # (V, 3, B)
        if self.has_posedirs:
            eye = torch.eye(3, dtype=self.dtype, device=self.device)
            feature = (rotations[:, 1:] - eye).reshape(batch, -1)
            shaped = torch.addmm(shaped.reshape(3 * V, batch), self.posedirs_flat, feature.transpose(0, 1))
            shaped = shaped.view(V, 3, batch)

        world = self._kinematics(rotations, rest, scales_t, offsets_t, propagate_scaling)  # (B, J, 3, 4)
        linear = world[..., :3]
        fk_unplaced = world[..., 3]
        skinning = torch.cat(
            [linear, (fk_unplaced - (linear @ rest.unsqueeze(-1)).squeeze(-1)).unsqueeze(-1)], -1
        )

        # Linear blend skinning in batch-last layout: T_v = sum_j w_vj A_j, v' = T_v [v; 1].
        per_joint = skinning.reshape(batch, J, 12).permute(1, 2, 0).reshape(J, 12 * batch)
        posed = blend_skinning(per_joint, shaped, self._skinning_blocks(batch))  # (V, 3, B)

        if self.static_joint_locs:
            joints_unplaced = fk_unplaced
        else:
            reg_s, reg_t = self._csr_parts("regressor")
            joints_unplaced = (
                sparse_mm(posed.reshape(V, 3 * batch), reg_s, reg_t).view(J, 3, batch).permute(2, 0, 1)
            )

        root = joints_unplaced[:, 0]  # (B, 3)
        scale = None if mesh_scale is None else self._mesh_scale(mesh_scale, batch)
        trans_t = None if trans is None else self._tensor(trans, "trans", (3,), batch)

        # Placement (x - root) * s + t, computed as x * s + (t - root * s): one pass over the vertices.
        shift = -root if scale is None else -root * scale[:, None]
        if trans_t is not None:
            shift = shift + trans_t

        def place(points: torch.Tensor) -> torch.Tensor:  # points (B, N, 3)
            if scale is None:
                return points + shift[:, None]
            return torch.addcmul(shift[:, None], points, scale[:, None, None])

        if scale is None:
            placed = posed + shift.transpose(0, 1)
        else:
            placed = torch.addcmul(shift.transpose(0, 1), posed, scale)
        return SMILOutput(
            vertices=placed.permute(2, 0, 1).contiguous(),
            joints=place(joints_unplaced),
            vertices_unplaced=posed.permute(2, 0, 1),
            joints_unplaced=joints_unplaced.contiguous(),
            fk_joints=place(fk_unplaced),
            joint_transforms=world,
            root=root,
        )

    def _mesh_scale(self, value, batch: int) -> torch.Tensor:
        t = torch.as_tensor(value, dtype=self.dtype, device=self.device)
        if t.ndim == 2 and t.shape[1] == 1:
            t = t[:, 0]
        if t.ndim == 0:
            t = t.reshape(1)
        if t.ndim != 1 or t.shape[0] not in (1, batch):
            raise ValueError(
                f"SMIL model ({self.data.source}): 'mesh_scale' has shape {tuple(t.shape)}; expected ({batch},), "
                f"({batch}, 1) or a scalar"
            )
        return t.expand(batch)

    # ------------------------------------------------------------------------------------------ PCA variants

    def pca_scale_trans(
        self, scale_weights=None, trans_weights=None
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Per-joint log-scales and offsets from PCA weights (the "separate + PCA" / "entangled" modes).

        ``scale_j = 1 + Σ_k scaledirs[j, :, k] w_k``, ``log_beta_scales_j = log(max(scale_j, 1e-4))`` and
        ``betas_trans_j = (Σ_k transdirs[j, :, k] u_k) · 0.01``.

        Parameters
        ----------
        scale_weights
            ``(B, Ks)`` weights of ``scaledirs`` (None: no scales returned).
        trans_weights
            ``(B, Kt)`` weights of ``transdirs`` (None: no offsets returned).

        Returns
        -------
        tuple
            ``(log_beta_scales (B, J, 3) or None, betas_trans (B, J, 3) or None)``.
        """
        log_scales = offsets = None
        if scale_weights is not None:
            if not self.has_scaledirs:
                raise ValueError(
                    f"SMIL model ({self.data.source}) has no 'scaledirs'; PCA scales are unavailable"
                )
            w = self._pca_weights(scale_weights, "scale_weights", self.scaledirs.shape[2])
            scale = 1.0 + torch.einsum("jck,bk->bjc", self.scaledirs, w)
            log_scales = torch.log(torch.clamp(scale, min=1e-4))
        if trans_weights is not None:
            if not self.has_transdirs:
                raise ValueError(
                    f"SMIL model ({self.data.source}) has no 'transdirs'; PCA offsets are unavailable"
                )
            w = self._pca_weights(trans_weights, "trans_weights", self.transdirs.shape[2])
            offsets = torch.einsum("jck,bk->bjc", self.transdirs, w) * TRANSLATION_FACTOR
        return log_scales, offsets

    def _pca_weights(self, value, name: str, n: int) -> torch.Tensor:
        t = torch.as_tensor(value, dtype=self.dtype, device=self.device)
        if t.ndim == 1:
            t = t.unsqueeze(0)
        if t.ndim != 2 or t.shape[1] != n:
            raise ValueError(
                f"SMIL model ({self.data.source}): '{name}' has shape {tuple(t.shape)}; expected (B, {n})"
            )
        return t

    def extra_repr(self) -> str:
        return (
            f"source={self.data.source!r}, joints={self.n_joints}, vertices={self.n_vertices}, betas={self.n_betas}, "
            f"static_joint_locs={self.static_joint_locs}"
        )
