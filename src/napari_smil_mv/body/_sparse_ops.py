"""Sparse products used by the SMIL model (constant CSR matrices, dense batch-last operands).

The CSR matrices are passed as ``(crow, col, values, shape)`` tuples of buffers, so that ``Module.to()`` moves and
casts them like any other buffer; the sparse tensors are assembled per call (no copy).
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch

__all__ = ["sparse_mm", "blend_skinning", "skinning_blocks", "csr_parts", "csr"]

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
    """Fused linear blend skinning on the batch-last layout, in blocks of vertices.

    For every block of rows ``W_c`` of the ``(V, J)`` weight matrix: ``T = W_c @ A`` (``(n, 12 B)``, viewed
    ``(n, 3, 4, B)``) and ``v' = T[:, :, 3] + Σ_k T[:, :, k] v_k``. Blocks keep the temporaries small (cache-sized,
    reused by the allocator) instead of materialising ``T`` for the whole mesh. ``T`` is recomputed block by block
    in the backward pass, which is written out by hand (first derivatives only).
    """

    @staticmethod
    def forward(ctx, per_joint, shaped, blocks):  # type: ignore[override]
        V, _, batch = shaped.shape
        posed = torch.empty_like(shaped)
        for start, stop, parts, _ in blocks:
            blended = torch.sparse.mm(csr(*parts, dtype=per_joint.dtype), per_joint).view(
                stop - start, 3, 4, batch
            )
            out = posed[start:stop]
            out.copy_(blended[:, :, 3])
            for k in range(3):
                out.addcmul_(blended[:, :, k], shaped[start:stop, None, k])
        ctx.save_for_backward(per_joint, shaped)
        ctx.blocks = blocks
        return posed

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):  # type: ignore[override]
        per_joint, shaped = ctx.saved_tensors
        batch = shaped.shape[2]
        grad = grad.contiguous()
        want_joint, want_shaped = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_per_joint = torch.zeros_like(per_joint) if want_joint else None
        grad_shaped = torch.empty_like(shaped) if want_shaped else None
        for start, stop, parts, parts_t in ctx.blocks:
            g = grad[start:stop]
            n = stop - start
            if want_shaped:
                blended = torch.sparse.mm(csr(*parts, dtype=grad.dtype), per_joint).view(n, 3, 4, batch)
                gs = grad_shaped[start:stop]
                torch.mul(blended[:, 0, :3], g[:, 0:1], out=gs)
                gs.addcmul_(blended[:, 1, :3], g[:, 1:2])
                gs.addcmul_(blended[:, 2, :3], g[:, 2:3])
            if want_joint:
                grad_blended = torch.empty((n, 3, 4, batch), dtype=grad.dtype, device=grad.device)
                torch.mul(g[:, :, None, :], shaped[start:stop, None, :, :], out=grad_blended[:, :, :3])
                grad_blended[:, :, 3] = g
                grad_per_joint.addmm_(csr(*parts_t, dtype=grad.dtype), grad_blended.view(n, 12 * batch))
        return grad_per_joint, grad_shaped, None


def csr(crow, col, val, shape, dtype):
    return torch.sparse_csr_tensor(crow, col, val.to(dtype), size=shape, check_invariants=False)


def sparse_mm(x: torch.Tensor, s_parts: tuple, st_parts: tuple) -> torch.Tensor:
    return _SparseMM.apply(x, s_parts, st_parts)


def blend_skinning(per_joint: torch.Tensor, shaped: torch.Tensor, blocks: list) -> torch.Tensor:
    """Linear blend skinning.

    Parameters
    ----------
    per_joint
        ``(J, 12 B)`` skinning transforms ``A_j`` (3×4, row-major) for every joint and sample.
    shaped
        ``(V, 3, B)`` rest-pose (shaped) vertices, batch last, contiguous.
    blocks
        ``(start, stop, W_parts, W_t_parts)`` for consecutive vertex blocks covering ``0..V``: the CSR parts of the
        weight rows ``start:stop`` and of their transpose (see :func:`skinning_blocks`).

    Returns
    -------
    torch.Tensor
        ``(V, 3, B)`` posed vertices.
    """
    return _BlendSkinning.apply(per_joint, shaped, blocks)


def skinning_blocks(weights: sp.csr_matrix, n_blocks: int, dtype: torch.dtype, device) -> list:
    """Split the ``(V, J)`` weight matrix into ``n_blocks`` row blocks with CSR parts of each block and transpose."""
    n_vertices = weights.shape[0]
    bounds = np.linspace(0, n_vertices, n_blocks + 1).round().astype(int)
    blocks = []
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        if stop <= start:
            continue
        block = sp.csr_matrix(weights[start:stop])
        blocks.append(
            (int(start), int(stop), csr_parts(block, dtype, device), csr_parts(block.T, dtype, device))
        )
    return blocks


def csr_parts(matrix, dtype: torch.dtype, device) -> tuple:
    """``(crow, col, values, shape)`` tensors of a scipy matrix in CSR form (indices sorted)."""
    m = sp.csr_matrix(matrix, dtype=np.float64)
    m.sort_indices()
    return (
        torch.as_tensor(m.indptr.astype(np.int64), device=device),
        torch.as_tensor(m.indices.astype(np.int64), device=device),
        torch.as_tensor(m.data, dtype=dtype, device=device),
        tuple(m.shape),
    )
