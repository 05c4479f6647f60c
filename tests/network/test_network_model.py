"""The network: backbones (shapes, pretrained files), identity initialisation, bounded camera corrections, masks,
permutation of views, gradient flow to per-camera heads, the translation anchor and the projection."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from napari_smil_mv.body import SMILModel, load_smil_model, rotation_6d_to_matrix
from napari_smil_mv.cameras import project_points_torch
from napari_smil_mv.network import (
    IDENTITY_6D,
    MultiViewRegressor,
    NetworkSpec,
    ResNet,
    SmallCNN,
    body_joints,
    build_backbone,
    calibrated_cameras,
    load_pretrained,
    project,
    ray_anchor,
)

S = 32


@pytest.fixture(scope="module")
def model_data():
    return load_smil_model(None)


def _spec(model_data, **kw) -> NetworkSpec:
    base = dict(
        camera_names=["a", "b", "c"],
        image_size=S,
        joint_names=list(model_data.joint_names),
        n_betas=model_data.n_betas,
        camera_mode="calibrated",
        mesh_scale_value=0.06,
        body_length=0.1,
        hidden_dim=32,
        fusion_heads=2,
        decoder_heads=2,
        decoder_depth=1,
        ief_iters=2,
        dropout=0.0,
    )
    base.update(kw)
    return NetworkSpec(**base)


def _cameras(B: int, V: int):
    """Three cameras 0.5 m from the origin looking at it (training units)."""
    K = torch.tensor([[40.0, 0, (S - 1) / 2], [0, 40.0, (S - 1) / 2], [0, 0, 1]]).expand(B, V, 3, 3).clone()
    R = torch.zeros(B, V, 3, 3)
    t = torch.zeros(B, V, 3)
    for v in range(V):
        a = 2 * math.pi * v / V
        c, s = math.cos(a), math.sin(a)
        R[:, v] = torch.tensor([[c, 0, -s], [0, 1, 0], [s, 0, c]])  # rotation about y
        t[:, v] = torch.tensor([0.0, 0.0, 0.5])
    return K, R, t


def _inputs(B=2, V=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(B, V, 3, S, S, generator=g)
    mask = torch.ones(B, V, dtype=torch.bool)
    idx = torch.arange(V).expand(B, V).clone()
    return images, mask, idx, *_cameras(B, V)


def test_backbones_shapes_and_normalisation_buffers():
    x = torch.rand(2, 3, 64, 64)
    small = SmallCNN()
    out = small(x)
    assert out.global_features.shape == (2, 256) and out.tokens.shape == (2, 16, 256)
    assert "pixel_mean" in small.state_dict() and "pixel_std" in small.state_dict()
    r18 = build_backbone("resnet18")
    o = r18(x)
    assert o.global_features.shape == (2, 512) and o.tokens.shape == (2, 4, 512)
    r50 = ResNet("resnet50")
    n = sum(p.numel() for p in r50.parameters())
    assert 23.0e6 < n < 24.0e6  # ResNet-50 without its classifier: 23.5 M
    with pytest.raises(ValueError, match="unknown backbone"):
        build_backbone("resnet5")
    with pytest.raises(ValueError):
        small(torch.rand(2, 1, 64, 64))


def test_pretrained_weights_only_from_a_file(tmp_path):
    src = ResNet("resnet18")
    with torch.no_grad():
        for p in src.parameters():
            p.normal_()
    # torchvision-style keys with a prefix and a classifier that must be ignored
    blob = {f"module.{k}": v for k, v in src.state_dict().items() if not k.startswith("pixel_")}
    blob["module.fc.weight"] = torch.zeros(1000, 512)
    torch.save({"state_dict": blob}, tmp_path / "r18.pth")
    dst = build_backbone("resnet18", pretrained=tmp_path / "r18.pth")
    for k, v in src.state_dict().items():
        assert torch.equal(v, dst.state_dict()[k]), k
    with pytest.raises(ValueError, match="does not fit"):
        load_pretrained(SmallCNN(), tmp_path / "r18.pth")
    with pytest.raises(FileNotFoundError):
        build_backbone("small_cnn", pretrained=tmp_path / "missing.pth")


def test_optional_backbone_packages_fail_clearly():
    try:
        import timm  # noqa: F401

        pytest.skip("timm is importable here")
    except Exception:
        pass
    with pytest.raises(ValueError, match="timm"):
        build_backbone("timm:resnet50")


def test_initial_prediction_is_identity_pose_and_calibration(model_data):
    torch.manual_seed(0)
    net = MultiViewRegressor(_spec(model_data)).eval()
    images, mask, idx, K, R, t = _inputs()
    out = net(images, mask, idx, K, R, t)
    eye = torch.eye(3)
    assert torch.allclose(rotation_6d_to_matrix(out["joint_rot"]), eye.expand(2, 41, 3, 3), atol=0.05)
    assert torch.allclose(rotation_6d_to_matrix(out["global_rot"]), eye.expand(2, 3, 3), atol=0.05)
    assert torch.allclose(out["joint_rot"][..., :6], torch.tensor(IDENTITY_6D).expand(2, 41, 6), atol=0.05)
    assert torch.allclose(out["R"], R, atol=1e-2) and torch.allclose(out["K"], K, rtol=1e-2)
    # the body starts at the anchor (here the common look-at point, the origin) with the initial mesh scale
    assert torch.allclose(out["trans"], torch.zeros(2, 3), atol=0.02)
    assert torch.allclose(out["mesh_scale"], torch.full((2, 1), 0.06), rtol=0.05)


def test_calibrated_corrections_are_bounded():
    K0, R0, t0 = _cameras(1, 3)
    for sign in (1.0, -1.0):
        raw = torch.full((1, 3, 9), 100.0 * sign)
        K, R, t = calibrated_cameras(raw, K0, R0, t0, S, 5.0, 0.05, 0.1, 0.02)
        rel = R @ R0.transpose(-1, -2)
        angle = torch.rad2deg(torch.acos(((rel.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2).clamp(-1, 1)))
        assert float(angle.max()) <= 5.0 * math.sqrt(3) + 1e-3
        assert float(angle.min()) > 1.0  # saturated corrections really move the camera
        assert torch.all((t - t0).abs() <= 0.05 * t0.norm(dim=-1, keepdim=True) + 1e-6)
        ratio = K[..., 0, 0] / K0[..., 0, 0]
        assert torch.all((ratio <= 1.1 + 1e-6) & (ratio >= 1 / 1.1 - 1e-6))
        assert torch.all((K[..., :2, 2] - K0[..., :2, 2]).abs() <= 0.02 * S + 1e-5)


def test_masked_views_do_not_matter_and_view_order_is_irrelevant(model_data):
    torch.manual_seed(1)
    for fusion, head in [("attention", "transformer"), ("mean", "mlp"), ("concat", "transformer")]:
        net = MultiViewRegressor(_spec(model_data, fusion=fusion, body_head=head)).eval()
        images, mask, idx, K, R, t = _inputs()
        mask[1, 2] = False
        idx[1, 2] = -1
        a = net(images, mask, idx, K, R, t)
        images2 = images.clone()
        images2[1, 2] = torch.rand(3, S, S)  # content of a padded slot
        b = net(images2, mask, idx, K, R, t)
        assert torch.allclose(a["global_rot"], b["global_rot"]) and torch.allclose(a["trans"], b["trans"])
        perm = torch.tensor([2, 0, 1])  # sample 0: same views in another order, cameras follow their views
        c = net(images[:, perm], mask[:, perm], idx[:, perm], K[:, perm], R[:, perm], t[:, perm])
        assert torch.allclose(a["joint_rot"][0], c["joint_rot"][0], atol=1e-5), fusion
        assert torch.allclose(a["R"][0, perm], c["R"][0], atol=1e-5)


def test_loss_on_one_view_reaches_only_that_cameras_head(model_data):
    torch.manual_seed(2)
    net = MultiViewRegressor(_spec(model_data, camera_head="per_camera"))
    smil = SMILModel(model_data)
    images, mask, idx, K, R, t = _inputs(B=1)
    out = net(images, mask, idx, K, R, t)
    px, _ = project(body_joints(smil, out), out["K"], out["R"], out["t"])
    px[:, 0].pow(2).mean().backward()  # view 0 (camera 0) only
    head0, head1 = net.camera_heads.heads[0], net.camera_heads.heads[1]
    assert head0[-1].weight.grad is not None and head0[-1].weight.grad.abs().sum() > 0
    g1 = head1[-1].weight.grad  # camera 1's head: no gradient (None or exactly zero)
    assert g1 is None or float(g1.abs().sum()) == 0.0
    assert net.body_head.out.weight.grad.abs().sum() > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.backbone.parameters())


def test_shared_camera_head_and_absolute_cameras(model_data):
    net = MultiViewRegressor(_spec(model_data, camera_head="shared", camera_mode="absolute"))
    images, mask, idx, *_ = _inputs()
    out = net(images, mask, idx)
    assert out["K"].shape == (2, 3, 3, 3) and out["camera_raw"].shape == (2, 3, 10)
    assert torch.all(out["t"][..., 2] > 0)  # cameras start in front of the body
    smil = SMILModel(model_data)
    px, depth = project(body_joints(smil, out), out["K"], out["R"], out["t"])
    assert torch.isfinite(px).all() and torch.all(depth > 0)


def test_ray_anchor_and_projection():
    K, R, t = _cameras(1, 3)
    target = torch.tensor([0.05, -0.02, 0.01])
    t = t - torch.einsum("bvij,j->bvi", R, target)  # cameras moved so they look at `target`
    mask = torch.ones(1, 3, dtype=torch.bool)
    assert torch.allclose(ray_anchor(K, R, t, mask, S)[0], target, atol=1e-4)
    one = torch.tensor([[True, False, False]])
    a1 = ray_anchor(K, R, t, one, S)[0]  # one view: the point at distance |t| on its central ray
    assert torch.allclose(a1, target, atol=0.01)
    pts = torch.randn(1, 5, 3) * 0.05
    dist = torch.tensor([0.1, -0.05, 0.001, 0.002, 0.01]).expand(1, 3, 5)
    px, z = project(pts, K, R, t, dist)
    ref = project_points_torch(pts.unsqueeze(1).expand(-1, 3, -1, -1), K, R, t, dist)
    assert torch.allclose(px, ref) and z.shape == (1, 3, 5)


def test_spec_validation_and_round_trip(model_data):
    spec = _spec(model_data)
    assert NetworkSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ValueError, match="model.fusion"):
        _spec(model_data, fusion="max").validate()
    with pytest.raises(ValueError, match="unknown key"):
        NetworkSpec.from_dict({"backbonee": "x"})
    with pytest.raises(ValueError, match="resolved"):
        MultiViewRegressor(_spec(model_data, camera_mode="auto"))
    net = MultiViewRegressor(_spec(model_data, input_size=48)).eval()
    images, mask, idx, K, R, t = _inputs()
    assert np.isfinite(net(images, mask, idx, K, R, t)["trans"].detach().numpy()).all()


def test_hidden_dim_auto_is_sized_to_the_backbone_and_stored_resolved(model_data):
    from napari_smil_mv.training import TrainConfig

    assert NetworkSpec().hidden_dim == "auto"
    assert NetworkSpec(backbone="small_cnn").head_width == 128
    assert NetworkSpec(backbone="resnet50").head_width == 256
    spec = _spec(model_data, hidden_dim="auto", fusion_heads=4, decoder_heads=4, backbone="small_cnn")
    net = MultiViewRegressor(spec)
    assert spec.hidden_dim == 128 and net.spec.to_dict()["hidden_dim"] == 128  # what a checkpoint stores
    assert net.fusion.proj.out_features == 128
    assert NetworkSpec.from_dict(net.spec.to_dict()).hidden_dim == 128
    with pytest.raises(ValueError, match="hidden_dim"):
        NetworkSpec(hidden_dim="wide").validate()
    with pytest.raises(ValueError, match="hidden_dim"):
        NetworkSpec(hidden_dim=100, fusion_heads=3).validate()
    data = {"data": {"dataset": "x.h5"}}
    assert TrainConfig.from_dict({**data, "model": {"hidden_dim": "auto"}}).network_spec().head_width == 128
    with pytest.raises(ValueError, match="hidden_dim"):
        TrainConfig.from_dict({**data, "model": {"hidden_dim": 12.5}})
