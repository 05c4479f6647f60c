"""Gauss-Newton curvature of every loss term of the fit, for the Levenberg-Marquardt stage (float64).

Each function returns the curvature of one term of :meth:`napari_smil_mv.fitting.problem.Problem.losses` (the
same weights and normalisations), either in joint space (data and smoothness terms: combined with the keypoint
Jacobians by :mod:`~napari_smil_mv.fitting.lm`) or in parameter space (priors). Robust data terms use IRLS
weights ``ρ'(s)`` (the ``ρ''`` term is left out, which keeps the matrix positive semi-definite).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

F64 = torch.float64


def robust_derivative(s: torch.Tensor, kind: str) -> torch.Tensor:
    """``ρ'(s)`` of :func:`napari_smil_mv.fitting.losses.robust` at squared normalised residuals ``s``."""
    if kind == "gmof":
        return 1.0 / (1.0 + s) ** 2
    if kind == "huber":
        return torch.where(s < 1.0, torch.ones_like(s), 1.0 / s.clamp_min(1e-12).sqrt())
    if kind == "cauchy":
        return 1.0 / (1.0 + s)
    return torch.ones_like(s)


def data_curvature(problem, projector, weights: Mapping[str, float], joints: torch.Tensor) -> torch.Tensor:
    """(T, J, 3, 3) curvature of the 2D reprojection and 3D point terms per frame and joint.

    Parameters
    ----------
    problem
        The fit's :class:`~napari_smil_mv.fitting.problem.Problem` (observations, weights, settings).
    projector
        A float64 :class:`~napari_smil_mv.fitting.problem.Projector` of the same cameras.
    weights
        Loss weights of the stage.
    joints
        (T, J, 3) float64 placed keypoints at the current estimate.
    """
    pr, cfg = problem, problem.config
    T, J = joints.shape[:2]
    kw = {"dtype": F64, "device": joints.device}
    W = torch.zeros(T, J, 3, 3, **kw)
    m = pr.mapped_t
    if weights.get("reproj", 0) > 0:
        X = joints[:, m].detach().clone().requires_grad_(True)
        px, depth = projector(X)  # (C, T, M, 2), (C, T, M)
        C = px.shape[0]
        rows = []
        for c in range(
            C
        ):  # each pixel depends on its own point only: 2C backward passes give every 2x3 block
            for u in range(2):
                (g,) = torch.autograd.grad(px[c, ..., u].sum(), X, retain_graph=True)
                rows.append(g)
        Jp = torch.stack(rows, 0).reshape(C, 2, T, -1, 3).permute(0, 2, 3, 1, 4)  # (C, T, M, 2, 3)
        with torch.no_grad():
            wts = pr.w2d.to(F64) * (depth > 0)
            sigma2 = pr.reproj_sigma_px**2
            s = ((px - pr.obs2d.to(F64)) ** 2).sum(-1) / sigma2
            norm = 2.0 * weights["reproj"] / (sigma2 * wts.sum().clamp_min(1e-9))
            coef = norm * wts * robust_derivative(s, cfg.robust_loss)
            W[:, m] += torch.einsum("ctm,ctmua,ctmub->tmab", coef, Jp, Jp)
    if pr.has3d and weights.get("points3d", 0) > 0:
        with torch.no_grad():
            sigma2 = (cfg.points3d_sigma * pr.body_length) ** 2
            w3 = pr.w3d.to(F64)
            s = ((joints[:, m] - pr.obs3d.to(F64)) ** 2).sum(-1) / sigma2
            norm = 2.0 * weights["points3d"] / (sigma2 * w3.sum().clamp_min(1e-9))
            coef = norm * w3 * robust_derivative(s, cfg.robust_loss)
            W[:, m] += coef[..., None, None] * torch.eye(3, **kw)
    return W


class Smoothness:
    """Gauss-Newton curvature of the temporal terms as a per-coordinate frame matrix acting on joint displacements.

    ``smooth_vel`` is exactly quadratic; the robust ``smooth_acc`` (``s² ρ(|a|²/s²)`` per triple and joint, see
    :func:`~napari_smil_mv.fitting.losses.temporal_smoothness`) gets IRLS weights ``ρ'`` per triple and joint
    (1 for ``"l2"``). The Hessian is, for every joint, a pentadiagonal frame matrix ``S_j`` (the same for its
    x, y, z).

    Parameters
    ----------
    pair_mask
        (T-1,) 1 where frames t and t+1 are neighbours.
    weights
        Loss weights (``smooth_vel``, ``smooth_acc``).
    n_joints
        J (the terms average over joints).
    body_length
        The fit's length scale (the terms are in body lengths).
    joints
        (T, J, 3) current joints (world units) for the IRLS weights; None: weights 1.
    acc_scale, kind
        Robust scale (body lengths per frame²) and penalty of the acceleration term.
    """

    def __init__(
        self,
        pair_mask: torch.Tensor,
        weights: Mapping[str, float],
        n_joints: int,
        body_length: float,
        joints: torch.Tensor | None = None,
        acc_scale: float = float("inf"),
        kind: str = "l2",
    ) -> None:
        self.pm = pair_mask.to(F64)
        self.T = self.pm.numel() + 1
        self.J = n_joints
        am = self.pm[1:] * self.pm[:-1] if self.pm.numel() > 1 else self.pm[:0]
        scale = 2.0 / (n_joints * body_length**2)
        pairs, triples = float(self.pm.sum()), float(am.sum())
        self.cv = weights.get("smooth_vel", 0.0) * scale / pairs if pairs > 0 else 0.0
        self.ca = weights.get("smooth_acc", 0.0) * scale / triples if triples > 0 else 0.0
        irls = torch.ones(am.numel(), n_joints, dtype=F64, device=self.pm.device)
        if self.ca and joints is not None and kind != "l2" and acc_scale != float("inf") and self.T > 2:
            with torch.no_grad():
                x = joints.detach().to(F64) / body_length
                a = x[2:] - 2.0 * x[1:-1] + x[:-2]
                irls = robust_derivative((a**2).sum(-1) / acc_scale**2, kind)
        self.am = am[:, None] * irls  # (T-2, J)
        self.pmj = self.pm[:, None].expand(-1, n_joints)  # (T-1, J)

    @property
    def active(self) -> bool:
        return bool(self.cv or self.ca)

    def _per_coordinate(self, m: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """(n, J) → (n, 3J, 1, ...) broadcastable against x (T, 3J, ...)."""
        out = m.repeat_interleave(3, dim=1)
        return out.reshape(out.shape + (1,) * (x.dim() - 2))

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """``S x`` for ``x`` of shape (T, 3J, ...) (frames × joint coordinates × anything)."""
        out = torch.zeros_like(x)
        if not self.active:
            return out
        v = x[1:] - x[:-1]
        y = self.cv * self._per_coordinate(self.pmj, x) * v
        if self.ca:
            a = self.ca * self._per_coordinate(self.am, x) * (v[1:] - v[:-1])
            y = y.clone()
            y[:-1] -= a
            y[1:] += a
        out[:-1] -= y
        out[1:] += y
        return out

    def bands(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Bands of the symmetric ``S`` per coordinate: diagonal (T, 3J), ``S[t, t+1]`` (T-1, 3J), ``S[t, t+2]``
        (T-2, 3J)."""
        T, cv, ca, J = self.T, self.cv, self.ca, self.J
        pm, am = self.pmj, self.am
        kw = {"dtype": F64, "device": pm.device}
        d = torch.zeros(T, J, **kw)
        s1 = torch.zeros(max(T - 1, 0), J, **kw)
        s2 = torch.zeros(max(T - 2, 0), J, **kw)
        if cv:
            d[:-1] += cv * pm
            d[1:] += cv * pm
            s1 -= cv * pm
        if ca:  # triple τ = (τ, τ+1, τ+2) with coefficients (1, -2, 1)
            d[:-2] += ca * am
            d[1:-1] += 4 * ca * am
            d[2:] += ca * am
            s1[:-1] -= 2 * ca * am
            s1[1:] -= 2 * ca * am
            s2 += ca * am
        return tuple(b.repeat_interleave(3, dim=1) for b in (d, s1, s2))


def pose_prior_curvature(local: torch.Tensor, weight: float) -> torch.Tensor:
    """(T, 3(J-1), 3(J-1)) block-diagonal Hessian of the pose prior w.r.t. the joints' rotation increments.

    ``3 − tr(exp([δ]×) R)`` has the Hessian ``tr(R) I − (R + Rᵀ)/2`` at δ = 0 (2I at the rest pose); its
    negative eigenvalues (bends beyond 90°) are clipped to zero. ``local``: (T, J-1, 3, 3) joint rotations.
    """
    T, n = local.shape[:2]
    eye = torch.eye(3, dtype=local.dtype, device=local.device)
    H = local.diagonal(dim1=-2, dim2=-1).sum(-1)[..., None, None] * eye - 0.5 * (
        local + local.transpose(-1, -2)
    )
    vals, vecs = torch.linalg.eigh(H)
    H = (vecs * vals.clamp_min(0.0)[..., None, :]) @ vecs.transpose(-1, -2) * (weight / (T * n))
    out = torch.zeros(T, n, 3, n, 3, dtype=local.dtype, device=local.device)
    idx = torch.arange(n, device=local.device)
    out[:, idx, :, idx, :] = H.transpose(0, 1)
    return out.reshape(T, 3 * n, 3 * n)


def clip_prior_curvature(
    slices: Mapping[str, slice],
    size: int,
    weights: Mapping[str, float],
    n_joints: int,
    isotropic: bool,
    sym_pairs: list[tuple[int, int]],
    kw: dict,
) -> torch.Tensor:
    """(P_s, P_s) Hessian of the priors on the clip parameters (all exactly quadratic in them).

    ``slices`` locates ``betas`` (whitened), ``betas_trans`` (J·3) and ``log_beta_scales`` (J isotropic or J·3)
    in the clip parameter vector of length ``size``.
    """
    J = n_joints
    ps = torch.zeros(size, size, **kw)
    if "betas" in slices:
        sl = slices["betas"]
        ps[sl, sl] += 2.0 * weights.get("shape_prior", 0.0) * torch.eye(sl.stop - sl.start, **kw)
    if "betas_trans" in slices:
        sl = slices["betas_trans"]
        ps[sl, sl] += 2.0 * weights.get("betas_trans", 0.0) / J * torch.eye(sl.stop - sl.start, **kw)
    if "log_beta_scales" in slices:
        sl = slices["log_beta_scales"]
        n_comp = 3 if isotropic else 1  # an isotropic parameter moves all three components
        n = sl.stop - sl.start
        ps[sl, sl] += 2.0 * n_comp * weights.get("limb_scale", 0.0) / J * torch.eye(n, **kw)
        if sym_pairs and weights.get("limb_scale_sym", 0.0) > 0:
            width = 1 if isotropic else 3
            D = torch.zeros(len(sym_pairs) * width, n, **kw)
            for k, (i, j) in enumerate(sym_pairs):
                for c in range(width):
                    D[k * width + c, i * width + c] = 1.0
                    D[k * width + c, j * width + c] = -1.0
            ps[sl, sl] += 2.0 * n_comp * weights["limb_scale_sym"] / len(sym_pairs) * (D.T @ D)
    return ps
