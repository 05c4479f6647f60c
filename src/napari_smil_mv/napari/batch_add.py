"""Adding many layers to a viewer at once, faster: napari's first-layer imports warmed early, one selection change.

Opening a 4-camera session adds 20 layers. Measured with cProfile (benchmarks/bench_napari_open.py), besides
building each layer and its vispy visual, napari pays per added layer a selection change (the new layer becomes the
only selected, active layer, which swaps the layer-controls panel) and, once per process, two lazy imports made by
the first layer ever created: pint's unit registry (every layer's transforms carry pixel units) and
``scipy.ndimage`` (image thumbnails). :func:`warm_layer_imports` starts both in a background thread so they overlap
the session reading and frame decoding (which release the GIL in h5py/OpenCV); :func:`add_layers` adds the layers
with napari's activate-on-insert switched off and selects the last one at the end, which is the state the
per-layer adds leave.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

_WARM: threading.Thread | None = None
_WARM_LOCK = threading.Lock()


def _warm() -> None:
    try:
        import pint
        import scipy.ndimage  # noqa: F401  (napari.layers.Image thumbnails import it on first use)

        pint.get_application_registry().pixel  # noqa: B018  (builds the registry napari's transforms use)
    except Exception:  # pragma: no cover - warming is an optimisation only
        pass


def warm_layer_imports() -> threading.Thread:
    """Start (once per process) the imports napari makes when its first layer is created; returns the thread."""
    global _WARM
    with _WARM_LOCK:
        if _WARM is None:
            _WARM = threading.Thread(target=_warm, name="napari-smil-mv-warm", daemon=True)
            _WARM.start()
        return _WARM


def wait_for_warm_imports(timeout: float | None = None) -> None:
    """Wait for :func:`warm_layer_imports` (so the main thread never builds pint's registry concurrently)."""
    thread = _WARM
    if thread is not None and thread.is_alive():
        thread.join(timeout)


def add_layers(viewer: Any, layer_data: Sequence[tuple]) -> list:
    """Add ``(data, kwargs, layer_type)`` tuples to ``viewer``; the last added layer ends up the active one.

    Same result as ``viewer.add_layer(Layer.create(...))`` per tuple, without a selection change per layer.
    Main thread only.
    """
    from napari.layers import Layer

    wait_for_warm_imports()
    layers = viewer.layers
    activate = getattr(layers, "_activate_on_insert", None)
    added = []
    try:
        if activate is not None:
            layers._activate_on_insert = False
        for data, kwargs, layer_type in layer_data:
            added.append(viewer.add_layer(Layer.create(data, dict(kwargs), layer_type)))
    finally:
        if activate is not None:
            layers._activate_on_insert = activate
    if added and activate:
        layers.selection.active = added[-1]
    return added
