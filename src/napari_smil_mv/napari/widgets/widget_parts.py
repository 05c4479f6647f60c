"""Small Qt building blocks shared by the dock widgets (path pickers, job controls).

Every long-running widget (Fit, Preprocess, Train, Infer) has the same controls: a row of buttons, a progress bar
and a wrapping status line; most inputs are a path with a "…" browse button; replacing a file asks first. Building them here keeps the
widgets consistent and short.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from qtpy.QtWidgets import (
    QBoxLayout,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QWidget,
)


def path_row(placeholder: str, browse: Callable[[], None]) -> tuple[QLineEdit, QHBoxLayout]:
    """A line edit with a "…" button that calls ``browse``; returns the edit and the row layout."""
    edit = QLineEdit()
    edit.setPlaceholderText(placeholder)
    button = QPushButton("…")
    button.clicked.connect(browse)
    row = QHBoxLayout()
    row.addWidget(edit)
    row.addWidget(button)
    return edit, row


def add_path_row(form: QFormLayout, label: str, placeholder: str, browse: Callable[[], None]) -> QLineEdit:
    """:func:`path_row` added to ``form`` under ``label``; returns the edit."""
    edit, row = path_row(placeholder, browse)
    form.addRow(label, row)
    return edit


def wrapping_label(layout: QBoxLayout, text: str = "") -> QLabel:
    """A word-wrapping label appended to ``layout``."""
    label = QLabel(text)
    label.setWordWrap(True)
    layout.addWidget(label)
    return label


def ask_yes_no(parent: QWidget, title: str, text: str) -> bool:
    """A modal Yes/No question (No is the default); True when the user answers Yes."""
    answer = QMessageBox.question(
        parent,
        title,
        text,
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No,
    )
    return answer == QMessageBox.StandardButton.Yes


def button_row(texts: Sequence[str]) -> tuple[QHBoxLayout, tuple[QPushButton, ...]]:
    """A row of push buttons labelled ``texts``; returns the row layout and the buttons in that order."""
    row = QHBoxLayout()
    buttons = tuple(QPushButton(text) for text in texts)
    for button in buttons:
        row.addWidget(button)
    return row, buttons


def add_buttons(layout: QBoxLayout, texts: Sequence[str]) -> tuple[QPushButton, ...]:
    """:func:`button_row` appended to ``layout``; returns the buttons."""
    row, buttons = button_row(texts)
    layout.addLayout(row)
    return buttons


def add_job_controls(
    layout: QBoxLayout, buttons: Sequence[str], progress_max: int = 1000
) -> tuple[tuple[QPushButton, ...], QProgressBar]:
    """Append a row of buttons and a progress bar (range ``0..progress_max``) to ``layout``.

    Returns
    -------
    tuple
        The buttons in the order of ``buttons`` and the progress bar.
    """
    created = add_buttons(layout, buttons)
    progress = QProgressBar()
    progress.setRange(0, int(progress_max))
    layout.addWidget(progress)
    return created, progress


def spin_box(lo: int, hi: int, value: int) -> QSpinBox:
    """An integer spin box with range ``lo..hi`` set to ``value``."""
    box = QSpinBox()
    box.setRange(lo, hi)
    box.setValue(value)
    return box


class RunsOneJob:
    """Mixin for a dock widget that runs one napari worker at a time.

    The widget provides ``self.worker`` (None when idle), ``_set_running(bool)`` (enables its buttons) and
    ``_say(str)`` (its status line); :meth:`_start_job` wires a created worker's signals, shows ``message`` and
    starts it, and :meth:`_on_finished` clears the worker and the running state (also after an error or a stop).
    """

    def _start_job(
        self,
        worker: Any,
        message: str,
        *,
        errored: Callable[[Exception], None],
        yielded: Callable[[Any], None] | None = None,
        returned: Callable[[Any], None] | None = None,
    ) -> Any:
        if yielded is not None:
            worker.yielded.connect(yielded)
        if returned is not None:
            worker.returned.connect(returned)
        worker.errored.connect(errored)
        worker.finished.connect(self._on_finished)
        self.worker = worker
        self._set_running(True)
        self._say(message)
        worker.start()
        return worker

    def _on_finished(self) -> None:
        self.worker = None
        self._set_running(False)
