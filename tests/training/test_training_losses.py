"""Loss terms, joint importance, the config file (JSON/TOML, validation, curriculum) and the validation metrics'
mapping back to the original images."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from napari_smil_mv.dataset import MultiViewDataset
from napari_smil_mv.training import (
    TrainConfig,
    ValidationMetrics,
    keypoint_2d_loss,
    keypoint_3d_loss,
    load_config,
)
from napari_smil_mv.training.data import OriginalCameras, collate, to_device
from napari_smil_mv.training.losses import joint_weight_vector, regularisers


def test_keypoint_2d_loss_is_visibility_weighted_per_view_then_by_total_visibility():
    g = torch.Generator().manual_seed(0)
    pred = torch.rand(3, 2, 5, 2, generator=g) * 64
    target = torch.rand(3, 2, 5, 2, generator=g) * 64
    w = torch.rand(3, 2, 5, generator=g)
    w[:, 1, 3:] = 0
    loss, L_v, W_v = keypoint_2d_loss(pred, target, w, 64.0)
    err = ((pred - target) / 64).pow(2).sum(-1) / 2
    for v in range(2):
        assert torch.allclose(L_v[v], (w[:, v] * err[:, v]).sum() / w[:, v].sum())
        assert torch.allclose(W_v[v], w[:, v].sum())
    assert torch.allclose(loss, (L_v * W_v).sum() / W_v.sum())
    assert torch.allclose(loss, (w * err).sum() / w.sum())  # the same as one global weighted mean
    # a view with no visible keypoint contributes nothing and gives finite gradients
    pred.requires_grad_(True)
    w0 = w.clone()
    w0[:, 1] = 0
    l0, _, _ = keypoint_2d_loss(pred, target, w0, 64.0)
    l0.backward()
    assert torch.isfinite(pred.grad).all() and float(pred.grad[:, 1].abs().sum()) == 0.0
    zero, _, _ = keypoint_2d_loss(pred, target, torch.zeros_like(w), 64.0)
    assert float(zero) == 0.0


def test_keypoint_3d_loss_and_joint_importance():
    pred = torch.zeros(2, 4, 3)
    target = torch.zeros(2, 4, 3)
    target[:, 1] = torch.tensor([0.3, 0.0, 0.0])
    w = torch.ones(2, 4)
    assert torch.isclose(keypoint_3d_loss(pred, target, w, 0.3), torch.tensor(1.0 / 3 / 4))
    jw = joint_weight_vector(["a", "b", "c", "d"], {"a": 10.0}, ["b"])
    assert jw.tolist() == [10.0, 0.0, 1.0, 1.0]
    assert float(keypoint_3d_loss(pred, target, w * jw, 0.3)) == 0.0  # the only wrong joint is ignored
    with pytest.raises(KeyError, match="nose"):
        joint_weight_vector(["a"], {"nose": 2.0}, [])


def test_regularisers_vanish_at_rest_and_grow_with_angle():
    eye6 = torch.tensor([1.0, 0, 0, 0, 1, 0])
    out = {
        "joint_rot": eye6.expand(1, 3, 6).clone(),
        "log_beta_scales": torch.zeros(1, 4, 3),
        "betas_trans": torch.zeros(1, 4, 3),
    }
    r = regularisers(out)
    assert all(float(v) == 0.0 for v in r.values())
    theta = 0.3
    out["joint_rot"][0, 0] = torch.tensor([np.cos(theta), -np.sin(theta), 0, np.sin(theta), np.cos(theta), 0])
    expected = 2 * (1 - np.cos(theta)) / 3  # mean over 3 joints of ||R - I||^2 / 2
    assert np.isclose(float(regularisers(out)["joint_angle"]), expected, rtol=1e-5)


def test_config_files_defaults_validation_and_curriculum(tmp_path):
    (tmp_path / "cfg.toml").write_text(
        'output_dir = "run"\nepochs = 3\n[data]\ndataset = "data/x.h5"\nbatch_size = 4\n'
        '[model]\nbackbone = "resnet18"\nfusion = "mean"\n[optim]\nlr = 1e-3\n'
        "[loss.weights]\nkeypoint_3d = 2.0\n[loss.curriculum.2]\njoint_angle = 0.5\n"
    )
    cfg = load_config(tmp_path / "cfg.toml")
    assert cfg.data.dataset == str(tmp_path / "data" / "x.h5") and cfg.output_dir == str(tmp_path / "run")
    assert cfg.network_spec().backbone == "resnet18" and cfg.optim.lr == 1e-3
    assert cfg.loss.weights_at(1)["joint_angle"] == 1e-3 and cfg.loss.weights_at(2)["joint_angle"] == 0.5
    assert cfg.loss.weights_at(0)["keypoint_3d"] == 2.0 and cfg.loss.weights_at(0)["keypoint_2d"] == 1.0
    (tmp_path / "cfg.json").write_text(json.dumps(cfg.to_dict()))
    again = load_config(tmp_path / "cfg.json")
    assert again.to_dict() == cfg.to_dict()
    bad = [
        ({"data": {"dataset": "x"}, "optim": {"lrr": 1}}, "optim: unknown key"),
        ({"data": {"dataset": "x", "batch_size": "8"}}, "data.batch_size must be an integer"),
        ({"data": {"dataset": "x"}, "model": {"fusion": "max"}}, "model.fusion"),
        ({"data": {"dataset": "x"}, "model": {"hidden": 3}}, "model: unknown key"),
        ({"data": {"dataset": "x"}, "loss": {"weights": {"kp2d": 1}}}, "loss.weights: unknown loss term"),
        ({"data": {}}, "data.dataset is required"),
        ({"data": {"dataset": "x"}, "amp": "fp8"}, "amp must be"),
    ]
    for data, message in bad:
        with pytest.raises(ValueError, match=message):
            TrainConfig.from_dict(data)
    (tmp_path / "broken.toml").write_text("epochs = [")
    with pytest.raises(ValueError, match="broken.toml"):
        load_config(tmp_path / "broken.toml")


def test_validation_metrics_are_zero_for_the_reference_3d_points(synthetic_dataset):
    """The stored 3D points projected through the original cameras land on the annotations mapped back from the
    crops (the synthetic session is noise-free), so the metric pipeline has no offset."""
    p = synthetic_dataset()
    ds = MultiViewDataset(p, random_view_sampling=False)
    x, y = collate([ds[i] for i in range(3)])
    b = to_device(x, y, torch.device("cpu"), ds.info.image_size)
    m = ValidationMetrics(
        ds.get_canonical_camera_order(), ds.info.image_size, ds.world_scale, OriginalCameras.read(p)
    )
    j = b["kp3d"].double().numpy()
    kp = b["kp2d"].double().numpy()
    m.add(
        x["sample_index"].numpy(),
        x["camera_indices"].numpy(),
        j,
        kp,
        b["vis"].numpy(),
        j,
        b["kp3d_valid"].numpy(),
        kp,
    )
    out = m.compute()
    assert out["pixel_frame"] == "original" and out["n_samples"] == 3 and out["n_keypoints"] > 100
    assert out["px_median"] < 1e-3 and out["pck_5px"] == 1.0 and out["joint_error_3d_median"] == 0.0
    shifted = ValidationMetrics(ds.get_canonical_camera_order(), ds.info.image_size, ds.world_scale, None)
    shifted.add(
        x["sample_index"].numpy(),
        x["camera_indices"].numpy(),
        j,
        kp,
        b["vis"].numpy(),
        j,
        b["kp3d_valid"].numpy(),
        kp + np.array([3.0, 4.0]),
    )
    assert shifted.pixel_frame == "crop" and np.isclose(shifted.compute()["px_median"], 5.0)
    ds.close()
