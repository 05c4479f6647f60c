"""Not drawing the text visual of Points layers that show no text.

napari gives every Points layer a vispy Text visual and, when the layer shows no text, fills it with one empty
string, because vispy needs non-empty data (``napari._vispy.utils.text.update_text``, napari 0.9). vispy then
builds the text shader program and draws the empty string. With software OpenGL (Xvfb, remote desktops, machines
without a GPU driver) that first draw costs 60-160 ms per layer: 0.5 s of the 1.0 s first draw of the 4-camera
sample, whose 8 Points layers (keypoints and reprojections) carry no text.

:func:`skip_empty_text` hides the Text visual of such layers and shows it again as soon as the layer's text settings
make it show text (``layer.text = "{node}"``, the "display text" box of the layer controls): the picture is the same,
only the empty draw is gone. The readers (which return layer data and let napari add the layers) use
:func:`watch_viewer` instead: the viewer then does the same for this package's layers as napari inserts them.
It reaches napari's vispy layer through the viewer's private canvas
(``viewer.window._qt_viewer.canvas.layer_to_visual``); when that is not there (another napari version, no Qt
window), it does nothing and napari draws as before.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from typing import Any

#: Viewers whose inserted layers :func:`watch_viewer` already follows.
_WATCHED: weakref.WeakSet = weakref.WeakSet()
#: Layers whose Text visual :func:`skip_empty_text` already keeps in step.
_FOLLOWED: weakref.WeakSet = weakref.WeakSet()


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


def _follower(node: Any, layer: Any) -> Callable[..., None]:
    """A text-event callback that shows ``node`` exactly when ``layer`` shows text (weak references to both)."""
    node_ref, layer_ref = weakref.ref(node), weakref.ref(layer)

    def follow(event: Any = None) -> None:
        node, layer = node_ref(), layer_ref()
        if node is not None and layer is not None:
            node.visible = shows_text(layer)

    return follow


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
        if layer not in _FOLLOWED:  # once per layer (a watched viewer may also get it in a batch)
            follow = _follower(node, layer)
            follow()
            layer.text.events.connect(follow)
            _FOLLOWED.add(layer)
        hidden += not node.visible
    return hidden


def watch_viewer(viewer: Any) -> bool:
    """From now on, apply :func:`skip_empty_text` to every layer of this package inserted into ``viewer``.

    For layers napari adds itself (the npe2 readers and sample data return layer data). A layer is this
    package's when it has this package's metadata (:func:`~napari_smil_mv.napari.scripting.meta`); other
    plugins' layers are left alone. Connected once per viewer, after napari's own handler (which builds the
    vispy layer). Returns False when ``viewer`` is None or cannot be followed.
    """
    if viewer is None:
        return False
    try:
        if viewer in _WATCHED:
            return True
        viewer_ref = weakref.ref(viewer)
        inserted = viewer.layers.events.inserted
    except (AttributeError, TypeError):
        return False

    from napari_smil_mv.napari.scripting import meta  # here: scripting imports this module (via batch_add)

    def on_inserted(event: Any) -> None:
        viewer, layer = viewer_ref(), getattr(event, "value", None)
        if viewer is not None and meta(layer):
            skip_empty_text(viewer, [layer])

    inserted.connect(on_inserted, position="last")
    _WATCHED.add(viewer)
    return True


def watch_current_viewer() -> bool:
    """:func:`watch_viewer` on napari's current viewer (the one a reader is reading for), if there is one."""
    try:
        import napari

        return watch_viewer(napari.current_viewer())
    except Exception:  # no napari window, no Qt: nothing to follow
        return False
