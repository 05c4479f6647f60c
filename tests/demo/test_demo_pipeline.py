"""``napari-smil-mv demo`` with its fitting part: synthetic session, fit, evaluation, fit previews (small and fast)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

pytest.importorskip("torch")

from napari_smil_mv.cli import main  # noqa: E402
from napari_smil_mv.demo.pipeline import run_demo  # noqa: E402


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo_fit") / "out"
    assert (
        main(["demo", str(out), "--frames", "4", "--cameras", "2", "--session-frames", "6", "--no-network"])
        == 0
    )
    return out


def test_demo_fits_the_synthetic_session(demo_dir, capsys):
    from napari_smil_mv.results import read_results

    summary = json.loads((demo_dir / "summary.json").read_text())
    fit = summary["fit"]
    assert fit["cameras"] == ["cam1", "cam2"] and fit["n_frames"] == 6 and fit["noise_px"] == 0.7
    for name in (
        "session/",
        "fit.smilmv.h5",
        "evaluation.json",
        "fit_preview_cam1.png",
        "fit_preview_cam2.png",
    ):
        assert name in summary["files"], name
        assert (demo_dir / name).exists()
    for name in ("calibration.toml", "meshes.npz", "preview_cam1.png"):  # what the demo wrote before
        assert (demo_dir / name).is_file()
    assert (demo_dir / "session" / "ground_truth.npz").is_file()
    assert "fit.smilmv.h5" in (demo_dir / "README.txt").read_text()
    results = read_results(demo_dir / "fit.smilmv.h5")
    assert results.n_frames == 6 and results.units == "mm" and results.model_source == "<demo model>"
    gt = fit["ground_truth"]
    assert 0 < gt["joint_error_3d_relative"] < 0.06  # a few % of the body length with 0.7 px noise, 6 frames
    assert gt["reprojection_px_median"] < 3.0


def test_evaluation_json_is_what_evaluate_prints(demo_dir, capsys):
    stored = json.loads((demo_dir / "evaluation.json").read_text())
    capsys.readouterr()
    assert (
        main(
            [
                "evaluate",
                str(demo_dir / "fit.smilmv.h5"),
                "--ground-truth",
                str(demo_dir / "session"),
                "--json",
            ]
        )
        == 0
    )
    printed = json.loads(capsys.readouterr().out)
    for key in ("joint_error_3d_median", "joint_error_3d_relative", "body_length", "reprojection_px_median"):
        assert printed["ground_truth"][key] == pytest.approx(stored["ground_truth"][key])
    assert stored["ground_truth"]["reference"] == "ground truth"


def test_fit_previews_show_the_mesh_on_the_insect(demo_dir):
    from napari_smil_mv.rendering import preview_header_height
    from napari_smil_mv.sessions.ground_truth import read_ground_truth

    truth = read_ground_truth(demo_dir / "session" / "ground_truth.npz")
    mid = json.loads((demo_dir / "summary.json").read_text())["fit"]["preview_frame"]
    for c, cam in enumerate(truth.camera_names):
        img = cv2.imread(str(demo_dir / f"fit_preview_{cam}.png"))[:, :, ::-1].astype(int)
        top = preview_header_height(640)  # title band above, legend below the image
        assert img.shape[1:] == (640, 3) and img.shape[0] > top + 480
        img = img[top : top + 480]
        blue = (img[:, :, 2] - img[:, :, 0] > 60) & (img[:, :, 2] > 120)  # the translucent blue mesh
        assert blue.sum() > 300
        nodes = truth["keypoints_2d_clean"][c, mid]  # where the insect really is
        hull = np.zeros(blue.shape, np.uint8)
        cv2.fillConvexPoly(hull, cv2.convexHull(np.rint(nodes).astype(np.int32)), 1)
        hull = cv2.dilate(hull, np.ones((25, 25), np.uint8))
        assert hull[blue].mean() > 0.9


def test_demo_without_fit_and_with_one_camera(tmp_path, capsys):
    out = tmp_path / "a"
    assert main(["demo", str(out), "--frames", "2", "--cameras", "2", "--no-fit"]) == 0
    assert not (out / "session").exists() and not (out / "fit.smilmv.h5").exists()
    assert "fit" not in json.loads((out / "summary.json").read_text())
    events = list(run_demo(tmp_path / "b", n_frames=2, n_cameras=1))
    assert any("fit skipped" in e.message for e in events) and events[-1].progress == 1.0
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary["fit"] == {"skipped": "the synthetic session needs at least 2 cameras"}


def test_demo_fit_bad_input(tmp_path):
    out = tmp_path / "c"
    (out / "session").mkdir(parents=True)
    (out / "session" / "mine.txt").write_text("user data")
    with pytest.raises(ValueError, match="not written by the demo"):
        run_demo(out, n_frames=2, n_cameras=2, overwrite=True)
    with pytest.raises(ValueError, match="session_frames"):
        run_demo(tmp_path / "d", session_frames=0)
    with pytest.raises(ValueError, match="noise_px"):
        run_demo(tmp_path / "d", noise_px=-1)
    assert (out / "session" / "mine.txt").read_text() == "user data" and not (tmp_path / "d").exists()


def test_demo_runs_the_whole_pipeline_with_the_network(tmp_path, capsys):
    """make session, preprocess, train briefly, infer, refine, evaluate, previews, and the summary says so."""
    out = tmp_path / "net"
    args = [
        "demo",
        str(out),
        "--frames",
        "2",
        "--cameras",
        "2",
        "--session-frames",
        "8",
        "--train-seconds",
        "2",
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "Network (small CNN" in printed and "refined by fit" in printed
    summary = json.loads((out / "summary.json").read_text())
    net = summary["network"]
    assert net["training_epochs"] >= 1
    for key in ("network", "refined"):
        gt = net[key]["ground_truth"]
        assert gt["reference"] == "ground truth" and np.isfinite(gt["reprojection_px_median"])
    # refinement by the fitter starts from the prediction and ends near the data
    assert net["refined"]["ground_truth"]["reprojection_px_median"] < 3.0
    for name in ("network.smilmv.h5", "network_refined.smilmv.h5", "network_evaluation.json", "network/run/"):
        assert name in summary["files"] and (out / name).exists(), name
    assert (out / "network" / "run" / "best.pt").is_file()
    assert any(name.startswith("network_preview_") for name in summary["files"])
    refined = sorted(n for n in summary["files"] if n.startswith("network_refined_preview_"))
    assert len(refined) == 2 and all((out / n).is_file() for n in refined)  # one per camera
    assert "refined" in summary["files"][refined[0]]
    assert "Network (" in (out / "README.txt").read_text()
