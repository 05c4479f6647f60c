"""Not drawing the text visual of Points layers that show no text.

napari gives every Points layer a vispy Text visual and, when the layer shows no text, fills it with one empty
string, because vispy needs non-empty data (``napari._vispy.utils.text.update_text``, napari 0.9). vispy then
builds the text shader program and draws the empty string. With software OpenGL (Xvfb, remote desktops, machines
without a GPU driver) that first draw costs 60-160 ms per layer: 0.5 s of the 1.0 s first draw of the 4-camera
sample, whose 8 Points layers (keypoints and reprojections) carry no text.

:func:`skip_empty_text` hides the Text visual of such layers and shows it again as soon as the layer's text settings
make it show text (``layer.text = "{node}"``, the "display text" box of the layer controls): the picture is the same,
only the empty draw is gone. It reaches napari's vispy layer through the viewer's private canvas
(``viewer.window._qt_viewer.canvas.layer_to_visual``); when that is not there (another napari version, no Qt
window), it does nothing and napari draws as before.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import Any


def shows_text(layer: Any) -> bool:
    """Whether napari draws any text for ``layer`` (a layer with a ``text`` manager, e.g. Points).

    False when the text is switched off or is the constant empty string (napari's default), the two cases in
    which napari hands vispy one empty string.
    """
    text = getattr(layer, "text", None)
    if text is None or not getattr(text, "visible", True):
        return False
    return getattr(text.string, "constant", None) != ""


def _text_node(viewer: Any, layer: Any) -> Any:
    """The vispy Text visual napari draws ``layer``'s text with, or None if it cannot be reached."""
    try:
        visual = viewer.window._qt_viewer.canvas.layer_to_visual[layer]
    except (AttributeError, KeyError, TypeError):
        return None
    node = getattr(getattr(visual, "node", None), "text", None)
    return node if hasattr(node, "visible") else None


def skip_empty_text(viewer: Any, layers: Iterable[Any]) -> int:
    """Hide the Text visual of every layer in ``layers`` that shows no text; keep it in step with the layer.

    Parameters
    ----------
    viewer
        The napari viewer the layers are in.
    layers
        Layers; those without a ``text`` manager (images, vectors, ...) are skipped.

    Returns
    -------
    int
        The number of layers whose Text visual is now hidden.
    """
    hidden = 0
    for layer in layers:
        if getattr(layer, "text", None) is None:
            continue
        node = _text_node(viewer, layer)
        if node is None:
            continue
        node_ref = weakref.ref(node)
        layer_ref = weakref.ref(layer)

        def follow(event: Any = None, node_ref=node_ref, layer_ref=layer_ref) -> None:
            node, layer = node_ref(), layer_ref()
            if node is not None and layer is not None:
                node.visible = shows_text(layer)

        follow()
        layer.text.events.connect(follow)
        hidden += not node.visible
    return hidden
