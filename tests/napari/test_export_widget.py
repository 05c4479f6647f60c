"""The "Export results" widget: the shown results file to movement / NWB, overlay videos as a cancellable job."""

from __future__ import annotations

import pytest

from fixtures.viewer import hidden_viewer
from napari_smil_mv.cli import main


@pytest.fixture
def viewer(qapp):
    with hidden_viewer() as v:
        yield v


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    from napari_smil_mv.demo.synthetic_session import write_synthetic_session

    session = write_synthetic_session(
        tmp_path_factory.mktemp("s") / "demo", n_cameras=2, n_frames=6, image_size=(160, 120), seed=1
    )
    out = tmp_path_factory.mktemp("r") / "fit.smilmv.h5"
    assert main(["fit", str(session), "-o", str(out), "--iterations", "30", "--quiet"]) == 0
    return session, out


@pytest.mark.gui
def test_export_widget_buttons(viewer, qtbot, fitted, tmp_path):
    pytest.importorskip("movement", reason="movement not installed (optional extra)")
    pytest.importorskip("ndx_pose", reason="ndx-pose not installed (optional extra)")
    from napari_smil_mv import api
    from napari_smil_mv.napari.widgets.export_widget import ExportWidget, shown_results_path

    session, res = fitted
    api.load_session(viewer, session)
    api.show_results(viewer, res)
    assert shown_results_path(viewer) == str(res)
    widget = ExportWidget(viewer)
    widget.output_edit.setText(str(tmp_path))
    assert widget.export("movement") == tmp_path / "fit.nc" and (tmp_path / "fit.nc").is_file()
    assert widget.export("nwb") == tmp_path / "fit.nwb" and (tmp_path / "fit.nwb").is_file()
    assert widget.export("nwb") is None and "already exists" in widget.status.text()

    worker = widget.run_overlay()
    assert worker is not None and not widget.overlay_btn.isEnabled() and widget.stop_btn.isEnabled()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=120000)
    assert [p.name for p in widget.written] == ["cam1_overlay.mp4", "cam2_overlay.mp4"]
    assert widget.progress.value() == 1000 and widget.overlay_btn.isEnabled()

    # Stop: the job ends early and leaves no partial file of the camera it was writing
    widget.written = []
    worker = widget.run_overlay(overwrite=True)
    widget.stop()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=120000)
    assert "Stopped" in widget.status.text()
    assert len(widget.written) < 2
    assert not list((tmp_path / "fit_overlays").glob(".*tmp*"))


@pytest.mark.gui
def test_export_widget_says_what_is_missing(viewer, qtbot):
    from napari_smil_mv.napari.widgets.export_widget import ExportWidget

    widget = ExportWidget(viewer)
    assert widget.export("movement") is None
    assert "no results" in widget.status.text()
    assert widget.run_overlay() is None and "no results" in widget.status.text()
