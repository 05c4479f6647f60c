"""Adding many layers to a viewer at once with one selection change instead of one per layer.

Opening a 4-camera session adds 16 layers. Besides building each layer and its vispy visual, napari makes every
inserted layer the only selected, active layer (which swaps the layer-controls panel each time). :func:`add_layers`
switches napari's activate-on-insert off for the batch and selects the last layer at the end, the state the
per-layer adds leave. (Measured with benchmarks/bench_napari_open.py: about 6 % less CPU time to open the
4-camera sample; the rest is napari's own per-layer work and, once per process, its first-layer imports, pint's
unit registry and ``scipy.ndimage``.)

With ``first_step=True`` an empty viewer shows the first step of every axis (video frame 0 of the selection)
instead of napari's centre step: napari moves the sliders to the centre when the first layer arrives, so every
video would be decoded at its middle frame too, a seek back to a keyframe and tens of decoded frames per camera
(about 1 s of CPU for the 4-camera sample) that the first picture does not need.

Python's cyclic garbage collector is paused while the layers are built (:func:`gc_paused`). Opening the 4-camera
sample creates about 160,000 container objects that live as long as the layers (events, transforms, vispy nodes,
Qt wrappers); every 700 of them start a collection, and each tenth of those a pass over the middle generation, so
the collector ran about 300 young, 27 middle and 2 full passes over the whole heap (280,000 objects at that
point): 0.5 s of the open. Paused, it runs after the batch, at the first automatic collection (about 0.07 s,
mostly during the first draw). Measured with a ``gc.callbacks`` timer.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from napari_smil_mv.napari.empty_text import skip_empty_text


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for the block (re-entrant; reference counting goes on).

    Restores the collector's previous state on exit, also on errors, and leaves it alone if it was already
    disabled (by the user or an enclosing ``gc_paused``). Objects created in the block are collected, when
    unreachable, by the next automatic collection after it.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _insertion_order(layer_data: Sequence[tuple], first_step: bool, empty: bool) -> list[int]:
    """Indices of ``layer_data`` in insertion order: a non-image layer first when napari will centre the sliders."""
    order = list(range(len(layer_data)))
    if first_step and empty:
        cheap = next((i for i, (_, _, t) in enumerate(layer_data) if t != "image"), None)
        if cheap is not None:
            order = [cheap] + [i for i in order if i != cheap]
    return order


def add_layers(viewer: Any, layer_data: Sequence[tuple], first_step: bool = False) -> list:
    """Add ``(data, kwargs, layer_type)`` tuples to ``viewer``; the last added layer ends up the active one.

    Same result as ``viewer.add_layer(Layer.create(...))`` per tuple (same layer order), without a selection
    change per layer. Main thread only.

    Parameters
    ----------
    viewer
        The napari viewer.
    layer_data
        Layer-data tuples, in layer-list order.
    first_step
        When the viewer has no layers yet: leave its sliders at the first step instead of napari's centre step
        (see the module docstring). A non-image layer is inserted first (at its place) to take napari's centring,
        the sliders are put back to step 0, then the others are inserted, so no video is sliced in the middle.
    """
    with gc_paused():
        return _add_layers(viewer, layer_data, first_step)


def _add_layers(viewer: Any, layer_data: Sequence[tuple], first_step: bool) -> list:
    from napari.layers import Layer

    layers = viewer.layers
    activate = getattr(layers, "_activate_on_insert", None)
    base = len(layers)
    order = _insertion_order(layer_data, first_step, base == 0)
    added: dict[int, Any] = {}
    try:
        if activate is not None:
            layers._activate_on_insert = False
        for n, i in enumerate(order):
            data, kwargs, layer_type = layer_data[i]
            layer = Layer.create(data, dict(kwargs), layer_type)
            layers.insert(base + sum(1 for j in added if j < i), layer)
            added[i] = layer
            if n == 0 and first_step and base == 0:  # sliders (not the displayed axes) back to the first step
                dims = viewer.dims
                dims.current_step = tuple(
                    s if ax in dims.displayed else 0 for ax, s in enumerate(dims.current_step)
                )
    finally:
        if activate is not None:
            layers._activate_on_insert = activate
    out = [added[i] for i in range(len(layer_data))]
    skip_empty_text(viewer, out)  # Points layers without text: no empty text drawn (napari.empty_text)
    if out and activate:
        layers.selection.active = out[-1]
    return out
