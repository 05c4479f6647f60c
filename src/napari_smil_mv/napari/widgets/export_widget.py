"""The "Export results" dock widget: a results file to movement (netCDF), NWB (ndx-pose) and overlay videos.

The results file is the one shown in the viewer (its result layers record their file) or one picked by hand.
movement and NWB exports are quick and run on the main thread; overlay videos run as a cancellable job in a napari
``thread_worker`` around :func:`napari_smil_mv.results.overlay.iter_overlay` (progress through ``yielded``; Stop
sets its cancel flag and the camera being written is discarded).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qtpy.QtWidgets import QCheckBox, QFileDialog, QFormLayout, QGroupBox, QVBoxLayout, QWidget

from napari_smil_mv.napari.widgets.widget_parts import (
    RunsOneJob,
    add_buttons,
    add_job_controls,
    add_path_row,
    wrapping_label,
)
from napari_smil_mv.results import RESULTS_SUFFIX

if TYPE_CHECKING:  # pragma: no cover
    import napari


def shown_results_path(viewer: Any) -> str | None:
    """The results file of the most recently added result layer in ``viewer`` (None when none is shown)."""
    from napari_smil_mv.napari.results_view import results_layers
    from napari_smil_mv.napari.scripting import meta

    for layer in reversed(results_layers(viewer)):
        path = meta(layer).get("results_path")
        if path and Path(path).is_file():
            return str(path)
    return None


class ExportWidget(RunsOneJob, QWidget):
    """Dock widget for the exports (see the module docstring).

    Parameters
    ----------
    napari_viewer
        The viewer; its shown results file fills the "Results" field.
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.worker: Any = None
        self.written: list[Path] = []
        self._cancel = threading.Event()
        layout = QVBoxLayout(self)
        box = QGroupBox("Results")
        form = QFormLayout(box)
        self.results_edit = add_path_row(
            form, "Results", f"*{RESULTS_SUFFIX} (empty: the results shown)", self._browse_results
        )
        self.session_edit = add_path_row(
            form,
            "Session",
            "for the videos (empty: the fitted session, else the results' videos)",
            self._browse_session,
        )
        self.output_edit = add_path_row(
            form, "Output folder", "empty: next to the results file", self._browse_out
        )
        self.mapped_check = QCheckBox("only the joints mapped to data keypoints (data node names)")
        form.addRow(self.mapped_check)
        self.mesh_check = QCheckBox("paint the mesh in overlay videos")
        self.mesh_check.setChecked(True)
        form.addRow(self.mesh_check)
        layout.addWidget(box)
        self.movement_btn, self.nwb_btn = add_buttons(layout, ("Export movement (.nc)", "Export NWB (.nwb)"))
        (self.overlay_btn, self.stop_btn), self.progress = add_job_controls(
            layout, ("Overlay videos", "Stop")
        )
        self.status = wrapping_label(layout)
        layout.addStretch(1)
        self.movement_btn.clicked.connect(lambda: self.export("movement"))
        self.nwb_btn.clicked.connect(lambda: self.export("nwb"))
        self.overlay_btn.clicked.connect(self.run_overlay)
        self.stop_btn.clicked.connect(self.stop)
        self._set_running(False)

    # ------------------------------------------------------------------------------------------ inputs
    def _browse_results(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Results file", "", f"Results (*{RESULTS_SUFFIX})")
        if path:
            self.results_edit.setText(path)

    def _browse_session(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Session folder")
        if path:
            self.session_edit.setText(path)

    def _browse_out(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Output folder")
        if path:
            self.output_edit.setText(path)

    def _say(self, text: str) -> None:
        self.status.setText(text)

    def _set_running(self, running: bool) -> None:
        for button in (self.movement_btn, self.nwb_btn, self.overlay_btn):
            button.setEnabled(not running)
        self.stop_btn.setEnabled(running)

    def results_path(self) -> Path:
        """The chosen results file, else the one shown in the viewer (ValueError when there is none)."""
        text = self.results_edit.text().strip() or shown_results_path(self.viewer)
        if not text:
            raise ValueError("no results: pick a results file or show one in the viewer")
        return Path(text)

    def output_folder(self, results_path: Path) -> Path:
        """The chosen output folder, else the results file's folder."""
        text = self.output_edit.text().strip()
        return Path(text) if text else results_path.parent

    def _stem(self, path: Path) -> str:
        name = path.name
        return name[: -len(RESULTS_SUFFIX)] if name.endswith(RESULTS_SUFFIX) else path.stem

    # ------------------------------------------------------------------------------------------ exports
    def export(self, kind: str, overwrite: bool = False) -> Path | None:
        """Write ``<results stem>.nc`` (``kind="movement"``) or ``.nwb`` (``"nwb"``); returns the file or None."""
        from napari_smil_mv.results import read_results

        try:
            src = self.results_path()
            results = read_results(src)
            out = self.output_folder(src) / (self._stem(src) + (".nc" if kind == "movement" else ".nwb"))
            if kind == "movement":
                from napari_smil_mv.results.movement_export import export_movement

                path = export_movement(
                    results, out, overwrite=overwrite, mapped_only=self.mapped_check.isChecked()
                )
            else:
                from napari_smil_mv.results.nwb_export import export_nwb

                path = export_nwb(
                    results, out, overwrite=overwrite, mapped_only=self.mapped_check.isChecked()
                )
        except (ImportError, OSError, ValueError, KeyError) as exc:
            self._say(f"Not exported: {exc}")
            return None
        self._say(f"Wrote {path}")
        return path

    # ------------------------------------------------------------------------------------------ overlay job
    def run_overlay(self, overwrite: bool = False) -> Any:
        """Start writing the overlay videos in a worker thread; returns the worker (None when it cannot start)."""
        from napari.qt.threading import create_worker

        from napari_smil_mv.results import read_results
        from napari_smil_mv.results.overlay import iter_overlay

        if self.worker is not None:
            return None
        try:
            src = self.results_path()
            results = read_results(src)
        except (OSError, ValueError) as exc:
            self._say(f"Cannot write overlays: {exc}")
            return None
        session = self.session_edit.text().strip() or None
        if session is None:
            fitted = results.provenance.get("session")
            session = fitted if fitted and Path(fitted).exists() else None
        out = self.output_folder(src) / f"{self._stem(src)}_overlays"
        self._cancel = threading.Event()
        worker = create_worker(
            iter_overlay,
            results,
            out,
            session=session,
            mesh=self.mesh_check.isChecked(),
            overwrite=overwrite,
            cancel=self._cancel,
        )
        self.written = []
        self.progress.setValue(0)
        return self._start_job(
            worker,
            f"Writing overlay videos to {out}…",
            yielded=self._on_event,
            returned=self._on_done,
            errored=lambda exc: self._say(f"Overlay failed: {exc}"),
        )

    def stop(self) -> None:
        """Ask the overlay job to stop (the camera being written is discarded)."""
        self._cancel.set()
        if self.worker is not None:
            self._say("Stopping…")

    def _on_event(self, event: Any) -> None:
        self.progress.setValue(int(round(1000 * event.progress)))
        self._say(event.message)

    def _on_done(self, written: list[Path]) -> None:
        self.written = list(written or [])
        if not self._cancel.is_set():
            self.progress.setValue(1000)
        self._say(
            ("Stopped; " if self._cancel.is_set() else "") + f"wrote {len(self.written)} overlay video(s)"
        )
