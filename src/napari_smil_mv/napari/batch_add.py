"""Adding many layers to a viewer at once with one selection change instead of one per layer.

Opening a 4-camera session adds 20 layers. Besides building each layer and its vispy visual, napari makes every
inserted layer the only selected, active layer (which swaps the layer-controls panel each time). :func:`add_layers`
switches napari's activate-on-insert off for the batch and selects the last layer at the end, the state the
per-layer adds leave. (Measured with benchmarks/bench_napari_open.py: about 6 % less CPU time to open the
4-camera sample; the rest is napari's own per-layer work and, once per process, its first-layer imports, pint's
unit registry and ``scipy.ndimage``.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def add_layers(viewer: Any, layer_data: Sequence[tuple]) -> list:
    """Add ``(data, kwargs, layer_type)`` tuples to ``viewer``; the last added layer ends up the active one.

    Same result as ``viewer.add_layer(Layer.create(...))`` per tuple, without a selection change per layer.
    Main thread only.
    """
    from napari.layers import Layer

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
