"""Keep napari's dims sliders to the axes the shown layers use.

napari sizes ``viewer.dims`` from the extent of *every* layer, hidden ones too, and shows a slider for every
non-displayed axis with more than one step. The world layers are 4D ``(z, frame, y, x)``
(:mod:`napari_smil_mv.napari.layers.world_layers`) while the per-camera layers are 3D ``(frame, row, col)``, so in the
2D camera grid the hidden world layers add a stray ``z`` slider next to the frame slider. In the grid and mosaic
layouts :func:`hide_unused_sliders` gives such axes (spanned only by hidden layers) a single step, which napari
shows without a slider; :func:`restore_ranges` gives every axis its full range again (the world view), from the
layers' public extent. napari recomputes the ranges when layers change, so :func:`keep_sliders_hidden` re-applies
the first on every range change while ``active()`` says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_CONNECTED = "_napari_smil_mv_slider_guard"


def unused_axes(viewer: Any) -> list[int]:
    """Non-displayed viewer axes that no visible layer spans (layers align by their trailing axes)."""
    ndim = viewer.dims.ndim
    visible = [la.ndim for la in viewer.layers if la.visible]
    if not visible:
        return []
    n_unused = ndim - max(visible)
    return [ax for ax in range(max(n_unused, 0)) if ax not in viewer.dims.displayed]


def hide_unused_sliders(viewer: Any) -> list[int]:
    """Collapse the :func:`unused_axes` to one step (no slider); returns the axes collapsed now."""
    axes = [ax for ax in unused_axes(viewer) if viewer.dims.nsteps[ax] > 1]
    if axes:
        ranges = list(viewer.dims.range)
        for ax in axes:
            r = ranges[ax]
            ranges[ax] = (r.start, r.start, r.step)
        viewer.dims.range = tuple(ranges)
    return axes


def restore_ranges(viewer: Any) -> None:
    """Every axis gets the range of all layers again (what napari sets when layers change)."""
    if len(viewer.layers) == 0:
        return
    ext = viewer.layers.extent
    ranges = tuple(zip(ext.world[0], ext.world[1], ext.step, strict=False))
    if len(ranges) == viewer.dims.ndim:
        viewer.dims.range = ranges


def keep_sliders_hidden(viewer: Any, active: Callable[[], bool]) -> None:
    """Re-apply :func:`hide_unused_sliders` after napari recomputes the ranges, while ``active()`` is true
    (connected once per viewer; later calls replace ``active``)."""
    state = viewer.dims.__dict__.setdefault(_CONNECTED, {})
    state["active"] = active
    if state.get("connected"):
        return

    def on_range(_event: Any = None) -> None:
        if state["active"]() and not state.get("busy"):
            state["busy"] = True
            try:
                hide_unused_sliders(viewer)
            finally:
                state["busy"] = False

    viewer.dims.events.range.connect(on_range)
    state["connected"] = True
