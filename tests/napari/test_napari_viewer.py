"""Sessions in a real napari viewer (Xvfb): API, layouts, readers through napari, the Session widget.

One module-scoped viewer keeps this affordable (a viewer costs about 3 s on a small machine).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from fixtures.viewer import hidden_viewer

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def viewer(qapp):
    with hidden_viewer((1200, 900)) as v:
        yield v


@pytest.fixture(scope="module")
def anipose_path():
    from conftest import shared_path

    return shared_path("external", "sleap-anipose", "minimal_session")


def _screenshot(viewer) -> np.ndarray:
    viewer.screenshot(canvas_only=True)  # the first one after a layout change can use a stale canvas size
    return viewer.screenshot(canvas_only=True)


def test_api_grid_world_and_back(viewer, anipose_path):
    from napari_smil_mv import api

    viewer.layers.clear()
    session = api.load_session(viewer, anipose_path)
    assert len(viewer.layers) == 16  # the world layers come with the first switch to the world layout
    assert viewer.canvas.grid.enabled and viewer.canvas.grid.stride == api.LAYERS_PER_CAMERA
    assert viewer.canvas.grid.actual_shape(viewer.layers) == (2, 2)
    assert viewer.dims.ndim == 3 and api.frame_axis(viewer) == 0
    assert api.session_layers(viewer, role=api.WORLD_ROLES) == []
    assert api.session_of(viewer.layers[0]) is session and api.session_of(viewer) is session
    img = _screenshot(viewer)
    assert img[..., :3].mean() > 20  # videos rendered, not a black canvas

    videos = api.session_layers(viewer, role="video")
    decoded = [la.data.n_decoded for la in videos]
    api.set_frame(viewer, 60)
    assert viewer.dims.current_step[0] == 60
    kp = api.session_layers(viewer, role="keypoints", camera="mid")[0]
    assert np.all(kp.data[kp._view_indices][:, 0] == 60)  # only frame 60's keypoints are drawn
    assert [la.data.n_decoded - d for la, d in zip(videos, decoded, strict=True)] == [1, 1, 1, 1]

    api.set_layout(viewer, "world")
    assert [meta["role"] for meta in (la.metadata["napari_smil_mv"] for la in viewer.layers[16:])] == list(
        api.WORLD_ROLES
    )
    assert viewer.dims.ndim == 4 and viewer.dims.current_step[1] == 60  # still frame 60 on the new frame axis
    assert viewer.dims.ndisplay == 3 and tuple(viewer.dims.displayed) == (0, 2, 3)
    assert not viewer.canvas.grid.enabled
    assert not any(la.visible for la in api.session_layers(viewer, role=api.CAMERA_ROLES))
    assert all(la.visible for la in api.session_layers(viewer, role=api.WORLD_ROLES))
    pts = api.session_layers(viewer, role="points3d")[0]
    assert len(pts._view_indices) == 15  # the mouse at frame 60
    assert _screenshot(viewer)[..., :3].max() > 200  # frustums and names drawn

    api.set_layout(viewer, "grid")
    assert viewer.dims.ndisplay == 2 and viewer.canvas.grid.enabled
    assert all(la.visible for la in api.session_layers(viewer, role=api.CAMERA_ROLES))
    assert not any(la.visible for la in api.session_layers(viewer, role=api.WORLD_ROLES))
    api.set_layout(viewer, "world")
    assert len(viewer.layers) == 20  # created once
    api.set_layout(viewer, "grid")
    assert api.layout_of(viewer) == "grid"
    api.set_layout(viewer, "mosaic")
    assert not viewer.canvas.grid.enabled
    top = api.session_layers(viewer, role="keypoints", camera="top")[0]
    assert tuple(top.translate[1:]) == (1054.72, 1318.4)
    api.forget_session(api.session_layers(viewer)[0].metadata["napari_smil_mv"]["session"])


def test_readers_through_napari(viewer, shared, anipose_path):
    from napari_smil_mv import api

    viewer.layers.clear()
    mv = shared("external", "sleap-multiview", "cameras", "minimal_session", "min_session_frame_groups.slp")
    layers = viewer.open(str(mv), plugin="napari-smil-mv")
    assert len(layers) == 8 * 4  # world layers: with the first switch to the world layout
    session = api.session_of(layers[0])
    assert session.camera_names == ["back", "backL", "mid", "midL", "side", "sideL", "top", "topL"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f28 = shared("external", "sleap-io-format28", "py_written_28_multiview3d.slp")
        more = viewer.open(str(f28), plugin="napari-smil-mv")
    assert len(more) == 2 * 4 and len(viewer.layers) == 40
    with pytest.raises(ValueError, match="several sessions"):
        api.session_of(_NoSelection(viewer))
    api.set_layout(viewer, "grid")
    assert viewer.canvas.grid.actual_shape(viewer.layers) == (3, 4)  # 10 cameras, one per cell
    viewer.layers.clear()
    folder = viewer.open(str(anipose_path), plugin="napari-smil-mv")
    assert len(folder) == 16
    assert _screenshot(viewer)[..., :3].mean() > 5  # the mosaic the reader returns is visible
    api.set_layout(viewer, "world")  # a session opened by the reader gets its world layers too
    assert [la.visible for la in api.session_layers(viewer, role=api.WORLD_ROLES)] == [True] * 4
    assert _screenshot(viewer)[..., :3].max() > 200


class _NoSelection:
    """A viewer stand-in whose layer selection is empty (session_of must then find all sessions)."""

    def __init__(self, viewer):
        self.layers = _Layers(viewer.layers)


class _Layers(list):
    def __init__(self, layers):
        super().__init__(layers)
        self.selection = type("S", (), {"active": None})()


def test_session_widget(viewer, qtbot, anipose_path, shared, tmp_path):
    from qtpy.QtCore import Qt

    from napari_smil_mv import api
    from napari_smil_mv.napari.widgets.session_widget import SessionWidget

    viewer.layers.clear()
    widget = SessionWidget(viewer)
    qtbot.addWidget(widget)
    widget.load(str(anipose_path))
    qtbot.waitUntil(lambda: widget.session is not None and len(viewer.layers) == 16, timeout=30000)
    assert widget.selected_cameras() == ["back", "mid", "side", "top"]
    assert widget.stop_spin.value() == 120

    widget.camera_list.item(2).setCheckState(Qt.CheckState.Unchecked)
    widget.start_spin.setValue(10)
    widget.stop_spin.setValue(40)
    layers = widget.show_selection()
    assert len(layers) == len(viewer.layers) == 3 * 4
    assert {la.metadata["napari_smil_mv"]["camera"] for la in layers[:12]} == {"back", "mid", "top"}
    assert layers[0].data.shape[0] == 30

    model = shared("models", "SMILy_Mouse_static_joints.pkl")
    widget.load_model(str(model))
    qtbot.waitUntil(lambda: len(widget.model_joints) > 0, timeout=60000)
    assert widget.joint_table.rowCount() == len(widget.model_joints)
    jm = widget.auto_match()
    assert ("Nose", "Nose") in jm.pairs and len(jm) >= 5
    assert widget.joint_map().pairs == sorted(jm.pairs, key=lambda p: widget.model_joints.index(p[1]))
    editor = widget.joint_table.itemDelegateForColumn(1).createEditor(widget.joint_table, None, None)
    assert [editor.itemText(i) for i in range(editor.count())] == ["", *widget.session.skeleton.nodes]

    row = widget.model_joints.index("Ear_L_tip")
    widget.joint_table.item(row, 1).setText("Ear_L")  # what the combo-box editor writes
    assert ("Ear_L", "Ear_L_tip") in widget.joint_map().pairs

    out = tmp_path / "joint_lookup.csv"
    assert widget.save_joint_map(out) == out
    text = out.read_text()
    assert text.splitlines()[0] == "model,data" and len(text.splitlines()) == len(widget.model_joints) + 1
    out.write_text("user edits")
    assert widget.save_joint_map(out, overwrite=False) is None and out.read_text() == "user edits"

    widget.run_qc()
    qtbot.waitUntil(lambda: widget.qc_report is not None, timeout=60000)
    assert widget.qc_table.rowCount() == 4
    flags = {widget.qc_table.item(r, 0).text(): widget.qc_table.item(r, 4).text() for r in range(4)}
    assert flags == {"back": "", "mid": "", "side": "FLAGGED", "top": ""}
    widget.set_layout("world")
    assert viewer.dims.ndisplay == 3
    frustums = api.session_layers(viewer, role="frustums")  # created by the switch, for the shown cameras
    assert len(frustums) == 1 and set(frustums[0].features["camera"]) == {"back", "mid", "top"}
    assert all(la.visible for la in api.session_layers(viewer, role=api.WORLD_ROLES))
    widget.set_layout("grid")
    viewer.layers.clear()
