"""End-to-end fits on synthetic clips: accuracy, progress events, cancelling, init params, bad cameras, devices."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from _fitting_fixtures import synthetic_clip
from napari_smil_mv.cameras import Camera, CameraRig
from napari_smil_mv.fitting import FitConfig, FitData, FitEvent, StageConfig, fit, fit_iter


@pytest.fixture(scope="module")
def clip():
    return synthetic_clip(n_frames=10)


@pytest.fixture(scope="module")
def fitted(clip):
    events: list[FitEvent] = []
    result = fit(clip.model, clip.data, FitConfig(), progress=events.append)
    return result, events


def test_noise_free_clip_is_recovered(clip, fitted):
    result, _ = fitted
    err3d = np.linalg.norm(result.joints_3d - clip.joints, axis=-1)
    assert np.median(err3d) < 0.01 * clip.body_length  # target: < 1 % of the body length
    assert np.percentile(err3d, 95) < 0.02 * clip.body_length
    assert result.reprojection_median() < 0.5  # target: median reprojection < 0.5 px
    assert np.median(result.mesh_scale) == pytest.approx(40.0, rel=0.1)  # mm world, scale found by the init
    assert result.units == "mm" and result.camera_names == clip.data.camera_names
    assert all(c.used and c.consistent for c in result.cameras)
    T, J = clip.joints.shape[:2]
    assert (
        result.poses.shape == (T, J, 3) and result.trans.shape == (T, 3) and result.mesh_scale.shape == (T,)
    )
    assert result.projections_2d.shape == (4, T, J, 2) and result.reprojection_error.shape == (4, T, J)
    assert result.betas.shape == (clip.model.n_betas,)
    assert result.log_beta_scales.shape == (T, J, 3) and result.betas_trans.shape == (T, J, 3)
    assert set(result.loss_terms) >= {"reproj", "pose_prior", "smooth_acc", "total"}
    assert "camera cam1" in result.summary()


def test_fit_parameters_reproduce_the_fitted_joints(clip, fitted):
    """The exported parameters, fed to the full body model, give the keypoints the fit reports."""
    from napari_smil_mv.body import SMILModel

    result, _ = fitted
    out = SMILModel(clip.model, dtype=torch.float64)(
        torch.as_tensor(result.poses),
        betas=torch.as_tensor(result.betas).expand(len(result.poses), -1),
        log_beta_scales=torch.as_tensor(result.log_beta_scales),
        betas_trans=torch.as_tensor(result.betas_trans),
        trans=torch.as_tensor(result.trans),
        mesh_scale=torch.as_tensor(result.mesh_scale),
    )
    assert np.abs(out.joints.numpy() - result.joints_3d).max() < 1e-3 * clip.body_length


def test_progress_events(fitted):
    result, events = fitted
    assert events[0].stage == "init" and events[0].progress == 0.0 and "mesh scale" in events[0].message
    assert events[-1].stage == "done" and events[-1].result is result and events[-1].progress == 1.0
    stages = [e for e in events[1:-1]]
    assert {e.stage for e in stages} == {"global", "pose", "refine"}
    progress = [e.progress for e in events]
    assert progress == sorted(progress)
    assert all(np.isfinite(e.loss) and "reproj" in e.loss_terms for e in stages)
    pose = [e.loss for e in stages if e.stage == "pose"]
    assert pose[-1] < pose[0]
    refine = [e.loss for e in stages if e.stage == "refine"]
    assert refine[-1] < pose[-1] and refine == sorted(refine, reverse=True)  # LM only keeps decreasing steps
    assert result.history and result.history[-1]["stage"] == "refine"


def test_cancel_flag_and_consumer_stop(clip):
    flag = threading.Event()
    events = []
    for event in fit_iter(clip.model, clip.data, cancel=flag):
        events.append(event)
        if event.stage == "global":
            flag.set()
    assert events[-1].stage == "done" and events[-1].result.cancelled
    assert len([e for e in events if e.stage not in ("init", "done")]) == 1
    assert events[-1].result.joints_3d.shape == clip.joints.shape

    gen = fit_iter(clip.model, clip.data)
    assert next(gen).stage == "init"
    next(gen)
    gen.close()  # the consumer stops iterating: nothing else runs


def test_refine_from_given_parameters(clip):
    """Starting from (slightly perturbed) true parameters, a short refinement is accurate; no alignment runs."""
    rng = np.random.default_rng(0)
    init = dict(clip.params)
    init["poses"] = init["poses"] + rng.normal(scale=0.02, size=init["poses"].shape)
    cfg = FitConfig(stages=[StageConfig("refine", 40, ("global_orient", "trans", "body_pose", "betas"))])
    result = fit(clip.model, clip.data, cfg, init_params=init)
    assert result.init["aligned"] is False
    err3d = np.linalg.norm(result.joints_3d - clip.joints, axis=-1)
    assert np.median(err3d) < 0.005 * clip.body_length
    with pytest.raises(ValueError, match="unknown key"):
        fit(clip.model, clip.data, cfg, init_params={"pose": init["poses"]})


def _moved(cam: Camera, angle: float) -> Camera:
    return Camera(cam.name, cam.K, cam.dist, cam.rvec + np.array([0.0, angle, 0.0]), cam.tvec, cam.size)


def test_inconsistent_camera_is_detected_and_left_out():
    clip = synthetic_clip(n_frames=6, n_cameras=5)
    cams = list(clip.data.cameras)
    cams[2] = _moved(cams[2], 0.25)  # calibration of cam3 is wrong (rotated by ~14 degrees)
    rig = CameraRig(cams, "mm")
    data = FitData(
        clip.data.keypoints_2d, clip.data.weights, rig, None, units="mm", joint_names=clip.data.joint_names
    )
    cfg = FitConfig(
        stages=[
            StageConfig("global", 10, ("global_orient", "trans", "mesh_scale")),
            StageConfig(
                "pose", 80, ("global_orient", "trans", "mesh_scale", "body_pose", "log_beta_scales", "betas")
            ),
        ]
    )
    result = fit(clip.model, data, cfg)
    bad = result.cameras[2]
    assert not bad.consistent and not bad.used and "INCONSISTENT" in bad.note
    assert all(c.consistent and c.used for i, c in enumerate(result.cameras) if i != 2)
    assert bad.fit_median_px > 10 * result.reprojection_median()
    assert result.reprojection_median() < 1.0
    err3d = np.linalg.norm(result.joints_3d - clip.joints, axis=-1)
    assert np.median(err3d) < 0.01 * clip.body_length


def test_missing_keypoints_points3d_and_weights(clip):
    """Missing joints/frames in 2D, partial 3D points and zero-weight cameras are all handled."""
    kp = clip.data.keypoints_2d.copy()
    rng = np.random.default_rng(1)
    kp[rng.random(kp.shape[:-1]) < 0.3] = np.nan  # 30 % of the 2D keypoints missing
    kp[:, 4] = np.nan  # one frame without any 2D observation
    pts = clip.joints.copy()
    pts[:, ::2] = np.nan
    data = FitData(
        kp,
        np.ones(kp.shape[:-1]),
        clip.data.cameras,
        pts,
        units="mm",
        camera_weights=np.array([1.0, 1.0, 1.0, 0.0]),
    )
    cfg = FitConfig(weights={"points3d": 0.5})
    result = fit(clip.model, data, cfg)
    assert not result.cameras[3].used and result.cameras[3].consistent
    err3d = np.linalg.norm(result.joints_3d - clip.joints, axis=-1)
    assert np.median(err3d) < 0.02 * clip.body_length
    assert np.isnan(result.reprojection_error[:, 4]).all()
    assert np.isfinite(result.projections_2d[:, 4]).all()


def test_bad_inputs_raise_clear_errors(clip):
    with pytest.raises(ValueError, match="joints but the model has"):
        fit(
            clip.model,
            FitData(clip.data.keypoints_2d[:, :, :5], clip.data.weights[:, :, :5], clip.data.cameras),
        )
    empty = FitData(clip.data.keypoints_2d, np.zeros_like(clip.data.weights), clip.data.cameras)
    with pytest.raises(ValueError, match="no 2D keypoint is observed by the cameras"):
        fit(clip.model, empty)
    one_cam = FitData(clip.data.keypoints_2d[:1], clip.data.weights[:1], CameraRig([clip.data.cameras[0]]))
    with pytest.raises(ValueError, match="two cameras"):
        fit(clip.model, one_cam)


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_device_argument(device):
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    clip = synthetic_clip(n_frames=3)
    cfg = FitConfig(stages=[StageConfig("global", 5, ("global_orient", "trans", "mesh_scale"))])
    result = fit(clip.model, clip.data, cfg, device=device)
    assert isinstance(result.joints_3d, np.ndarray) and np.isfinite(result.joints_3d).all()


def test_metres_and_another_world_orientation():
    """Same clip in metres, upside-down-ish world frame: the similarity initialisation handles both."""
    clip = synthetic_clip(
        n_frames=5, world_scale=0.04, offset=(0.1, -0.05, 0.02), units="m", world_rotation=(2.0, 0.5, -1.0)
    )
    result = fit(clip.model, clip.data)
    err3d = np.linalg.norm(result.joints_3d - clip.joints, axis=-1)
    assert np.median(err3d) < 0.01 * clip.body_length and result.reprojection_median() < 0.5
    assert np.median(result.mesh_scale) == pytest.approx(0.04, rel=0.1) and result.units == "m"


def test_noise_and_gross_outliers(clip):
    """1 px noise plus 5 % of the keypoints thrown up to 150 px away: the robust loss ignores the outliers."""
    rng = np.random.default_rng(0)
    kp = clip.data.keypoints_2d + rng.normal(scale=1.0, size=clip.data.keypoints_2d.shape)
    outliers = rng.random(kp.shape[:-1]) < 0.05
    kp[outliers] += rng.uniform(-150, 150, size=(outliers.sum(), 2))
    data = FitData(kp, np.ones(kp.shape[:-1]), clip.data.cameras, units="mm")
    result = fit(clip.model, data)
    err3d = np.linalg.norm(result.joints_3d - clip.joints, axis=-1)
    assert np.median(err3d) < 0.01 * clip.body_length
    clean = np.linalg.norm(result.projections_2d - clip.data.keypoints_2d, axis=-1)
    assert np.median(clean) < 1.0  # closer to the true keypoints than the noise
