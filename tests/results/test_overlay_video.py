"""Overlay videos (mesh + keypoints over each camera's video) on a small synthetic demo session."""

from __future__ import annotations

import numpy as np
import pytest

from napari_smil_mv.cli import main
from napari_smil_mv.results import read_results, write_results


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    from napari_smil_mv.demo.synthetic_session import write_synthetic_session

    session = write_synthetic_session(
        tmp_path_factory.mktemp("s") / "demo", n_cameras=3, n_frames=8, image_size=(160, 120), seed=0
    )
    out = tmp_path_factory.mktemp("r") / "fit.smilmv.h5"
    assert main(["fit", str(session), "-o", str(out), "--iterations", "40", "--quiet"]) == 0
    return session, out


def _frames(path):
    import imageio.v3 as iio

    return np.stack(list(iio.imiter(path)))


def test_overlay_cli_paints_mesh_and_keypoints(fitted, tmp_path, capsys):
    session, res_path = fitted
    results = read_results(res_path)
    out = tmp_path / "ov"
    argv = ["overlay", str(res_path), "--session", str(session), "-o", str(out)]
    assert main([*argv, "--cameras", "cam1,cam3", "--frames", "2:6", "--quiet"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["cam1_overlay.mp4", "cam3_overlay.mp4"]
    frames = _frames(out / "cam3_overlay.mp4")
    assert frames.shape == (4, 120, 160, 3)
    # the same frames of the original video: the overlay differs on the animal, not far from it
    from napari_smil_mv.sessions import load_session

    video = load_session(session).views["cam3"].video
    orig = np.stack([np.asarray(video[f]) for f in range(2, 6)])
    diff = np.abs(frames.astype(int) - orig.astype(int)).max(-1)
    pts = results.projections_2d[2, 2:6][:, results.mapped]  # rows 2..5 = frames 2..5
    near = np.zeros(diff.shape, bool)
    for t, frame_pts in enumerate(pts):
        for x, y in frame_pts[np.isfinite(frame_pts).all(-1)]:
            near[t, max(0, int(y) - 12) : int(y) + 13, max(0, int(x) - 12) : int(x) + 13] = True
    assert diff[near].mean() > 25, "mesh/keypoints not painted near the model keypoints"
    assert np.median(diff[~near]) < 6, "frames far from the animal changed (h264 noise only expected)"
    # a model keypoint pixel is red (the disc colour, softened by h264's half-resolution chroma at 160 px)
    x, y = np.rint(pts[0, 0]).astype(int)
    r, g, b = frames[0, y, x].astype(int)
    assert r > g + 30 and r > b + 30, (r, g, b)
    # existing outputs are refused without --overwrite; bad camera / frames exit 2 with a clear message
    assert main([*argv, "--cameras", "cam1", "--quiet"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main([*argv, "--cameras", "nope", "--quiet"]) == 2
    assert "unknown camera" in capsys.readouterr().err
    assert main([*argv, "--frames", "50:60", "--quiet"]) == 2
    assert "selects none" in capsys.readouterr().err


def test_overlay_without_session_or_model(fitted, tmp_path, capsys):
    _, res_path = fitted
    results = read_results(res_path)
    results.model_source = str(tmp_path / "gone.pkl")
    moved = write_results(results, tmp_path / "moved.smilmv.h5")
    argv = ["overlay", str(moved), "-o", str(tmp_path / "o"), "--cameras", "cam2", "--quiet"]
    assert main(argv) == 2
    assert "--model" in capsys.readouterr().err  # the model is not found: says how to give it
    assert main([*argv, "--no-mesh"]) == 0  # keypoints only, videos recorded in the results
    assert _frames(tmp_path / "o" / "cam2_overlay.mp4").shape == (8, 120, 160, 3)


def test_overlay_cancel_removes_partial_file(fitted, tmp_path):
    from napari_smil_mv.results.overlay import iter_overlay

    session, res_path = fitted
    results = read_results(res_path)
    events = []
    gen = iter_overlay(results, tmp_path, session=session, cancel=lambda: len(events) >= 2)
    try:
        while True:
            events.append(next(gen))
    except StopIteration as stop:
        written = stop.value
    assert "cancelled" in events[-1].message
    assert written == [tmp_path / "cam1_overlay.mp4"]  # the first camera finished, the second did not
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cam1_overlay.mp4"]
