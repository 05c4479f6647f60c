"""The "Infer with network" widget: predict on the session shown in the viewer, show the result layers, save."""

from __future__ import annotations

import warnings

import pytest

from fixtures.viewer import hidden_viewer


@pytest.fixture
def viewer(qapp):
    with hidden_viewer() as v:
        yield v


@pytest.mark.gui
def test_infer_widget_on_the_shown_session_and_a_dataset(
    synthetic_dataset, synthetic_session, trained_checkpoint, viewer, qtbot, tmp_path
):
    from napari_smil_mv import api
    from napari_smil_mv.napari.widgets.infer_widget import SOURCES, InferWidget
    from napari_smil_mv.results import read_results
    from napari_smil_mv.sessions import load_session

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        session = load_session(synthetic_session())
    api.show_session(viewer, session)
    widget = InferWidget(viewer)
    assert widget.run() is None and "checkpoint" in widget.status.text()
    widget.checkpoint_edit.setText(str(trained_checkpoint()))
    widget.source_combo.setCurrentText(SOURCES[0])
    assert widget.run() is not None
    qtbot.waitUntil(lambda: widget.worker is None, timeout=120000)
    assert len(widget.results) == 1 and "reprojection median" in widget.status.text()
    roles = {la.metadata.get("napari_smil_mv", {}).get("role") for la in api.results_layers(viewer)}
    assert {"mesh_proj", "kp_pred"} <= roles
    assert viewer.screenshot(canvas_only=True)[..., :3].mean() > 5
    (saved,) = widget.save("results", tmp_path / "pred")
    assert saved.name == "pred.smilmv.h5" and read_results(saved).n_frames == 8
    assert widget.save("results", tmp_path / "pred") == [] and "Not saved" in widget.status.text()
    assert widget.save("csv", tmp_path / "joints.csv")[0].is_file()

    widget.source_combo.setCurrentText(SOURCES[2])
    widget.path_edit.setText(str(synthetic_dataset()))
    widget.form.set_field("refine", True)
    widget.form.set_field("refine_iterations", 3)
    widget.run()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=120000)
    assert widget.results[0].provenance.get("refined") is True
