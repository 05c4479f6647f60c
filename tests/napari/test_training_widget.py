"""The "Train network" widget: start, live plots and sample layers, stop with a resumable checkpoint, resume."""

from __future__ import annotations

import numpy as np
import pytest

from fixtures.viewer import hidden_viewer


@pytest.fixture
def viewer(qapp):
    with hidden_viewer() as v:
        yield v


def test_sample_mosaic_places_keypoints_in_their_view():
    from napari_smil_mv.napari.widgets.train_widget import sample_mosaic

    S = 8
    sample = {
        "images": np.zeros((2, S, S, 3), np.uint8),
        "keypoints": np.array([[[1.0, 2.0]], [[3.0, 4.0]]]),
        "predicted": np.array([[[1.0, 2.0]], [[3.0, 7.0]]]),
        "visible": np.array([[True], [True]]),
    }
    img, ann, pred, err = sample_mosaic([sample, sample])
    assert img.shape == (2 * S, 2 * S, 3)
    assert np.allclose(ann[1], [4.0, 3.0 + S]) and np.allclose(ann[2], [2.0 + S, 1.0])  # (row, col)
    assert np.allclose(err, [0, 3, 0, 3])


@pytest.mark.gui
def test_train_widget_start_stop_resume(fresh_dir, tiny_config, viewer, qtbot):
    from napari_smil_mv.napari.widgets.train_widget import SAMPLE_LAYERS, TrainWidget

    out = fresh_dir("widget")
    from napari_smil_mv.training import TrainConfig

    widget = TrainWidget(viewer)
    assert widget.start() is None and "data.dataset" in widget.status.text()  # says what is missing
    cfg = tiny_config(out, epochs=2, n_samples=2)
    widget.form.widget("data.dataset").line_edit.value = cfg["data"]["dataset"]
    assert widget.form.widget("output_dir").line_edit.value.endswith("_training")  # proposed from the dataset
    widget.form.set_value(TrainConfig.from_dict(cfg))
    widget.form.set_field("device", "cpu")
    assert widget.config().data.batch_size == 2 and widget.config().network_spec().hidden_dim == 32
    assert widget.config().to_dict() == TrainConfig.from_dict({**cfg, "device": "cpu"}).to_dict()
    worker = widget.start()
    assert worker is not None and widget.start() is None  # one run at a time
    qtbot.waitUntil(lambda: widget.worker is None, timeout=120000)
    assert len(widget.history) == 2 and widget.progress.value() == 1000 and "finished" in widget.status.text()
    assert len(widget.loss_plot.series["train"]) == 2 and len(widget.metric_plot.series["median px"]) == 2
    names = [la.name for la in viewer.layers]
    assert all(n in names for n in SAMPLE_LAYERS)
    image = viewer.layers[SAMPLE_LAYERS[0]].data
    assert image.shape[0] == 2 * 64 and image.shape[1] >= 2 * 64 and image.max() > 0
    assert len(viewer.layers[SAMPLE_LAYERS[1]].data) == len(viewer.layers[SAMPLE_LAYERS[2]].data) > 10
    shot = viewer.screenshot(canvas_only=True)
    assert shot[..., :3].mean() > 5
    widget.grab()  # the plots paint without errors
    assert widget.save_config(out / "cfg.json") is not None
    from napari_smil_mv.training import load_config

    assert load_config(out / "cfg.json").to_dict() == widget.config().to_dict()

    widget.form.set_field("epochs", 3)
    assert widget.start(resume=True) is not None
    qtbot.waitUntil(lambda: widget.worker is None, timeout=120000)
    assert [h["epoch"] for h in widget.history] == [1, 2, 3]

    widget.form.set_field("epochs", 50)
    widget.start(resume=True)
    qtbot.waitUntil(lambda: widget.last_event is not None and widget.last_event.kind == "step", timeout=60000)
    widget.stop()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=60000)
    assert widget.last_event.kind == "stopped" and (out / "last.pt").is_file()
    widget.form.set_field("output_dir", str(out / "nothing_here"))
    assert widget.start(resume=True) is None and "Cannot resume" in widget.status.text()
