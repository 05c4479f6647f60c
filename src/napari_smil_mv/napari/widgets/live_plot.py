"""A live line plot for the long-running widgets (training losses per epoch, fit loss per iteration), drawn with
pyqtgraph: named series against x, optional log y axis, a legend, mouse zoom/pan, dark background to match napari.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from qtpy.QtWidgets import QVBoxLayout, QWidget

#: Series colours, in the order the series are first set.
COLORS = ("#4fc3f7", "#ff8a65", "#aed581", "#ba68c8", "#ffd54f", "#90a4ae")


class LivePlot(QWidget):
    """Named line series that can be replaced or extended while a job runs.

    Parameters
    ----------
    title
        Plot title.
    x_label, y_label
        Axis labels.
    log
        Logarithmic y axis (non-positive values are left out).
    """

    def __init__(
        self,
        title: str,
        x_label: str = "epoch",
        y_label: str = "",
        log: bool = False,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.log = log
        self.series: dict[str, list[tuple[float, float]]] = {}
        self._curves: dict[str, pg.PlotDataItem] = {}
        self.plot = pg.PlotWidget(background="#262930")
        self.plot.setTitle(title, color="#d0d0d0", size="9pt")
        self.plot.setLabel("bottom", x_label)
        if y_label:
            self.plot.setLabel("left", y_label)
        self.plot.setLogMode(False, log)
        for axis in ("left", "bottom"):
            self.plot.getAxis(axis).enableAutoSIPrefix(False)  # no "(x0.001)" rescaling of the labels
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.legend = self.plot.addLegend(offset=(-4, 4), labelTextSize="8pt")
        self.plot.setMinimumHeight(140)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)

    def set_series(self, name: str, points: list[tuple[float, float | None]]) -> None:
        """Replace series ``name`` with ``points`` ``[(x, y), ...]`` (None / non-finite y are left out)."""
        kept = [
            (float(x), float(y))
            for x, y in points
            if y is not None and np.isfinite(y) and (y > 0 or not self.log)
        ]
        self.series[name] = kept
        curve = self._curves.get(name)
        if curve is None:
            color = COLORS[len(self._curves) % len(COLORS)]
            curve = self.plot.plot(
                [], [], name=name, pen=pg.mkPen(color, width=2), symbol="o", symbolSize=4, symbolBrush=color
            )
            self._curves[name] = curve
        xs = np.array([p[0] for p in kept], dtype=float)
        ys = np.array([p[1] for p in kept], dtype=float)
        curve.setData(xs, ys)

    def append(self, name: str, x: float, y: float | None) -> None:
        """Add one point to series ``name`` (created when new)."""
        self.set_series(name, [*self.series.get(name, []), (x, y)])

    def clear(self) -> None:
        """Remove every series."""
        for curve in self._curves.values():
            self.plot.removeItem(curve)
        self.legend.clear()
        self._curves.clear()
        self.series.clear()
