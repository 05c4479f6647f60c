"""``evaluate``: a session the results were not made from is refused (or warned about); the ground-truth block
measures the reprojection against the noise-free keypoints, and each block says what it measures against."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from napari_smil_mv.cli import main
from napari_smil_mv.results import evaluate, read_results


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(session s1 with 1 px keypoint noise, its fit, another session s2 with the same cameras and frames)."""
    from napari_smil_mv.sessions.synthetic import write_synthetic_session

    root = tmp_path_factory.mktemp("eval")
    kw = {"n_cameras": 3, "n_frames": 6, "image_size": (160, 120), "noise_px": 1.0}
    s1 = write_synthetic_session(root / "s1", seed=0, **kw)
    s2 = write_synthetic_session(root / "s2", seed=1, **kw)
    out = root / "fit.smilmv.h5"
    assert main(["fit", str(s1), "-o", str(out), "--quiet", "--iterations", "5"]) == 0
    return s1, out, s2


def run_cli(argv, capsys) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_evaluate_refuses_another_sessions_results(fitted, capsys):
    s1, res, s2 = fitted
    rc, out, err = run_cli(["evaluate", res, "--session", s2], capsys)
    assert rc == 2 and out == ""
    [line] = [x for x in err.splitlines() if "error:" in x]
    assert "'s1'" in line and "'s2'" in line and "2D keypoints differ" in line and "--allow-mismatch" in line
    rc, out, err = run_cli(["evaluate", res, "--session", s2, "--allow-mismatch", "--json"], capsys)
    assert rc == 0 and "warning:" in err and "'s2'" in err
    metrics = json.loads(out)
    assert "'s2'" in metrics["warnings"][0] and metrics["session"]["reference"] == "session s2"


def test_evaluate_own_session_is_quiet_and_a_renamed_copy_only_warns(fitted, tmp_path, capsys):
    s1, res, _ = fitted
    rc, out, err = run_cli(["evaluate", res, "--session", s1, "--json"], capsys)
    assert rc == 0 and "warning" not in err and "warnings" not in json.loads(out)
    copy = Path(shutil.copytree(s1, tmp_path / "renamed"))
    rc, out, err = run_cli(["evaluate", res, "--session", copy, "--json"], capsys)
    assert rc == 0  # same keypoints under another name: a warning, not a refusal
    assert "warning:" in err and "its name is 'renamed'" in err and "differ" not in err


def test_ground_truth_reprojection_is_measured_against_the_clean_keypoints(fitted, capsys):
    s1, res_path, _ = fitted
    res = read_results(res_path)
    gt = evaluate(res, s1)
    stored = evaluate(res)
    assert "noise-free" in gt["reprojection_reference"] and "stored" in stored["reprojection_reference"]
    # independent reference: the clean projections of the visible nodes, straight from ground_truth.npz
    with np.load(s1 / "ground_truth.npz") as npz:
        clean, visible = npz["keypoints_2d_clean"], npz["visible"]
        nodes, cams = list(npz["node_names"]), list(npz["camera_names"])
        frames = list(npz["frame_indices"])
    errors = []
    for c, cam in enumerate(res.camera_names):
        g = cams.index(cam)
        for t, f in enumerate(res.frame_indices):
            for j, node in enumerate(res.data_names):
                if node and visible[g, frames.index(f), nodes.index(node)]:
                    ref = clean[g, frames.index(f), nodes.index(node)]
                    errors.append(np.linalg.norm(res.projections_2d[c, t, j] - ref))
    assert gt["n_keypoints"] == len(errors)
    assert gt["reprojection_px_median"] == pytest.approx(np.median(errors), rel=1e-9)
    # with 1 px label noise the fit is closer to the truth than to the labels it was fitted to
    assert gt["reprojection_px_median"] < 0.8 * stored["reprojection_px_median"]
    rc, out, _ = run_cli(["evaluate", res_path, "--ground-truth", s1], capsys)
    assert rc == 0
    assert "against the 2D keypoints stored in the results" in out
    assert "against the noise-free 2D keypoints of the ground truth" in out
