"""The shortcuts of the training step (issue 14) give the same numbers as the general paths they bypass."""

from __future__ import annotations

import math

import pytest
import torch

from napari_smil_mv.network.blocks import CameraHeads, DecoderLayer, ViewFusion
from napari_smil_mv.training.losses import weighted_total


def _per_view_reference(heads: CameraHeads, fused, cams):
    B, V, _ = fused.shape
    return torch.stack(
        [torch.stack([heads.heads[int(cams[b, v])](fused[b, v]) for v in range(V)]) for b in range(B)]
    )


def test_camera_heads_batched_path_matches_one_head_per_view():
    torch.manual_seed(0)
    B, C, D = 5, 4, 16
    heads = CameraHeads(D, C, 9, "per_camera", hidden=D, dropout=0.1).double().eval()
    for layer in (heads.heads[1][-1], heads.heads[3][0]):  # non-trivial, different weights per camera
        torch.nn.init.normal_(layer.weight)
    fused = torch.randn(B, C, D, dtype=torch.float64, requires_grad=True)
    cams = torch.stack([torch.randperm(C) for _ in range(B)])  # shuffled view order, every camera once
    mask = torch.ones(B, C, dtype=torch.bool)
    fast = heads(fused, mask, cams)
    ref = _per_view_reference(heads, fused, cams)
    torch.testing.assert_close(fast, ref, rtol=1e-10, atol=1e-12)
    # gradients: a loss on one view reaches only that view's camera head
    heads.zero_grad()
    fast[2, 1].sum().backward()
    touched = [
        any(p.grad is not None and p.grad.abs().sum() > 0 for p in h.parameters()) for h in heads.heads
    ]
    assert touched == [c == int(cams[2, 1]) for c in range(C)]


def test_camera_heads_with_a_missing_view_use_the_general_path():
    torch.manual_seed(1)
    B, C, D = 3, 4, 16
    heads = CameraHeads(D, C, 9, "per_camera", hidden=D).double().eval()
    fused = torch.randn(B, C, D, dtype=torch.float64)
    cams = torch.stack([torch.randperm(C) for _ in range(B)])
    mask = torch.ones(B, C, dtype=torch.bool)
    mask[1, 2] = False
    out = heads(fused, mask, cams)
    ref = _per_view_reference(heads, fused, cams) * mask.unsqueeze(-1)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-12)
    # a sample with a camera twice (not a permutation) is handled by the general path as well
    cams2 = cams.clone()
    cams2[0] = torch.tensor([0, 0, 1, 2])
    torch.testing.assert_close(
        heads(fused, torch.ones_like(mask), cams2),
        _per_view_reference(heads, fused, cams2),
        rtol=1e-10,
        atol=1e-12,
    )


def test_no_mask_when_every_view_is_real_gives_the_masked_result():
    torch.manual_seed(2)
    fusion = ViewFusion(24, 16, 4, "attention", 2, 4, 0.0).double().eval()
    feats = torch.randn(3, 4, 24, dtype=torch.float64)
    cams = torch.arange(4).expand(3, 4)
    mask = torch.ones(3, 4, dtype=torch.bool)
    x, pooled = fusion(feats, mask, cams)
    h = fusion.proj(feats) + fusion.camera_embedding(cams)
    for layer in fusion.layers:
        h = layer(h, mask)  # the masked path with nothing masked
    torch.testing.assert_close(x, fusion.norm(h), rtol=1e-10, atol=1e-12)
    layer = DecoderLayer(16, 4, 0.0).double().eval()
    q = torch.randn(3, 1, 16, dtype=torch.float64)
    ctx = torch.randn(3, 7, 16, dtype=torch.float64)
    torch.testing.assert_close(
        layer(q, ctx, None), layer(q, ctx, torch.zeros(3, 7, dtype=torch.bool)), rtol=1e-10, atol=1e-12
    )


def test_weighted_total_is_the_weighted_sum_and_skips_zero_weights():
    terms = {"a": torch.tensor(2.0, requires_grad=True), "b": torch.tensor(3.0), "c": torch.tensor(math.nan)}
    total = weighted_total(terms, {"a": 0.5, "b": 2.0, "c": 0.0})
    assert float(total.detach()) == pytest.approx(7.0)  # the NaN term has weight 0: left out, not NaN
    total.backward()
    assert float(terms["a"].grad) == pytest.approx(0.5)
    assert float(weighted_total(terms, {}).detach()) == 0.0


@pytest.mark.parametrize("scale", [1e-3, 1e3])
def test_clip_grad_norm_matches_torch(scale):
    from napari_smil_mv.training.setup import clip_grad_norm

    torch.manual_seed(3)
    a = [
        torch.nn.Parameter(torch.randn(5, 3)),
        torch.nn.Parameter(torch.randn(7)),
        torch.nn.Parameter(torch.randn(2)),
    ]
    b = [torch.nn.Parameter(p.detach().clone()) for p in a]
    for pa, pb in zip(a[:2], b[:2], strict=True):  # the last one has no gradient
        g = torch.randn_like(pa) * scale
        pa.grad, pb.grad = g.clone(), g.clone()
    n_ours = clip_grad_norm(a, 1.0)
    n_torch = torch.nn.utils.clip_grad_norm_(b, 1.0, foreach=True)
    torch.testing.assert_close(n_ours, n_torch)
    for pa, pb in zip(a[:2], b[:2], strict=True):
        torch.testing.assert_close(pa.grad, pb.grad, rtol=1e-6, atol=0)
    assert a[2].grad is None


def test_default_network_keeps_the_checkpoint_layout():
    """The shortcuts change no parameter: the default network's state dict (names and shapes) is the one that
    checkpoints written before them hold, so those checkpoints load with ``strict=True``. (Checked once by hand:
    a checkpoint trained with the previous code predicts the same numbers, to 1e-6 relative, with all views real
    and with a view missing.)"""
    import hashlib

    from napari_smil_mv.body import load_smil_model
    from napari_smil_mv.network import MultiViewRegressor, NetworkSpec

    data = load_smil_model(None)
    spec = NetworkSpec(
        camera_names=["a", "b", "c", "d"],
        image_size=64,
        joint_names=list(data.joint_names),
        n_betas=data.n_betas,
        camera_mode="calibrated",
    )
    sd = MultiViewRegressor(spec, load_pretrained=False).state_dict()
    text = "\n".join(f"{k} {tuple(v.shape)}" for k, v in sorted(sd.items()))
    assert len(sd) == 148
    assert hashlib.sha256(text.encode()).hexdigest() == (
        "42d10a952ebc0215e12a5f21940432e6dc06a6c0800ccf467d0e2613fe9162c4"
    ), "the parameter layout changed: checkpoints written before will not load"
