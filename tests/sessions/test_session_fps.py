"""The recording's frame rate comes from the videos' headers and travels into the fit data and the results file."""

from __future__ import annotations

import warnings

import pytest

from napari_smil_mv.sessions import load_session


def _load(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_session(path)


def test_minimal_session_frame_rate_without_decoding(shared):
    session = _load(shared("external", "sleap-anipose", "minimal_session"))
    assert session.fps == pytest.approx(30.0)  # every mp4 states 30 fps (checked with OpenCV)
    assert all(v.video._video is None for v in session.views.values())  # header probe only, nothing decoded


def test_synthetic_session_rate_reaches_fit_data_and_results(synthetic_session, tmp_path):
    from napari_smil_mv.cli import main
    from napari_smil_mv.demo.synthetic_session import DEMO_FPS
    from napari_smil_mv.fitting import fit_data_from_session
    from napari_smil_mv.results import read_results
    from napari_smil_mv.sessions import choose_joint_map

    path = synthetic_session()
    session = _load(path)
    assert session.fps == pytest.approx(DEMO_FPS)
    from napari_smil_mv.body import load_smil_model

    model = load_smil_model(None)
    joint_map, _ = choose_joint_map(session, model.joint_names)
    data = fit_data_from_session(session, joint_map, model.joint_names)
    assert data.fps == pytest.approx(DEMO_FPS)
    out = tmp_path / "fit.smilmv.h5"
    assert main(["fit", str(path), "-o", str(out), "--iterations", "2", "--quiet"]) == 0
    assert read_results(out).fps == pytest.approx(DEMO_FPS)


def test_rates_missing_or_disagreeing(synthetic_session, tmp_path):
    from napari_smil_mv.sessions import LazyVideo

    with pytest.warns(UserWarning, match="not found"):
        assert LazyVideo(tmp_path / "gone.mp4", 10, (64, 48)).fps is None
    session = _load(synthetic_session())
    for view in session.views.values():
        view.video._fps = None  # as for missing videos or headers without a rate
    assert session.fps is None  # unknown, not guessed
    for rate, view in zip((30.0, 30.0, 100.0), session.views.values(), strict=True):
        view.video._fps = rate
    with pytest.warns(UserWarning, match=r"different frame rates .*100 fps"):
        assert session.fps == pytest.approx(30.0)
