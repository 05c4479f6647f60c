"""Analytic Jacobians of the placed model keypoints, per frame, for Gauss-Newton / Levenberg-Marquardt.

The keypoints of :class:`~napari_smil_mv.body.kinematics.JointsModel` are (regressed-joint models)

    j_k = Σ_j G_kj,   G_kj = A_j (U_kj − W_kj r_j) + W_kj p_j,   X_k = s · (j_k − j_0) + trans

with ``A_j``/``p_j`` the world 3×3 transform and position of joint j from forward kinematics, ``r`` the rest
joints, ``W_kj = Σ_s Reg_ks w_sj`` and ``U_kj = Σ_s Reg_ks w_sj v_s`` (regressor × skinning weights × shaped
vertices); static-joint models have ``G_kj = δ_kj p_j`` and ``W = I``. Every perturbation acts on the subtree
below one joint, so all derivatives share ``H_ki = Σ_{j ∈ sub(i)} G_kj − p_i Σ_{j ∈ sub(i)} W_kj``:

* rotation of joint i, perturbed on the left in its parent's frame (``R_i ← (I + [δ]×) R_i``, root: world
  frame): ``∂j_k/∂δ_a = P_i [e_a]× P_i⁻¹ H_ki`` with ``P_i = A_parent(i)`` (identity for a root);
* isotropic log-scale of joint m (``local_m = R_m diag(exp(l_m))``; the root's own scale is never applied):
  ``∂j_k/∂l_m = H_km``; component a of an anisotropic one: ``A_m e_a e_aᵀ A_m⁻¹ H_km``;
* offset ``betas_trans`` of joint m, component a: ``(Σ_{j ∈ sub(m)} W_kj) · P_m e_a · sign_a``;
* betas (regressed models only): through the rest joints, the bone offsets and ``U``;
* translation: the identity; log mesh scale: ``s · (j_k − j_0)``.

Everything is evaluated batched over frames (no autograd), in the dtype of the given JointsModel (float64 for
the Levenberg-Marquardt stage). The test ``tests/fitting/test_fitting_lm.py`` checks every block against autograd.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from napari_smil_mv.body.kinematics import JointsModel


@dataclass
class KinematicJacobian:
    """Placed keypoints and their derivatives (world units), T frames, J joints, K betas.

    Attributes
    ----------
    joints : (T, J, 3)
        Placed keypoints ``X``.
    rotation : (T, J, 3, J, 3)
        ``∂X_k/∂δ_{i,a}`` as ``[t, k, :, i, a]`` (root = joint 0 included).
    log_scale : (T, J, 3)
        ``∂X_k/∂ log(mesh_scale)``.
    log_beta_scales : (T, J, 3, J) or (T, J, 3, J, 3)
        Isotropic (one log-scale per joint) or per-component derivatives.
    betas_trans : (T, J, 3, J, 3)
        ``∂X_k/∂betas_trans_{m,a}``.
    betas : (T, J, 3, K) or None
        ``∂X_k/∂betas`` (None for static-joint models or K = 0: the keypoints do not depend on betas).
    """

    joints: torch.Tensor
    rotation: torch.Tensor
    log_scale: torch.Tensor
    log_beta_scales: torch.Tensor
    betas_trans: torch.Tensor
    betas: torch.Tensor | None


def subtree_matrix(parents: np.ndarray) -> np.ndarray:
    """(J, J) float matrix ``S[j, i] = 1`` when joint j is in the subtree of joint i (i itself included)."""
    parents = np.asarray(parents, dtype=np.int64)
    J = len(parents)
    sub = np.eye(J)
    for j in range(J):
        p = parents[j]
        while p >= 0:
            sub[j, p] = 1.0
            p = parents[p]
    return sub


def _cross_basis(y: torch.Tensor) -> torch.Tensor:
    """``[e_a]× y`` for a = 0, 1, 2 stacked on a new last axis: (..., 3) → (..., 3, 3)."""
    x0, x1, x2 = y.unbind(-1)
    z = torch.zeros_like(x0)
    return torch.stack(
        [torch.stack([z, -x2, x1], -1), torch.stack([x2, z, -x0], -1), torch.stack([-x1, x0, z], -1)], -1
    )


class JacobianEvaluator:
    """Evaluates :class:`KinematicJacobian` for one :class:`JointsModel` (constants precomputed once)."""

    def __init__(self, model: JointsModel) -> None:
        self.model = model
        kw = {"device": model.device, "dtype": model.dtype}
        parents = model.parents
        self.roots = torch.as_tensor(parents < 0, device=model.device)
        self.sub = torch.as_tensor(subtree_matrix(parents), **kw)  # (J, J) [j, i]
        self.parent_idx = torch.as_tensor(np.maximum(parents, 0), device=model.device)
        self.sign = model._trans_sign
        if model.static:
            self.W = torch.eye(model.n_joints, **kw)
        else:
            self.W = model._reg @ model._skin  # (J, J): Σ_s Reg_ks w_sj

    def _rest(self, betas: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        m = self.model
        if m.static:
            return m.rest_joints, None
        verts = m._v_template
        if betas is not None and m._shapedirs is not None:
            verts = verts + torch.einsum("sck,k->sc", m._shapedirs, betas.reshape(-1))
        return m._reg @ verts, verts

    def __call__(
        self,
        rotmats: torch.Tensor,
        betas: torch.Tensor | None,
        log_beta_scales: torch.Tensor,
        betas_trans: torch.Tensor,
        trans: torch.Tensor,
        mesh_scale: torch.Tensor,
        isotropic: bool = True,
    ) -> KinematicJacobian:
        """Keypoints and Jacobians.

        Parameters
        ----------
        rotmats
            (T, J, 3, 3) rotations (root first).
        betas
            (K,) clip betas or None.
        log_beta_scales, betas_trans
            (J, 3) clip values.
        trans
            (T, 3) world translation.
        mesh_scale
            (T,) or (1,) mesh scale.
        isotropic
            Derivative w.r.t. one log-scale per joint (all three axes) instead of per component.
        """
        m = self.model
        T, J = rotmats.shape[:2]
        rest, verts = self._rest(betas)
        A, pos = m.forward_kinematics(rotmats, rest, log_beta_scales, betas_trans)
        eye = torch.eye(3, dtype=A.dtype, device=A.device)
        P = torch.where(self.roots[None, :, None, None], eye, A[:, self.parent_idx])  # (T, J, 3, 3)
        W, sub = self.W, self.sub
        wsub = W @ sub  # (K, I): Σ_{j ∈ sub(i)} W_kj
        if m.static:
            j = pos
            # H_ki = [k ∈ sub(i)] (p_k − p_i)
            H = sub[None, :, :, None] * (pos[:, :, None, :] - pos[:, None, :, :])
            U = None
        else:
            U = torch.einsum("ks,sj,sc->kjc", m._reg, m._skin, verts)  # (K, J, 3)
            G = (
                torch.einsum("tjab,kjb->tkja", A, U - W[:, :, None] * rest[None])
                + W[None, :, :, None] * pos[:, None]
            )
            j = G.sum(2)
            H = torch.einsum("tkjc,ji->tkic", G, sub) - wsub[None, :, :, None] * pos[:, None]
        scale = mesh_scale.reshape(-1, 1, 1)

        def place(d: torch.Tensor) -> torch.Tensor:  # (T, K, 3, ...) joint derivative → X derivative
            s = scale.reshape((-1,) + (1,) * (d.dim() - 1))
            return s * (d - d[:, :1])

        # Rotations: P_i [e_a]× P_i⁻¹ H_ki.
        Pinv = torch.linalg.inv(P)
        Y = torch.einsum("tiab,tkib->tkia", Pinv, H)
        rot = torch.einsum("tiab,tkibc->tkaic", P, _cross_basis(Y))  # (T, K, 3, I, 3)
        # Per-joint log-scales (no effect on roots).
        nonroot = (~self.roots).to(A.dtype)
        if isotropic:
            lbs = H.permute(0, 1, 3, 2) * nonroot[None, None, None, :]  # (T, K, 3, M)
        else:
            Ainv = torch.linalg.inv(A)
            Y2 = torch.einsum("tmab,tkmb->tkma", Ainv, H)  # (T, K, M, 3)
            lbs = torch.einsum("tmca,tkma->tkcma", A, Y2) * nonroot[None, None, None, :, None]
        # betas_trans: Wsub_km P_m e_a sign_a (no effect on roots).
        bt = torch.einsum("km,tmca->tkcma", wsub, P) * (self.sign * 1.0)[None, None, None, None, :]
        bt = bt * nonroot[None, None, None, :, None]
        d_betas = self._betas_derivative(A, P, rest, U) if not m.static and m.n_betas else None
        X = scale * (j - j[:, :1]) + trans.reshape(-1, 1, 3)
        return KinematicJacobian(
            joints=X,
            rotation=place(rot),
            log_scale=X - trans.reshape(-1, 1, 3),
            log_beta_scales=place(lbs),
            betas_trans=place(bt),
            betas=None if d_betas is None else place(d_betas),
        )

    def _betas_derivative(
        self, A: torch.Tensor, P: torch.Tensor, rest: torch.Tensor, U: torch.Tensor
    ) -> torch.Tensor:
        """(T, K, 3, Kb) derivative of the (unplaced) keypoints w.r.t. betas, regressed-joint models."""
        m = self.model
        W = self.W
        d_verts = m._shapedirs  # (S, 3, Kb)
        d_rest = torch.einsum("js,scn->jcn", m._reg, d_verts)  # (J, 3, Kb)
        d_U = torch.einsum("ks,sj,scn->kjcn", m._reg, m._skin, d_verts)  # (K, J, 3, Kb)
        d_off = d_rest - d_rest[self.parent_idx]
        d_off = torch.where(self.roots[:, None, None], d_rest, d_off)  # a root's offset is its position
        # d p_j = d p_parent + P_j d_off_j (roots: d rest), level by level.
        contrib = torch.einsum("tjab,jbn->tjan", P, d_off)
        contrib = torch.where(self.roots[None, :, None, None], d_rest[None].expand_as(contrib), contrib)
        d_pos = torch.zeros_like(contrib)
        for depth, lv in enumerate(m._tree.levels):
            if depth == 0:  # the roots
                d_pos[:, lv] = contrib[:, lv]
            else:
                d_pos[:, lv] = d_pos[:, self.parent_idx[lv]] + contrib[:, lv]
        term = d_U - W[:, :, None, None] * d_rest[None]  # (K, J, 3, Kb)
        return torch.einsum("tjab,kjbn->tkan", A, term) + torch.einsum("kj,tjan->tkan", W, d_pos)
