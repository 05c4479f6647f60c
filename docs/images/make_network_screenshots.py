"""Screenshots of docs/training.md and docs/inference.md: the Train and Infer widgets on a synthetic session.

Run from the repository root under a display (``xvfb-run -a python docs/images/make_network_screenshots.py
[WORKDIR]``). Writes a small synthetic session (4 cameras, 60 frames), preprocesses it (bounding-box crops, 64 px),
then

* ``network_train_widget.png``: the whole window while the Train widget trains the small CNN (loss and
  validation-error plots, sample predictions drawn on the validation views: annotated green, predicted red);
* ``network_infer_widget.png``: the Infer widget's prediction on the session shown in the viewer (projected mesh
  and predicted keypoints in every camera).
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


def _save(img: np.ndarray, path: Path, max_bytes: int = 350_000) -> None:
    import cv2

    bgr = np.ascontiguousarray(img[..., :3][..., ::-1])
    while True:
        ok, buf = cv2.imencode(path.suffix, bgr, [cv2.IMWRITE_PNG_COMPRESSION, 9])
        if ok and len(buf) <= max_bytes:
            path.write_bytes(buf.tobytes())
            return
        bgr = cv2.resize(
            bgr, (int(bgr.shape[1] * 0.9), int(bgr.shape[0] * 0.9)), interpolation=cv2.INTER_AREA
        )


def _wait(app, widget, timeout: float = 900.0, until=None) -> None:
    t0 = time.time()
    while (until is None and widget.worker is not None) or (until is not None and not until()):
        app.processEvents()
        time.sleep(0.02)
        if time.time() - t0 > timeout:
            raise TimeoutError("the widget's worker did not finish")


def main(work: Path) -> None:
    from qtpy.QtWidgets import QApplication

    import napari
    from napari_smil_mv import api
    from napari_smil_mv.dataset import PreprocessOptions, preprocess
    from napari_smil_mv.demo.synthetic_session import write_synthetic_session
    from napari_smil_mv.napari.widgets.infer_widget import SOURCES, InferWidget
    from napari_smil_mv.napari.widgets.train_widget import TrainWidget
    from napari_smil_mv.sessions import load_session

    warnings.simplefilter("ignore")
    session_dir = work / "session"
    if not (session_dir / "ground_truth.npz").is_file():
        write_synthetic_session(session_dir, n_cameras=4, n_frames=60, seed=1, image_size=(320, 240))
    dataset = work / "demo.smilmv-dataset.h5"
    if not dataset.is_file():
        preprocess([session_dir], dataset, options=PreprocessOptions(image_size=64, crop_mode="bbox_crop"))
    viewer = napari.Viewer(show=True)
    app = QApplication.instance()
    viewer.window.resize(1400, 900)
    train = TrainWidget(viewer)
    viewer.window.add_dock_widget(train, name="Train network", area="right")
    from napari_smil_mv.training import TrainConfig

    train.form.set_value(
        TrainConfig.from_dict(
            {
                "output_dir": str(work / "run"),
                "epochs": 60,
                "device": "cpu",
                "n_samples": 2,
                "data": {"dataset": str(dataset), "block_frames": 6},
                "optim": {"lr": 1e-3, "backbone_lr": 5e-4},
            }
        )
    )
    train.start()
    _wait(app, train, until=lambda: len(train.history) >= 25)
    app.processEvents()
    viewer.window._qt_window.grab()
    _save(viewer.screenshot(canvas_only=False), OUT / "network_train_widget.png")
    train.stop()
    _wait(app, train)
    viewer.close()

    viewer = napari.Viewer(show=True)
    viewer.window.resize(1400, 900)
    session = load_session(session_dir)
    api.show_session(viewer, session)
    infer = InferWidget(viewer)
    viewer.window.add_dock_widget(infer, name="Infer with network", area="right")
    infer.checkpoint_edit.setText(str(work / "run" / "best.pt"))
    infer.source_combo.setCurrentText(SOURCES[0])
    infer.run()
    _wait(app, infer)
    api.set_frame(viewer, 30)
    app.processEvents()
    viewer.window._qt_window.grab()
    _save(viewer.screenshot(canvas_only=False), OUT / "network_infer_widget.png")
    print(infer.status.text())
    viewer.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="smilmv-network-shots-")))
