"""Points layers that show no text do not draw napari's empty text visual, and draw text again once they show some."""

from __future__ import annotations

import numpy as np
import pytest

from fixtures.viewer import hidden_viewer


@pytest.fixture
def viewer(qapp):
    with hidden_viewer() as v:
        yield v


def _text_node(viewer, layer):
    return viewer.window._qt_viewer.canvas.layer_to_visual[layer].node.text


def test_shows_text_follows_napari_rules():
    from napari.layers import Points

    from napari_smil_mv.napari.empty_text import shows_text

    pts = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert not shows_text(Points(pts))  # napari's default: the constant empty string
    labelled = Points(pts, features={"node": ["a", "b"]}, text="{node}")
    assert shows_text(labelled)
    labelled.text.visible = False
    assert not shows_text(labelled)
    assert not shows_text(object())  # no text manager at all


@pytest.mark.gui
def test_batch_hides_empty_text_and_follows_later_text(viewer):
    from napari_smil_mv.napari.batch_add import add_layers

    pts = np.array([[0.0, 1.0, 1.0], [0.0, 5.0, 5.0]])
    plain, named, image = add_layers(
        viewer,
        [
            (pts, {"name": "plain"}, "points"),
            (pts, {"name": "named", "features": {"node": ["a", "b"]}, "text": "{node}"}, "points"),
            (np.zeros((1, 8, 8), np.uint8), {"name": "img"}, "image"),
        ],
    )
    assert not _text_node(viewer, plain).visible
    assert _text_node(viewer, named).visible
    plain.features = {"node": ["x", "y"]}
    plain.text = "{node}"  # the user asks for labels: drawn again
    assert _text_node(viewer, plain).visible
    assert list(_text_node(viewer, plain).text) == ["x", "y"]
    plain.text.visible = False  # the layer controls' "display text" box
    assert not _text_node(viewer, plain).visible
    named.text.visible = False
    assert not _text_node(viewer, named).visible
    named.text.visible = True
    assert _text_node(viewer, named).visible
    viewer.screenshot(canvas_only=True)  # draws without error


@pytest.mark.gui
def test_opening_a_session_draws_no_empty_text(viewer, tmp_path):
    from napari_smil_mv import api
    from napari_smil_mv.demo.synthetic_session import write_synthetic_session

    session = write_synthetic_session(
        tmp_path / "demo", n_cameras=2, n_frames=4, image_size=(160, 120), seed=1
    )
    api.load_session(viewer, session)
    points = [la for la in viewer.layers if la._type_string == "points"]
    assert len(points) == 4  # keypoints and reprojections of both cameras
    assert not any(_text_node(viewer, la).visible for la in points)
    api.set_layout(viewer, "world")  # the world layers come in a batch too; the camera names keep their text
    names = api.session_layers(viewer, role="camera_names")
    assert names and all(_text_node(viewer, la).visible for la in names)


@pytest.mark.gui
def test_reader_layers_draw_no_empty_text_and_other_layers_are_left_alone(viewer, tmp_path):
    from napari_smil_mv.demo.synthetic_session import write_synthetic_session

    session = write_synthetic_session(
        tmp_path / "demo", n_cameras=2, n_frames=4, image_size=(160, 120), seed=1
    )
    other = viewer.add_points(np.array([[0.0, 1.0, 1.0]]), name="not ours")  # before the reader: untouched
    layers = viewer.open(str(session), plugin="napari-smil-mv")  # napari adds the reader's layers itself
    points = [la for la in layers if la._type_string == "points"]
    assert len(points) == 4
    assert not any(_text_node(viewer, la).visible for la in points)
    later = viewer.add_points(np.array([[0.0, 2.0, 2.0]]), name="also not ours")
    assert _text_node(viewer, other).visible and _text_node(viewer, later).visible  # napari's default kept
    viewer.open(str(session), plugin="napari-smil-mv")  # a second read connects no second handler
    from napari_smil_mv.napari.empty_text import _WATCHED

    assert list(_WATCHED).count(viewer) == 1
    viewer.screenshot(canvas_only=True)


@pytest.mark.gui
def test_a_layer_is_followed_once(viewer):
    from napari_smil_mv.napari.empty_text import skip_empty_text

    layer = viewer.add_points(np.array([[0.0, 1.0, 1.0]]))
    n = len(layer.text.events.callbacks)
    assert skip_empty_text(viewer, [layer]) == 1
    assert skip_empty_text(viewer, [layer]) == 1
    assert len(layer.text.events.callbacks) == n + 1
