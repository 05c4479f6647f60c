"""Building blocks of the fit: Umeyama alignment, joints-only kinematics, losses, config, data, triangulation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fixtures.body import golden, shared_model
from napari_smil_mv.body import SMILModel, axis_angle_to_matrix, load_smil_model
from napari_smil_mv.cameras import ring_of_cameras, triangulate
from napari_smil_mv.fitting import (
    FitConfig,
    FitData,
    JointsModel,
    StageConfig,
    align_rest_pose,
    keypoint_weights,
    triangulate_weighted,
    umeyama,
)
from napari_smil_mv.fitting.losses import robust, symmetric_pairs, temporal_smoothness
from napari_smil_mv.fitting.params import BodyParams


def _random_rotation(rng) -> np.ndarray:
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    return q * np.sign(np.linalg.det(q))


def test_umeyama_recovers_a_similarity_transform():
    rng = np.random.default_rng(0)
    src = rng.normal(size=(12, 3))
    R, t, s = _random_rotation(rng), rng.normal(size=3) * 100, 37.5
    dst = s * src @ R.T + t
    R2, t2, s2 = umeyama(src, dst)
    assert np.allclose(R2, R, atol=1e-9) and np.allclose(t2, t, atol=1e-6) and s2 == pytest.approx(s)
    assert np.linalg.det(R2) == pytest.approx(1.0)
    R3, _, s3 = umeyama(src, dst, with_scale=False)
    assert s3 == 1.0 and np.allclose(R3, R, atol=1e-9)  # rotation is scale-independent
    w = np.ones(12)
    w[0] = 0.0
    dst_bad = dst.copy()
    dst_bad[0] += 1e4  # a zero-weight outlier changes nothing
    R4, t4, s4 = umeyama(src, dst_bad, w)
    assert np.allclose(R4, R, atol=1e-9) and s4 == pytest.approx(s)
    with pytest.raises(ValueError, match="at least 3"):
        umeyama(src[:2], dst[:2])


def test_align_rest_pose_any_units_missing_joints_and_frames():
    rng = np.random.default_rng(1)
    rest = rng.normal(size=(8, 3))
    rest -= rest[0]
    T = 6
    rots = np.stack([_random_rotation(rng) for _ in range(T)])
    trans = rng.normal(size=(T, 3)) * 500.0
    pts = np.einsum("tij,nj->tni", rots, 1000.0 * rest) + trans[:, None]  # "mm" world, scale 1000
    pts[1, :6] = np.nan  # frame 1: only 2 joints -> filled from a neighbour
    pts[3, 2] = np.nan  # a missing joint
    pts[4, 5] += 5000.0  # one gross outlier, trimmed
    init = align_rest_pose(rest, pts)
    assert init.mesh_scale == pytest.approx(1000.0, rel=1e-6)
    assert list(init.valid) == [True, False, True, True, True, True]
    for t in (0, 2, 3, 4, 5):
        assert np.allclose(init.rotations[t], rots[t], atol=1e-6)
        assert np.allclose(init.trans[t], trans[t], atol=1e-3)
    assert np.allclose(init.rotations[1], init.rotations[0]) or np.allclose(
        init.rotations[1], init.rotations[2]
    )
    with pytest.raises(ValueError, match="cannot initialise"):
        align_rest_pose(rest, np.full((2, 8, 3), np.nan))


@pytest.mark.parametrize("source", [None, "SMILy_Mouse_static_joints", "SMILy_STICK"])
def test_joints_model_matches_the_body_model(source):
    data = load_smil_model(None if source is None else shared_model(source))
    torch.manual_seed(0)
    B, J, K = 4, data.n_joints, data.n_betas
    kw = {"dtype": torch.float64}
    pose = 0.4 * torch.randn(B, J, 3, **kw)
    args = {
        "betas": torch.randn(B, K, **kw),
        "log_beta_scales": 0.2 * torch.randn(B, J, 3, **kw),
        "betas_trans": 0.05 * torch.randn(B, J, 3, **kw),
        "trans": torch.randn(B, 3, **kw),
        "mesh_scale": torch.rand(B, **kw) + 0.5,
    }
    expected = SMILModel(data, dtype=torch.float64)(pose, **args).joints
    got = JointsModel.from_model_data(data, dtype=torch.float64)(axis_angle_to_matrix(pose), **args)
    assert torch.allclose(got, expected, atol=1e-10)


def test_joints_model_reproduces_golden_mouse_joints():
    ref = golden("SMILy_Mouse_static_joints")
    data = load_smil_model(shared_model("SMILy_Mouse_static_joints"))
    jm = JointsModel.from_model_data(data, dtype=torch.float64)
    t = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in ref.items()}
    joints = jm(
        axis_angle_to_matrix(t["poses"]),
        t["betas_per_frame"],
        t["log_beta_scales"],
        t["betas_trans"],
        t["trans"],
        t["mesh_scale"],
    )
    assert np.abs(joints.numpy() - ref["joints"]).max() < 1e-4


def test_robust_losses_and_smoothness():
    x = torch.tensor([0.0, 0.25, 1.0, 100.0])
    assert torch.allclose(robust(x, "l2"), x)
    g = robust(x, "gmof")
    assert g[-1] < 1.0 and g[1] == pytest.approx(0.2)
    h = robust(x, "huber")
    assert h[1] == pytest.approx(0.25) and h[-1] == pytest.approx(19.0)
    assert torch.allclose(robust(x, "cauchy"), torch.log1p(x))
    with pytest.raises(ValueError, match="unknown robust loss"):
        robust(x, "tukey")
    joints = torch.zeros(4, 2, 3)
    joints[:, :, 0] = torch.tensor([0.0, 1.0, 2.0, 3.0])[:, None]  # constant velocity: no acceleration
    vel, acc = temporal_smoothness(joints, torch.ones(3), scale=1.0)
    assert vel == pytest.approx(1.0) and acc == pytest.approx(0.0)
    _, acc_gap = temporal_smoothness(
        joints, torch.tensor([1.0, 0.0, 1.0]), scale=1.0
    )  # a gap breaks the chain
    assert acc_gap == 0.0
    assert (4, 5) in symmetric_pairs(["root", "a", "b", "c", "leg_l_1", "leg_r_1", "Ear_L"])


def test_fit_config_round_trip_and_validation():
    cfg = FitConfig(weights={"pose_prior": 0.5}, stages=[StageConfig("only", 3, ("trans",), "adam", 0.1)])
    assert cfg.weights["pose_prior"] == 0.5 and cfg.weights["reproj"] == 1.0  # defaults merged
    again = FitConfig.from_dict(cfg.to_dict())
    assert again == cfg
    import json

    assert FitConfig.from_dict(json.loads(json.dumps(FitConfig().to_dict()))) == FitConfig()
    with pytest.raises(ValueError, match="unknown key"):
        FitConfig.from_dict({"weightz": {}})
    with pytest.raises(ValueError, match="unknown loss term"):
        FitConfig(weights={"reprojection": 1.0})
    with pytest.raises(ValueError, match="unknown parameter group"):
        FitConfig(stages=[StageConfig("s", 1, ("pose",))])
    with pytest.raises(ValueError, match="optimiser"):
        FitConfig(stages=[StageConfig("s", 1, ("trans",), optimiser="sgd")])
    merged = cfg.stage_weights(FitConfig().stages[0])
    assert merged["smooth_acc"] == 0.0


def test_fit_data_validates_and_cleans():
    rig = ring_of_cameras(3)
    kp = np.zeros((3, 5, 4, 2))
    kp[0, 0, 0] = np.nan
    w = np.ones((3, 5, 4))
    w[1, 1, 1] = np.nan
    data = FitData(kp, w, rig, units="mm")
    assert data.weights[0, 0, 0] == 0 and data.weights[1, 1, 1] == 0
    assert list(data.frame_indices) == [0, 1, 2, 3, 4] and data.camera_names == rig.names
    sub = data.select_frames(slice(1, 3))
    assert sub.n_frames == 2 and list(sub.frame_indices) == [1, 2]
    with pytest.raises(ValueError, match="3 cameras"):
        FitData(kp[:2], w[:2], rig)
    with pytest.raises(ValueError, match="weights"):
        FitData(kp, w[:, :2], rig)
    with pytest.raises(ValueError, match="points_3d"):
        FitData(kp, w, rig, points_3d=np.zeros((5, 3, 3)))
    arrays = {
        "K": np.stack([c.K for c in rig]),
        "rvec": np.stack([c.rvec for c in rig]),
        "tvec": torch.as_tensor(np.stack([c.tvec for c in rig])),
        "size": [c.size for c in rig],
    }
    from_arrays = FitData(kp, w, arrays)
    assert from_arrays.cameras.names == ["cam0", "cam1", "cam2"]
    assert np.allclose(from_arrays.cameras[1].R, rig[1].R)


def test_weighted_triangulation_matches_the_camera_module():
    rig = ring_of_cameras(4, dist=[-0.2, 0.05, 0.001, -0.001, 0.0])
    rng = np.random.default_rng(2)
    X = rng.normal(size=(7, 3)) * 0.3
    kp = rig.project(X)
    kp[0, 3] = np.nan
    got = triangulate_weighted(kp, np.ones(kp.shape[:-1]), rig)
    assert np.allclose(got, X, atol=1e-8)
    assert np.allclose(got, triangulate(kp, rig), atol=1e-6)
    w = np.zeros(kp.shape[:-1])
    w[0] = 1.0
    assert np.isnan(triangulate_weighted(kp, w, rig)).all()  # one camera cannot triangulate


def test_keypoint_weights_clip_scores():
    scores = np.array([0.5, 2.0, np.nan, 0.9])
    visible = np.array([True, True, True, False])
    assert list(keypoint_weights(scores, visible)) == [0.5, 1.0, 1.0, 0.0]


def test_body_params_round_trip_the_initial_values():
    rng = np.random.default_rng(3)
    T, J, K = 3, 5, 2
    aa = torch.as_tensor(rng.normal(size=(T, J, 3)) * 0.5)
    rot = axis_angle_to_matrix(aa).numpy()
    cov = np.array([[2.0, 0.3], [0.3, 0.5]])
    p = BodyParams(
        T,
        J,
        K,
        rot,
        rng.normal(size=(T, 3)),
        42.0,
        10.0,
        betas=np.array([0.4, -0.2]),
        log_beta_scales=np.full((J, 3), 0.1),
        shape_mean=np.array([0.1, 0.0]),
        shape_cov=cov,
        dtype=torch.float64,
    )
    out = p.as_numpy()
    assert np.allclose(axis_angle_to_matrix(torch.as_tensor(out["poses"])).numpy(), rot, atol=1e-9)
    assert np.allclose(out["betas"], [0.4, -0.2]) and np.allclose(out["mesh_scale"], 42.0)
    assert out["log_beta_scales"].shape == (T, J, 3) and np.allclose(out["log_beta_scales"], 0.1)
    chosen = p.tensors(("trans", "betas"))
    assert len(chosen) == 2 and all(t.requires_grad for t in chosen) and not p.root6d.requires_grad
