"""Sparse products used by the SMIL model (constant CSR matrices, dense batch-last operands).

The CSR matrices are passed as ``(crow, col, values, shape)`` tuples of buffers, so that ``Module.to()`` moves and
casts them like any other buffer; the sparse tensors are assembled per call (no copy).
"""

from __future__ import annotations

import warnings

import torch

__all__ = ["sparse_mm", "blend_skinning", "csr"]

# torch prints a one-time "beta state" notice when the first CSR tensor is built; the operations used here are
# stable, so trigger (and silence) that notice once at import.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    torch.sparse_csr_tensor(
        torch.tensor([0, 0]), torch.tensor([], dtype=torch.int64), torch.tensor([]), size=(1, 1)
    )


class _SparseMM(torch.autograd.Function):
    """``S @ x`` for a constant CSR matrix ``S`` with a precomputed transpose for the backward pass."""

    @staticmethod
    def forward(ctx, x, s_parts, st_parts):  # type: ignore[override]
        ctx.st_parts = st_parts
        return torch.sparse.mm(csr(*s_parts, dtype=x.dtype), x)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        return torch.sparse.mm(csr(*ctx.st_parts, dtype=grad.dtype), grad.contiguous()), None, None


class _BlendSkinning(torch.autograd.Function):
    """Fused linear blend skinning on the batch-last layout.

    Forward: ``T = W @ A`` (``(V, 12 B)``, viewed ``(V, 3, 4, B)``), ``v' = T[:, :, 3] + Σ_c T[:, :, c] v[:, c]``.
    Only ``T`` and ``v`` are kept for the backward pass, which is written out by hand (first derivatives only).
    """

    @staticmethod
    def forward(ctx, per_joint, shaped, w_parts, wt_parts):  # type: ignore[override]
        V, _, batch = shaped.shape
        blended = torch.sparse.mm(csr(*w_parts, dtype=per_joint.dtype), per_joint).view(V, 3, 4, batch)
        posed = blended[:, :, 3].clone()
        for c in range(3):
            posed.addcmul_(blended[:, :, c], shaped[:, None, c])
        ctx.save_for_backward(blended, shaped)
        ctx.wt_parts = wt_parts
        return posed

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):  # type: ignore[override]
        blended, shaped = ctx.saved_tensors
        V, _, batch = shaped.shape
        grad_per_joint = grad_shaped = None
        if ctx.needs_input_grad[0]:
            grad_blended = torch.empty_like(blended)
            for c in range(3):
                torch.mul(grad, shaped[:, None, c], out=grad_blended[:, :, c])
            grad_blended[:, :, 3] = grad
            wt = csr(*ctx.wt_parts, dtype=grad.dtype)
            grad_per_joint = torch.sparse.mm(wt, grad_blended.view(V, 12 * batch))
        if ctx.needs_input_grad[1]:
            grad_shaped = torch.stack([(blended[:, :, c] * grad).sum(1) for c in range(3)], dim=1)
        return grad_per_joint, grad_shaped, None, None


def csr(crow, col, val, shape, dtype):
    return torch.sparse_csr_tensor(crow, col, val.to(dtype), size=shape, check_invariants=False)


def sparse_mm(x: torch.Tensor, s_parts: tuple, st_parts: tuple) -> torch.Tensor:
    return _SparseMM.apply(x, s_parts, st_parts)


def blend_skinning(
    per_joint: torch.Tensor, shaped: torch.Tensor, w_parts: tuple, wt_parts: tuple
) -> torch.Tensor:
    """Linear blend skinning ``(V, 3, B)`` from per-joint 3×4 transforms ``(J, 12 B)`` and vertices ``(V, 3, B)``."""
    return _BlendSkinning.apply(per_joint, shaped, w_parts, wt_parts)
