"""The verdict of a fit (good / poor / failed against the DLT residual), stored in the results, and fit --strict."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from fixtures.fitting import sparse_renumbered_clip
from napari_smil_mv.cli import main
from napari_smil_mv.fitting import FitConfig, fit
from napari_smil_mv.fitting.quality import QualityThresholds, assess_fit
from napari_smil_mv.results import read_results, write_results


@pytest.fixture(scope="module")
def sparse():
    clip, _ = sparse_renumbered_clip()
    return clip


def test_verdict_on_sparse_renumbered_frames(sparse, tmp_path):
    forced = FitConfig(smooth_loss="l2", smooth_detect_breaks=False, weights={"smooth_acc": 1e3})
    bad = fit(sparse.model, sparse.data, forced)
    good = fit(sparse.model, sparse.data, FitConfig())
    # measured: forced smoothing 100.9 px vs DLT 0.48 px (failed, every frame); default 0.49 px (good)
    assert bad.quality.verdict == "failed" and bad.quality.ratio > 5
    assert bad.quality.frame_counts()["failed"] > 0.5 * sparse.data.n_frames
    assert "verdict: FAILED" in bad.summary()
    q = good.quality
    assert q.verdict == "good" and q.ratio <= 2 and q.frame_counts()["good"] == sparse.data.n_frames
    assert "verdict: GOOD" in good.summary() and "worst frames" in good.summary()
    # the DLT residual and the fit error are measured on the same keypoints
    C, T, J = good.reprojection_error.shape
    assert q.dlt_residual.shape == (C, T, J) and q.compared.sum() > 0
    assert np.isnan(q.dlt_residual[~q.compared]).all() and np.isfinite(q.dlt_residual[q.compared]).all()
    assert q.frame_fit_px.shape == (T,) and q.camera_fit_px.shape == (C,) and q.joint_fit_px.shape == (J,)
    # stored in the results file, /quality
    path = write_results(good.to_results(sparse.data, sparse.model), tmp_path / "q.smilmv.h5")
    back = read_results(path)
    assert back.quality["attrs"]["verdict"] == "good"
    assert np.allclose(back.quality["arrays"]["frame_fit_px"], q.frame_fit_px, equal_nan=True)
    assert back.quality["arrays"]["frame_verdict"].tolist() == q.frame_verdict.tolist()
    with h5py.File(path, "r") as f:
        assert f["quality"].attrs["verdict"] == "good"
        assert f["quality/reprojection_error"].shape == (C, T, J)  # link to /reprojection_error
        assert f["quality/dlt_residual"].shape == (C, T, J)


def test_verdict_thresholds_and_floor():
    rng = np.random.default_rng(0)
    from fixtures.fitting import synthetic_clip

    clip = synthetic_clip(n_frames=4)
    d = clip.data
    used = np.ones(d.n_cameras, dtype=bool)
    exact = np.zeros(d.weights.shape)
    q = assess_fit(exact + 0.3, d.keypoints_2d, d.weights, d.cameras, used)
    assert q.verdict == "good" and q.dlt_px < 1e-6 and q.ratio == pytest.approx(0.3)  # 1 px floor
    q = assess_fit(exact + 3.0, d.keypoints_2d, d.weights, d.cameras, used)
    assert q.verdict == "poor"
    q = assess_fit(exact + rng.uniform(6, 9, exact.shape), d.keypoints_2d, d.weights, d.cameras, used)
    assert q.verdict == "failed" and (q.frame_verdict == 2).all()
    strict = QualityThresholds(good_ratio=0.2)
    assert assess_fit(exact + 0.3, d.keypoints_2d, d.weights, d.cameras, used, strict).verdict == "poor"


def test_fit_strict_exits_3_on_a_failed_fit(tmp_path, capsys):
    from napari_smil_mv.demo.synthetic_session import write_synthetic_session

    session = write_synthetic_session(
        tmp_path / "demo", n_cameras=3, n_frames=40, image_size=(160, 120), seed=0
    )
    frozen = tmp_path / "frozen.json"  # a velocity prior so strong that the body cannot walk
    frozen.write_text(json.dumps({"smooth_detect_breaks": False, "weights": {"smooth_vel": 1e8}}))
    out = tmp_path / "f.smilmv.h5"
    args = ["fit", str(session), "-o", str(out), "--config", str(frozen), "--quiet"]
    assert main([*args, "--strict"]) == 3
    text = capsys.readouterr().out
    assert "verdict: FAILED" in text and "exit status 3" in text
    assert read_results(out).quality["attrs"]["verdict"] == "failed"  # the file is still written
    assert main([*args, "--overwrite"]) == 0  # without --strict a failed fit is reported, not an error
    ok = tmp_path / "ok.smilmv.h5"
    assert main(["fit", str(session), "-o", str(ok), "--quiet", "--strict"]) == 0
    assert "verdict: GOOD" in capsys.readouterr().out


def test_per_joint_errors_in_summary_and_evaluate(sparse):
    from napari_smil_mv.results import evaluate

    result = fit(sparse.model, sparse.data, FitConfig())
    assert "per joint, fit median/p90 px (DLT median)" in result.summary()
    results = result.to_results(sparse.data, sparse.model)
    m = evaluate(results, {"joints3d": sparse.joints, "joint_names": sparse.model.joint_names})
    per2d, per3d = m["reprojection_px_per_joint"], m["joint_error_3d_per_joint"]
    assert set(per2d) == set(sparse.model.joint_names)  # every joint observed in this synthetic clip
    assert all(v["median"] <= v["p90"] and v["n"] > 0 for v in per2d.values())
    worst = max(per3d.values(), key=lambda v: v["median"])["median"]
    assert worst < 0.02 * sparse.body_length  # no joint chain left behind on clean synthetic data
    # the per-joint medians agree with the quality arrays of the fit
    j = 3
    assert per2d[sparse.model.joint_names[j]]["median"] == pytest.approx(result.quality.joint_fit_px[j])
