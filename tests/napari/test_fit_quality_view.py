"""The fit quality panel: verdict, per-frame timeline (click jumps to the frame), worst frames; in the Fit widget."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from fixtures.viewer import hidden_viewer


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    from napari_smil_mv.demo.synthetic_session import write_synthetic_session
    from napari_smil_mv.sessions import load_session

    folder = write_synthetic_session(
        tmp_path_factory.mktemp("q") / "session", n_cameras=3, n_frames=12, image_size=(192, 144)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_session(folder)


@pytest.fixture(scope="module")
def viewer():
    with hidden_viewer() as v:
        yield v


@pytest.mark.gui
def test_quality_view_timeline_and_worst_frames(viewer, session, qtbot, tmp_path):
    from qtpy.QtCore import QPointF, Qt

    from napari_smil_mv import api
    from napari_smil_mv.napari.jobs.fit_job import prepare_fit, run_fit_job
    from napari_smil_mv.napari.scripting import frame_axis
    from napari_smil_mv.napari.widgets.fit_quality_view import FitQualityView

    viewer.layers.clear()
    api.show_session(viewer, session)
    gen = run_fit_job(prepare_fit(session, frames=(2, None)), None, None, "q")
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            outcome = stop.value
            break
    results = outcome.results
    view = FitQualityView(viewer, n_worst=4)
    qtbot.addWidget(view)
    assert not view.isVisible() and view.show_results(results)
    view.resize(520, 420)
    view.show()
    qtbot.waitExposed(view)
    verdict = results.quality["attrs"]["verdict"]
    assert f"{verdict.upper()}" in view.verdict_label.text() and "DLT" in view.verdict_label.text()
    frames = results.frame_indices
    assert list(frames) == list(range(2, 12))
    x, y = view.fit_curve.getData()
    assert list(x) == list(frames) and np.allclose(y, results.quality["arrays"]["frame_fit_px"])
    assert view.worst_list.count() == 4
    # a worst frame: click it, the viewer shows that frame
    item = view.worst_list.item(0)
    worst = int(item.data(Qt.UserRole))
    view._on_worst_click(item)
    assert viewer.dims.current_step[frame_axis(viewer)] == worst
    # a click on the timeline near frame 7 jumps there
    vb = view.plot.getPlotItem().vb
    vb.autoRange()
    qtbot.wait(50)
    scene_pos = vb.mapViewToScene(QPointF(7.2, float(np.nanmean(y))))

    class Click:  # what pyqtgraph's scene sigMouseClicked delivers (a synthetic Qt click does not reach it
        def scenePos(self):  # under Xvfb reliably)
            return scene_pos

    view._on_plot_click(Click())
    assert viewer.dims.current_step[frame_axis(viewer)] == 7
    assert view.cursor.value() == 7
    view.grab().save(str(tmp_path / "quality.png"))
    assert (tmp_path / "quality.png").stat().st_size > 1000
    view.clear()
    assert not view.isVisible() and view.worst_list.count() == 0


@pytest.mark.gui
def test_fit_widget_shows_the_verdict(viewer, session, qtbot):
    from napari_smil_mv import api
    from napari_smil_mv.napari.widgets.fit_widget import FitWidget

    viewer.layers.clear()
    api.show_session(viewer, session)
    widget = FitWidget(viewer)
    qtbot.addWidget(widget)
    widget.form.set_field(f"stages.{len(widget.config().stages) - 1}.iterations", 10)
    widget.run()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=120000)
    assert widget.outcome is not None
    assert widget.quality_view.worst_list.count() > 0
    assert "Verdict" in widget.quality_view.verdict_label.text()
    assert "verdict:" in widget.status.text()
