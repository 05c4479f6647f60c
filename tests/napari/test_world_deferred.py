"""World layers built on demand: a session opened in a 2D layout gets its 3D keypoints, 3D skeleton, frustums and
camera names with the first switch to the world layout (or ``api.add_world_layers``), identical to the layers
built eagerly with ``world=True``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fixtures.viewer import hidden_viewer


def _meta(kw: dict) -> dict:
    return kw["metadata"]["napari_smil_mv"]


def _same_layer(a: tuple, b: tuple) -> None:
    (da, ka, ta), (db, kb, tb) = a, b
    assert ta == tb and ka.keys() == kb.keys()
    if ta == "image":  # lazy videos: same video, frames and first image
        assert da.video is db.video and da.frames == db.frames and da.shape == db.shape
        np.testing.assert_array_equal(da[0], db[0])
    else:
        np.testing.assert_array_equal(np.asarray(da), np.asarray(db))
    for key in ka:
        va, vb = ka[key], kb[key]
        if isinstance(va, pd.DataFrame):
            pd.testing.assert_frame_equal(va, vb)
        elif isinstance(va, np.ndarray):
            np.testing.assert_array_equal(va, vb)
        elif key == "text":
            assert va.keys() == vb.keys()
            np.testing.assert_array_equal(va["translation"], vb["translation"])
        else:
            assert va == vb, key


@pytest.fixture(scope="module")
def anipose_path():
    from conftest import shared_path

    return shared_path("external", "sleap-anipose", "minimal_session")


def test_deferred_world_layers_equal_the_eager_ones(anipose_path):
    from napari_smil_mv.napari.layers.session_layers import session_layer_data
    from napari_smil_mv.napari.layers.world_layers import WORLD_ROLES, deferred_world_layer_data
    from napari_smil_mv.sessions import load_session

    session = load_session(anipose_path)
    kw = dict(cameras=["top", "back", "side"], frames=(10, 90, 2), session_id="s", frustum_depth=55.0)
    eager = session_layer_data(session, name_prefix="p/", **kw)
    lazy = session_layer_data(session, name_prefix="p/", world=False, **kw)
    assert len(eager) == 3 * 4 + 4 and len(lazy) == 3 * 4
    spec = _meta(lazy[0][1]).pop("world_spec")
    assert all(_meta(k).pop("world_spec") is spec for _, k, _ in lazy[1:])  # one spec, on every camera layer
    for a, b in zip(eager[:12], lazy, strict=True):
        _same_layer(a, b)
    world = deferred_world_layer_data(session, spec, "s")
    assert [_meta(k)["role"] for _, k, _ in world] == list(WORLD_ROLES)
    for a, b in zip(eager[12:], world, strict=True):
        _same_layer(a, b)


@pytest.mark.gui
def test_world_layers_come_with_the_world_layout(qapp, anipose_path):
    from napari_smil_mv import api

    with hidden_viewer() as viewer:
        session = api.load_session(viewer, anipose_path, cameras=["back", "mid"], frames=(0, 60))
        assert len(viewer.layers) == 8 and api.session_layers(viewer, role=api.WORLD_ROLES) == []

        added = api.add_world_layers(viewer)  # without switching: added hidden in the grid
        assert [la.metadata["napari_smil_mv"]["role"] for la in added] == list(api.WORLD_ROLES)
        assert not any(la.visible for la in added) and viewer.canvas.grid.actual_shape(viewer.layers) == (
            1,
            2,
        )
        assert api.add_world_layers(viewer) == []  # once per session
        assert set(added[2].features["camera"]) == {"back", "mid"}
        assert added[0].data[:, 1].max() < 60  # the chosen frames only

        other = api.load_session(viewer, anipose_path, cameras=["top"])  # a second session, grid layout
        assert len(api.session_layers(viewer, other, role=api.WORLD_ROLES)) == 0
        api.set_layout(viewer, "world")  # creates the second session's world layers and shows all of them
        mine = api.session_layers(viewer, other, role=api.WORLD_ROLES)
        assert len(mine) == 4 and all(la.visible for la in api.session_layers(viewer, role=api.WORLD_ROLES))
        assert mine[0].name.startswith(api.session_layers(viewer, other)[0].name.split("/")[0] + "/")
        assert not any(la.visible for la in api.session_layers(viewer, role=api.CAMERA_ROLES))
        assert len(api.session_layers(viewer, session, role=api.WORLD_ROLES)) == 4

        # opened while the viewer shows the world: world layers built at once and shown, videos wait for 2D
        third = api.load_session(viewer, anipose_path, cameras=["side"], layout=None)
        assert [la.visible for la in api.session_layers(viewer, third, role=api.WORLD_ROLES)] == [True] * 4
        assert not any(la.visible for la in api.session_layers(viewer, third, role=api.CAMERA_ROLES))
        api.set_layout(viewer, "grid")
        assert all(la.visible for la in api.session_layers(viewer, third, role=api.CAMERA_ROLES))
        assert viewer.canvas.grid.actual_shape(viewer.layers) == (2, 2)  # 4 cameras of 3 sessions
        for s in (session, other, third):
            api.forget_session(api.session_layers(viewer, s)[0].metadata["napari_smil_mv"]["session"])


@pytest.mark.gui
def test_batch_first_step_keeps_order_and_decodes_only_the_first_frame(qapp, anipose_path):
    from napari_smil_mv import api
    from napari_smil_mv.napari.batch_add import add_layers
    from napari_smil_mv.napari.layers.session_layers import session_layer_data
    from napari_smil_mv.sessions import load_session

    session = load_session(anipose_path)
    data = session_layer_data(
        session, cameras=["back", "mid"], frames=(20, 80), session_id="b", layout="grid", world=False
    )
    videos = [d for d, _, t in data if t == "image"]
    with hidden_viewer() as viewer:
        added = add_layers(viewer, data, first_step=True)
        assert (
            [la.name for la in viewer.layers]
            == [kw["name"] for _, kw, _ in data]
            == [la.name for la in added]
        )
        assert viewer.layers.selection.active is added[-1]
        assert (
            viewer.dims.current_step[0] == 0 and viewer.dims.point[0] == 20
        )  # first chosen frame, not centre
        assert [v.n_decoded for v in videos] == [1, 1]  # frame 20 only: no seek to the middle of the videos
        more = session_layer_data(session, ["top"], (20, 80), session_id="c", layout="grid", world=False)
        api.set_frame(viewer, 30)
        before = viewer.dims.point[0]
        add_layers(viewer, more, first_step=True)  # a viewer with layers keeps its frame
        assert viewer.dims.point[0] == before == 30 and viewer.layers[-4].name == "top · video"
