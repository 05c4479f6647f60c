"""The "Train network" dock widget: choose a dataset and settings, start / stop / resume training, watch the
losses and validation metrics live, and see sample predictions drawn on the validation views in the viewer.

Training runs in a napari worker thread around :func:`napari_smil_mv.training.train_iter`; the worker only yields
:class:`~napari_smil_mv.training.TrainEvent` objects, and the main-thread slots update the plots and layers, so the
GUI never freezes. Stop asks the trainer to write a resumable ``last.pt`` and end; Resume continues from it.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import QPointF
from qtpy.QtGui import QColor, QPainter, QPen
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from napari_smil_mv.napari.widget_parts import (
    add_job_controls,
    add_path_row,
    ask_yes_no,
    spin_box,
    wrapping_label,
)

if TYPE_CHECKING:  # pragma: no cover
    import napari

SAMPLE_LAYERS = ("network samples", "network: annotated", "network: predicted")


class CurvePlot(QWidget):
    """A small line plot (no plotting library): named series against epochs, optional log scale."""

    COLORS = ("#4fc3f7", "#ff8a65", "#aed581", "#ba68c8")

    def __init__(self, title: str, log: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title, self.log = title, log
        self.series: dict[str, list[tuple[float, float]]] = {}
        self.setMinimumHeight(120)

    def set_series(self, name: str, points: list[tuple[float, float]]) -> None:
        self.series[name] = [
            (x, y) for x, y in points if y is not None and np.isfinite(y) and (y > 0 or not self.log)
        ]
        self.update()

    def clear(self) -> None:
        self.series.clear()
        self.update()

    def paintEvent(self, _event) -> None:  # noqa: N802 (Qt API)
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        w, h = self.width(), self.height()
        left, right, top, bottom = 44, 8, 18, 18
        p.fillRect(0, 0, w, h, QColor("#262930"))
        p.setPen(QColor("#d0d0d0"))
        p.drawText(left, 13, self.title)
        pts = [pt for s in self.series.values() for pt in s]
        if not pts:
            p.drawText(left, h // 2, "waiting for the first epoch…")
            return
        f = (lambda y: math.log10(y)) if self.log else (lambda y: y)
        xs = [x for x, _ in pts]
        ys = [f(y) for _, y in pts]
        x0, x1 = min(xs), max(max(xs), min(xs) + 1)
        y0, y1 = min(ys), max(ys)
        if y1 - y0 < 1e-12:
            y0, y1 = y0 - 0.5, y1 + 0.5

        def to_px(x: float, y: float) -> QPointF:
            return QPointF(
                left + (x - x0) / (x1 - x0) * (w - left - right),
                top + (1 - (f(y) - y0) / (y1 - y0)) * (h - top - bottom),
            )

        p.setPen(QColor("#707070"))
        p.drawRect(left, top, w - left - right, h - top - bottom)
        label = (lambda v: f"{10**v:.2g}") if self.log else (lambda v: f"{v:.3g}")
        p.drawText(2, top + 10, label(y1))
        p.drawText(2, h - bottom, label(y0))
        text = f"epoch {x1:g}"
        p.drawText(w - right - p.fontMetrics().horizontalAdvance(text) - 2, h - 4, text)
        for i, (name, s) in enumerate(self.series.items()):
            color = QColor(self.COLORS[i % len(self.COLORS)])
            p.setPen(QPen(color, 2))
            for a, b in zip(s, s[1:], strict=False):
                p.drawLine(to_px(*a), to_px(*b))
            for pt in s[-1:] if len(s) > 1 else s:
                p.drawEllipse(to_px(*pt), 2.5, 2.5)
            p.drawText(left + 6 + 110 * i, h - 4, name)
        p.end()


def sample_mosaic(samples: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Images of the sample views side by side (one row per sample) and their keypoints in napari (row, col).

    Returns
    -------
    tuple
        ``image (R·S, C·S, 3)`` uint8, ``annotated (N, 2)``, ``predicted (N, 2)`` and ``error (N,)`` (px,
        predicted vs annotated, for visible keypoints).
    """
    S = samples[0]["images"].shape[1]
    cols = max(s["images"].shape[0] for s in samples)
    img = np.zeros((len(samples) * S, cols * S, 3), dtype=np.uint8)
    ann, pred, err = [], [], []
    for r, s in enumerate(samples):
        for v in range(s["images"].shape[0]):
            img[r * S : (r + 1) * S, v * S : (v + 1) * S] = s["images"][v]
            vis = s["visible"][v]
            off = np.array([r * S, v * S], dtype=float)
            k = s["keypoints"][v][vis][:, ::-1] + off
            q = s["predicted"][v][vis][:, ::-1] + off
            ann.append(k)
            pred.append(q)
            err.append(np.linalg.norm(k - q, axis=-1))

    def cat(parts: list[np.ndarray], width: int) -> np.ndarray:
        return np.concatenate(parts) if parts else np.zeros((0, width))

    return img, cat(ann, 2), cat(pred, 2), cat(err, 1).reshape(-1)


def train_worker(config: Any, resume: bool, cancel: threading.Event, overwrite: bool = False):
    """Worker body (no viewer access): the trainer's events, unchanged."""
    from napari_smil_mv.training import train_iter

    yield from train_iter(config, resume=resume, cancel=cancel, overwrite=overwrite)


class TrainWidget(QWidget):
    """Dock widget for training the network (see the module docstring)."""

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.worker: Any = None
        self.base_config: dict = {}
        self.last_event: Any = None
        self.history: list[dict] = []
        self._cancel = threading.Event()
        self._build_ui()

    # ------------------------------------------------------------------------------------------ UI
    def _build_ui(self) -> None:
        from napari_smil_mv.training import OptimConfig

        layout = QVBoxLayout(self)
        box = QGroupBox("Data and output")
        form = QFormLayout(box)
        self.dataset_edit = add_path_row(form, "Dataset", "preprocessed dataset (.h5)", self._browse_dataset)
        self.model_edit = add_path_row(form, "Body model", "empty: the dataset's model", self._browse_model)
        self.output_edit = add_path_row(form, "Output folder", "checkpoints and logs", self._browse_output)
        row = QHBoxLayout()
        self.config_label = QLabel("defaults")
        load = QPushButton("Load config…")
        load.clicked.connect(self._browse_config)
        row.addWidget(self.config_label, 1)
        row.addWidget(load)
        form.addRow("Config", row)
        layout.addWidget(box)

        box = QGroupBox("Settings")
        form = QFormLayout(box)
        self.backbone_combo = QComboBox()
        self.backbone_combo.addItems(["small_cnn", "resnet18", "resnet34", "resnet50"])
        self.backbone_combo.setEditable(True)  # timm:<name> / torchvision:<name> when installed
        form.addRow("Backbone", self.backbone_combo)
        self.epochs_spin = spin_box(1, 100000, 20)
        form.addRow("Epochs", self.epochs_spin)
        self.batch_spin = spin_box(1, 4096, 8)
        form.addRow("Batch size", self.batch_spin)
        self.lr_spin = self._float_spin(OptimConfig().lr)
        form.addRow("Learning rate", self.lr_spin)
        self.backbone_lr_spin = self._float_spin(OptimConfig().backbone_lr)
        form.addRow("Backbone learning rate", self.backbone_lr_spin)
        self.val_spin = QDoubleSpinBox()
        self.val_spin.setRange(0.0, 0.9)
        self.val_spin.setSingleStep(0.05)
        self.val_spin.setValue(0.15)
        form.addRow("Validation fraction", self.val_spin)
        self.device_combo = QComboBox()
        self.device_combo.addItems(["auto", "cpu", "cuda"])
        form.addRow("Device", self.device_combo)
        self.augment_check = QCheckBox("augment images (photometric, shared across views)")
        self.augment_check.setChecked(True)
        form.addRow(self.augment_check)
        layout.addWidget(box)

        (self.start_btn, self.stop_btn, self.resume_btn), self.progress = add_job_controls(
            layout, ("Start", "Stop", "Resume")
        )
        self.status = wrapping_label(layout)
        self.loss_plot = CurvePlot("loss (log)", log=True)
        self.metric_plot = CurvePlot("validation 2D error (px, original images)")
        layout.addWidget(self.loss_plot)
        layout.addWidget(self.metric_plot)
        layout.addStretch(1)
        self.start_btn.clicked.connect(lambda: self.start(resume=False))
        self.resume_btn.clicked.connect(lambda: self.start(resume=True))
        self.stop_btn.clicked.connect(self.stop)
        self._set_running(False)

    @staticmethod
    def _float_spin(value: float) -> QDoubleSpinBox:
        s = QDoubleSpinBox()
        s.setDecimals(6)
        s.setRange(0.0, 1.0)
        s.setSingleStep(1e-4)
        s.setValue(value)
        return s

    def _browse_dataset(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Dataset", "", "Datasets (*.h5 *.hdf5);;All files (*)")
        if path:
            self.dataset_edit.setText(path)
            if not self.output_edit.text():
                self.output_edit.setText(
                    str(Path(path).with_name(Path(path).name.split(".")[0] + "_training"))
                )

    def _browse_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "SMIL model", "", "SMIL models (*.pkl);;All files (*)")
        if path:
            self.model_edit.setText(path)

    def _browse_output(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Output folder")
        if path:
            self.output_edit.setText(path)

    def _browse_config(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Training config", "", "Configs (*.json *.toml)")
        if path:
            self.load_config(path)

    def load_config(self, path: str | Path) -> None:
        """Fill the fields from a config file; its other settings are kept for the run."""
        from napari_smil_mv.training import load_config

        try:
            cfg = load_config(path)
        except (ValueError, FileNotFoundError) as exc:
            self._say(f"Cannot load the config: {exc}")
            return
        self.base_config = cfg.to_dict()
        self.config_label.setText(Path(path).name)
        self.dataset_edit.setText(cfg.data.dataset)
        self.model_edit.setText(cfg.body_model or "")
        self.output_edit.setText(cfg.output_dir)
        self.backbone_combo.setCurrentText(cfg.network_spec().backbone)
        self.epochs_spin.setValue(cfg.epochs)
        self.batch_spin.setValue(cfg.data.batch_size)
        self.lr_spin.setValue(cfg.optim.lr)
        self.backbone_lr_spin.setValue(cfg.optim.backbone_lr or cfg.optim.lr)
        self.val_spin.setValue(cfg.data.val_fraction)
        self.device_combo.setCurrentText(cfg.device)
        self.augment_check.setChecked(cfg.data.augment)

    def config(self):
        """The TrainConfig of the fields (over a loaded config file); ValueError names a bad field."""
        from napari_smil_mv.training import TrainConfig

        d = {k: (dict(v) if isinstance(v, dict) else v) for k, v in self.base_config.items()}
        d["output_dir"] = self.output_edit.text().strip() or "training_run"
        d["body_model"] = self.model_edit.text().strip() or None
        d["epochs"] = int(self.epochs_spin.value())
        d["device"] = self.device_combo.currentText()
        d.setdefault("data", {}).update(
            dataset=self.dataset_edit.text().strip(),
            batch_size=int(self.batch_spin.value()),
            val_fraction=float(self.val_spin.value()),
            augment=self.augment_check.isChecked(),
        )
        d.setdefault("model", {})["backbone"] = self.backbone_combo.currentText().strip()
        d.setdefault("optim", {}).update(
            lr=float(self.lr_spin.value()), backbone_lr=float(self.backbone_lr_spin.value())
        )
        return TrainConfig.from_dict(d)

    # ------------------------------------------------------------------------------------------ run
    def _set_running(self, running: bool) -> None:
        self.start_btn.setEnabled(not running)
        self.resume_btn.setEnabled(not running)
        self.stop_btn.setEnabled(running)

    def _say(self, text: str) -> None:
        self.status.setText(text)

    def start(self, resume: bool = False, overwrite: bool | None = None) -> Any:
        """Start (or resume from ``<output>/last.pt``) training in a worker; returns it (None if it cannot).

        A new run into a folder that holds an earlier run asks before replacing it (``overwrite`` None; True/False
        answers for scripts).
        """
        from napari.qt.threading import create_worker

        if self.worker is not None:
            return None
        try:
            cfg = self.config()
        except (ValueError, TypeError) as exc:
            self._say(f"Cannot train: {exc}")
            return None
        if resume and not (Path(cfg.output_dir) / "last.pt").is_file():
            self._say(f"Cannot resume: {Path(cfg.output_dir) / 'last.pt'} does not exist")
            return None
        if not resume:
            from napari_smil_mv.training.checkpoint import existing_run_files

            found = existing_run_files(cfg.output_dir)
            if found and overwrite is None:
                overwrite = ask_yes_no(
                    self,
                    "Replace training run?",
                    f"{cfg.output_dir} already holds a training run ({', '.join(p.name for p in found[:5])}).\n"
                    "Replace it? (Resume continues it instead.)",
                )
            if found and not overwrite:
                self._say(
                    f"Not started: {cfg.output_dir} holds a training run; choose another output folder or Resume"
                )
                return None
            self.history = []
            self.loss_plot.clear()
            self.metric_plot.clear()
        self._cancel = threading.Event()
        worker = create_worker(train_worker, cfg, resume, self._cancel, bool(overwrite))
        worker.yielded.connect(self._on_event)
        worker.errored.connect(lambda exc: self._say(f"Training failed: {exc}"))
        worker.finished.connect(self._on_finished)
        self.worker = worker
        self._set_running(True)
        self._say("Resuming…" if resume else "Starting…")
        worker.start()
        return worker

    def stop(self) -> None:
        """Ask the trainer to write a resumable checkpoint and stop after the current step."""
        self._cancel.set()
        if self.worker is not None:
            self._say("Stopping after this step…")

    def _on_finished(self) -> None:
        self.worker = None
        self._set_running(False)

    def _on_event(self, ev) -> None:
        self.last_event = ev
        self.progress.setValue(int(round(1000 * ev.progress)))
        if ev.kind in ("start", "step", "epoch", "stopped", "done", "checkpoint"):
            self._say(ev.message)
        if ev.history:
            self.history = list(ev.history)
            self._plot()
        if ev.kind == "samples" and ev.samples:
            self.show_samples(ev.samples)

    def _plot(self) -> None:
        h = self.history
        self.loss_plot.set_series("train", [(r["epoch"], r["train"].get("total")) for r in h])
        self.loss_plot.set_series("validation", [(r["epoch"], r["val"].get("total")) for r in h if r["val"]])
        self.metric_plot.set_series("median px", [(r["epoch"], r["metrics"].get("px_median")) for r in h])
        self.metric_plot.set_series("mean px", [(r["epoch"], r["metrics"].get("px_mean")) for r in h])

    def show_samples(self, samples: list[dict]) -> None:
        """Draw the sample views with annotated (green) and predicted (red) keypoints in the viewer."""
        img, ann, pred, err = sample_mosaic(samples)
        layers = {la.name: la for la in self.viewer.layers}
        if SAMPLE_LAYERS[0] in layers:
            layers[SAMPLE_LAYERS[0]].data = img
            layers[SAMPLE_LAYERS[1]].data = ann
            layers[SAMPLE_LAYERS[2]].data = pred
            layers[SAMPLE_LAYERS[2]].features = {"error_px": err}
        else:
            self.viewer.add_image(img, name=SAMPLE_LAYERS[0], rgb=True)
            size = max(1.5, img.shape[0] / len(samples) / 40)
            self.viewer.add_points(
                ann, name=SAMPLE_LAYERS[1], face_color="#40ff60", size=size, border_width=0
            )
            self.viewer.add_points(
                pred,
                name=SAMPLE_LAYERS[2],
                face_color="#ff4040",
                symbol="cross",
                size=1.6 * size,
                features={"error_px": err},
                border_width=0,
            )
            self.viewer.reset_view()
        layers = {la.name: la for la in self.viewer.layers}
        layers[SAMPLE_LAYERS[0]].metadata["napari_smil_mv_samples"] = [
            {k: s[k] for k in ("session", "frame", "camera_names")} for s in samples
        ]
