"""The "Train network" dock widget: choose a dataset and settings, start / stop / resume training, watch the
losses and validation metrics live, and see sample predictions drawn on the validation views in the viewer.

Training runs in a napari worker thread around :func:`napari_smil_mv.training.train_iter`; the worker only yields
:class:`~napari_smil_mv.training.TrainEvent` objects, and the main-thread slots update the plots and layers, so the
GUI never freezes. Stop asks the trainer to write a resumable ``last.pt`` and end; Resume continues from it.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtWidgets import (
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from napari_smil_mv.napari.widgets.config_forms import ConfigForm
from napari_smil_mv.napari.widgets.config_hints import train_hints
from napari_smil_mv.napari.widgets.live_plot import LivePlot
from napari_smil_mv.napari.widgets.widget_parts import (
    RunsOneJob,
    add_job_controls,
    ask_yes_no,
    wrapping_label,
)

if TYPE_CHECKING:  # pragma: no cover
    import napari

SAMPLE_LAYERS = ("network samples", "network: annotated", "network: predicted")


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


class TrainWidget(RunsOneJob, QWidget):
    """Dock widget for training the network (see the module docstring)."""

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.worker: Any = None
        self.last_event: Any = None
        self.history: list[dict] = []
        self._cancel = threading.Event()
        self._build_ui()

    # ------------------------------------------------------------------------------------------ UI
    def _build_ui(self) -> None:
        from napari_smil_mv.training import TrainConfig

        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        self.config_label = QLabel("defaults")
        load, save = QPushButton("Load config…"), QPushButton("Save config…")
        load.clicked.connect(self._browse_config)
        save.clicked.connect(self._save_config_dialog)
        row.addWidget(QLabel("Config:"))
        row.addWidget(self.config_label, 1)
        row.addWidget(load)
        row.addWidget(save)
        layout.addLayout(row)
        box = QGroupBox("Settings (every key of the training config; hover a field for its meaning)")
        inner = QVBoxLayout(box)
        self.form = ConfigForm(TrainConfig, hints=train_hints())
        self.form.widget("data.dataset").changed.connect(self._dataset_chosen)
        inner.addWidget(self.form.scroll_area(320))
        layout.addWidget(box)

        (self.start_btn, self.stop_btn, self.resume_btn), self.progress = add_job_controls(
            layout, ("Start", "Stop", "Resume")
        )
        self.status = wrapping_label(layout)
        self.loss_plot = LivePlot("loss", y_label="loss", log=True)
        self.metric_plot = LivePlot("validation 2D error (original images)", y_label="px")
        layout.addWidget(self.loss_plot)
        layout.addWidget(self.metric_plot)
        self.start_btn.clicked.connect(lambda: self.start(resume=False))
        self.resume_btn.clicked.connect(lambda: self.start(resume=True))
        self.stop_btn.clicked.connect(self.stop)
        self._set_running(False)

    def _dataset_chosen(self, *_args) -> None:
        """A new dataset: propose ``<dataset>_training`` as the output folder while it is the default."""
        path = str(self.form.widget("data.dataset").line_edit.value).strip()
        out = self.form.widget("output_dir")
        if path and str(out.line_edit.value).strip() in ("", "training_run"):
            out.line_edit.value = str(Path(path).with_name(Path(path).name.split(".")[0] + "_training"))

    def _browse_config(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Training config", "", "Configs (*.json *.toml)")
        if path:
            self.load_config(path)

    def _save_config_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save training config", "", "JSON (*.json)")
        if path:
            self.save_config(path)

    def load_config(self, path: str | Path) -> None:
        """Show every setting of a config file in the form."""
        from napari_smil_mv.training import load_config

        try:
            cfg = load_config(path)
        except (ValueError, FileNotFoundError) as exc:
            self._say(f"Cannot load the config: {exc}")
            return
        self.form.set_value(cfg)
        self.config_label.setText(Path(path).name)

    def save_config(self, path: str | Path) -> Path | None:
        """Write the form's config as JSON (the file ``napari-smil-mv train --config`` reads)."""
        from napari_smil_mv.training import save_config

        try:
            return save_config(self.config(), path)
        except (ValueError, OSError) as exc:
            self._say(f"Not saved: {exc}")
            return None

    def config(self):
        """The TrainConfig of the form; ValueError names a bad field (shown under the form too)."""
        return self.form.value()

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
        return self._start_job(
            worker,
            "Resuming…" if resume else "Starting…",
            yielded=self._on_event,
            errored=lambda exc: self._say(f"Training failed: {exc}"),
        )

    def stop(self) -> None:
        """Ask the trainer to write a resumable checkpoint and stop after the current step."""
        self._cancel.set()
        if self.worker is not None:
            self._say("Stopping after this step…")

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
