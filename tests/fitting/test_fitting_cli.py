"""The ``fit`` and ``evaluate`` commands on a small synthetic session (and the real sample session when present)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_smil_mv.cli import main
from napari_smil_mv.results import read_results


@pytest.fixture(scope="module")
def demo_session(tmp_path_factory):
    from napari_smil_mv.demo.synthetic_session import write_synthetic_session

    return write_synthetic_session(
        tmp_path_factory.mktemp("s") / "demo", n_cameras=3, n_frames=8, image_size=(160, 120), seed=0
    )


@pytest.fixture(scope="module")
def fitted_file(demo_session, tmp_path_factory):
    out = tmp_path_factory.mktemp("r") / "fit.smilmv.h5"
    assert (
        main(["fit", str(demo_session), "-o", str(out), "--frames", "2:", "--iterations", "60", "--quiet"])
        == 0
    )
    return out


def test_fit_command_writes_results(fitted_file, demo_session, capsys):
    results = read_results(fitted_file)
    assert results.n_frames == 6 and list(results.frame_indices) == [2, 3, 4, 5, 6, 7]
    assert results.units == "mm" and results.model_source == "<demo model>"
    assert results.provenance["joint_map"].endswith("joint_lookup.csv")
    assert results.provenance["command"] == "napari-smil-mv fit"
    assert np.nanmedian(results.reprojection_error) < 2.0  # noise ~0.7 px
    assert all(str(demo_session) in v for v in results.videos)


def test_evaluate_command(fitted_file, demo_session, capsys):
    assert main(["evaluate", str(fitted_file), "--ground-truth", str(demo_session), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    gt = metrics["ground_truth"]
    assert gt["units"] == "mm" and gt["joint_error_3d_median"] < 0.02 * gt["body_length"]
    assert set(gt["reprojection_px_per_camera"]) == {"cam1", "cam2", "cam3"} and gt["pck_10px"] > 0.95
    assert main(["evaluate", str(fitted_file), "--session", str(demo_session)]) == 0
    text = capsys.readouterr().out
    assert "against session demo" in text and "cam2" in text and "3D joint error median" in text


def test_fit_command_progress_and_errors(demo_session, tmp_path, capsys):
    out = tmp_path / "a.smilmv.h5"
    assert (
        main(
            [
                "fit",
                str(demo_session),
                "-o",
                str(out),
                "--frames",
                "0:3",
                "--iterations",
                "5",
                "--exclude-cameras",
                "cam3",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "initialised" in text and "camera cam3" in text and "NOT used" in text
    assert "pose " in text and ("refine 5/5" in text or "(converged)" in text)
    assert not read_results(out).camera_used[2]
    assert main(["fit", str(demo_session), "-o", str(out)]) == 2  # exists, no --overwrite
    assert "already exists" in capsys.readouterr().err
    assert main(["fit", str(demo_session), "-o", str(tmp_path / "b.smilmv.h5"), "--frames", "100:200"]) == 2
    assert "selects none" in capsys.readouterr().err
    assert (
        main(["fit", str(demo_session), "-o", str(tmp_path / "b.smilmv.h5"), "--exclude-cameras", "x"]) == 2
    )
    assert "no camera" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "missing.smilmv.h5")]) == 2


def test_real_session_fit(shared, tmp_path, capsys):
    """The real mouse clip: the fit leaves out the broken 'side' camera and reprojects well on the others."""
    session = shared("external", "sleap-anipose", "minimal_session")
    model = shared("models", "SMILy_Mouse_static_joints.pkl")
    from pathlib import Path

    joint_map = Path(__file__).resolve().parents[2] / "examples" / "minimal_session_mouse_joint_lookup.csv"
    out = tmp_path / "mouse.smilmv.h5"
    assert (
        main(
            [
                "fit",
                str(session),
                "--model",
                str(model),
                "--joint-map",
                str(joint_map),
                "--frames",
                "0:30",
                "-o",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    results = read_results(out)
    names = results.camera_names
    assert not results.camera_used[names.index("side")]
    good = [names.index(n) for n in ("back", "mid", "top")]
    assert np.nanmedian(results.reprojection_error[good]) <= 5.3
