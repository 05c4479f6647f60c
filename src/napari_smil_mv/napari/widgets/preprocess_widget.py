"""The "Preprocess sessions to a dataset" dock widget: the preprocessing generator with a progress bar and Cancel.

The widget runs :func:`napari_smil_mv.dataset.iter_preprocess` in a napari ``thread_worker``; every event updates
the progress bar and status in the main thread. Cancel sets the run's cancel event: the samples done so far are
kept in ``<output>.partial`` and running again with the same settings resumes. When the run finishes, the dataset
can be opened in the viewer (its layers and the Dataset browser statistics).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qtpy.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QLineEdit,
    QListWidget,
    QVBoxLayout,
    QWidget,
)

from napari_smil_mv.dataset import PreprocessEvent, PreprocessOptions, iter_preprocess
from napari_smil_mv.napari.widgets.config_forms import ConfigForm
from napari_smil_mv.napari.widgets.config_hints import preprocess_hints
from napari_smil_mv.napari.widgets.widget_parts import add_job_controls, button_row, wrapping_label

if TYPE_CHECKING:  # pragma: no cover
    import napari


def _run(sessions, output, model, joint_map, options, units, overwrite, cancel):
    """Worker generator: yields the preprocessing events (no viewer access)."""
    yield from iter_preprocess(
        sessions, output, model, joint_map, options=options, units=units, overwrite=overwrite, cancel=cancel
    )


class PreprocessWidget(QWidget):
    """Dock widget around :func:`~napari_smil_mv.dataset.iter_preprocess` (see the module docstring).

    Parameters
    ----------
    napari_viewer
        The viewer the finished dataset is opened in.
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.worker = None
        self.cancel_event: threading.Event | None = None
        self.last_event: PreprocessEvent | None = None
        self.output_path: Path | None = None
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.session_list = QListWidget()
        self.session_list.setMaximumHeight(90)
        row, (self.add_dir_btn, self.add_file_btn, self.remove_btn) = button_row(
            ("Add folder…", "Add .slp…", "Remove")
        )
        form.addRow("Sessions", self.session_list)
        form.addRow("", row)
        self.output_edit = QLineEdit()
        self.output_edit.setPlaceholderText("train.smilmv-dataset.h5")
        self.model_edit = QLineEdit()
        self.model_edit.setPlaceholderText("body model .pkl (empty: demo model)")
        self.joint_map_edit = QLineEdit()
        self.joint_map_edit.setPlaceholderText("joint_lookup.csv, 'auto', or empty (sessions folder's table)")
        self.units_edit = QLineEdit()
        self.units_edit.setPlaceholderText("e.g. mm (optional)")
        form.addRow("Output", self.output_edit)
        form.addRow("Body model", self.model_edit)
        form.addRow("Joint map", self.joint_map_edit)
        form.addRow("Units", self.units_edit)
        self.overwrite_check = QCheckBox("Overwrite an existing output")
        form.addRow("", self.overwrite_check)
        layout.addLayout(form)
        box = QGroupBox("Options (every PreprocessOptions field; hover a field for its meaning)")
        self.form = ConfigForm(PreprocessOptions, hints=preprocess_hints())
        QVBoxLayout(box).addWidget(self.form.scroll_area(260))
        layout.addWidget(box)
        (self.run_btn, self.cancel_btn, self.open_btn), self.progress = add_job_controls(
            layout, ("Run", "Cancel", "Open dataset"), progress_max=100
        )
        self.status = wrapping_label(layout)
        layout.addStretch(1)
        self.add_dir_btn.clicked.connect(self._add_dir)
        self.add_file_btn.clicked.connect(self._add_file)
        self.remove_btn.clicked.connect(
            lambda: [
                self.session_list.takeItem(self.session_list.row(i))
                for i in self.session_list.selectedItems()
            ]
        )
        self.run_btn.clicked.connect(self.run)
        self.cancel_btn.clicked.connect(self.cancel)
        self.open_btn.clicked.connect(self.open_result)
        self._set_running(False)

    def _set_running(self, running: bool) -> None:
        self.run_btn.setEnabled(not running)
        self.cancel_btn.setEnabled(running)
        self.open_btn.setEnabled(not running and self.output_path is not None and self.output_path.exists())

    def _add_dir(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Session folder or folder of sessions")
        if path:
            self.add_session(path)

    def _add_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Session .slp", "", "SLEAP sessions (*.slp)")
        if path:
            self.add_session(path)

    def add_session(self, path: str | Path) -> None:
        """Add a session folder, ``.slp`` or folder of sessions to the input list."""
        self.session_list.addItem(str(path))

    def sessions(self) -> list[str]:
        return [self.session_list.item(i).text() for i in range(self.session_list.count())]

    def options(self) -> PreprocessOptions:
        """The options of the form (ValueError naming a bad option, shown under the form too)."""
        return self.form.value()

    # ------------------------------------------------------------------------------------------ running
    def run(self) -> Any:
        """Start preprocessing in a worker; returns the worker (None when the form is incomplete)."""
        from napari.qt.threading import create_worker

        sessions, output = self.sessions(), self.output_edit.text().strip()
        if not sessions or not output:
            self.status.setText("Add at least one session and choose an output file.")
            return None
        try:
            options = self.options()
        except ValueError as exc:
            self.status.setText(f"Cannot preprocess: {exc}")
            return None
        self.output_path = Path(output)
        self.cancel_event = threading.Event()
        self.worker = create_worker(
            _run,
            sessions,
            output,
            self.model_edit.text().strip() or None,
            self.joint_map_edit.text().strip() or None,
            options,
            self.units_edit.text().strip() or None,
            self.overwrite_check.isChecked(),
            self.cancel_event,
        )
        self.worker.yielded.connect(self._on_event)
        self.worker.errored.connect(self._on_error)
        self.worker.finished.connect(lambda: self._set_running(False))
        self.progress.setValue(0)
        self.status.setText("Starting…")
        self._set_running(True)
        self.worker.start()
        return self.worker

    def cancel(self) -> None:
        """Stop after the current sample; the finished samples stay in the partial file for a later resume."""
        if self.cancel_event is not None:
            self.cancel_event.set()
            self.status.setText("Cancelling…")

    def _on_event(self, ev: PreprocessEvent) -> None:
        self.last_event = ev
        if ev.total:
            self.progress.setValue(int(round(100 * ev.progress)))
        if ev.stage == "progress":
            self.status.setText(f"{ev.done}/{ev.total} samples: {ev.message}")
        else:
            self.status.setText(ev.message)
        if ev.stage == "done":
            self.progress.setValue(100)

    def _on_error(self, exc: Exception) -> None:
        self.status.setText(f"Preprocessing failed: {exc}")

    def open_result(self) -> Any:
        """Show the finished dataset in the viewer and in a Dataset browser dock widget."""
        if self.output_path is None or not self.output_path.exists():
            self.status.setText("No finished dataset to open yet.")
            return None
        from napari_smil_mv.napari.widgets.dataset_browser_widget import DatasetBrowser

        browser = DatasetBrowser(self.viewer)
        self.viewer.window.add_dock_widget(browser, name="Dataset browser", area="right")
        return browser.open(self.output_path)
