"""A deliberately naive, dense implementation of the SMIL forward model.

It transcribes the reference formulas one to one (dense ``(V, J)`` weight blend of 4×4 transforms, a Python loop
over the joints, dense joint regressor) and is used to cross-check :class:`~napari_smil_mv.body.SMILModel` in
the tests and as the baseline in ``benchmarks/bench_body_model.py``. Do not use it for real work: it is slow.
"""

from __future__ import annotations

import torch

from napari_smil_mv.body.model_file import SMILModelData
from napari_smil_mv.body.rotations import as_rotation_matrices

__all__ = ["NaiveSMIL"]


class NaiveSMIL(torch.nn.Module):
    """Dense reference SMIL model (same call signature as :class:`~napari_smil_mv.body.SMILModel`)."""

    def __init__(self, data: SMILModelData, dtype: torch.dtype = torch.float32, device=None) -> None:
        super().__init__()
        self.data = data
        self.parents = [int(p) for p in data.parents]
        kw = {"dtype": dtype, "device": device}
        self.register_buffer("v_template", torch.as_tensor(data.v_template, **kw))
        self.register_buffer(
            "shapedirs", torch.as_tensor(data.shapedirs.reshape(-1, data.n_betas).T.copy(), **kw)
        )
        self.register_buffer("weights", torch.as_tensor(data.weights, **kw))
        self.register_buffer("J_regressor", torch.as_tensor(data.J_regressor.toarray(), **kw))
        self.register_buffer("J", torch.as_tensor(data.J, **kw))
        posedirs = None
        if data.posedirs is not None:
            posedirs = torch.as_tensor(data.posedirs.reshape(-1, data.posedirs.shape[2]).T.copy(), **kw)
        self.register_buffer("posedirs", posedirs)

    @property
    def dtype(self) -> torch.dtype:
        """Floating dtype of the buffers."""
        return self.v_template.dtype

    def forward(
        self,
        pose,
        betas=None,
        log_beta_scales=None,
        betas_trans=None,
        trans=None,
        mesh_scale=None,
        propagate_scaling: bool = True,
    ):
        """Return ``(vertices, joints, vertices_unplaced, joints_unplaced)``, each batch first."""
        kw = {"dtype": self.v_template.dtype, "device": self.v_template.device}
        R = as_rotation_matrices(torch.as_tensor(pose, **kw))
        B, J = R.shape[0], R.shape[1]
        V = self.v_template.shape[0]
        betas, log_beta_scales, betas_trans = (
            None if x is None else torch.as_tensor(x, **kw) for x in (betas, log_beta_scales, betas_trans)
        )
        v = self.v_template.expand(B, V, 3)
        if betas is not None and self.shapedirs.shape[0] > 0:
            v = v + (betas @ self.shapedirs).view(B, V, 3)
        if self.data.static_joint_locs:
            rest = self.J.expand(B, J, 3)
        else:
            rest = torch.einsum("jv,bvc->bjc", self.J_regressor, v)
        if self.posedirs is not None:
            feature = (R[:, 1:] - torch.eye(3, **kw)).reshape(B, -1)
            v = v + (feature @ self.posedirs).view(B, V, 3)
        eye = torch.eye(3, **kw).expand(B, 3, 3)
        S = (
            [eye] * J
            if log_beta_scales is None
            else list(torch.diag_embed(torch.exp(log_beta_scales)).unbind(1))
        )
        flip = torch.tensor([1.0, -1.0, 1.0], **kw)
        bottom = torch.tensor([0.0, 0.0, 0.0, 1.0], **kw).expand(B, 1, 4)

        def homogeneous(rot, t):
            return torch.cat([torch.cat([rot, t[:, :, None]], dim=2), bottom], dim=1)

        G = [homogeneous(R[:, 0], rest[:, 0])]
        for i in range(1, J):
            p = self.parents[i]
            offset = rest[:, i] - rest[:, p]
            if betas_trans is not None:
                offset = offset + betas_trans[:, i] * flip
            local = R[:, i] @ S[i] if propagate_scaling else torch.linalg.inv(S[p]) @ R[:, i] @ S[i]
            G.append(G[p] @ homogeneous(local, offset))
        G = torch.stack(G, dim=1)  # (B, J, 4, 4)
        fk = G[:, :, :3, 3]
        rest_h = torch.cat([rest, torch.zeros(B, J, 1, **kw)], dim=2)[..., None]
        A = G - torch.nn.functional.pad(G @ rest_h, (3, 0))
        T = torch.einsum("vj,bjkl->bvkl", self.weights, A)
        v_h = torch.cat([v, torch.ones(B, V, 1, **kw)], dim=2)
        verts = (T @ v_h[..., None])[:, :, :3, 0]
        joints = fk if self.data.static_joint_locs else torch.einsum("jv,bvc->bjc", self.J_regressor, verts)
        root = joints[:, :1]
        scale = torch.ones(B, **kw) if mesh_scale is None else torch.as_tensor(mesh_scale, **kw).reshape(B)
        shift = torch.zeros(B, 3, **kw) if trans is None else torch.as_tensor(trans, **kw)
        place = lambda x: (x - root) * scale[:, None, None] + shift[:, None]  # noqa: E731
        return place(verts), place(joints), verts, joints
