"""Results file round trip, metrics and exports (mesh npz/obj, animation npz, joints CSV, per-camera .slp)."""

from __future__ import annotations

import csv

import h5py
import numpy as np
import pytest
import torch

from fixtures.fitting import synthetic_clip
from napari_smil_mv.body import SMILModel
from napari_smil_mv.body.animation import load_animation
from napari_smil_mv.fitting import FitConfig, StageConfig, fit
from napari_smil_mv.results import (
    Results,
    body_length,
    evaluate,
    export_animation,
    export_joints_csv,
    export_meshes,
    export_slp,
    pck,
    read_results,
    reprojection_summary,
    write_results,
)
from napari_smil_mv.results.metrics import axial_joints


@pytest.fixture(scope="module")
def fitted():
    clip = synthetic_clip(n_frames=4)
    data = clip.data
    data.data_names = [n if i % 3 == 0 else "" for i, n in enumerate(clip.model.joint_names)]
    data.videos = ["/nowhere/cam1.mp4", None, "/nowhere/cam3.mp4", None]
    data.frame_indices = np.array([10, 11, 12, 14])
    cfg = FitConfig(
        stages=[
            StageConfig("global", 10, ("global_orient", "trans", "mesh_scale")),
            StageConfig("pose", 60, ("global_orient", "trans", "body_pose", "betas")),
        ]
    )
    res = fit(clip.model, data, cfg)
    results = res.to_results(data, clip.model, provenance={"command": "test"})
    return clip, res, results


def test_write_read_round_trip(fitted, tmp_path):
    clip, res, results = fitted
    path = write_results(results, tmp_path / "out.smilmv.h5")
    back = read_results(path)
    for key in (
        "poses",
        "betas",
        "trans",
        "mesh_scale",
        "log_beta_scales",
        "betas_trans",
        "joints_3d",
        "projections_2d",
        "reprojection_error",
        "observed_2d",
        "observed_weights",
        "frame_indices",
    ):
        assert np.array_equal(getattr(back, key), getattr(results, key), equal_nan=True), key
    assert back.joint_names == list(clip.model.joint_names) and back.data_names == results.data_names
    assert back.model_sha256 == clip.model.sha256 and back.model_source == "<demo model>"
    assert back.units == "mm" and back.fps == 30.0 and back.videos == results.videos
    assert back.camera_names == results.camera_names and np.array_equal(back.camera_used, results.camera_used)
    for a, b in zip(back.cameras, results.cameras, strict=True):
        assert a.isclose(b) and a.size == b.size
    assert back.provenance["producer"] == "napari-smil-mv fit" and back.provenance["command"] == "test"
    assert FitConfig.from_dict(back.provenance["config"]) == res.config
    with h5py.File(path) as f:
        assert f.attrs["schema_version"] == 1 and "stages" in f.attrs["config_json"]
        assert f["body/poses"].shape == results.poses.shape and f["cameras/cam_000"].attrs["name"] == "cam1"
    with pytest.raises(FileExistsError):
        write_results(results, path)
    write_results(results, path, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.smilmv.h5"]  # no temporary file left


def test_read_rejects_other_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_results(tmp_path / "missing.smilmv.h5")
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.attrs["format"] = "something else"
    with pytest.raises(ValueError, match="not a napari-smil-mv results file"):
        read_results(other)
    (tmp_path / "text.smilmv.h5").write_text("hello")
    with pytest.raises(ValueError, match="not an HDF5"):
        read_results(tmp_path / "text.smilmv.h5")


def test_results_validate_shapes(fitted):
    _, _, results = fitted
    with pytest.raises(ValueError, match="joints_3d"):
        Results(**{**results.__dict__, "joints_3d": results.joints_3d[:, :3]})


def test_metric_functions():
    errors = np.array([[[1.0, 4.0, np.nan]], [[6.0, 20.0, 2.0]]])
    assert pck(errors, 5.0) == pytest.approx(3 / 5)
    s = reprojection_summary(errors, ["a", "b"], used=np.array([True, False]))
    assert s["reprojection_px_median"] == 2.5 and s["reprojection_px_per_camera"] == {"a": 2.5, "b": 6.0}
    assert s["n_keypoints"] == 2 and s["cameras_used"] == ["a"]
    joints = np.array([[[0, 0, 0], [3, 4, 0], [np.nan] * 3]], dtype=float)
    assert body_length(joints) == 5.0
    # Axial joints only: the left/right pair (a leg) is left out, unpaired names stay.
    names = ["spine", "head", "leg_L", "leg_R", "tail_long"]
    assert axial_joints(names).tolist() == [True, True, False, False, True]
    pts = np.array([[0, 0, 0], [2, 0, 0], [0, 9, 0], [0, -9, 0], [-1, 0, 0]], dtype=float)
    assert body_length(pts, names) == 3.0 and body_length(pts) == 18.0
    assert body_length(pts[:3], ["a_L", "a_R", "b"]) == body_length(pts[:3])  # < 2 axial joints: all


def test_evaluate_stored_and_ground_truth(fitted):
    clip, _, results = fitted
    m = evaluate(results)
    assert m["reprojection_px_median"] < 1.0 and m["pck_5px"] > 0.95 and m["units"] == "mm"
    assert set(m["reprojection_px_per_camera"]) == {"cam1", "cam2", "cam3", "cam4"}
    gt = {
        "joints3d": clip.joints,
        "frame_indices": results.frame_indices,
        "joint_names": clip.model.joint_names,
    }
    g = evaluate(results, gt)
    names = list(clip.model.joint_names)
    axial = axial_joints(names)
    assert g["body_length"] == pytest.approx(body_length(clip.joints, names))
    assert g["body_length_joints"] == [n for n, a in zip(names, axial, strict=True) if a]
    assert "leg_front_l_claw" not in g["body_length_joints"] and "head" in g["body_length_joints"]
    assert g["body_length"] < body_length(clip.joints)  # appendages excluded
    # Observed joints (mapped to a data keypoint) vs all model joints, stated explicitly.
    mapped = [n for n, d in zip(names, results.data_names, strict=True) if d]
    assert g["joints_compared"] == mapped and g["n_joints_observed"] == len(mapped)
    assert g["n_joints_all"] == len(names) > len(mapped)
    err = np.linalg.norm(results.joints_3d - clip.joints, axis=-1)
    assert g["joint_error_3d_median"] == pytest.approx(np.median(err[:, results.mapped]))
    assert g["joint_error_3d_median_all_joints"] == pytest.approx(np.median(err))
    assert g["joint_error_3d_median_unobserved_joints"] == pytest.approx(np.median(err[:, ~results.mapped]))
    assert g["joint_error_3d_relative"] == pytest.approx(g["joint_error_3d_median"] / g["body_length"])
    assert g["joint_error_3d_relative_all_joints"] < 0.01 and g["joint_error_3d_relative"] < 0.01
    assert "axial" in g["body_length_definition"]
    shifted = dict(gt, frame_indices=results.frame_indices + 1000)
    with pytest.raises(ValueError, match="shares no frame"):
        evaluate(results, shifted)


def test_export_animation_and_meshes(fitted, tmp_path):
    clip, _, results = fitted
    anim_path = export_animation(results, tmp_path / "anim.npz")
    with np.load(anim_path) as z:
        assert {
            "poses",
            "trans",
            "betas",
            "betas_per_frame",
            "log_beta_scales",
            "betas_trans",
            "mesh_scale",
            "fps",
        } <= set(z.files)
        assert z["betas"].shape == (clip.model.n_betas,) and z["mesh_scale"].shape == (4,)
    anim = load_animation(anim_path, clip.model)  # readable by the body module, and gives the same joints
    out = SMILModel(clip.model, dtype=torch.float64)(
        anim.poses,
        betas=anim.betas,
        trans=anim.trans,
        log_beta_scales=anim.log_beta_scales,
        betas_trans=anim.betas_trans,
        mesh_scale=anim.mesh_scale,
    )
    assert np.abs(out.joints.numpy() - results.joints_3d).max() < 1e-3 * body_length(results.joints_3d)

    (npz,) = export_meshes(results, clip.model, tmp_path / "meshes.npz")
    with np.load(npz) as z:
        assert z["vertices"].shape == (4, clip.model.n_vertices, 3)
        assert np.abs(z["joints"] - results.joints_3d).max() < 1e-3 * body_length(results.joints_3d)
    objs = export_meshes(results, clip.model, tmp_path / "obj")
    assert [p.name for p in objs] == [
        "frame_000010.obj",
        "frame_000011.obj",
        "frame_000012.obj",
        "frame_000014.obj",
    ]
    text = objs[0].read_text().splitlines()
    assert sum(line.startswith("v ") for line in text) == clip.model.n_vertices
    with pytest.raises(FileExistsError):
        export_meshes(results, clip.model, tmp_path / "obj")
    from napari_smil_mv.body import load_smil_model

    other = load_smil_model(None)
    other.sha256 = "0" * 64
    with pytest.raises(ValueError, match="not the model of the results"):
        export_meshes(results, other, tmp_path / "x.npz")


def test_export_joints_csv(fitted, tmp_path):
    _, _, results = fitted
    path = export_joints_csv(results, tmp_path / "joints.csv")
    rows = list(csv.DictReader(open(path)))
    assert len(rows) == results.n_frames * results.n_joints
    assert rows[0].keys() == {"frame", "joint", "x", "y", "z", "units"}
    assert (
        rows[0]["frame"] == "10" and rows[0]["joint"] == results.joint_names[0] and rows[0]["units"] == "mm"
    )
    assert float(rows[1]["y"]) == pytest.approx(results.joints_3d[0, 1, 1], rel=1e-5)


def test_export_slp(fitted, tmp_path):
    import sleap_io as sio

    _, _, results = fitted
    paths = export_slp(results, tmp_path / "slp")
    assert [p.name for p in paths] == ["cam1.slp", "cam2.slp", "cam3.slp", "cam4.slp"]
    labels = sio.load_slp(str(paths[0]))
    mapped = [n for n, d in zip(results.joint_names, results.data_names, strict=True) if d]
    assert labels.skeleton.node_names == mapped and len(labels.skeleton.edges) > 0
    assert labels.video.filename == "/nowhere/cam1.mp4"  # missing video: name kept, not opened
    assert [lf.frame_idx for lf in labels] == [10, 11, 12, 14]
    inst = labels[0].instances[0]
    assert isinstance(inst, sio.PredictedInstance)
    cols = [results.joint_names.index(n) for n in mapped]
    assert np.allclose(inst.numpy(), results.projections_2d[0, 0, cols], atol=1e-4)
    assert sio.load_slp(str(paths[1])).video.filename == "cam2.mp4"
