"""Cross-view fusion, body heads and camera heads of the multi-view network.

Shapes: ``B`` samples, ``V`` view slots (padded; ``view_mask (B, V)`` marks real views), ``D`` feature width,
``P`` spatial tokens per view, ``C`` canonical cameras (``camera_indices (B, V)`` index them; -1 = padding).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _small_init(linear: nn.Linear, gain: float = 0.01) -> nn.Linear:
    """Xavier init with a small gain and zero bias: the layer's output starts near zero."""
    nn.init.xavier_uniform_(linear.weight, gain=gain)
    nn.init.zeros_(linear.bias)
    return linear


def _feed_forward(dim: int, dropout: float) -> nn.Sequential:
    """The transformer feed-forward block: ``dim -> 4·dim`` (GELU) ``-> dim``, with dropout."""
    return nn.Sequential(
        nn.Linear(dim, 4 * dim),
        nn.GELU(),
        nn.Dropout(dropout),
        nn.Linear(4 * dim, dim),
        nn.Dropout(dropout),
    )


class CrossViewAttention(nn.Module):
    """Pre-norm self-attention over the view tokens (padded views masked out of the keys) + feed-forward.

    The same layer as ``nn.MultiheadAttention`` with ``key_padding_mask`` (a test compares them), written with one
    packed q/k/v projection and :func:`torch.nn.functional.scaled_dot_product_attention`: with a handful of view
    tokens per sample the step is bound by the number of operations, not by arithmetic.
    """

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)  # rows: queries, keys, values (head-major in each)
        self.out_proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = _feed_forward(dim, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, view_mask: torch.Tensor | None) -> torch.Tensor:
        """``x (B, V, dim)`` view tokens; ``view_mask (B, V)`` True = real view, or None when all are real."""
        B, V, D = x.shape
        H = self.heads
        q, k, v = self.qkv(self.norm1(x)).view(B, V, 3, H, D // H).permute(2, 0, 3, 1, 4).unbind(0)
        mask = None if view_mask is None else view_mask[:, None, None, :]
        a = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0
        )
        x = x + self.drop(self.out_proj(a.transpose(1, 2).reshape(B, V, D)))
        return x + self.ffn(self.norm2(x))


class ViewFusion(nn.Module):
    """Adds learned camera embeddings to the per-view features and fuses the views.

    Parameters
    ----------
    in_dim, dim
        Backbone feature width and the fused token width.
    n_cameras
        Canonical cameras (rows of the camera embedding).
    mode
        ``"attention"``: ``layers`` cross-view attention layers; ``"mean"``: no interaction between views
        (pooled by a masked mean); ``"concat"``: the pooled feature is a projection of the features placed in
        their canonical camera slots (zeros for missing cameras).
    """

    def __init__(
        self, in_dim: int, dim: int, n_cameras: int, mode: str, layers: int, heads: int, dropout: float
    ):
        super().__init__()
        self.mode = mode
        self.n_cameras = n_cameras
        self.proj = nn.Linear(in_dim, dim)
        self.camera_embedding = nn.Embedding(n_cameras, dim)
        nn.init.normal_(self.camera_embedding.weight, std=0.02)
        self.layers = nn.ModuleList(
            [CrossViewAttention(dim, heads, dropout) for _ in range(layers if mode == "attention" else 0)]
        )
        self.norm = nn.LayerNorm(dim)
        self.concat = nn.Linear(n_cameras * dim, dim) if mode == "concat" else None

    def forward(
        self, features: torch.Tensor, view_mask: torch.Tensor, camera_indices: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Fused view tokens ``(B, V, dim)`` and a pooled feature ``(B, dim)``."""
        cams = camera_indices.clamp_min(0)
        x = self.proj(features) + self.camera_embedding(cams)
        key_mask = None if not self.layers or bool(view_mask.all()) else view_mask  # no mask: nothing padded
        for layer in self.layers:
            x = layer(x, key_mask)
        x = self.norm(x)
        w = view_mask.to(x.dtype).unsqueeze(-1)
        if self.concat is not None:
            B, _, D = x.shape
            slots = x.new_zeros(B, self.n_cameras, D)
            index = cams.unsqueeze(-1).expand(-1, -1, D)
            slots = slots.scatter_add(1, index, x * w)
            pooled = self.concat(slots.reshape(B, -1))
        else:
            pooled = (x * w).sum(1) / w.sum(1).clamp_min(1.0)
        return x, pooled


class MLPBodyHead(nn.Module):
    """Pooled feature -> raw body vector (two hidden layers with LayerNorm, ReLU and dropout)."""

    def __init__(self, dim: int, hidden: int, out_dim: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, hidden),
            nn.LayerNorm(hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.LayerNorm(hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            _small_init(nn.Linear(hidden, out_dim)),
        )

    def forward(self, pooled: torch.Tensor, **_) -> tuple[torch.Tensor, list[torch.Tensor]]:
        z = self.net(pooled)
        return z, [z]


class DecoderLayer(nn.Module):
    """Query cross-attention to context tokens (pre-norm query, bias-free projections), then a feed-forward block.

    The context arrives normalised (:class:`TransformerBodyHead` normalises it once for every layer and
    iteration); its width ``ctx_dim`` may differ from the query's (the body head projects it to ``dim``). The keys and
    values ``W_k x_n``, ``W_v x_n`` of the ``N`` context tokens are never formed: with few queries (the body head
    has one) it is cheaper to move the projections to the query side, ``q_h · W_k,h x_n = (W_k,h^T q_h) · x_n`` and
    ``Σ_n p_n W_v,h x_n = W_v,h (Σ_n p_n x_n)``, which is the same attention (up to float rounding) at
    ``O(H·Q·N·D_ctx)`` instead of ``O(N·D_ctx·D)`` per layer.

    The products of the weight matrices on the query side are formed once per forward of the body head
    (:meth:`fold`, shared by the refinement iterations): ``A_h = W_k,h^T W_q,h / sqrt(d)`` maps the normalised
    query straight to the per-head vector that meets the context tokens, and ``M_h = W_p,h W_v,h`` maps the
    attention-weighted context back to the output projection. Each attention is then one matrix product in,
    two batched products over the context and one matrix product out; a step costs a fixed number of small
    operations, and on a CPU their number sets the time.

    Parameters
    ----------
    dim
        Query width ``D``.
    heads
        Attention heads (``D`` divisible by ``heads``).
    dropout
        Dropout on the attention weights and in the feed-forward block.
    ctx_dim
        Context token width (default ``dim``).
    """

    def __init__(self, dim: int, heads: int, dropout: float, ctx_dim: int | None = None) -> None:
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.ctx_dim = int(ctx_dim or dim)
        self.norm_q = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim, bias=False)
        self.kv = nn.Linear(self.ctx_dim, 2 * dim, bias=False)  # rows: keys then values, head-major in each
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = _feed_forward(dim, dropout)

    def fold(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Query-side weights ``A (H·Dc, D)`` (scale included) and ``M (D, H·Dc)`` (see the class docstring)."""
        D = self.q.out_features
        H, Dc = self.heads, self.ctx_dim
        d = D // H
        w_k, w_v = self.kv.weight.view(2, H, d, Dc).unbind(0)  # (H, d, Dc) each
        A = torch.bmm(w_k.transpose(1, 2), self.q.weight.view(H, d, D)) * (d**-0.5)  # (H, Dc, D)
        M = torch.bmm(self.proj.weight.view(D, H, d).transpose(0, 1), w_v)  # (H, D, Dc)
        return A.reshape(H * Dc, D), M.transpose(0, 1).reshape(D, H * Dc)

    def forward(
        self,
        q: torch.Tensor,
        ctx: torch.Tensor,
        ctx_pad: torch.Tensor | None,
        folded: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """``q (B, Q, dim)``; ``ctx (B, N, ctx_dim)`` normalised context; ``ctx_pad (B, N)`` True = padded, or
        None when no token is padded; ``folded``: :meth:`fold` of the current weights (formed here when None)."""
        B, Q, D = q.shape
        Dc = self.ctx_dim
        H = self.heads
        A, M = self.fold() if folded is None else folded
        u = F.linear(self.norm_q(q), A).view(B, Q, H, Dc)  # W_k,h^T q_h / sqrt(d)
        if Q > 1:
            u = u.transpose(1, 2)
        scores = torch.bmm(u.reshape(B, H * Q, Dc), ctx.transpose(1, 2))  # (B, H·Q, N)
        if ctx_pad is not None:
            scores = scores.masked_fill(ctx_pad[:, None, :], float("-inf"))
        p = torch.softmax(scores, dim=-1)
        if self.training and self.dropout > 0:
            p = F.dropout(p, self.dropout)
        c = torch.bmm(p, ctx)  # Σ_n p_n x_n, (B, H·Q, Dc)
        if Q > 1:
            c = c.view(B, H, Q, Dc).transpose(1, 2)
        q = q + F.linear(c.reshape(B, Q, H * Dc), M, self.proj.bias)  # W_p (W_v,h Σ_n p_n x_n) + b_p
        return q + self.ffn(self.norm2(q))


class TransformerBodyHead(nn.Module):
    """Transformer decoder with iterative error feedback (HMR/AniMer style) over every view's spatial tokens.

    The context is all views' spatial tokens (projected to the decoder width, plus a learned embedding per grid cell
    and the view's camera embedding) followed by the fused view tokens (projected), normalised once (one LayerNorm
    shared by all layers and iterations). Tokens of padded views are masked. One query token, built from the
    current raw parameter vector, attends to the context; each of ``iters`` iterations adds the decoded update to
    the raw vector (starting from zero = the rest pose). The context is never projected to keys and values: each
    layer applies its key and value projections on the query side (:class:`DecoderLayer`).

    Parameters
    ----------
    token_dim, fused_dim, dim
        Width of the backbone tokens, of the fused view tokens, and of the decoder (query).
    n_tokens, n_cameras
        Spatial tokens per view ``P`` and canonical cameras ``C``.
    out_dim
        Size of the raw body vector.
    """

    def __init__(
        self,
        token_dim: int,
        fused_dim: int,
        dim: int,
        n_tokens: int,
        n_cameras: int,
        out_dim: int,
        depth: int,
        heads: int,
        iters: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.iters = int(iters)
        self.token_proj = nn.Linear(token_dim, dim)
        self.fused_proj = nn.Linear(fused_dim, dim)
        self.context_norm = nn.LayerNorm(dim)
        self.position = nn.Parameter(torch.zeros(1, 1, n_tokens, dim))
        nn.init.normal_(self.position, std=0.02)
        self.camera_embedding = nn.Embedding(n_cameras, dim)
        nn.init.normal_(self.camera_embedding.weight, std=0.02)
        self.state_norm = nn.LayerNorm(out_dim)
        self.state_proj = _small_init(nn.Linear(out_dim, dim), gain=0.1)
        self.query = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.normal_(self.query, std=0.02)
        self.layers = nn.ModuleList([DecoderLayer(dim, heads, dropout) for _ in range(depth)])
        self.out_norm = nn.LayerNorm(dim)
        self.out = _small_init(nn.Linear(dim, out_dim))

    def context(
        self, tokens: torch.Tensor, fused: torch.Tensor, view_mask: torch.Tensor, camera_indices: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised context ``(B, V·P + V, dim)`` and its padding mask ``(B, V·P + V)`` (True = padded)."""
        B, V, P, _ = tokens.shape
        cams = camera_indices.clamp_min(0)
        spatial = self.token_proj(tokens) + self.position[:, :, :P] + self.camera_embedding(cams).unsqueeze(2)
        ctx = self.context_norm(torch.cat([spatial.reshape(B, V * P, -1), self.fused_proj(fused)], dim=1))
        pad = torch.cat([(~view_mask).unsqueeze(-1).expand(B, V, P).reshape(B, V * P), ~view_mask], dim=1)
        return ctx, pad

    def forward(
        self,
        pooled: torch.Tensor,
        *,
        tokens: torch.Tensor,
        fused: torch.Tensor,
        view_mask: torch.Tensor,
        camera_indices: torch.Tensor,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Raw body vector ``(B, out_dim)`` and its value after every iteration.

        ``tokens (B, V, P, token_dim)``, ``fused (B, V, fused_dim)``.
        """
        B = tokens.shape[0]
        ctx, pad = self.context(tokens, fused, view_mask, camera_indices)
        if bool(view_mask.all()):  # nothing to mask (the usual case)
            pad = None
        folded = [layer.fold() for layer in self.layers]  # shared by the iterations
        z = pooled.new_zeros(B, self.out.out_features)
        history = []
        for _ in range(self.iters):
            q = self.query.expand(B, 1, -1) + self.state_proj(self.state_norm(z)).unsqueeze(1)
            for layer, f in zip(self.layers, folded, strict=True):
                q = layer(q, ctx, pad, f)
            z = z + self.out(self.out_norm(q[:, 0]))
            history.append(z)
        return z, history


class CameraHeads(nn.Module):
    """Per-view camera outputs from the fused view tokens.

    ``"per_camera"``: one MLP per canonical camera, applied to the views of that camera; ``"shared"``: one MLP on
    the token concatenated with a learned camera embedding. The last layer starts near zero (no correction).
    """

    def __init__(
        self, dim: int, n_cameras: int, n_out: int, kind: str, hidden: int = 256, dropout: float = 0.1
    ):
        super().__init__()
        self.kind = kind
        self.n_out = n_out

        def mlp(in_dim: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Linear(in_dim, hidden),
                nn.LayerNorm(hidden),
                nn.ReLU(inplace=True),
                nn.Dropout(dropout),
                nn.Linear(hidden, hidden // 2),
                nn.LayerNorm(hidden // 2),
                nn.ReLU(inplace=True),
                _small_init(nn.Linear(hidden // 2, n_out)),
            )

        if kind == "per_camera":
            self.heads = nn.ModuleList([mlp(dim) for _ in range(n_cameras)])
        else:
            self.embedding = nn.Embedding(n_cameras, dim)
            nn.init.normal_(self.embedding.weight, std=0.02)
            self.head = mlp(2 * dim)

    def forward(
        self, fused: torch.Tensor, view_mask: torch.Tensor, camera_indices: torch.Tensor
    ) -> torch.Tensor:
        """Raw camera outputs ``(B, V, n_out)`` (zeros for padded views)."""
        B, V, _ = fused.shape
        if self.kind != "per_camera":
            cams = camera_indices.clamp_min(0)
            out = self.head(torch.cat([fused, self.embedding(cams)], dim=-1))
            return out * view_mask.unsqueeze(-1).to(out.dtype)
        if V == len(self.heads) and bool(view_mask.all()):
            order = camera_indices.argsort(dim=1)  # (B, C): the view slot of each camera
            if bool((camera_indices.gather(1, order) == torch.arange(V, device=order.device)).all()):
                return self._every_camera_once(fused, camera_indices, order)
        out = fused.new_zeros(B, V, self.n_out)
        for c, head in enumerate(self.heads):
            sel = (camera_indices == c) & view_mask
            if bool(sel.any()):
                out = out.index_put((sel,), head(fused[sel]).to(out.dtype))
        return out

    def _every_camera_once(
        self, fused: torch.Tensor, camera_indices: torch.Tensor, order: torch.Tensor
    ) -> torch.Tensor:
        """The per-camera heads as batched products when every sample has each camera exactly once (all views
        real): the views are gathered camera-major, each camera's weights are stacked, and the outputs are put
        back into the view slots. The same numbers as the loop over cameras (up to float rounding), in a fixed
        number of operations instead of a dozen per camera."""
        B, V, D = fused.shape
        x = fused.gather(1, order.unsqueeze(-1).expand(B, V, D)).transpose(0, 1)  # (C, B, D)
        mods = list(zip(*[list(h) for h in self.heads], strict=True))  # one tuple of C modules per position
        for group in mods:
            first = group[0]
            if isinstance(first, nn.Linear):
                w = torch.stack([m.weight for m in group])  # (C, out, in)
                b = torch.stack([m.bias for m in group]).unsqueeze(1)  # (C, 1, out)
                x = torch.baddbmm(b, x, w.transpose(1, 2))
            elif isinstance(first, nn.LayerNorm):
                g = torch.stack([m.weight for m in group]).unsqueeze(1)
                b = torch.stack([m.bias for m in group]).unsqueeze(1)
                x = torch.addcmul(b, F.layer_norm(x, first.normalized_shape, eps=first.eps), g)
            else:  # ReLU, Dropout: the same function for every camera
                x = first(x)
        out = x.transpose(0, 1)  # (B, C, n_out), camera-major
        return out.gather(1, camera_indices.unsqueeze(-1).expand(B, V, out.shape[-1]))


def resize_images(images: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear (antialiased) resize of ``(N, 3, H, W)`` images to ``size x size``; no-op when equal."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
