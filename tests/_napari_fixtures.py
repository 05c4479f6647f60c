"""A hidden napari viewer for the GUI tests (Xvfb), shared by the widget and viewer test modules."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def hidden_viewer(size: tuple[int, int] = (900, 700)) -> Iterator:
    """A ``napari.Viewer(show=False)`` of ``size`` (width, height) px, closed (layers cleared) on exit."""
    import napari

    v = napari.Viewer(show=False)
    v.window.resize(*size)
    v.window._qt_window.grab()  # a hidden viewer renders black screenshots without one grab
    try:
        yield v
    finally:
        v.layers.clear()
        v.close()
