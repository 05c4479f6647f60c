"""The Infer widget's generated options reach the inference: frame range and the camera-exclusion override."""

from __future__ import annotations

import warnings

import pytest

from fixtures.viewer import hidden_viewer


@pytest.fixture
def viewer(qapp):
    with hidden_viewer() as v:
        yield v


@pytest.mark.gui
def test_frame_range_and_camera_override_from_the_form(viewer, qtbot, synthetic_session, trained_checkpoint):
    from napari_smil_mv import api
    from napari_smil_mv.napari.widgets.infer_widget import SOURCES, InferWidget
    from napari_smil_mv.sessions import load_session

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        session = load_session(synthetic_session())
    api.show_session(viewer, session)
    widget = InferWidget(viewer)
    widget.checkpoint_edit.setText(str(trained_checkpoint()))
    widget.source_combo.setCurrentText(SOURCES[0])
    frames = list(session.frame_indices)
    widget.form.set_field("frame_start", int(frames[2]))
    widget.form.set_field("frame_stop", int(frames[5]))
    dropped = session.camera_names[-1]
    widget.form.set_field("exclude_cameras", (dropped,))
    assert widget.run() is not None
    qtbot.waitUntil(lambda: widget.worker is None, timeout=120000)
    (res,) = widget.results
    assert res.n_frames == 3
    assert dropped not in res.camera_names and len(res.camera_names) == len(session.camera_names) - 1

    widget.form.set_field("frame_stop", int(frames[1]))  # stop before start: named, nothing runs
    assert widget.run() is None and "frame_stop" in widget.status.text()
