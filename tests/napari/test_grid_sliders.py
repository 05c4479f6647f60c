"""In the 2D camera grid (and mosaic) only the frame slider shows: the hidden 4D world layers' ``z`` axis gets
no slider; the world view gets the full ``z`` range back."""

from __future__ import annotations

import warnings

import pytest

from fixtures.viewer import hidden_viewer

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def session_and_outcome(synthetic_session):
    from napari_smil_mv.fitting import FitConfig
    from napari_smil_mv.napari.jobs.fit_job import prepare_fit, run_fit_job
    from napari_smil_mv.sessions import load_session

    folder = synthetic_session(n_cameras=2, n_frames=6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        session = load_session(folder)
    cfg = FitConfig()
    for stage in cfg.stages:
        stage.iterations = 3
    gen = run_fit_job(prepare_fit(session), cfg, session_id=None)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return session, stop.value


def _sliders(viewer) -> list[int]:
    """Axes whose slider the Qt dims widget shows."""
    qt_dims = viewer.window._qt_viewer.dims
    return [i for i, w in enumerate(qt_dims.slider_widgets) if w.isVisibleTo(qt_dims)]


def _model_sliders(viewer) -> list[int]:
    d = viewer.dims
    return [ax for ax in range(d.ndim) if ax not in d.displayed and d.nsteps[ax] > 1]


@pytest.mark.gui
def test_grid_shows_only_the_frame_slider(qapp, session_and_outcome):
    from napari_smil_mv import api
    from napari_smil_mv.napari.results_view import add_results_layers
    from napari_smil_mv.napari.scripting import frame_axis

    session, outcome = session_and_outcome
    with hidden_viewer() as viewer:
        api.show_session(viewer, session)
        add_results_layers(viewer, outcome.layer_data, outcome.results, outcome.model)
        assert viewer.dims.ndim == 4 and viewer.dims.axis_labels[0] == "z"  # the world layers are there
        fa = frame_axis(viewer)
        assert _sliders(viewer) == [fa] and _model_sliders(viewer) == [fa]

        api.set_layout(viewer, "world")
        assert viewer.dims.nsteps[0] > 1 and 0 in viewer.dims.displayed  # full z range in the 3D view
        assert _sliders(viewer) == [fa]

        api.set_layout(viewer, "mosaic")
        assert _sliders(viewer) == [fa]
        api.set_layout(viewer, "grid")
        assert _sliders(viewer) == [fa]
        api.set_frame(viewer, 4)
        assert viewer.dims.current_step[fa] == 4
        shot = viewer.screenshot(canvas_only=True)
        assert shot[..., :3].mean() > 5
