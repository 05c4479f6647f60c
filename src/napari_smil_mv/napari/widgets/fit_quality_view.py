"""Fit quality panel: the verdict, a per-frame error timeline (click to jump to a frame) and the worst frames.

Shows the ``quality`` of a :class:`napari_smil_mv.results.Results` (written by a fit, see
:mod:`napari_smil_mv.fitting.quality`): per frame the fit's median reprojection error (dots coloured by the frame's
verdict: green good, orange poor, red failed) and the DLT triangulation residual of the same keypoints (grey line);
a click on the plot or on a worst frame moves the viewer to that video frame (:func:`napari_smil_mv.api.set_frame`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyqtgraph as pg
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

if TYPE_CHECKING:  # pragma: no cover
    import napari
    from napari_smil_mv.results import Results

#: Colour per verdict (and per frame verdict code 0, 1, 2).
VERDICT_COLOURS = {"good": "#2ca02c", "poor": "#ff7f0e", "failed": "#d62728"}
_CODE_COLOURS = {0: VERDICT_COLOURS["good"], 1: VERDICT_COLOURS["poor"], 2: VERDICT_COLOURS["failed"]}


class FitQualityView(QWidget):
    """Verdict, per-frame error timeline and worst frames of a fit.

    Parameters
    ----------
    napari_viewer
        The viewer whose frame slider the timeline and the worst-frame list move.
    n_worst
        Number of worst frames listed.
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer, n_worst: int = 8) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.n_worst = n_worst
        self.frame_numbers = np.zeros(0, dtype=np.int64)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.verdict_label = QLabel("No fit yet.")
        self.verdict_label.setWordWrap(True)
        self.verdict_label.setTextFormat(Qt.RichText)
        layout.addWidget(self.verdict_label)
        self.plot = pg.PlotWidget()
        self.plot.setMinimumHeight(160)
        self.plot.setLabel("bottom", "frame")
        self.plot.setLabel("left", "median error", units="px")
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.plot.addLegend(offset=(-5, 5))
        self.dlt_curve = self.plot.plot([], [], pen=pg.mkPen("#9e9e9e", width=1.5), name="DLT residual")
        self.fit_curve = self.plot.plot([], [], pen=pg.mkPen("#4a90d9", width=1), name="fit")
        self.dots = pg.ScatterPlotItem(size=7, pen=None)
        self.plot.addItem(self.dots)
        self.cursor = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#ffd400", width=1))
        self.plot.addItem(self.cursor)
        self.plot.scene().sigMouseClicked.connect(self._on_plot_click)
        self.dots.sigClicked.connect(self._on_dot_click)
        layout.addWidget(self.plot)
        layout.addWidget(QLabel("Worst frames (click to show):"))
        self.worst_list = QListWidget()
        self.worst_list.setMaximumHeight(130)
        self.worst_list.itemClicked.connect(self._on_worst_click)
        layout.addWidget(self.worst_list)
        self.setVisible(False)

    # ------------------------------------------------------------------------------------------ content
    def show_results(self, results: Results) -> bool:
        """Show the quality stored in ``results``; False (and hidden) when it has none."""
        quality = getattr(results, "quality", None)
        if not quality:
            self.clear()
            return False
        self.show_quality(quality["attrs"], quality["arrays"], results.frame_indices)
        return True

    def show_quality(
        self, attrs: dict[str, Any], arrays: dict[str, np.ndarray], frame_numbers: np.ndarray
    ) -> None:
        """Show a verdict (``attrs`` / ``arrays`` as stored in ``/quality``) for frames ``frame_numbers`` (T,)."""
        self.frame_numbers = np.asarray(frame_numbers, dtype=np.int64)
        verdict = str(attrs.get("verdict", "?"))
        frames = attrs.get("frames", {})
        colour = VERDICT_COLOURS.get(verdict, "#cccccc")
        self.verdict_label.setText(
            f"<b>Verdict: <span style='color:{colour}'>{verdict.upper()}</span></b> — fit "
            f"{attrs.get('fit_px', float('nan')):.2f} px vs DLT triangulation {attrs.get('dlt_px', float('nan')):.2f} "
            f"px on the same keypoints (ratio {attrs.get('ratio', float('nan')):.2f}); frames: "
            f"{frames.get('good', 0)} good, {frames.get('poor', 0)} poor, {frames.get('failed', 0)} failed"
        )
        fit_px = np.asarray(arrays["frame_fit_px"], dtype=np.float64)
        dlt_px = np.asarray(arrays["frame_dlt_px"], dtype=np.float64)
        codes = np.asarray(arrays["frame_verdict"], dtype=np.int64)
        x = self.frame_numbers.astype(np.float64)
        ok = np.isfinite(fit_px)
        self.fit_curve.setData(x[ok], fit_px[ok])
        okd = np.isfinite(dlt_px)
        self.dlt_curve.setData(x[okd], dlt_px[okd])
        brushes = [pg.mkBrush(_CODE_COLOURS.get(int(c), "#cccccc")) for c in codes[ok]]
        self.dots.setData(x=x[ok], y=fit_px[ok], brush=brushes, data=self.frame_numbers[ok])
        self.worst_list.clear()
        floor = float(attrs.get("thresholds", {}).get("floor_px", 1.0))
        ratio = fit_px / np.maximum(np.nan_to_num(dlt_px), floor)
        order = [t for t in np.argsort(-np.nan_to_num(ratio, nan=-np.inf)) if np.isfinite(ratio[t])]
        for t in order[: self.n_worst]:
            item = QListWidgetItem(
                f"frame {int(self.frame_numbers[t])}: fit {fit_px[t]:.1f} px, DLT {dlt_px[t]:.1f} px "
                f"(x{ratio[t]:.1f})"
            )
            item.setData(Qt.UserRole, int(self.frame_numbers[t]))
            item.setForeground(pg.mkColor(_CODE_COLOURS.get(int(codes[t]), "#cccccc")))
            self.worst_list.addItem(item)
        self.setVisible(True)

    def clear(self) -> None:
        """Forget the shown fit (and hide the panel)."""
        self.verdict_label.setText("No fit yet.")
        self.fit_curve.setData([], [])
        self.dlt_curve.setData([], [])
        self.dots.setData([])
        self.worst_list.clear()
        self.frame_numbers = np.zeros(0, dtype=np.int64)
        self.setVisible(False)

    # ------------------------------------------------------------------------------------------ navigation
    def jump_to(self, frame: int) -> None:
        """Show video frame ``frame`` in the viewer and mark it on the timeline."""
        from napari_smil_mv import api

        api.set_frame(self.viewer, int(frame))
        self.cursor.setValue(float(frame))

    def nearest_frame(self, x: float) -> int | None:
        """The fitted frame number nearest to ``x`` (None when nothing is shown)."""
        if not self.frame_numbers.size:
            return None
        return int(self.frame_numbers[int(np.argmin(np.abs(self.frame_numbers - x)))])

    def _on_plot_click(self, event) -> None:
        vb = self.plot.getPlotItem().vb
        if not vb.sceneBoundingRect().contains(event.scenePos()):
            return
        frame = self.nearest_frame(vb.mapSceneToView(event.scenePos()).x())
        if frame is not None:
            self.jump_to(frame)

    def _on_dot_click(self, _item, points, *_args) -> None:
        if len(points):
            self.jump_to(int(points[0].data()))

    def _on_worst_click(self, item: QListWidgetItem) -> None:
        self.jump_to(int(item.data(Qt.UserRole)))
