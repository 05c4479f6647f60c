"""The fast paths of the training step give the same numbers as the straightforward computations they replace:
the decoder's query-side attention, the packed cross-view attention and the joints-only body model."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from _sample_data import SHARED
from napari_smil_mv.body import SMILModel, load_smil_model
from napari_smil_mv.network import body_joints
from napari_smil_mv.network.blocks import CrossViewAttention, DecoderLayer
from napari_smil_mv.network.multiview_net import _joints_model

MODELS = SHARED / "models"


def _reference_decoder(layer: DecoderLayer, q, ctx, pad):
    """The textbook layer: keys and values of every context token, then scaled dot-product attention."""
    B, Q, D = q.shape
    H = layer.heads

    def split(x):
        return x.view(B, x.shape[1], H, D // H).transpose(1, 2)

    k, v = layer.kv(ctx).chunk(2, dim=-1)
    qh = split(layer.q(layer.norm_q(q)))
    a = F.scaled_dot_product_attention(qh, split(k), split(v), attn_mask=(~pad)[:, None, None, :])
    q = q + layer.proj(a.transpose(1, 2).reshape(B, Q, D))
    return q + layer.ffn(layer.norm2(q))


@pytest.mark.parametrize(("queries", "ctx_dim"), [(1, 32), (3, 32), (1, 48)])
def test_decoder_query_side_attention_matches_keys_and_values(queries, ctx_dim):
    torch.manual_seed(0)
    layer = DecoderLayer(32, 4, dropout=0.0, ctx_dim=ctx_dim).eval()
    B, N = 3, 11
    q = torch.randn(B, queries, 32, dtype=torch.float64)
    ctx = torch.randn(B, N, ctx_dim, dtype=torch.float64)
    pad = torch.zeros(B, N, dtype=torch.bool)
    pad[0, 5:] = True
    pad[2, :3] = True
    layer = layer.double()
    fast = layer(q, ctx, pad)
    ref = _reference_decoder(layer, q, ctx, pad)
    torch.testing.assert_close(fast, ref, rtol=1e-10, atol=1e-12)
    # padded tokens have no influence
    ctx2 = ctx.clone()
    ctx2[0, 5:] = 100.0
    torch.testing.assert_close(layer(q, ctx2, pad)[0], fast[0], rtol=1e-10, atol=1e-12)


def test_cross_view_attention_matches_multihead_attention():
    """The packed layer equals the textbook one: ``nn.MultiheadAttention`` with the same weights and key mask."""
    torch.manual_seed(1)
    D, H, B, V = 32, 4, 3, 5
    layer = CrossViewAttention(D, H, dropout=0.0).double().eval()
    mha = torch.nn.MultiheadAttention(D, H, batch_first=True).double().eval()
    with torch.no_grad():
        mha.in_proj_weight.copy_(layer.qkv.weight)
        mha.in_proj_bias.copy_(layer.qkv.bias)
        mha.out_proj.weight.copy_(layer.out_proj.weight)
        mha.out_proj.bias.copy_(layer.out_proj.bias)
    x = torch.randn(B, V, D, dtype=torch.float64)
    mask = torch.ones(B, V, dtype=torch.bool)
    mask[0, 3:] = False
    mask[2, 0] = False
    h = layer.norm1(x)
    a, _ = mha(h, h, h, key_padding_mask=~mask, need_weights=False)
    ref = x + a
    ref = ref + layer.ffn(layer.norm2(ref))
    torch.testing.assert_close(layer(x, mask), ref, rtol=1e-10, atol=1e-12)
    # a padded view changes nothing in the real views
    x2 = x.clone()
    x2[0, 3:] = 50.0
    torch.testing.assert_close(layer(x2, mask)[0, :3], layer(x, mask)[0, :3], rtol=1e-10, atol=1e-12)


def _models():
    yield "demo", load_smil_model(None)
    for name in ("SMILy_Mouse_static_joints.pkl", "SMILy_STICK.pkl"):
        if (MODELS / name).exists():
            yield name, load_smil_model(MODELS / name)


@pytest.mark.parametrize("which", ["demo", "SMILy_Mouse_static_joints.pkl", "SMILy_STICK.pkl"])
def test_joints_only_body_matches_the_full_model(which):
    models = dict(_models())
    if which not in models:
        pytest.skip(f"{which} not in {MODELS}")
    data = models[which]
    smil = SMILModel(data)
    J, K = data.n_joints, data.n_betas
    g = torch.Generator().manual_seed(3)
    B = 4
    eye6 = torch.tensor([1.0, 0, 0, 0, 1, 0])
    params = {
        "global_rot": eye6 + 0.5 * torch.randn(B, 6, generator=g),
        "joint_rot": eye6 + 0.3 * torch.randn(B, J - 1, 6, generator=g),
        "betas": 0.5 * torch.randn(B, K, generator=g),
        "log_beta_scales": 0.1 * torch.randn(B, J, 3, generator=g),
        "betas_trans": 0.02 * torch.randn(B, J, 3, generator=g),
        "trans": torch.randn(B, 3, generator=g),
        "mesh_scale": torch.full((B, 1), 1.7),
    }
    uses_fast_path = _joints_model(smil, torch.device("cpu"), torch.float32) is not None
    assert uses_fast_path == (which != "SMILy_STICK.pkl")  # STICK's regressor reads half the mesh
    fast = body_joints(smil, params)
    full, verts = body_joints(smil, params, vertices=True)
    assert verts.shape == (B, data.v_template.shape[0], 3)
    torch.testing.assert_close(fast, full, rtol=0, atol=1e-5)
    # gradients agree too
    z = params["joint_rot"].clone().requires_grad_(True)
    grads = []
    for use_vertices in (False, True):
        out = body_joints(smil, {**params, "joint_rot": z}, vertices=use_vertices)
        j = out[0] if use_vertices else out
        (gz,) = torch.autograd.grad(j.pow(2).sum(), z)
        grads.append(gz)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-4)
