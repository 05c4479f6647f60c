"""The "Dataset browser" dock widget: open a multi-view dataset and inspect it sample by sample.

Shows the file's metadata and conventions, a histogram of views per sample, the reprojection error of the stored
3D keypoints per camera, and for the current sample (the viewer's sample slider) its session, frame, animal and
the error of each view. Reading the file runs in a napari ``thread_worker``; layers are added in the main thread.
A dataset opened through *File > Open* (the reader) is picked up as well.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import QRectF, Qt
from qtpy.QtGui import QColor, QPainter
from qtpy.QtWidgets import (
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from napari_smil_mv.napari.readers.dataset_browser import DatasetOverview, dataset_layer_data, load_overview
from napari_smil_mv.napari.widgets.widget_parts import wrapping_label

if TYPE_CHECKING:  # pragma: no cover
    import napari


def _load_worker(path: str) -> tuple[DatasetOverview, list]:
    overview = load_overview(path)
    return overview, dataset_layer_data(overview)


class ViewCountHistogram(QWidget):
    """Bar chart: number of samples per view count."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[int, int] = {}
        self.setMinimumHeight(90)

    def set_counts(self, counts: dict[int, int]) -> None:
        self.counts = dict(counts)
        self.update()

    def paintEvent(self, event: Any) -> None:  # noqa: N802 (Qt API)
        if not self.counts:
            return
        p = QPainter(self)
        w, h = self.width(), self.height()
        n = len(self.counts)
        top = max(self.counts.values()) or 1
        bar_w = w / n
        fg = self.palette().color(self.foregroundRole())
        for k, (views, count) in enumerate(sorted(self.counts.items())):
            bh = (h - 32) * count / top
            rect = QRectF(k * bar_w + 4, h - 16 - bh, bar_w - 8, bh)
            p.fillRect(rect, QColor("#4363d8"))
            p.setPen(fg)
            p.drawText(QRectF(k * bar_w, h - 16, bar_w, 16), Qt.AlignmentFlag.AlignCenter, f"{views} views")
            p.drawText(QRectF(k * bar_w, h - 32 - bh, bar_w, 16), Qt.AlignmentFlag.AlignCenter, str(count))
        p.end()


def _table(headers: list[str]) -> QTableWidget:
    t = QTableWidget(0, len(headers))
    t.setHorizontalHeaderLabels(headers)
    t.verticalHeader().setVisible(False)
    t.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
    t.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    return t


def _fill(table: QTableWidget, rows: list[list[str]]) -> None:
    table.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            table.setItem(r, c, QTableWidgetItem(value))


def _fmt(x: float) -> str:
    return "–" if not np.isfinite(x) else f"{x:.2f}"


class DatasetBrowser(QWidget):
    """Dock widget for multi-view datasets (see the module docstring).

    Parameters
    ----------
    napari_viewer
        The viewer to show the dataset in.
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.overview: DatasetOverview | None = None
        self._workers: list = []
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("dataset .h5")
        self.browse_btn = QPushButton("File…")
        self.open_btn = QPushButton("Open")
        for w in (self.path_edit, self.browse_btn, self.open_btn):
            row.addWidget(w)
        layout.addLayout(row)
        self.info_label = wrapping_label(layout, "No dataset open.")
        self.info_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box = QGroupBox("Views per sample")
        QVBoxLayout(box).addWidget(hist := ViewCountHistogram())
        self.histogram = hist
        layout.addWidget(box)
        box = QGroupBox("Reprojection of the 3D keypoints (stored px)")
        self.camera_table = _table(["camera", "median", "p90", "max", "points"])
        QVBoxLayout(box).addWidget(self.camera_table)
        layout.addWidget(box)
        box = QGroupBox("Current sample")
        v = QVBoxLayout(box)
        row = QHBoxLayout()
        row.addWidget(QLabel("Sample"))
        self.sample_spin = QSpinBox()
        row.addWidget(self.sample_spin)
        row.addStretch(1)
        v.addLayout(row)
        self.sample_label = wrapping_label(v)
        self.sample_table = _table(["camera", "keypoints", "median error"])
        v.addWidget(self.sample_table)
        layout.addWidget(box)
        self.status = wrapping_label(layout)
        layout.addStretch(1)
        self.browse_btn.clicked.connect(self._browse)
        self.open_btn.clicked.connect(lambda: self.open(self.path_edit.text().strip()))
        self.sample_spin.valueChanged.connect(self.set_sample)
        self.viewer.dims.events.current_step.connect(self._on_step)
        self.viewer.layers.events.inserted.connect(self._adopt)
        self._adopt()

    # ------------------------------------------------------------------------------------------ loading
    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Dataset", "", "HDF5 datasets (*.h5 *.hdf5);;All files (*)"
        )
        if path:
            self.path_edit.setText(path)
            self.open(path)

    def open(self, path: str | Path, add_layers: bool = True) -> Any:
        """Read ``path`` in a worker, then (optionally) add its layers and show its statistics. Returns the worker."""
        from napari.qt.threading import create_worker

        if not path:
            self.status.setText("Choose a dataset file first.")
            return None
        worker = create_worker(_load_worker, str(path), _progress={"desc": "Reading dataset"})
        worker.returned.connect(lambda res: self._loaded(res, add_layers))
        worker.errored.connect(lambda exc: self.status.setText(f"Could not open {path}: {exc}"))
        worker.finished.connect(lambda: self._workers.remove(worker) if worker in self._workers else None)
        self._workers.append(worker)
        self.status.setText(f"Reading {Path(path).name}…")
        worker.start()
        return worker

    def _loaded(self, result: tuple[DatasetOverview, list], add_layers: bool) -> None:
        from napari.layers import Layer

        overview, layer_data = result
        self.overview = overview  # before adding layers: _adopt must not read the file again
        if add_layers:
            for data, kwargs, kind in layer_data:
                self.viewer.add_layer(Layer.create(data, kwargs, kind))
            self.viewer.reset_view()
        self.show_overview(overview)

    def _adopt(self, event: Any = None) -> None:
        """Show the statistics of a dataset whose layers were added by the reader."""
        for layer in self.viewer.layers:
            meta = layer.metadata.get("napari_smil_mv", {}) if isinstance(layer.metadata, dict) else {}
            path = meta.get("dataset")
            if path and (self.overview is None or str(self.overview.info.path) != path):
                if not any(w for w in self._workers):
                    self.path_edit.setText(path)
                    self.open(path, add_layers=False)
                return

    # ------------------------------------------------------------------------------------------ display
    def show_overview(self, overview: DatasetOverview) -> None:
        """Fill the metadata, histogram and per-camera tables."""
        from napari_smil_mv.dataset.quality import ReprojectionReport

        self.overview = overview
        info = overview.info
        origin = (
            f"napari-smil-mv schema {info.schema_version}" if info.is_ours else "reference tool (SMILify)"
        )
        lines = [
            f"<b>{info.path.name}</b> — {origin}",
            f"{info.n_samples} samples, up to {info.max_views} views, {info.n_joints} joints, "
            f"{info.image_size} px, crop {info.attrs.get('crop_mode', '?')}",
            f"cameras: {', '.join(overview.cameras)}",
            f"3D units: {info.world_units}, world_scale {info.world_scale:g} ({info.world_scale_source})",
        ]
        if info.attrs.get("body_model_source"):
            lines.append(f"body model: {Path(str(info.attrs['body_model_source'])).name}")
        lines += [f"<i>assumed: {a}</i>" for a in info.assumptions]
        self.info_label.setText("<br>".join(lines))
        self.histogram.set_counts(overview.view_histogram())
        per_cam = ReprojectionReport(overview.errors, overview.camera_indices, overview.cameras).per_camera()
        _fill(
            self.camera_table,
            [
                [c, _fmt(s["median"]), _fmt(s["p90"]), _fmt(s["max"]), str(s["count"])]
                for c, s in per_cam.items()
            ],
        )
        self.sample_spin.setRange(0, max(0, info.n_samples - 1))
        self.status.setText("")
        self.set_sample(self._current_sample())

    def _current_sample(self) -> int:
        step = self.viewer.dims.current_step
        return int(step[0]) if len(step) >= 3 else 0

    def _on_step(self, event: Any = None) -> None:
        if self.overview is not None:
            i = self._current_sample()
            if i != self.sample_spin.value():
                self.sample_spin.setValue(i)
            else:
                self.set_sample(i)

    def set_sample(self, i: int) -> None:
        """Show sample ``i`` (moves the viewer's sample slider when the dataset's layers are shown)."""
        ov = self.overview
        if ov is None or not 0 <= i < ov.info.n_samples:
            return
        if self.viewer.dims.ndim >= 3 and self._current_sample() != i:
            self.viewer.dims.set_current_step(0, i)
        animal = f" · animal {ov.animal[i]}" if ov.animal[i] else ""
        self.sample_label.setText(
            f"{ov.session_name[i]} · frame {int(ov.frame_idx[i])}{animal} · {int(ov.num_views[i])} views"
        )
        errs = ov.sample_errors(i)
        rows = [
            [c, str(errs[c][0]), _fmt(errs[c][1]) + " px"] if c in errs else [c, "no view", "–"]
            for c in ov.cameras
        ]
        _fill(self.sample_table, rows)
