"""Forward kinematics of SMIL models: the one kernel (:func:`compose_frames`) and the joints-only model.

:func:`tree_levels` groups the joints by depth in the kinematic tree; :func:`compose_frames` composes the local
joint frames ``[M | t]`` level by level (one batched 3×4 · 4×4 product per depth). :class:`napari_smil_mv.body.SMILModel`
and :class:`JointsModel` both use it.

Joints-only evaluation of a SMIL model, for keypoint losses (:class:`JointsModel`).

A keypoint fit never needs the mesh: for static-joint models (e.g. the SMILy mouse) the keypoints are the
forward-kinematics joints; for regressed-joint models (e.g. SMILy STICK) they are ``J_regressor @ skinned vertices``,
and only the vertices with a non-zero regressor weight are needed. This module evaluates exactly the same
keypoints as :class:`napari_smil_mv.body.SMILModel` (same semantics: per-joint log-scales propagated to the
subtree, ``betas_trans`` with its y component negated, placement ``(x - root) * mesh_scale + trans``) but processes
the kinematic tree level by level (:func:`compose_frames`: one batched matrix product per tree depth instead of one per joint) and skins
only the regressor's support vertices.
"""

from __future__ import annotations

import numpy as np
import torch


def subset_edges(parents: np.ndarray | None, joints: np.ndarray) -> list[tuple[int, int]]:
    """Skeleton edges among a subset of joints: each kept joint linked to its nearest kept ancestor.

    Parameters
    ----------
    parents
        ``(J,)`` parent index of every joint (-1 for a root), or None (no skeleton: no edges).
    joints
        ``(K,)`` indices of the kept joints.

    Returns
    -------
    list of (int, int)
        ``(parent, child)`` pairs as positions in ``joints``.
    """
    if parents is None:
        return []
    pos = {int(j): k for k, j in enumerate(joints)}
    edges = []
    for k, j in enumerate(joints):
        p = int(parents[j])
        while p >= 0 and p not in pos:
            p = int(parents[p])
        if p >= 0:
            edges.append((pos[p], k))
    return edges


def tree_levels(parents: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Group joint indices by depth in the kinematic tree.

    Parameters
    ----------
    parents
        (J,) parent index per joint, -1 for the root; parents must precede their children.

    Returns
    -------
    levels : list of (n_l,) int arrays
        Level 0 holds the root(s), level l the joints whose parent is in level l-1 (each level in index order).
    parent_positions : list of (n_l,) int arrays
        For every level the position of each joint's parent inside the previous level (empty for level 0).
    """
    parents = np.asarray(parents, dtype=np.int64)
    depth = np.zeros(len(parents), dtype=np.int64)
    for i, p in enumerate(parents):
        if p >= i:
            raise ValueError(
                f"kinematic tree: parent {p} of joint {i} does not precede it; joints must be "
                "topologically ordered (parent index < child index)"
            )
        depth[i] = 0 if p < 0 else depth[p] + 1
    levels = [np.flatnonzero(depth == d) for d in range(int(depth.max()) + 1)]
    position = np.empty(len(parents), dtype=np.int64)
    for lv in levels:
        position[lv] = np.arange(lv.size)
    parent_positions = [np.zeros(0, dtype=np.int64)] + [position[parents[lv]] for lv in levels[1:]]
    return levels, parent_positions


def compose_frames(
    local: torch.Tensor,
    depth_order: torch.Tensor,
    spans: list[tuple[int, int]],
    level_parents: list[torch.Tensor],
    depth_inverse: torch.Tensor,
) -> torch.Tensor:
    """Compose local joint frames down the kinematic tree, one batched product per depth level.

    ``world_child = world_parent · [local_child; 0 0 0 1]`` with frames ``[M | t]`` (3×4): ``M`` the accumulated
    linear part, ``t`` the joint position.

    Parameters
    ----------
    local
        ``(B, J, 3, 4)`` local frame ``[M_j | o_j]`` of every joint: its linear part (rotation, times scales as the
        caller defines them) and its offset from the parent in the parent's frame; for a root, its world frame.
    depth_order
        ``(J,)`` joint indices sorted by level (the concatenated levels of :func:`tree_levels`).
    spans
        ``(start, end)`` of every level inside ``depth_order`` (level 0 first).
    level_parents
        For levels 1, 2, ... the position of each joint's parent inside the previous level (from
        :func:`tree_levels`).
    depth_inverse
        ``(J,)`` argsort of ``depth_order``: back to joint order.

    Returns
    -------
    torch.Tensor
        ``(B, J, 3, 4)`` world frames ``[M | t]`` (model units, before placement).
    """
    batch, J = local.shape[:2]
    bottom = local.new_tensor([0.0, 0.0, 0.0, 1.0])
    local4 = torch.cat([local, bottom.expand(batch, J, 1, 4)], dim=-2)  # (B, J, 4, 4)
    local4 = local4.index_select(1, depth_order)
    start, end = spans[0]
    previous = local.index_select(1, depth_order[start:end])
    blocks = [previous]
    for (start, end), parents in zip(spans[1:], level_parents, strict=True):
        previous = torch.matmul(previous.index_select(1, parents), local4[:, start:end])
        blocks.append(previous)
    world = torch.cat(blocks, dim=1) if len(blocks) > 1 else blocks[0]
    return world.index_select(1, depth_inverse)


class KinematicTree:
    """Index tensors of a kinematic tree for :func:`compose_frames` (:func:`tree_levels` on ``parents``).

    Attributes
    ----------
    depth_order, depth_inverse
        ``(J,)`` int64: joints by level, and back.
    spans
        ``(start, end)`` of every level in ``depth_order``.
    level_parents
        Per level 1, 2, ...: parent positions in the previous level.
    """

    def __init__(self, parents: np.ndarray, device: str | torch.device | None = None) -> None:
        levels, parent_positions = tree_levels(parents)
        order = np.concatenate(levels)
        self.depth_order = torch.as_tensor(order, device=device)
        self.depth_inverse = torch.as_tensor(np.argsort(order), device=device)
        ends = np.cumsum([lv.size for lv in levels])
        self.spans = [(int(e - lv.size), int(e)) for lv, e in zip(levels, ends, strict=True)]
        self.level_parents = [torch.as_tensor(p, device=device) for p in parent_positions[1:]]

    @property
    def levels(self) -> list[torch.Tensor]:
        """Global joint indices of every level (level 0: the roots)."""
        return [self.depth_order[start:end] for start, end in self.spans]

    def compose(self, local: torch.Tensor) -> torch.Tensor:
        """:func:`compose_frames` of ``local (B, J, 3, 4)`` on this tree."""
        return compose_frames(local, self.depth_order, self.spans, self.level_parents, self.depth_inverse)


#: Sign applied to ``betas_trans`` inside the kinematic chain (upstream flips the y axis).
BETAS_TRANS_SIGN = (1.0, -1.0, 1.0)


class JointsModel:
    """Differentiable keypoints (model joints) of a SMIL model, without the full mesh.

    Parameters
    ----------
    parents
        (J,) parent indices, root = -1.
    rest_joints
        (J, 3) rest joint locations used by static-joint models (model units).
    static_joint_locs
        True: keypoints are the FK joints at ``rest_joints``. False: rest joints and keypoints are regressed from
        the (shaped / posed) vertices with ``J_regressor``.
    v_template, shapedirs, J_regressor, skin_weights
        (V, 3), (V, 3, K), (J, V), (V, J) model arrays; needed for regressed-joint models and for betas.
    device, dtype
        Torch device and float dtype of every tensor this model produces.
    """

    def __init__(
        self,
        parents: np.ndarray,
        rest_joints: np.ndarray,
        static_joint_locs: bool,
        v_template: np.ndarray | None = None,
        shapedirs: np.ndarray | None = None,
        J_regressor: np.ndarray | None = None,
        skin_weights: np.ndarray | None = None,
        device: str | torch.device | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.dtype = dtype
        self.parents = np.asarray(parents, dtype=np.int64)
        self.n_joints = len(self.parents)
        self.static = bool(static_joint_locs)
        kw = {"device": self.device, "dtype": dtype}
        self.rest_joints = torch.as_tensor(np.asarray(rest_joints, dtype=np.float64), **kw)
        self.n_betas = (
            0 if shapedirs is None or np.asarray(shapedirs).size == 0 else np.asarray(shapedirs).shape[2]
        )

        self._tree = KinematicTree(self.parents, device=self.device)
        self._parents_t = torch.as_tensor(np.maximum(self.parents, 0), device=self.device)
        self._nonroot = torch.as_tensor((self.parents >= 0).astype(np.float64)[:, None], **kw)  # (J, 1)
        self._trans_sign = torch.as_tensor(BETAS_TRANS_SIGN, **kw)

        if not self.static:
            if J_regressor is None or v_template is None or skin_weights is None:
                raise ValueError(
                    "a regressed-joint model (static_joint_locs=False) needs J_regressor, v_template "
                    "and skinning weights"
                )
            reg = np.asarray(J_regressor, dtype=np.float64)
            support = np.flatnonzero(np.abs(reg).sum(axis=0) > 0)
            if support.size == 0:
                raise ValueError(
                    "J_regressor is all zeros but static_joint_locs is False; the model file is "
                    "inconsistent (set static_joint_locs or provide a regressor)"
                )
            self.support = support
            self._reg = torch.as_tensor(reg[:, support], **kw)  # (J, S)
            self._v_template = torch.as_tensor(
                np.asarray(v_template, dtype=np.float64)[support], **kw
            )  # (S, 3)
            self._skin = torch.as_tensor(np.asarray(skin_weights, dtype=np.float64)[support], **kw)  # (S, J)
            if self.n_betas:
                sd = np.asarray(shapedirs, dtype=np.float64)[support]  # (S, 3, K)
                self._shapedirs = torch.as_tensor(sd, **kw)
            else:
                self._shapedirs = None
        else:
            self.support = np.zeros(0, dtype=np.int64)

    @classmethod
    def from_model_data(cls, data, device=None, dtype: torch.dtype = torch.float32) -> JointsModel:
        """Build from a :class:`napari_smil_mv.body.SMILModelData` (sparse or dense ``J_regressor``)."""
        reg = data.J_regressor
        if reg is not None and hasattr(reg, "toarray"):
            reg = reg.toarray()
        return cls(
            parents=np.asarray(data.parents),
            rest_joints=np.asarray(data.J),
            static_joint_locs=bool(data.static_joint_locs),
            v_template=np.asarray(data.v_template),
            shapedirs=None if data.shapedirs is None else np.asarray(data.shapedirs),
            J_regressor=None if reg is None else np.asarray(reg),
            skin_weights=np.asarray(data.weights),
            device=device,
            dtype=dtype,
        )

    # ------------------------------------------------------------------------------------------------------------
    def forward_kinematics(
        self,
        rotmats: torch.Tensor,
        rest_joints: torch.Tensor,
        log_beta_scales: torch.Tensor | None = None,
        betas_trans: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """World 3×3 transforms and positions of every joint (before global placement).

        Parameters
        ----------
        rotmats
            (B, J, 3, 3) root rotation then local joint rotations.
        rest_joints
            (J, 3) or (B, J, 3) rest joint locations.
        log_beta_scales, betas_trans
            (B, J, 3) or (J, 3) or None.

        Returns
        -------
        A : (B, J, 3, 3)
            Accumulated rotation·scale of every joint.
        pos : (B, J, 3)
            Joint positions, model units, root at its rest location.
        """
        B = rotmats.shape[0]
        if rest_joints.dim() == 2:
            rest_joints = rest_joints.unsqueeze(0).expand(B, -1, -1)
        # offsets from the parents; a root's "offset" is its rest position (its world frame)
        offsets = rest_joints - rest_joints[:, self._parents_t] * self._nonroot
        if betas_trans is not None:
            offsets = offsets + (betas_trans * self._trans_sign * self._nonroot).expand(B, -1, -1)
        local = rotmats
        if log_beta_scales is not None:  # R_i · diag(s_i); the root's own scale is never applied (upstream)
            local = rotmats * torch.exp(log_beta_scales * self._nonroot).expand(B, -1, -1).unsqueeze(-2)
        world = self._tree.compose(torch.cat([local, offsets.unsqueeze(-1)], dim=-1))
        return world[..., :3], world[..., 3]

    def __call__(
        self,
        rotmats: torch.Tensor,
        betas: torch.Tensor | None = None,
        log_beta_scales: torch.Tensor | None = None,
        betas_trans: torch.Tensor | None = None,
        trans: torch.Tensor | None = None,
        mesh_scale: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Placed model keypoints.

        Parameters
        ----------
        rotmats
            (B, J, 3, 3) rotations (root first).
        betas
            (B, K) or (K,) shape coefficients, or None.
        log_beta_scales, betas_trans
            (B, J, 3) or (J, 3) or None.
        trans
            (B, 3) world translation, or None.
        mesh_scale
            (B,) or (1,) or scalar tensor, global scale about the root; None = 1.

        Returns
        -------
        (B, J, 3) keypoints in world units: ``(x - x_root) * mesh_scale + trans``.
        """
        B = rotmats.shape[0]
        if self.static:
            _, joints = self.forward_kinematics(rotmats, self.rest_joints, log_beta_scales, betas_trans)
        else:
            verts = self._v_template.unsqueeze(0).expand(B, -1, -1)
            if betas is not None and self._shapedirs is not None:
                betas = betas.expand(B, -1) if betas.dim() == 2 else betas.unsqueeze(0).expand(B, -1)
                verts = verts + torch.einsum("sck,bk->bsc", self._shapedirs, betas)
            rest = _shared_matmul(self._reg, verts)  # (B, J, 3)
            A, pos = self.forward_kinematics(rotmats, rest, log_beta_scales, betas_trans)
            t = pos - torch.einsum("bjik,bjk->bji", A, rest)  # skinning translation of each joint
            A_t = torch.cat([A.reshape(B, self.n_joints, 9), t], dim=-1)  # (B, J, 12)
            T = _shared_matmul(self._skin, A_t)  # (B, S, 12): blended transforms of the support vertices
            T_A, T_t = T[..., :9].reshape(B, -1, 3, 3), T[..., 9:]
            posed = torch.einsum("bsik,bsk->bsi", T_A, verts) + T_t  # (batched tiny matmuls are slow on CPU)
            joints = _shared_matmul(self._reg, posed)
        joints = joints - joints[:, :1]
        if mesh_scale is not None:
            joints = joints * mesh_scale.reshape(-1, 1, 1)
        if trans is not None:
            joints = joints + trans.reshape(-1, 1, 3)
        return joints


def _shared_matmul(M: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """``M @ X`` for one matrix ``M (m, n)`` and a batch ``X (B, n, k)``, as one ``(m, n) @ (n, B·k)`` product.

    ``M @ X`` by broadcasting runs ``B`` small products (a batched matmul over a stride-0 copy of ``M``), which on
    a CPU costs several times more than the single product for the batch sizes of training and fitting.
    """
    B, n, k = X.shape
    out = M @ X.transpose(0, 1).reshape(n, B * k)  # (m, B·k)
    return out.reshape(M.shape[0], B, k).transpose(0, 1)
