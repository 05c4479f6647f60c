"""The "Fit" dock widget: fit a SMIL body model to the session shown in the viewer, watch the loss, see the fitted
mesh and keypoints in every camera and in the world view, and save the results file.

The fit runs in a napari ``thread_worker`` around :func:`napari_smil_mv.napari.jobs.fit_job.run_fit_job` (which wraps
:func:`napari_smil_mv.fitting.fit_iter`); the worker never touches layers or widgets: progress events come back
through ``yielded``, the results and their prebuilt layer data through ``returned``, and only those main-thread
slots change the viewer. Stop sets the fit's cancel flag: the fit ends at its next report and the last iterate is
shown and can be saved (marked as cancelled in the file).
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qtpy.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from napari_smil_mv import api
from napari_smil_mv.fitting import FitConfig, FitEvent
from napari_smil_mv.napari.jobs.fit_job import FitOutcome, prepare_fit, run_fit_job
from napari_smil_mv.napari.registry import session_id_of
from napari_smil_mv.napari.widgets.config_forms import ConfigForm
from napari_smil_mv.napari.widgets.config_hints import fit_hints
from napari_smil_mv.napari.widgets.fit_quality_view import FitQualityView
from napari_smil_mv.napari.widgets.live_plot import LivePlot
from napari_smil_mv.napari.widgets.widget_parts import (
    RunsOneJob,
    add_buttons,
    add_job_controls,
    add_path_row,
    ask_yes_no,
    wrapping_label,
)
from napari_smil_mv.results import RESULTS_SUFFIX, write_results

if TYPE_CHECKING:  # pragma: no cover
    import napari


def fit_worker(
    session: Any,
    model: str | None,
    joint_map: str | None,
    frames: tuple[int | None, int | None],
    config: FitConfig,
    cancel: threading.Event,
    session_id: str | None,
) -> Generator[FitEvent, None, FitOutcome]:
    """Worker body (no viewer or widget access): resolve the inputs, fit, build the result layer data."""
    yield FitEvent("prepare", 0, 0, stage_index=-1, n_stages=len(config.stages), message="loading the model")
    job = prepare_fit(session, model, joint_map, frames)
    outcome = yield from run_fit_job(job, config, cancel, session_id)
    return outcome


class FitWidget(RunsOneJob, QWidget):
    """Dock widget for fitting (see the module docstring).

    Parameters
    ----------
    napari_viewer
        The viewer; the session is the one shown in it (:func:`napari_smil_mv.api.session_of`).
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.outcome: FitOutcome | None = None
        self.worker: Any = None
        self.last_event: FitEvent | None = None
        self._cancel = threading.Event()
        self._stage_x: dict[int, tuple[int, int]] = {}
        self._build_ui()

    # ------------------------------------------------------------------------------------------ UI
    def _build_ui(self) -> None:
        layout = QVBoxLayout(self)
        box = QGroupBox("Inputs (the session shown in the viewer)")
        form = QFormLayout(box)
        self.model_edit = add_path_row(
            form, "Model", "SMIL model .pkl (empty: demo model)", self._browse_model
        )
        self.joint_map_edit = add_path_row(
            form, "Joint map", "joint_lookup.csv (empty: the session's, else by name)", self._browse_joint_map
        )
        row = QHBoxLayout()
        self.start_spin, self.stop_spin = QSpinBox(), QSpinBox()
        self.start_spin.setRange(0, 10**9)
        self.stop_spin.setRange(0, 10**9)
        self.stop_spin.setSpecialValueText("end")
        for label, spin in (("from", self.start_spin), ("to (excl.)", self.stop_spin)):
            row.addWidget(QLabel(label))
            row.addWidget(spin)
        form.addRow("Frames", row)
        layout.addWidget(box)

        box = QGroupBox("Settings (every FitConfig field; hover a field for its meaning)")
        QVBoxLayout(box).addWidget(self._settings_form())
        layout.addWidget(box)

        (self.run_btn, self.stop_btn), self.progress = add_job_controls(layout, ("Run", "Stop"))
        self.loss_label = wrapping_label(layout)
        self.loss_plot = LivePlot("fit loss", x_label="iteration (all stages)", y_label="loss", log=True)
        layout.addWidget(self.loss_plot)
        self.status = wrapping_label(layout)
        self.quality_view = FitQualityView(self.viewer)  # verdict, per-frame timeline, worst frames
        layout.addWidget(self.quality_view)
        self.save_btn, self.open_btn = add_buttons(layout, ("Save results…", "Show results file…"))
        layout.addStretch(1)

        self.run_btn.clicked.connect(self.run)
        self.stop_btn.clicked.connect(self.stop)
        self.save_btn.clicked.connect(self._save_dialog)
        self.open_btn.clicked.connect(self._open_dialog)
        self._set_running(False)

    def _settings_form(self) -> QWidget:
        """The generated FitConfig form (robust loss, weights in front; stages and the rest under Advanced)."""
        self.form = ConfigForm(FitConfig, hints=fit_hints())
        return self.form.scroll_area(300)

    def _browse_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "SMIL model", "", "SMIL models (*.pkl);;All files (*)")
        if path:
            self.model_edit.setText(path)

    def _browse_joint_map(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Joint map", "", "CSV (*.csv);;All files (*)")
        if path:
            self.joint_map_edit.setText(path)

    def _set_running(self, running: bool) -> None:
        self.run_btn.setEnabled(not running)
        self.stop_btn.setEnabled(running)
        self.save_btn.setEnabled(not running and self.outcome is not None)

    def _say(self, text: str) -> None:
        self.status.setText(text)

    # ------------------------------------------------------------------------------------------ settings
    def config(self) -> FitConfig:
        """The FitConfig of the form (ValueError naming a bad field, shown under the form too)."""
        return self.form.value()

    def frames(self) -> tuple[int | None, int | None]:
        """``(start, stop)`` video frames (None = open end)."""
        start = int(self.start_spin.value()) or None
        stop = int(self.stop_spin.value()) or None
        return start, stop

    # ------------------------------------------------------------------------------------------ run
    def run(self) -> Any:
        """Start the fit in a worker thread; returns the worker (None when it cannot start)."""
        from napari.qt.threading import create_worker

        if self.worker is not None:
            return None
        try:
            session = api.session_of(self.viewer)
            config = self.config()
        except (ValueError, KeyError) as exc:
            self._say(f"Cannot fit: {exc}")
            return None
        self._cancel = threading.Event()
        worker = create_worker(
            fit_worker,
            session,
            self.model_edit.text().strip() or None,
            self.joint_map_edit.text().strip() or None,
            self.frames(),
            config,
            self._cancel,
            session_id_of(session),
        )
        self.outcome = None
        self.loss_plot.clear()
        self._stage_x.clear()
        self.progress.setValue(0)
        return self._start_job(
            worker,
            f"Fitting {session.name}…",
            yielded=self._on_event,
            returned=self._on_done,
            errored=self._on_error,
        )

    def stop(self) -> None:
        """Ask the running fit to stop at its next report (the last iterate is kept)."""
        self._cancel.set()
        if self.worker is not None:
            self._say("Stopping…")

    def _on_event(self, event: FitEvent) -> None:
        self.last_event = event
        self.progress.setValue(int(round(1000 * event.progress)))
        if event.loss_terms and event.stage not in ("init", "done"):
            terms = ", ".join(
                f"{k} {v:.3g}" for k, v in event.loss_terms.items() if k in ("reproj", "points3d")
            )
            self.loss_label.setText(
                f"{event.stage} {event.iteration}/{event.total}: loss {event.loss:.5g} ({terms})"
            )
            self._plot_event(event)
        else:
            self.loss_label.setText(event.message)

    def _plot_event(self, event: FitEvent) -> None:
        """One point of the loss curve; x counts iterations over all stages, one series per stage."""
        if event.stage_index not in self._stage_x:  # (first x, iterations) of each stage seen
            x0 = sum(total for _x, total in self._stage_x.values())
            self._stage_x[event.stage_index] = (x0, event.total)
        x0 = self._stage_x[event.stage_index][0]
        self.loss_plot.append(event.stage, x0 + event.iteration, event.loss)

    def _on_done(self, outcome: FitOutcome) -> None:
        from napari_smil_mv.napari.results_view import add_results_layers

        self.outcome = outcome
        if outcome.layer_data:
            add_results_layers(self.viewer, outcome.layer_data, outcome.results, outcome.model)
        self.progress.setValue(1000)
        self.quality_view.show_results(outcome.results)
        self._say(outcome.result.summary())

    def _on_error(self, exc: Exception) -> None:
        self._say(f"Fit failed: {exc}")

    # ------------------------------------------------------------------------------------------ files
    def _save_dialog(self) -> None:
        if self.outcome is None:
            return
        folder = Path(self.outcome.results.provenance.get("session", "."))
        start = str((folder if folder.is_dir() else folder.parent) / f"fit{RESULTS_SUFFIX}")
        path, _ = QFileDialog.getSaveFileName(
            self,
            "Save results",
            start,
            f"Results (*{RESULTS_SUFFIX})",
            options=QFileDialog.Option.DontConfirmOverwrite,
        )
        if path:
            self.save(path)

    def save(self, path: str | Path, overwrite: bool | None = None) -> Path | None:
        """Write the last fit's results to ``path`` (``.smilmv.h5`` appended when missing), atomically.

        Never writes over an input of the fit (session files, model, joint map) or over a file that is not a
        results file. An existing results file is replaced only with ``overwrite=True`` (None: ask).
        """
        from napari_smil_mv.napari.readers.results_reader import is_results_file

        if self.outcome is None:
            self._say("Nothing to save: run a fit first.")
            return None
        asked = Path(path)
        path = (
            asked
            if asked.name.lower().endswith(RESULTS_SUFFIX)
            else asked.with_name(asked.name + RESULTS_SUFFIX)
        )
        inputs = {Path(p).resolve() for p in self.outcome.inputs}
        if asked.resolve() in inputs or path.resolve() in inputs:
            self._say(f"Not saved: {asked} is an input of the fit; choose another name.")
            return None
        if path.exists():
            if not is_results_file(path):
                self._say(f"Not saved: {path} exists and is not a results file; choose another name.")
                return None
            if overwrite is None:
                overwrite = ask_yes_no(self, "Replace results?", f"{path.name} exists. Replace it?")
            if not overwrite:
                self._say(f"Not saved: {path} exists.")
                return None
        try:
            write_results(self.outcome.results, path, overwrite=bool(overwrite))
        except (OSError, ValueError) as exc:
            self._say(f"Not saved: {exc}")
            return None
        self._say(f"Saved {path}")
        return path

    def _open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Results file", "", f"Results (*{RESULTS_SUFFIX})")
        if path:
            self.show_results_file(path)

    def show_results_file(self, path: str | Path, load_model: bool | None = None) -> list:
        """Show a saved results file with the session in the viewer (or on its own); returns the layers.

        When the results name a body-model ``.pkl``, it is loaded only if the user agrees (``load_model`` None
        asks; True/False answers for scripts), and then only when its SHA-256 matches the recorded one.
        """
        from napari_smil_mv.napari.layers.results_mesh import RECORDED_MODEL, recorded_model_file
        from napari_smil_mv.napari.results_view import show_results
        from napari_smil_mv.results import read_results

        try:
            results = read_results(path)
            model_file = recorded_model_file(results)
            if model_file is not None and load_model is None:
                load_model = ask_yes_no(
                    self,
                    "Load body model?",
                    f"The results were fitted with the body model\n{model_file}\nLoad it to show the mesh? "
                    "(Only if you trust that file; it is checked against the SHA-256 recorded in the results.)",
                )
            model = RECORDED_MODEL if model_file is not None and load_model else None
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                layers = show_results(self.viewer, results, model)
        except (OSError, ValueError, KeyError) as exc:
            self._say(f"Cannot show {path}: {exc}")
            return []
        notes = [str(w.message) for w in caught if "mesh is not shown" in str(w.message)]
        if model_file is not None and not load_model:
            notes = [f"the mesh is not shown (body model {model_file.name} not loaded)"]
        self._say(f"Showing {path}" + (f"; {notes[0]}" if notes else ""))
        return layers
