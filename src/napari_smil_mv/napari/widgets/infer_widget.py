"""The "Infer with network" dock widget: run a trained network on the session shown in the viewer (crops made on
the fly), a session folder, or a preprocessed dataset; optionally refine with the fitter; show the predictions as
the same layers as a fit; save the results file and the exports.

Inference runs in a napari worker thread around :func:`napari_smil_mv.inference.iter_inference` (the options of
``napari-smil-mv infer`` in one :class:`~napari_smil_mv.inference.InferOptions`, shown as a generated form: device,
batch, refinement, frame range, camera-exclusion override, …); only the main-thread slots touch layers and widgets.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QVBoxLayout,
    QWidget,
)

from napari_smil_mv import api
from napari_smil_mv.inference.options import InferOptions
from napari_smil_mv.napari.widgets.config_forms import ConfigForm
from napari_smil_mv.napari.widgets.config_hints import infer_hints
from napari_smil_mv.napari.widgets.widget_parts import (
    RunsOneJob,
    add_buttons,
    add_job_controls,
    add_path_row,
    wrapping_label,
)

if TYPE_CHECKING:  # pragma: no cover
    import napari

SOURCES = ("session shown in the viewer", "session folder", "dataset file")


def infer_worker(checkpoint: str, target: Any, options: InferOptions, cancel):
    """Worker body (no viewer access): yields InferEvents; returns ``(results, model data)``."""
    from napari_smil_mv.inference import Predictor, iter_inference

    pr = Predictor(checkpoint, options.model, options.device)
    results: list = []
    for ev in iter_inference(pr, target, options, cancel):
        results = ev.results or results
        yield ev
    return results, pr.model_data


class InferWidget(RunsOneJob, QWidget):
    """Dock widget for network inference (see the module docstring)."""

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.worker: Any = None
        self.results: list = []
        self.model_data: Any = None
        self._cancel = threading.Event()
        self._build_ui()

    def _build_ui(self) -> None:
        layout = QVBoxLayout(self)
        box = QGroupBox("Network and data")
        form = QFormLayout(box)
        self.checkpoint_edit = add_path_row(form, "Checkpoint", "best.pt / last.pt", self._browse_checkpoint)
        self.source_combo = QComboBox()
        self.source_combo.addItems(SOURCES)
        form.addRow("Predict on", self.source_combo)
        self.path_edit = add_path_row(form, "Path", "session folder or dataset (.h5)", self._browse_path)
        layout.addWidget(box)
        box = QGroupBox("Options (every option of 'napari-smil-mv infer'; hover a field for its meaning)")
        self.form = ConfigForm(InferOptions, hints=infer_hints())
        QVBoxLayout(box).addWidget(self.form.scroll_area(320))
        layout.addWidget(box)
        (self.run_btn, self.stop_btn), self.progress = add_job_controls(layout, ("Run", "Stop"))
        self.status = wrapping_label(layout)
        box = QGroupBox("Save")
        grid = QVBoxLayout(box)
        self.save_btn, self.anim_btn = add_buttons(grid, ("Results…", "Animation…"))
        self.mesh_btn, self.csv_btn, self.slp_btn = add_buttons(grid, ("Meshes…", "Joints CSV…", ".slp…"))
        layout.addWidget(box)
        layout.addStretch(1)
        self.run_btn.clicked.connect(self.run)
        self.stop_btn.clicked.connect(self.stop)
        self.save_btn.clicked.connect(lambda: self._save_dialog("results"))
        self.anim_btn.clicked.connect(lambda: self._save_dialog("animation"))
        self.mesh_btn.clicked.connect(lambda: self._save_dialog("meshes"))
        self.csv_btn.clicked.connect(lambda: self._save_dialog("csv"))
        self.slp_btn.clicked.connect(lambda: self._save_dialog("slp"))
        self._set_running(False)

    def _browse_checkpoint(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Checkpoint", "", "Checkpoints (*.pt);;All files (*)")
        if path:
            self.checkpoint_edit.setText(path)

    def _browse_path(self) -> None:
        if self.source_combo.currentText() == "dataset file":
            path, _ = QFileDialog.getOpenFileName(self, "Dataset", "", "Datasets (*.h5 *.hdf5)")
        else:
            path = QFileDialog.getExistingDirectory(self, "Session folder")
        if path:
            self.path_edit.setText(path)

    def _set_running(self, running: bool) -> None:
        self.run_btn.setEnabled(not running)
        self.stop_btn.setEnabled(running)
        for b in (self.save_btn, self.anim_btn, self.mesh_btn, self.csv_btn, self.slp_btn):
            b.setEnabled(not running and bool(self.results))

    def _say(self, text: str) -> None:
        self.status.setText(text)

    # ------------------------------------------------------------------------------------------ run
    def run(self) -> Any:
        """Start inference in a worker; returns it (None when it cannot start)."""
        from napari.qt.threading import create_worker

        if self.worker is not None:
            return None
        checkpoint = self.checkpoint_edit.text().strip()
        source = self.source_combo.currentText()
        try:
            if not checkpoint:
                raise ValueError("choose a checkpoint (.pt)")
            options = self.form.value()
            if source == SOURCES[0]:
                target = api.session_of(self.viewer)
            else:
                target = self.path_edit.text().strip()
                if not target or not Path(target).exists():
                    raise ValueError(f"{source} not found: {target!r}")
        except (ValueError, KeyError) as exc:
            self._say(f"Cannot run: {exc}")
            return None
        self._cancel = threading.Event()
        worker = create_worker(infer_worker, checkpoint, target, options, self._cancel)
        self.results = []
        self.progress.setValue(0)
        return self._start_job(
            worker,
            "Loading the network…",
            yielded=self._on_event,
            returned=self._on_done,
            errored=lambda exc: self._say(f"Inference failed: {exc}"),
        )

    def stop(self) -> None:
        """Stop at the next batch (nothing is shown)."""
        self._cancel.set()

    def _on_event(self, ev) -> None:
        self.progress.setValue(int(round(1000 * ev.progress)))
        self._say(ev.message)

    def _on_done(self, value) -> None:
        results, model = value
        self.results, self.model_data = list(results), model
        if not self.results:
            self._say("Stopped; nothing to show.")
            return
        shown = self.source_combo.currentText() == SOURCES[0]
        for res in self.results:
            api.show_results(self.viewer, res, model, session="auto" if shown else None)
        from napari_smil_mv.results import evaluate

        m = evaluate(self.results[0])
        self._say(
            f"{len(self.results)} result set(s), {self.results[0].n_frames} frames; reprojection median "
            f"{m['reprojection_px_median']:.2f} px, PCK@5 {m['pck_5px']:.2f}"
        )
        self.progress.setValue(1000)

    # ------------------------------------------------------------------------------------------ saving
    def _save_dialog(self, kind: str) -> None:
        if not self.results:
            return
        if kind == "slp":
            path = QFileDialog.getExistingDirectory(self, "Folder for the .slp files")
        else:
            filters = {
                "results": "Results (*.smilmv.h5)",
                "animation": "Animation (*.npz)",
                "meshes": "Mesh sequence (*.npz)",
                "csv": "CSV (*.csv)",
            }
            path, _ = QFileDialog.getSaveFileName(self, f"Save {kind}", "", filters[kind])
        if path:
            self.save(kind, path)

    def save(self, kind: str, path: str | Path, overwrite: bool = False) -> list[Path]:
        """Write the (first) results as ``kind``: results, animation, meshes, csv or slp; returns the files."""
        from napari_smil_mv.results import (
            export_animation,
            export_joints_csv,
            export_meshes,
            export_slp,
            write_results,
        )

        res = self.results[0]
        path = Path(path)
        try:
            if kind == "results":
                if not path.name.endswith(".smilmv.h5"):
                    path = path.with_name(path.name + ".smilmv.h5")
                out = [write_results(res, path, overwrite=overwrite)]
            elif kind == "animation":
                out = [export_animation(res, path, overwrite=overwrite)]
            elif kind == "meshes":
                out = export_meshes(res, self.model_data, path, overwrite=overwrite)
            elif kind == "csv":
                out = [export_joints_csv(res, path, overwrite=overwrite)]
            elif kind == "slp":
                out = export_slp(res, path, overwrite=overwrite)
            else:
                raise ValueError(f"unknown export {kind!r}")
        except (FileExistsError, ValueError, OSError) as exc:
            self._say(f"Not saved: {exc}")
            return []
        self._say(f"Saved {', '.join(p.name for p in out)}")
        return out
