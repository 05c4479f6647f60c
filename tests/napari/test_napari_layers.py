"""Layer builders, readers, registry and sample of the napari integration, without a viewer (no Qt needed).

Real sessions from ../shared/external; numbers checked against the Session the layers come from.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest

from napari_smil_mv.napari.layers.session_layers import (
    CAMERA_ROLES,
    LAYERS_PER_CAMERA,
    apply_layout,
    frame_selection,
    mosaic_offsets,
    session_layer_data,
)
from napari_smil_mv.napari.layers.styles import PREDICTED_SYMBOL, USER_SYMBOL
from napari_smil_mv.napari.layers.video_array import VideoArray
from napari_smil_mv.napari.layers.world_layers import (
    WORLD_ROLES,
    camera_frustum,
    frustum_edges,
    world_to_napari,
)
from napari_smil_mv.napari.readers.readers import get_session_reader, get_slp_reader, read_session, read_slp
from napari_smil_mv.napari.registry import forget_session, get_session, register_session
from napari_smil_mv.sessions import VideoMissingWarning, load_session


@pytest.fixture(scope="module")
def anipose_path():
    from conftest import shared_path

    return shared_path("external", "sleap-anipose", "minimal_session")


@pytest.fixture(scope="module")
def anipose(anipose_path):
    return load_session(anipose_path)


@pytest.fixture(scope="module")
def anipose_layers(anipose):
    return session_layer_data(anipose)


def _meta(kw):
    return kw["metadata"]["napari_smil_mv"]


def _by_role(layers, role, camera=None):
    out = [
        t
        for t in layers
        if _meta(t[1])["role"] == role and (camera is None or _meta(t[1])["camera"] == camera)
    ]
    assert len(out) == 1, (role, camera, len(out))
    return out[0]


def test_anipose_layer_order_names_and_metadata(anipose, anipose_layers):
    cams = anipose.camera_names
    assert len(anipose_layers) == LAYERS_PER_CAMERA * len(cams) + len(WORLD_ROLES) == 20
    for k, cam in enumerate(cams):  # contiguous, fixed order
        group = anipose_layers[k * LAYERS_PER_CAMERA : (k + 1) * LAYERS_PER_CAMERA]
        assert [_meta(kw)["role"] for _, kw, _ in group] == list(CAMERA_ROLES)
        assert {_meta(kw)["camera"] for _, kw, _ in group} == {cam}
        assert [t for _, _, t in group] == ["image", "vectors", "points", "points"]
        assert group[0][1]["name"] == f"{cam} · video"
    world = anipose_layers[-4:]
    assert [_meta(kw)["role"] for _, kw, _ in world] == list(WORLD_ROLES)
    assert all(
        _meta(kw)["camera"] is None and _meta(kw)["axes"] == ("z", "frame", "y", "x") for _, kw, _ in world
    )
    assert all(_meta(kw)["session"] == "minimal_session" for _, kw, _ in anipose_layers)


def test_keypoints_are_row_col_of_session_xy(anipose, anipose_layers):
    for cam in anipose.camera_names:
        data, kw, _ = _by_role(anipose_layers, "keypoints", cam)
        view = anipose.views[cam]
        finite = np.all(np.isfinite(view.keypoints), -1)
        assert data.shape == (int(finite.sum()), 3)
        t, a, n = np.nonzero(finite)
        np.testing.assert_array_equal(data[:, 0], anipose.frame_indices[t])
        np.testing.assert_allclose(data[:, 1], view.keypoints[t, a, n, 1])  # row = y
        np.testing.assert_allclose(data[:, 2], view.keypoints[t, a, n, 0])  # col = x
        feats = kw["features"]
        assert list(feats.columns) == ["node", "animal", "score", "visible", "source", "low_score"]
        assert list(feats["node"]) == [anipose.skeleton.nodes[k] for k in n]
        np.testing.assert_allclose(feats["score"], view.scores[t, a, n])
        assert set(feats["source"]) == {"predicted"}  # the sample holds predictions only
        assert np.array_equal(feats["low_score"], feats["score"] < 0.5)
        assert list(kw["symbol"]) == [PREDICTED_SYMBOL] * len(data)
        low = feats["low_score"].to_numpy()
        assert low.any() and not low.all()
        # low scores get a thick red ring
        assert kw["border_width"][low].min() > kw["border_width"][~low].max()
        red = np.tile([1.0, 32 / 255, 32 / 255], (int(low.sum()), 1))
        np.testing.assert_allclose(kw["border_color"][low][:, :3], red)
    # the shape of the first camera's keypoints: 1408 of 1800 back nodes are labelled
    assert _by_role(anipose_layers, "keypoints", "back")[0].shape == (1408, 3)


def test_skeleton_vectors_follow_edges(anipose, anipose_layers):
    data, kw, _ = _by_role(anipose_layers, "skeleton", "mid")
    view = anipose.views["mid"]
    assert data.shape == (1680, 2, 3)  # 14 edges x 120 frames, every node labelled in "mid"
    assert np.all(data[:, 1, 0] == 0)  # no frame component in the direction
    i, j = anipose.skeleton.edges[0]
    first = data[0]
    np.testing.assert_allclose(first[0, 1:], view.keypoints[0, 0, i, ::-1])
    np.testing.assert_allclose(first[0, 1:] + first[1, 1:], view.keypoints[0, 0, j, ::-1])
    assert kw["vector_style"] == "line"


def test_reprojection_errors_and_world_points(anipose, anipose_layers):
    data, kw, _ = _by_role(anipose_layers, "reprojection", "side")
    assert data.shape == (1800, 3)
    cam = anipose.views["side"].camera
    proj = cam.project(anipose.points3d)[0, 0, 0]
    np.testing.assert_allclose(data[0, 1:], proj[::-1])
    err = kw["features"]["err_px"].to_numpy()
    expected = np.linalg.norm(proj - anipose.views["side"].keypoints[0, 0, 0])
    np.testing.assert_allclose(err[0], expected)
    assert np.nanmedian(err) > 50  # the sample's "side" calibration is a copy of "top" (docs/sessions.md)
    assert np.nanmedian(_by_role(anipose_layers, "reprojection", "mid")[1]["features"]["err_px"]) < 10
    pts, kw3, _ = _by_role(anipose_layers, "points3d")
    assert pts.shape == (1800, 4)
    np.testing.assert_allclose(pts[0], world_to_napari(anipose.points3d[0, 0, 0], 0.0))
    x, y, z = anipose.points3d[0, 0, 0]
    np.testing.assert_allclose(pts[0], [z, 0, y, x])


def test_frustums_point_at_the_animal_and_names(anipose, anipose_layers):
    data, kw, _ = _by_role(anipose_layers, "frustums")
    assert data.shape == (4 * 11, 2, 4)  # 10 frustum segments + the optical axis per camera
    centroid = np.nanmedian(anipose.points3d.reshape(-1, 3), axis=0)
    for k, cam in enumerate(anipose.camera_names):
        c = anipose.views[cam].camera
        seg = data[k * 11 : (k + 1) * 11]
        apex = seg[0, 0]
        np.testing.assert_allclose(apex[[3, 2, 0]], c.center)  # (z, frame, y, x) -> (x, y, z)
        axis_end = seg[10, 0] + seg[10, 1]
        to_animal = centroid - c.center
        along = axis_end[[3, 2, 0]] - c.center
        cos = along @ to_animal / np.linalg.norm(along) / np.linalg.norm(to_animal)
        assert cos > 0.9, (cam, cos)  # every camera looks at the mouse
    names, nkw, _ = _by_role(anipose_layers, "camera_names")
    assert names.shape == (4, 4)
    assert list(nkw["features"]["label"]) == ["back", "mid", "side = top", ""]  # copied calibration
    # static layers show on every frame: data frame 0 scaled over the 120 frames
    assert nkw["scale"][1] == 120 and nkw["translate"][1] == 59.5


def test_frustum_guard_against_mirrored_undistortion(anipose):
    cam = anipose.views["mid"].camera  # strong barrel distortion: the corners have no undistortion
    corners = camera_frustum(cam, 100.0)
    local = cam.world_to_camera(corners[1:])
    assert np.all(local[:, 0] * np.array([-1, 1, 1, -1]) > 0)  # left corners left, right corners right
    assert np.all(local[:, 1] * np.array([-1, -1, 1, 1]) > 0)  # top corners up
    assert frustum_edges(corners).shape == (10, 2, 3)


def test_video_array_is_lazy(anipose, anipose_layers):
    vid, kw, _ = _by_role(anipose_layers, "video", "top")
    assert isinstance(vid, VideoArray) and kw["rgb"] is True and kw["contrast_limits"] == (0, 255)
    assert vid.shape == (120, 1024, 1280, 3) and vid.dtype == np.uint8 and vid.ndim == 4
    with pytest.raises(TypeError, match="whole video"):
        np.asarray(vid)
    before = vid.n_decoded
    frame = vid[(7, slice(None), slice(None))]
    assert frame.shape == (1024, 1280, 3) and vid.n_decoded == before + 1
    np.testing.assert_array_equal(vid[7], anipose.views["top"].video[7])
    assert vid.n_decoded == before + 1  # cached
    with pytest.raises(ValueError, match="refusing"):
        vid[0:120]


def test_frame_and_camera_selection(anipose):
    layers = session_layer_data(anipose, cameras=["top", "back"], frames=(10, 50, 5))
    assert len(layers) == 2 * 4 + 4
    assert [_meta(kw)["camera"] for _, kw, _ in layers[::4][:2]] == ["back", "top"]  # rig order kept
    vid, kw, _ = layers[0]
    assert vid.shape[0] == 8 and kw["scale"] == (5, 1.0, 1.0) and kw["translate"] == (10.0, 0.0, 0.0)
    kp = _by_role(layers, "keypoints", "top")[0]
    assert set(np.unique(kp[:, 0])) == set(range(10, 50, 5))
    assert frame_selection(slice(0, None, 2), 6) == range(0, 6, 2)
    with pytest.raises(KeyError, match="unknown cameras"):
        session_layer_data(anipose, cameras=["nope"])


def test_multiview_slp_two_mice_user_labels(shared):
    path = shared("external", "sleap-multiview", "cameras", "minimal_session", "min_session_user_labeled.slp")
    s = load_session(path)
    layers = session_layer_data(s)
    assert len(layers) == 8 * 4 + 4
    assert s.points3d_source == "triangulated"
    vid, kw, _ = _by_role(layers, "video", "sideL")
    assert vid.shape == (4, 1024, 1280) and kw["rgb"] is False  # grayscale: channel dropped
    data, kw, _ = _by_role(layers, "keypoints", "back")
    feats = kw["features"]
    assert set(feats["animal"]) == {"track_0", "track_1"}
    user = (feats["source"] == "user").to_numpy()
    assert user.all() and np.all(kw["symbol"][user] == USER_SYMBOL)
    assert not feats["low_score"].any()
    pts = _by_role(layers, "points3d")[0]
    assert pts.shape[1] == 4 and len(np.unique(pts[:, 1])) == 3


def test_format28_missing_videos_blank(shared):
    path = shared("external", "sleap-io-format28", "py_written_28_multiview3d.slp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VideoMissingWarning)
        s = load_session(path)
        layers = session_layer_data(s)
    assert len(layers) == 2 * 4 + 4
    vid, kw, _ = _by_role(layers, "video", "c1")
    assert vid.shape == (1, 960, 1280) and int(vid[0].max()) == 0
    assert "not found" in _meta(kw)["video_missing"]
    pts = _by_role(layers, "points3d")[0]  # the .slp stores node A in 3D; node B is NaN (dropped)
    np.testing.assert_allclose(pts, world_to_napari(s.points3d[0, 0, :1], 0.0))


def test_readers_sniff_and_never_raise(tmp_path, anipose_path, shared):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "calibration.toml").write_text("not toml [[[")
    (tmp_path / "fake.slp").write_text("not hdf5")
    foreign = [
        tmp_path,
        tmp_path / "notes.txt",
        tmp_path / "calibration.toml",
        tmp_path / "missing_folder",
        str(tmp_path / "fake.slp"),
        [str(anipose_path), str(anipose_path)],
        None,
        42,
        anipose_path / "points3d.h5",
        shared("external", "sleap-multiview", "cameras", "minimal_session", "calibration.toml"),  # no cameras
    ]
    t0 = time.perf_counter()
    for p in foreign:
        assert get_session_reader(p) is None, p
    for p in foreign[1:]:
        assert get_slp_reader(p) is None, p
    assert time.perf_counter() - t0 < 1.0
    assert get_session_reader(str(anipose_path)) is read_session
    assert get_session_reader([str(anipose_path / "calibration.toml")]) is read_session
    assert get_slp_reader(anipose_path / "back" / "minimal_back_proofread.slp") is read_slp


def test_read_session_registers_and_tiles(anipose_path):
    layers = read_session(str(anipose_path / "calibration.toml"))
    sid = _meta(layers[0][1])["session"]
    session = get_session(sid)
    assert session.camera_names == ["back", "mid", "side", "top"]
    offsets = [tuple(kw["translate"][1:]) for _, kw, t in layers if _meta(kw)["role"] == "keypoints"]
    assert offsets == [(0.0, 0.0), (0.0, 1318.4), (1054.72, 0.0), (1054.72, 1318.4)]
    assert len(layers) == 16 and all(_meta(kw)["camera"] is not None for _, kw, _ in layers)
    spec = _meta(layers[0][1])["world_spec"]  # what the world layers need when the viewer switches to them
    assert spec.cameras == ("back", "mid", "side", "top") and spec.frames == range(120)
    assert spec.points3d is session.points3d
    forget_session(sid)


def test_read_plain_slp_and_several_sessions(shared, anipose_path):
    layers = read_slp(str(anipose_path / "back" / "minimal_back_proofread.slp"))
    assert [_meta(kw)["role"] for _, kw, _ in layers] == list(CAMERA_ROLES)
    assert _meta(layers[0][1])["session"] is None and _meta(layers[0][1])["uncalibrated"] is True
    assert layers[0][0].shape == (120, 1024, 1280, 3)
    assert layers[3][0].shape == (1408, 3) and layers[2][0].shape == (0, 3)
    folder = shared("external", "sleap-multiview", "cameras", "minimal_session")
    reader = get_session_reader(folder)  # a folder of three .slp sessions: sniffed as sessions ...
    assert reader is read_session
    with pytest.raises(ValueError, match="several .slp files"):  # ... but asks for one of them
        reader(str(folder))


def test_registry_ids_unique(anipose_path):
    a, b = load_session(anipose_path), load_session(anipose_path)
    ia, ib = register_session(a), register_session(b)
    assert ia != ib and ib.startswith(a.name) and register_session(a) == ia
    assert get_session(ia) is a and get_session(ib) is b
    forget_session(ia)
    forget_session(ib)
    with pytest.raises(KeyError, match="no session"):
        get_session(ia)


def test_mosaic_offsets_and_layout_arguments():
    assert mosaic_offsets([(100, 50)] * 3, gap=0.0) == [(0.0, 0.0), (0.0, 100.0), (50.0, 0.0)]
    with pytest.raises(ValueError, match="layout"):
        apply_layout([], "diagonal")


def test_synthetic_session_sample():
    pytest.importorskip(
        "napari_smil_mv.demo.synthetic_session", reason="synthetic session writer not available"
    )
    from napari_smil_mv.napari.sample_data.sample_session import make_synthetic_session_sample

    layers = make_synthetic_session_sample(n_cameras=2, n_frames=3)
    assert len(layers) == 2 * 4  # world layers: with the first switch to the world layout
    session = get_session(_meta(layers[0][1])["session"])
    assert session.path.is_dir() and session.n_frames == 3 and session.units == "mm"
    assert layers[0][0].shape[0] == 3
    forget_session(session.name)


def test_prefetch_decodes_each_first_frame_once(anipose):
    from napari_smil_mv.napari.layers.video_array import prefetch_first_frames

    data = session_layer_data(anipose, cameras=["back", "mid"], points3d=None)
    videos = [d for d, _, t in data if t == "image"]
    prefetch_first_frames(data, 0)
    for vid in videos:  # napari's request races the background decode; the lock makes it decode once
        assert vid[0].shape == (1024, 1280, 3)
        assert vid.n_decoded == 1


def test_first_shown_indices_and_sequential_reader(anipose):
    from napari_smil_mv.napari.layers.video_array import first_shown_indices

    assert first_shown_indices(120) == (0, 59) and first_shown_indices(1) == (0,)
    video = anipose.views["back"].video
    video.close()
    frames = [video.frame(i) for i in (0, 1, 2, 5, 40, 3)]
    reader = video._reader
    assert reader is not None and reader.n_seeks == 2  # forward reads and short skips need no seek
    import sleap_io as sio

    ref = sio.load_video(str(video.path))
    for img, i in zip(frames, (0, 1, 2, 5, 40, 3), strict=True):
        np.testing.assert_array_equal(img, np.asarray(ref[i]))  # same pixels as sleap-io's own reader
    ref.close()


def test_session_of_plain_slp_layer_explains():
    from types import SimpleNamespace

    from napari_smil_mv.api import session_of

    layer = SimpleNamespace(name="minimal_back · video", metadata={"napari_smil_mv": {"session": None}})
    with pytest.raises(ValueError, match="plain .slp"):
        session_of(layer)
    with pytest.raises(ValueError, match="neither"):
        session_of(object())
