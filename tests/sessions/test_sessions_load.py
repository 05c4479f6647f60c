"""Loading the real sample sessions (../shared/external) with exact numbers."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest

from napari_smil_mv.sessions import (
    LazyVideo,
    VideoMissingWarning,
    find_sessions,
    is_session_path,
    load_session,
)

MOUSE_NODES = [
    "Nose", "Ear_R", "Ear_L", "TTI", "TailTip", "Head", "Trunk", "Tail_0", "Tail_1", "Tail_2",
    "Shoulder_left", "Shoulder_right", "Haunch_left", "Haunch_right", "Neck",
]  # fmt: skip
MOUSE_EDGES = [(3, 5), (3, 7), (3, 8), (3, 9), (3, 12), (3, 13), (3, 6), (3, 4), (5, 0), (5, 14), (5, 10), (5, 11),
               (5, 1), (5, 2)]  # fmt: skip
MV_CAMERAS = ["back", "backL", "mid", "midL", "side", "sideL", "top", "topL"]


@pytest.fixture
def minimal(shared):
    return shared("external", "sleap-anipose", "minimal_session")


@pytest.fixture
def multiview(shared):
    return shared("external", "sleap-multiview")


def test_minimal_session_numbers(minimal):
    t0 = time.perf_counter()
    s = load_session(minimal)
    elapsed = time.perf_counter() - t0
    assert elapsed < 3.0, f"loading took {elapsed:.2f} s"
    # nothing decoded or even opened up front
    assert all(v.video is not None and v.video._video is None for v in s.views.values())

    assert s.name == "minimal_session"
    assert s.camera_names == ["back", "mid", "side", "top"]
    assert s.rig.names == ["back", "mid", "side", "top"]
    assert s.n_frames == 120
    assert np.array_equal(s.frame_indices, np.arange(120))
    assert s.frame_range == (0, 119)
    assert s.skeleton.nodes == MOUSE_NODES
    assert s.skeleton.edges == MOUSE_EDGES
    assert s.n_animals == 1 and s.animal_names == ["track_0"]
    assert s.units == "unknown"
    assert s.points3d_source == "points3d.h5"
    assert s.points3d.shape == (120, 1, 15, 3)
    assert not np.isnan(s.points3d).any()
    assert s.keypoints_2d().shape == (4, 120, 1, 15, 2)
    # NaN fractions of the 2D points, as measured independently with sleap-io (formats.md 7.1)
    nan_frac = {c: np.isnan(v.keypoints).any(-1).mean() for c, v in s.views.items()}
    assert nan_frac["back"] == pytest.approx(0.2178, abs=1e-3)
    assert nan_frac["side"] == pytest.approx(0.1289, abs=1e-3)
    assert nan_frac["mid"] == 0 and nan_frac["top"] == 0
    # predictions only; per-node scores are raw network scores (not probabilities)
    for v in s.views.values():
        assert not v.is_user.any()
        assert np.array_equal(v.visible, np.isfinite(v.keypoints).all(-1))
        assert np.array_equal(np.isfinite(v.scores), v.visible)
    assert s.views["back"].scores[0, 0, 0] == pytest.approx(0.36670476)
    assert s.views["back"].source_path.name == "minimal_back_proofread.slp"
    # the first back keypoint agrees with sleap-io's own array
    import sleap_io as sio

    ref = sio.load_slp(str(minimal / "back" / "minimal_back_proofread.slp"), open_videos=False).numpy()
    np.testing.assert_array_equal(s.views["back"].keypoints[:, :, :, :], ref)

    for cam, v in s.views.items():
        assert v.video.exists
        assert v.video.path.name == f"minimal_{cam}.mp4"
        assert v.video.shape == (120, 1024, 1280, 3)
    frame = s.views["mid"].video[7]
    assert frame.shape == (1024, 1280, 3) and frame.dtype == np.uint8 and frame.any()
    assert s.views["mid"].video[7, 100:110, 200:220].shape == (10, 20, 3)
    assert s.views["mid"].video[2:4].shape == (2, 1024, 1280, 3)
    assert is_session_path(minimal) and is_session_path(minimal / "calibration.toml")
    assert not is_session_path(minimal / "back" / "minimal_back_proofread.slp")  # no recording session inside
    assert load_session(minimal / "calibration.toml").camera_names == s.camera_names


def test_minimal_session_units_argument(minimal):
    s = load_session(minimal, units="mm")
    assert s.units == "mm" and s.rig.units == "mm"


def test_multiview_frame_groups_session(multiview):
    path = multiview / "cameras" / "minimal_session" / "min_session_frame_groups.slp"
    with warnings.catch_warnings():
        warnings.simplefilter("error", VideoMissingWarning)  # the videos are found in ../../videos
        s = load_session(path)
    assert s.name == "min_session_frame_groups"
    assert s.camera_names == MV_CAMERAS
    assert s.n_frames == 3 and list(s.frame_indices) == [0, 1, 2]
    assert s.skeleton.nodes == MOUSE_NODES
    assert s.animal_names == ["track_0", "track_1"]
    assert s.points3d is None and s.points3d_source is None
    # camera order is not video order in this file: each camera gets its own video
    for cam, v in s.views.items():
        assert v.video.path.name == f"min_session_{cam}.mp4"
        assert v.video.path.parent.name == "videos"
        assert v.video.shape == (4, 1024, 1280, 1)
    counts = {c: int(np.isfinite(v.keypoints).all(-1).sum()) for c, v in s.views.items()}
    assert counts == {"back": 71, "backL": 66, "mid": 72, "midL": 78, "side": 36, "sideL": 31, "top": 73,
                      "topL": 80}  # fmt: skip
    # InstanceGroups: mouse 0 in all 8 cameras, mouse 1 not in side/sideL; grouped instances are user labels
    assert s.views["back"].is_user.all()
    assert s.views["side"].is_user[:, 0].all() and not s.views["side"].is_user[:, 1].any()
    assert np.isnan(s.views["side"].keypoints[:, 1]).all()
    # keypoints of identity track_1 stay on the same animal across cameras: they triangulate consistently
    assert np.nanmean(s.views["back"].keypoints[:, 1, :, 0]) == pytest.approx(996.307, abs=0.01)


def test_multiview_predictions_only_match_user_labels(multiview):
    folder = multiview / "cameras" / "minimal_session"
    pred = load_session(folder / "min_session.slp")
    grouped = load_session(folder / "min_session_frame_groups.slp")
    assert pred.animal_names == ["track_0", "track_1"]
    assert not any(v.is_user.any() for v in pred.views.values())
    # the user instances of this sample were accepted predictions: same coordinates
    np.testing.assert_array_equal(pred.keypoints_2d(), grouped.keypoints_2d())
    scores = pred.scores_2d()
    assert np.nanmax(scores) == pytest.approx(1.0294963, abs=1e-6)  # above 1: not probabilities
    assert np.isnan(
        grouped.scores_2d()[grouped.keypoints_2d()[..., 0] == grouped.keypoints_2d()[..., 0]]
    ).all()


def test_folder_with_several_slp_sessions(multiview):
    folder = multiview / "cameras" / "minimal_session"
    assert is_session_path(folder)
    with pytest.raises(ValueError, match="several .slp files") as err:
        load_session(folder)
    assert "min_session_frame_groups.slp" in str(err.value)
    assert [p.name for p in find_sessions(folder)] == [
        "min_session.slp", "min_session_frame_groups.slp", "min_session_user_labeled.slp",
    ]  # fmt: skip


def test_format_28_sample(shared):
    path = shared("external", "sleap-io-format28", "py_written_28_multiview3d.slp")
    with pytest.warns(VideoMissingWarning) as record:
        s = load_session(path)
    assert sorted(str(w.message).split(": video file not found: ")[1][:6] for w in record) == [
        "c1.mp4",
        "c2.mp4",
    ]
    assert s.camera_names == ["c1", "c2"]
    assert s.skeleton.nodes == ["A", "B"] and s.skeleton.edges == []
    assert s.n_frames == 1 and list(s.frame_indices) == [0]
    assert s.n_animals == 1 and s.animal_names == ["group_0"]
    np.testing.assert_array_equal(s.views["c1"].keypoints[0, 0], [[10, 20], [30, 40]])
    np.testing.assert_array_equal(s.views["c2"].keypoints[0, 0], [[50, 60], [70, 80]])
    assert s.views["c1"].is_user.all()
    np.testing.assert_allclose(s.rig["c2"].tvec, [100, 0, 0])
    np.testing.assert_allclose(s.rig["c1"].matrix, [[1000, 0, 640], [0, 1000, 480], [0, 0, 1]])
    assert s.points3d_source == "slp"
    np.testing.assert_allclose(s.points3d[0, 0, 0], [121.57910323, 2.5, 3.5])
    assert np.isnan(s.points3d[0, 0, 1]).all()
    for v in s.views.values():  # missing videos: blank frames of the calibration size (1280 x 960)
        assert isinstance(v.video, LazyVideo) and not v.video.exists
        assert v.video.shape == (1, 960, 1280, 1)
        assert not v.video[0].any()


def test_lazy_video_refuses_full_decode(minimal):
    s = load_session(minimal)
    with pytest.raises(TypeError, match="refusing to decode"):
        np.asarray(s.views["back"].video)
    with pytest.raises(IndexError, match="out of range"):
        s.views["back"].video.frame(120)
