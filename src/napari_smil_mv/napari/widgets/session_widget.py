"""The "Session" dock widget: load a session, choose cameras and frames, switch layouts, edit the joint map
against a body model, and see the calibration QC table.

Everything slow (loading a session and building its layer data, loading a model, the QC) runs in a napari
``thread_worker``; layers and widgets are only touched in the main thread (the workers' ``returned`` slots).
The widget drives the viewer only through :mod:`napari_smil_mv.api`, which it also puts into napari's console
as ``smil``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QStyledItemDelegate,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from napari_smil_mv import api
from napari_smil_mv.napari.results_view import detach_results, reattach_results
from napari_smil_mv.napari.widgets.widget_parts import add_buttons, ask_yes_no, button_row, wrapping_label
from napari_smil_mv.sessions import JOINT_LOOKUP_CSV, JointMap, Session, auto_match, calibration_qc

if TYPE_CHECKING:  # pragma: no cover
    import napari
    from napari_smil_mv.sessions import QCReport


def _load_session_worker(path: str, units: str | None) -> Session:
    """Worker: load and register a session, triangulating its 3D points when it has none (no viewer access)."""
    from napari_smil_mv.sessions import load_session

    session = load_session(path, units=units or None)
    if session.n_frames and len(session.views) >= 2:
        session.ensure_points3d()
    api.register_session(session)
    return session


class _NodeDelegate(QStyledItemDelegate):
    """Edits the "data node" column with a combo box of the session's skeleton nodes (empty = unmapped)."""

    def __init__(self, owner: SessionWidget) -> None:
        super().__init__(owner)
        self._owner = owner

    def createEditor(self, parent, option, index):  # noqa: N802 (Qt API)
        combo = QComboBox(parent)
        combo.addItems(["", *self._owner.data_nodes()])
        return combo

    def setEditorData(self, editor, index):  # noqa: N802
        value = index.data() or ""
        if value and editor.findText(value) < 0:
            editor.addItem(value)  # a name not in this skeleton stays visible (reported on save)
        editor.setCurrentText(value)

    def setModelData(self, editor, model, index):  # noqa: N802
        model.setData(index, editor.currentText())


class SessionWidget(QWidget):
    """Dock widget for multi-camera sessions (see the module docstring).

    Parameters
    ----------
    napari_viewer
        The viewer the widget controls.
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.session: Session | None = None
        self.model_joints: list[str] = []
        self.qc_report: QCReport | None = None
        self.joint_map_source: Path | None = None
        self._workers: list = []
        self._build_ui()
        try:
            self.viewer.update_console({"smil": api})
        except Exception:  # no console plugin installed: nothing to update
            pass
        self._adopt_viewer_session()
        self.viewer.layers.events.inserted.connect(self._adopt_viewer_session)

    # ------------------------------------------------------------------------------------------ UI
    def _build_ui(self) -> None:
        layout = QVBoxLayout(self)

        box = QGroupBox("Session")
        form = QFormLayout(box)
        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("session folder, calibration.toml or .slp")
        row = QHBoxLayout()
        row.addWidget(self.path_edit)
        self.browse_dir_btn = QPushButton("Folder…")
        self.browse_file_btn = QPushButton("File…")
        row.addWidget(self.browse_dir_btn)
        row.addWidget(self.browse_file_btn)
        form.addRow("Path", row)
        self.units_edit = QLineEdit()
        self.units_edit.setPlaceholderText("e.g. mm (optional)")
        form.addRow("Units", self.units_edit)
        self.load_btn = QPushButton("Load session")
        form.addRow(self.load_btn)
        layout.addWidget(box)

        box = QGroupBox("Cameras and frames")
        form = QFormLayout(box)
        self.camera_list = QListWidget()
        self.camera_list.setMaximumHeight(110)
        form.addRow("Cameras", self.camera_list)
        row = QHBoxLayout()
        self.start_spin, self.stop_spin, self.step_spin = QSpinBox(), QSpinBox(), QSpinBox()
        for label, spin in (("from", self.start_spin), ("to", self.stop_spin), ("step", self.step_spin)):
            spin.setRange(0, 10**9)
            row.addWidget(QLabel(label))
            row.addWidget(spin)
        self.step_spin.setRange(1, 10**6)
        form.addRow("Frames", row)
        self.show_btn = QPushButton("Show selection")
        form.addRow(self.show_btn)
        row, (self.grid_btn, self.world_btn) = button_row(("Grid", "World view"))
        form.addRow("Layout", row)
        layout.addWidget(box)

        box = QGroupBox("Joint map (data node → model joint)")
        vbox = QVBoxLayout(box)
        row = QHBoxLayout()
        self.model_edit = QLineEdit()
        self.model_edit.setPlaceholderText("SMIL model .pkl (empty: demo model)")
        self.model_browse_btn = QPushButton("…")
        self.model_load_btn = QPushButton("Load model")
        row.addWidget(self.model_edit)
        row.addWidget(self.model_browse_btn)
        row.addWidget(self.model_load_btn)
        vbox.addLayout(row)
        self.joint_table = QTableWidget(0, 2)
        self.joint_table.setHorizontalHeaderLabels(["model joint", "data node"])
        self.joint_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.joint_table.setMinimumHeight(160)
        self.joint_table.setItemDelegateForColumn(1, _NodeDelegate(self))
        self.joint_table.setEditTriggers(QAbstractItemView.EditTrigger.AllEditTriggers)
        vbox.addWidget(self.joint_table)
        self.auto_btn, self.open_map_btn, self.save_map_btn = add_buttons(
            vbox, ("Auto-match", "Open CSV…", "Save CSV…")
        )
        layout.addWidget(box)

        box = QGroupBox("Calibration QC (reprojection error, px)")
        vbox = QVBoxLayout(box)
        self.qc_btn = QPushButton("Run QC")
        vbox.addWidget(self.qc_btn)
        self.qc_table = QTableWidget(0, 5)
        self.qc_table.setHorizontalHeaderLabels(["camera", "median", "p90", "valid", "flag"])
        self.qc_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        vbox.addWidget(self.qc_table)
        self.qc_label = wrapping_label(vbox)
        layout.addWidget(box)

        self.status = wrapping_label(layout)
        layout.addStretch(1)

        self.browse_dir_btn.clicked.connect(self._browse_dir)
        self.browse_file_btn.clicked.connect(self._browse_file)
        self.load_btn.clicked.connect(lambda: self.load(self.path_edit.text()))
        self.show_btn.clicked.connect(self.show_selection)
        self.grid_btn.clicked.connect(lambda: self.set_layout("grid"))
        self.world_btn.clicked.connect(lambda: self.set_layout("world"))
        self.model_browse_btn.clicked.connect(self._browse_model)
        self.model_load_btn.clicked.connect(lambda: self.load_model(self.model_edit.text() or None))
        self.auto_btn.clicked.connect(self.auto_match)
        self.open_map_btn.clicked.connect(self._open_joint_map)
        self.save_map_btn.clicked.connect(self._save_joint_map_dialog)
        self.qc_btn.clicked.connect(self.run_qc)
        self._update_enabled()

    def _update_enabled(self) -> None:
        has = self.session is not None
        for w in (
            self.show_btn,
            self.grid_btn,
            self.world_btn,
            self.qc_btn,
            self.auto_btn,
            self.save_map_btn,
        ):
            w.setEnabled(has)

    def _say(self, text: str) -> None:
        self.status.setText(text)

    def _start(self, func, *args, on_done, what: str) -> Any:
        from napari.qt.threading import create_worker

        worker = create_worker(func, *args, _progress={"desc": what})
        worker.returned.connect(on_done)
        worker.errored.connect(lambda exc: self._say(f"{what} failed: {exc}"))
        worker.finished.connect(lambda: self._workers.remove(worker) if worker in self._workers else None)
        self._workers.append(worker)
        self._say(f"{what}…")
        worker.start()
        return worker

    # ------------------------------------------------------------------------------------------ session
    def _browse_dir(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Session folder")
        if path:
            self.path_edit.setText(path)

    def _browse_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Session file", "", "Sessions (*.slp calibration.toml);;All files (*)"
        )
        if path:
            self.path_edit.setText(path)

    def load(self, path: str) -> Any:
        """Load the session at ``path`` in a worker, then show it (grid layout). Returns the worker."""
        if not path:
            self._say("Choose a session folder, its calibration.toml or a .slp first.")
            return None
        return self._start(
            _load_session_worker,
            str(path),
            self.units_edit.text().strip(),
            on_done=self._loaded,
            what="Loading",
        )

    def _loaded(self, session: Session) -> None:
        self._set_session(session)
        self.show_selection()

    def _set_session(self, session: Session) -> None:
        self.session = session
        self.qc_report = None
        self.qc_table.setRowCount(0)
        self.qc_label.setText("")
        self.camera_list.clear()
        for name in session.camera_names:
            item = QListWidgetItem(name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked)
            self.camera_list.addItem(item)
        n = max((v.video.shape[0] for v in session.views.values() if v.video is not None), default=0)
        n = max(n, int(session.frame_indices[-1]) + 1 if session.n_frames else 1)
        self.start_spin.setRange(0, max(n - 1, 0))
        self.stop_spin.setRange(1, n)
        self.start_spin.setValue(0)
        self.stop_spin.setValue(n)
        self.step_spin.setValue(1)
        self._refresh_joint_table()
        self._update_enabled()
        self._say(f"{session!r}")

    def _adopt_viewer_session(self, event: Any = None) -> None:
        """Take over a session shown in the viewer (e.g. opened with File > Open) when none is loaded here."""
        if self.session is not None:
            return
        try:
            session = api.session_of(self.viewer)
        except (ValueError, KeyError):
            return
        self._set_session(session)

    def selected_cameras(self) -> list[str]:
        """Checked camera names, rig order."""
        items = [self.camera_list.item(i) for i in range(self.camera_list.count())]
        return [it.text() for it in items if it.checkState() == Qt.CheckState.Checked]

    def show_selection(self) -> list:
        """Replace this session's layers by the chosen cameras and frames (grid layout); returns the layers.

        Result layers of the session (:func:`napari_smil_mv.api.show_results`) are kept, for the cameras still
        shown.
        """
        if self.session is None:
            return []
        cams = self.selected_cameras()
        if not cams:
            self._say("Tick at least one camera.")
            return []
        frames = (self.start_spin.value(), self.stop_spin.value(), self.step_spin.value())
        if frames[1] <= frames[0]:
            self._say("The last frame must come after the first.")
            return []
        results = detach_results(self.viewer, self.session)  # fit results shown for this session stay
        for layer in api.session_layers(self.viewer, self.session):
            self.viewer.layers.remove(layer)
        layers = api.show_session(self.viewer, self.session, cameras=cams, frames=frames, layout="grid")
        reattach_results(self.viewer, results)
        self._say(
            f"{self.session.name}: {len(cams)} cameras, frames {frames[0]}..{frames[1] - 1} step {frames[2]}"
        )
        return layers

    def set_layout(self, layout: str) -> None:
        api.set_layout(self.viewer, layout)

    # ------------------------------------------------------------------------------------------ joint map
    def _browse_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "SMIL model", "", "SMIL models (*.pkl);;All files (*)")
        if path:
            self.model_edit.setText(path)

    def load_model(self, path: str | None) -> Any:
        """Load a body model's joint names (None: the demo model) in a worker. Returns the worker."""

        def _joints(p):
            from napari_smil_mv.body import load_smil_model

            return list(load_smil_model(p).joint_names)

        return self._start(_joints, path, on_done=self._model_loaded, what="Loading model")

    def _model_loaded(self, joints: list[str]) -> None:
        self.model_joints = joints
        self._refresh_joint_table()
        self._say(f"Model with {len(joints)} joints loaded.")

    def _refresh_joint_table(self, joint_map: JointMap | None = None) -> None:
        keep = joint_map.model_to_data if joint_map is not None else self.joint_map().model_to_data
        self.joint_table.setRowCount(len(self.model_joints))
        for r, joint in enumerate(self.model_joints):
            item = QTableWidgetItem(joint)
            item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
            self.joint_table.setItem(r, 0, item)
            self.joint_table.setItem(r, 1, QTableWidgetItem(keep.get(joint, "")))

    def data_nodes(self) -> list[str]:
        """Skeleton nodes of the session (the choices of the "data node" column)."""
        return list(self.session.skeleton.nodes) if self.session is not None else []

    def joint_map(self) -> JointMap:
        """The joint map in the table (rows with a data node). ValueError for duplicates is left to JointMap."""
        pairs = []
        for r in range(self.joint_table.rowCount()):
            joint_item, node_item = self.joint_table.item(r, 0), self.joint_table.item(r, 1)
            if joint_item is not None and node_item is not None and node_item.text().strip():
                pairs.append((node_item.text().strip(), joint_item.text()))
        return JointMap(pairs)

    def auto_match(self) -> JointMap | None:
        """Fill the table with :func:`~napari_smil_mv.sessions.auto_match` of the session nodes and model joints."""
        if self.session is None or not self.model_joints:
            self._say("Load a session and a model first.")
            return None
        jm = auto_match(self.session.skeleton.nodes, self.model_joints)
        self._refresh_joint_table(jm)
        self._say(f"Auto-matched {len(jm)} of {self.session.n_nodes} data nodes; review before saving.")
        return jm

    def _open_joint_map(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Joint lookup table", "", "CSV (*.csv);;All files (*)")
        if path:
            self.open_joint_map(path)

    def open_joint_map(self, path: str | Path) -> JointMap | None:
        """Read a ``joint_lookup.csv`` into the table (its model joints are used when no model is loaded)."""
        try:
            jm = JointMap.read(path)
        except (OSError, ValueError) as exc:
            self._say(str(exc))
            return None
        self.joint_map_source = Path(path)
        if not self.model_joints:
            self.model_joints = [m for _, m in jm.pairs]
        self._refresh_joint_table(jm)
        self._say(f"Read {len(jm)} pairs from {path}.")
        return jm

    def _save_joint_map_dialog(self) -> None:
        start = ""
        if self.session is not None:
            folder = self.session.path if self.session.path.is_dir() else self.session.path.parent
            start = str(folder / JOINT_LOOKUP_CSV)
        path, _ = QFileDialog.getSaveFileName(
            self,
            "Save joint lookup table",
            start,
            "CSV (*.csv)",
            options=QFileDialog.Option.DontConfirmOverwrite,
        )
        if path:
            self.save_joint_map(path)

    def save_joint_map(self, path: str | Path, overwrite: bool | None = None) -> Path | None:
        """Write the table to ``path`` atomically (every model joint gets a row).

        An existing file is replaced only when ``overwrite`` is True, or, when it is None, after the user
        confirms in a dialog (which names the file when it is the table that was opened).
        """
        path = Path(path)
        try:
            jm = self.joint_map()
        except ValueError as exc:
            self._say(str(exc))
            return None
        if path.exists() and overwrite is None:
            what = "the joint map you opened" if path == self.joint_map_source else "an existing file"
            overwrite = ask_yes_no(self, "Replace file?", f"{path} is {what}. Replace it?")
        if path.exists() and not overwrite:
            self._say(f"Not saved: {path} exists.")
            return None
        problems = jm.validate(self.session.skeleton.nodes, self.model_joints) if self.session else []
        jm.write(path, model_joints=self.model_joints or None, overwrite=True)
        self._say(
            f"Saved {len(jm)} pairs to {path}." + (" Warning: " + "; ".join(problems) if problems else "")
        )
        return path

    # ------------------------------------------------------------------------------------------ QC
    def run_qc(self) -> Any:
        """Compute the calibration QC of the session in a worker and fill the table. Returns the worker."""
        if self.session is None:
            return None
        return self._start(calibration_qc, self.session, on_done=self._qc_done, what="Calibration QC")

    def _qc_done(self, report: QCReport) -> None:
        self.qc_report = report
        self.qc_table.setRowCount(len(report.cameras))
        for r, cam in enumerate(report.cameras):
            s = report.per_camera[cam]
            cells = [
                cam,
                "-" if not np.isfinite(s.median) else f"{s.median:.2f}",
                "-" if not np.isfinite(s.p90) else f"{s.p90:.2f}",
                f"{s.valid_fraction:.0%}",
                "FLAGGED" if cam in report.flagged else "",
            ]
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                if cam in report.flagged:
                    item.setToolTip(report.reasons.get(cam, ""))
                self.qc_table.setItem(r, c, item)
        notes = [f"3D points: {report.points3d_source}.", *report.consensus_log]
        notes += [f"{c}: {report.reasons[c]}" for c in report.flagged]
        self.qc_label.setText("\n".join(notes))
        self._say(
            "QC done"
            + (f"; flagged: {', '.join(report.flagged)}" if report.flagged else "; no camera flagged.")
        )
