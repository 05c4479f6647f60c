"""Exact solve of the fit's Gauss-Newton systems: block-banded frames plus clip-wide parameters ("arrow").

The matrix is ::

    [ A  B ]    A: (T·P, T·P) symmetric block-banded over frames (blocks A_tt, A_t+1,t, A_t+2,t: the temporal
    [ Bᵀ C ]       smoothness couples a frame with its two neighbours on either side), B: (T·P, S), C: (S, S)

and is solved with a block-banded Cholesky factorisation of A and the Schur complement ``C − Bᵀ A⁻¹ B`` of the
clip parameters. Cost: O(T·P³ + T·P²·S + S³), linear in the number of frames.
"""

from __future__ import annotations

import torch


class BandedArrowSolver:
    """Factorise once, then solve for any right-hand side.

    Parameters
    ----------
    diag
        (T, P, P) diagonal blocks ``A_tt``.
    sub1, sub2
        (T-1, P, P) blocks ``A_{t+1,t}`` and (T-2, P, P) blocks ``A_{t+2,t}``, or None when zero.
    coupling
        (T, P, S) blocks of B (None or S = 0: no clip parameters).
    clip
        (S, S) matrix C.

    Raises
    ------
    torch.linalg.LinAlgError
        When the matrix is not (numerically) positive definite.
    """

    def __init__(
        self,
        diag: torch.Tensor,
        sub1: torch.Tensor | None = None,
        sub2: torch.Tensor | None = None,
        coupling: torch.Tensor | None = None,
        clip: torch.Tensor | None = None,
    ) -> None:
        self.T, self.P = diag.shape[0], diag.shape[1]
        self.banded = (sub1 is not None and self.T > 1) or (sub2 is not None and self.T > 2)
        if self.P == 0:
            self.L0 = diag
        elif not self.banded:
            self.L0 = torch.linalg.cholesky(diag)
        else:
            self._factor_banded(diag, sub1, sub2)
        self.S = 0 if clip is None else clip.shape[0]
        if self.S:
            # With A = L Lᵀ and Z = L⁻¹ B: Bᵀ A⁻¹ B = Zᵀ Z (forward substitution only).
            self.Z = self._forward(coupling) if self.P else coupling
            schur = clip - torch.einsum("tps,tpq->sq", self.Z, self.Z) if self.P else clip
            self.Ls = torch.linalg.cholesky(schur)

    def _factor_banded(self, diag, sub1, sub2) -> None:
        T = self.T
        zero = torch.zeros_like(diag[0])
        sub1 = [zero] * (T - 1) if sub1 is None else list(sub1)
        sub2 = [zero] * max(T - 2, 0) if sub2 is None else list(sub2)
        L0, L1, L2 = [], [None] * max(T - 1, 0), [None] * max(T - 2, 0)
        for t in range(T):
            M = diag[t]
            if t >= 1:
                M = M - L1[t - 1] @ L1[t - 1].T
            if t >= 2:
                M = M - L2[t - 2] @ L2[t - 2].T
            Lt = torch.linalg.cholesky(M)
            L0.append(Lt)
            if t + 1 < T:
                N = sub1[t] - (L2[t - 1] @ L1[t - 1].T if t >= 1 else 0.0)
                L1[t] = torch.linalg.solve_triangular(Lt, N.T, upper=False).T  # N Lt⁻ᵀ
            if t + 2 < T:
                L2[t] = torch.linalg.solve_triangular(Lt, sub2[t].T, upper=False).T
        self.L0, self.L1, self.L2 = torch.stack(L0), L1, L2

    def _forward(self, rhs: torch.Tensor) -> torch.Tensor:
        """L⁻¹ rhs for rhs (T, P, k)."""
        if not self.banded:
            return torch.linalg.solve_triangular(self.L0, rhs, upper=False)
        L0, L1, L2 = self.L0, self.L1, self.L2
        z: list[torch.Tensor] = []
        for t in range(self.T):
            b = rhs[t]
            if t >= 1:
                b = b - L1[t - 1] @ z[t - 1]
            if t >= 2:
                b = b - L2[t - 2] @ z[t - 2]
            z.append(torch.linalg.solve_triangular(L0[t], b, upper=False))
        return torch.stack(z)

    def _backward(self, rhs: torch.Tensor) -> torch.Tensor:
        """L⁻ᵀ rhs for rhs (T, P, k)."""
        if not self.banded:
            return torch.linalg.solve_triangular(self.L0.transpose(1, 2), rhs, upper=True)
        T, L0, L1, L2 = self.T, self.L0, self.L1, self.L2
        x: list[torch.Tensor | None] = [None] * T
        for t in range(T - 1, -1, -1):
            b = rhs[t]
            if t + 1 < T:
                b = b - L1[t].T @ x[t + 1]
            if t + 2 < T:
                b = b - L2[t].T @ x[t + 2]
            x[t] = torch.linalg.solve_triangular(L0[t].T, b, upper=True)
        return torch.stack(x)

    def solve(self, rf: torch.Tensor, rs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Solve for right-hand sides rf (T, P) and rs (S,); returns (x_f (T, P), x_s (S,))."""
        if not self.P:
            xs = torch.cholesky_solve(rs[:, None], self.Ls)[:, 0] if self.S else rs
            return rf, xs
        z = self._forward(rf[..., None])
        if not self.S:
            return self._backward(z)[..., 0], rs
        xs = torch.cholesky_solve((rs - torch.einsum("tps,tp->s", self.Z, z[..., 0]))[:, None], self.Ls)[:, 0]
        xf = self._backward(z - torch.einsum("tps,s->tp", self.Z, xs)[..., None])[..., 0]
        return xf, xs
