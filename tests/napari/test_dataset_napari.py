"""Datasets in napari: the reader (sniffing), pure layer builders, the Dataset browser and Preprocess widgets."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from napari_smil_mv.napari.readers.dataset_browser import (
    dataset_layer_data,
    get_dataset_reader,
    load_overview,
    read_dataset,
)


@pytest.fixture
def make_napari_viewer(qapp):
    """Hidden viewers like every other GUI test here (napari's own fixture swaps the npe2 plugin manager, and a
    plain viewer created after it in the same run meets our commands registered twice)."""
    import contextlib

    from fixtures.viewer import hidden_viewer

    with contextlib.ExitStack() as stack:
        yield lambda: stack.enter_context(hidden_viewer())


def test_reader_sniffs_and_returns_none_fast(fresh_dir, synthetic_dataset, synthetic_session):
    path = synthetic_dataset()
    assert get_dataset_reader(str(path)) is read_dataset and get_dataset_reader([path]) is read_dataset
    plain = fresh_dir("plain") / "other.h5"
    with h5py.File(plain, "w") as h5:
        h5["x"] = np.zeros(3)
    assert get_dataset_reader(plain) is None
    assert get_dataset_reader(synthetic_session() / "points3d.h5") is None
    text = fresh_dir("txt") / "fake.h5"
    text.write_text("not hdf5")
    assert get_dataset_reader(text) is None
    assert get_dataset_reader(fresh_dir("d")) is None and get_dataset_reader([path, path]) is None
    layers = read_dataset([str(path)])
    assert [kw["name"] for _, kw, _ in layers[:3]] == [
        "cam1 · view",
        "cam1 · 3D reprojected",
        "cam1 · keypoints",
    ]
    assert len(layers) == 3 * 3 + 1 and layers[-1][1]["name"] == "camera names"


def test_overview_and_layers(synthetic_dataset):
    path = synthetic_dataset()
    ov = load_overview(path)
    assert ov.cameras == ["cam1", "cam2", "cam3"] and ov.view_histogram() == {1: 0, 2: 0, 3: 8}
    errs = ov.sample_errors(2)
    assert set(errs) == {"cam1", "cam2", "cam3"} and all(e[1] < 0.5 and e[0] > 0 for e in errs.values())
    layers = dataset_layer_data(ov)
    img = layers[0][0]
    assert img.shape == (8, 64, 64, 3) and img[2].shape == (64, 64, 3) and img[2].std() > 5
    assert img[0:2, 10:20].shape == (2, 10, 64, 3)
    with pytest.raises(TypeError):
        np.asarray(img)
    pts = layers[2][0]  # cam1 keypoints: (sample, row, col), inside the image
    assert pts.shape[1] == 3 and 0 <= pts[:, 1:].min() and pts[:, 1:].max() < 64
    proj = layers[1]
    err = np.asarray(proj[1]["features"]["error_px"])  # NaN where the joint has no visible 2D keypoint
    assert np.isfinite(err).sum() > 50 and np.nanmax(err) < 0.5
    # tiles do not overlap
    offsets = [kw["translate"] for _, kw, kind in layers if kind == "image"]
    assert len({o[1:] for o in offsets}) == 3


@pytest.mark.gui
def test_browser_widget(synthetic_dataset, make_napari_viewer, qtbot):
    from napari_smil_mv.napari.widgets.dataset_browser_widget import DatasetBrowser

    viewer = make_napari_viewer()
    browser = DatasetBrowser(viewer)
    with qtbot.waitSignal(browser.open(synthetic_dataset()).finished, timeout=60000):
        pass
    assert len(viewer.layers) == 10 and browser.overview is not None
    assert browser.histogram.counts == {1: 0, 2: 0, 3: 8}
    assert browser.camera_table.rowCount() == 3
    browser.set_sample(5)
    assert viewer.dims.current_step[0] == 5
    assert "frame 5" in browser.sample_label.text() and browser.sample_table.rowCount() == 3
    viewer.dims.set_current_step(0, 2)
    assert browser.sample_spin.value() == 2 and "frame 2" in browser.sample_label.text()
    viewer.window._qt_window.grab()
    assert viewer.screenshot(canvas_only=True)[..., :3].mean() > 5  # the views are drawn


@pytest.mark.gui
def test_preprocess_widget_runs_cancels_and_opens(fresh_dir, synthetic_session, make_napari_viewer, qtbot):
    from napari_smil_mv.napari.widgets.preprocess_widget import PreprocessWidget

    viewer = make_napari_viewer()
    w = PreprocessWidget(viewer)
    assert w.run() is None and "session" in w.status.text()  # incomplete form: says what is missing
    w.add_session(synthetic_session())
    out = fresh_dir("widget") / "w.smilmv-dataset.h5"
    w.output_edit.setText(str(out))
    w.form.set_field("image_size", 32)
    worker = w.run()
    w.cancel()  # before the first sample: the run stops and keeps its partial file
    with qtbot.waitSignal(worker.finished, timeout=60000):
        pass
    assert w.last_event.stage == "cancelled" and not out.exists()
    with qtbot.waitSignal(w.run().finished, timeout=60000):
        pass
    assert w.last_event.stage == "done" and out.exists() and w.progress.value() == 100
    assert "samples written: 8 of 8" in w.status.text() and w.open_btn.isEnabled()
    with qtbot.waitSignal(w.open_result().finished, timeout=60000):
        pass
    assert len(viewer.layers) == 10
