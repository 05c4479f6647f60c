"""Screenshots of docs/widgets.md: every dock widget of the plugin, after a short real run on a synthetic session.

Run from the repository root under a display (``xvfb-run -a python docs/images/make_widget_screenshots.py
[WORKDIR]``). Writes a synthetic session (3 cameras, 24 frames), then for each widget runs what it is for
(fit, preprocess, browse, train two epochs, infer) and saves ``widget_<name>.png`` (the widget alone),
``widget_<name>_advanced.png`` for the forms with their "Advanced" section open, and ``widget_fit_window.png`` /
``widget_infer_window.png`` (the whole window with the result layers in the camera grid).
"""

from __future__ import annotations

import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "docs" / "images"
WIDTH = 560


def _save_array(img: np.ndarray, path: Path, max_bytes: int = 350_000) -> None:
    import cv2

    bgr = np.ascontiguousarray(img[..., :3][..., ::-1])
    while True:
        ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 9])
        if ok and len(buf) <= max_bytes:
            path.write_bytes(buf.tobytes())
            print("wrote", path.name, bgr.shape[1], "x", bgr.shape[0])
            return
        bgr = cv2.resize(
            bgr, (int(bgr.shape[1] * 0.9), int(bgr.shape[0] * 0.9)), interpolation=cv2.INTER_AREA
        )


def _grab(widget, path: Path, app) -> None:
    """The widget alone, WIDTH px wide and as tall as it wants (its forms' scroll areas opened to full height)."""
    from qtpy.QtWidgets import QScrollArea

    widget.show()
    for _ in range(5):
        app.processEvents()
        time.sleep(0.05)
    for area in widget.findChildren(QScrollArea):
        if area.widget() is not None:
            area.setMinimumHeight(area.widget().sizeHint().height() + 4)
    app.processEvents()
    widget.resize(WIDTH, max(widget.sizeHint().height(), 200))
    app.processEvents()
    img = widget.grab().toImage()
    ptr = img.constBits()
    ptr.setsize(img.sizeInBytes())
    arr = np.frombuffer(ptr, np.uint8).reshape(img.height(), img.bytesPerLine() // 4, 4)[:, : img.width()]
    _save_array(arr[..., [2, 1, 0, 3]], path)


def _wait(app, cond, timeout: float = 900.0) -> None:
    t0 = time.time()
    while not cond():
        app.processEvents()
        time.sleep(0.02)
        if time.time() - t0 > timeout:
            raise TimeoutError("the widget's worker did not finish")


def _advanced(form, app, open_: bool) -> None:
    (form.collapsible.expand if open_ else form.collapsible.collapse)(animate=False)
    app.processEvents()


def main(work: Path) -> None:
    from qtpy.QtWidgets import QApplication

    import napari
    from napari_smil_mv import api
    from napari_smil_mv.demo.synthetic_session import write_synthetic_session
    from napari_smil_mv.napari.widgets.dataset_browser_widget import DatasetBrowser
    from napari_smil_mv.napari.widgets.fit_widget import FitWidget
    from napari_smil_mv.napari.widgets.infer_widget import SOURCES, InferWidget
    from napari_smil_mv.napari.widgets.preprocess_widget import PreprocessWidget
    from napari_smil_mv.napari.widgets.session_widget import SessionWidget
    from napari_smil_mv.napari.widgets.train_widget import TrainWidget
    from napari_smil_mv.sessions import load_session
    from napari_smil_mv.training import TrainConfig

    warnings.simplefilter("ignore")
    work.mkdir(parents=True, exist_ok=True)
    session_dir = work / "session"
    if not (session_dir / "ground_truth.npz").is_file():
        write_synthetic_session(session_dir, n_cameras=3, n_frames=24, seed=2, image_size=(320, 240))
    session = load_session(session_dir)
    viewer = napari.Viewer(show=True)
    app = QApplication.instance()
    viewer.window.resize(1500, 950)

    # Session
    sw = SessionWidget(viewer)
    sw.path_edit.setText(str(session_dir))
    sw.load(str(session_dir))
    _wait(app, lambda: len(viewer.layers) > 0 and not sw._workers, 120)
    sw.load_model(None)  # the demo model: the joint map table fills
    sw.run_qc()
    _wait(app, lambda: bool(sw.model_joints) and not sw._workers, 120)
    _grab(sw, OUT / "widget_session.png", app)

    # Fit (docked, short run)
    fit = FitWidget(viewer)
    viewer.window.add_dock_widget(fit, name="Fit", area="right")
    n = len(fit.config().stages)
    for i, iters in enumerate((10, 20, 10)[:n]):
        fit.form.set_field(f"stages.{i}.iterations", iters)
    fit.run()
    _wait(app, lambda: fit.worker is None)
    api.set_frame(viewer, 12)
    app.processEvents()
    viewer.window._qt_window.grab()
    _save_array(viewer.screenshot(canvas_only=False), OUT / "widget_fit_window.png")
    dock = viewer.window._dock_widgets["Fit"]
    viewer.window.remove_dock_widget(dock)
    fit.setParent(None)
    _grab(fit, OUT / "widget_fit.png", app)
    _advanced(fit.form, app, True)
    _grab(fit, OUT / "widget_fit_advanced.png", app)

    # Preprocess (real run)
    pre = PreprocessWidget(viewer)
    pre.add_session(session_dir)
    dataset = work / "shots.smilmv-dataset.h5"
    pre.output_edit.setText(str(dataset))
    pre.overwrite_check.setChecked(True)
    pre.form.set_field("image_size", 64)
    pre.form.set_field("crop_mode", "bbox_crop")
    pre.run()
    _wait(app, lambda: pre.worker is None or not pre.worker.is_running)
    _wait(app, lambda: pre.last_event is not None and pre.last_event.stage in ("done", "error", "cancelled"))
    _grab(pre, OUT / "widget_preprocess.png", app)
    _advanced(pre.form, app, True)
    _grab(pre, OUT / "widget_preprocess_advanced.png", app)

    # Dataset browser
    browser = DatasetBrowser(viewer)
    browser.open(dataset)
    _grab(browser, OUT / "widget_dataset_browser.png", app)

    # Train (two epochs of a tiny network)
    train = TrainWidget(viewer)
    train.form.set_value(
        TrainConfig.from_dict(
            {
                "output_dir": str(work / "run"),
                "epochs": 3,
                "device": "cpu",
                "n_samples": 1,
                "log_every": 1,
                "data": {"dataset": str(dataset), "block_frames": 4, "batch_size": 4},
                "model": {"hidden_dim": 32, "fusion_heads": 2, "decoder_heads": 2, "decoder_depth": 1},
            }
        )
    )
    train.start()
    _wait(app, lambda: train.worker is None)
    _grab(train, OUT / "widget_train.png", app)
    _advanced(train.form, app, True)
    _grab(train, OUT / "widget_train_advanced.png", app)

    # Infer (on the session shown; camera grid)
    viewer.layers.clear()
    api.show_session(viewer, session)
    infer = InferWidget(viewer)
    viewer.window.add_dock_widget(infer, name="Infer with network", area="right")
    infer.checkpoint_edit.setText(str(work / "run" / "last.pt"))
    infer.source_combo.setCurrentText(SOURCES[0])
    infer.form.set_field("refine", True)
    infer.form.set_field("refine_iterations", 10)
    infer.run()
    _wait(app, lambda: infer.worker is None)
    print(infer.status.text())
    api.set_frame(viewer, 12)
    app.processEvents()
    viewer.window._qt_window.grab()
    _save_array(viewer.screenshot(canvas_only=False), OUT / "widget_infer_window.png")
    viewer.window.remove_dock_widget(viewer.window._dock_widgets["Infer with network"])
    infer.setParent(None)
    _grab(infer, OUT / "widget_infer.png", app)
    _advanced(infer.form, app, True)
    _grab(infer, OUT / "widget_infer_advanced.png", app)
    viewer.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="smilmv-widget-shots-")))
