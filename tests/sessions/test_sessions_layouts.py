"""Session layouts on copies of the real sample (small files only): missing videos, camera names, sessions
directories with lookup tables, Anipose pose-3d CSV."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from napari_smil_mv.cameras import rodrigues_to_matrix
from napari_smil_mv.sessions import (
    VideoMissingWarning,
    find_sessions,
    is_session_path,
    load_session,
    load_sessions,
    read_points3d_h5,
    read_pose3d_csv,
)

CAMS = ["back", "mid", "side", "top"]


def copy_small(src: Path, dst: Path, points3d: bool = True, rename: dict[str, str] | None = None) -> Path:
    """Copy the calibration, points3d.h5 and the per-camera .slp files (never the videos)."""
    rename = rename or {}
    dst.mkdir(parents=True)
    shutil.copy(src / "calibration.toml", dst / "calibration.toml")
    if points3d:
        shutil.copy(src / "points3d.h5", dst / "points3d.h5")
    for cam in CAMS:
        (dst / rename.get(cam, cam)).mkdir()
        for slp in (src / cam).glob("*.slp"):
            shutil.copy(slp, dst / rename.get(cam, cam) / slp.name)
    return dst


@pytest.fixture
def minimal(shared):
    return shared("external", "sleap-anipose", "minimal_session")


def test_missing_videos_keypoints_load_with_blank_frames(minimal, tmp_path):
    sess = copy_small(minimal, tmp_path / "s1")
    with pytest.warns(VideoMissingWarning) as record:
        s = load_session(sess)
    messages = [str(w.message) for w in record]
    assert len(messages) == 4
    assert any("minimal_back.mp4" in m and "'back'" in m for m in messages)
    ref = load_session(minimal)
    np.testing.assert_array_equal(s.keypoints_2d(), ref.keypoints_2d())
    np.testing.assert_array_equal(s.points3d, ref.points3d)
    for v in s.views.values():
        assert not v.video.exists and "not found" in v.video.missing_reason
        # frame count from the labels (0..119), size from the calibration, 3 channels from the .slp metadata
        assert v.video.shape == (120, 1024, 1280, 3)
        img = v.video[17]
        assert img.shape == (1024, 1280, 3) and img.dtype == np.uint8 and not img.any()


def test_camera_name_mismatch_lists_both_sides(minimal, tmp_path):
    sess = copy_small(minimal, tmp_path / "s1", rename={"back": "cam_back", "top": "Camera4"})
    with pytest.raises(ValueError) as err:
        load_session(sess)
    msg = str(err.value)
    for name in ["back", "mid", "side", "top", "cam_back", "Camera4"]:
        assert repr(name) in msg
    assert "camera_map" in msg


def test_explicit_camera_map(minimal, tmp_path):
    sess = copy_small(minimal, tmp_path / "s1", rename={"back": "cam_back", "top": "Camera4"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VideoMissingWarning)
        s = load_session(sess, camera_map={"back": "cam_back", "top": "Camera4"})
        ref = load_session(minimal)
    assert s.camera_names == CAMS
    np.testing.assert_array_equal(s.views["top"].keypoints, ref.views["top"].keypoints)
    assert s.views["back"].source_path.parent.name == "cam_back"
    with pytest.raises(KeyError, match="not in the calibration"):
        load_session(sess, camera_map={"front": "cam_back"})


def test_session_toml_units_and_camera_map(minimal, tmp_path):
    sess = copy_small(minimal, tmp_path / "s1", rename={"side": "SIDE"})
    (sess / "session.toml").write_text('units = "mm"\n[camera_map]\nside = "SIDE"\n')
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VideoMissingWarning)
        s = load_session(sess)
        assert s.units == "mm" and s.rig.units == "mm"
        assert load_session(sess, units="cm").units == "cm"  # the argument wins


def test_case_insensitive_folder_match(minimal, tmp_path):
    sess = copy_small(minimal, tmp_path / "s1", rename={"mid": "MID"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VideoMissingWarning)
        s = load_session(sess)
    assert s.views["mid"].source_path.parent.name == "MID"


def test_sessions_directory_with_tables(minimal, tmp_path):
    root = tmp_path / "sessions"
    copy_small(minimal, root / "a1")
    copy_small(minimal, root / "a10", points3d=False)
    (root / "notes").mkdir()
    (root / ".hidden").mkdir()
    (root / "joint_lookup.csv").write_text("model,data\nNose,Nose\nskull,Head\nTail_00, TTI \npaw_L,\n")
    (root / "shape_betas.csv").write_text("label,PC1,PC2,PC3\na10,1.0,2.0,3.0\na1,-1.0,-2.0,-3.0\na,9,9,9\n")
    assert [p.name for p in find_sessions(root)] == ["a1", "a10"]
    assert not is_session_path(root / "notes") and not is_session_path(root / "nothing-here")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VideoMissingWarning)
        ss = load_sessions(root, units="mm")
    assert ss.names == ["a1", "a10"]
    assert [s.units for s in ss.sessions] == ["mm", "mm"]
    assert ss.sessions[0].points3d_source == "points3d.h5" and ss.sessions[1].points3d is None
    # exact label match only: a1 must not receive a10's betas (nor those of "a")
    np.testing.assert_array_equal(ss.betas_for("a1"), [-1.0, -2.0, -3.0])
    np.testing.assert_array_equal(ss.betas_for(ss.sessions[1]), [1.0, 2.0, 3.0])
    assert ss.betas_for("a100") is None and ss.betas_for("a10x") is None
    assert ss.shape_betas.get("a1", n_betas=5).tolist() == [-1.0, -2.0, -3.0, 0.0, 0.0]
    assert ss.joint_map.model_to_data == {"Nose": "Nose", "skull": "Head", "Tail_00": "TTI"}
    assert ss.camera_names() == sorted(CAMS)


def test_empty_sessions_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="no sessions found"):
        load_sessions(tmp_path)
    with pytest.raises(FileNotFoundError, match="not a session"):
        load_session(tmp_path)


def _write_anipose_csv(path: Path, points: np.ndarray, nodes: list[str], M: np.ndarray, center: np.ndarray):
    """Write ``points (F, N, 3)`` (calibration frame) re-oriented the way Anipose does: p @ M.T - center."""
    reoriented = points @ M.T - center
    cols = {}
    for j, n in enumerate(nodes):
        for k, ax in enumerate("xyz"):
            cols[f"{n}_{ax}"] = reoriented[:, j, k]
        cols[f"{n}_error"] = np.full(len(points), 1.5)
        cols[f"{n}_ncams"] = np.full(len(points), 3.0)
        cols[f"{n}_score"] = np.full(len(points), 0.9)
    for i in range(3):
        for k in range(3):
            cols[f"M_{i}{k}"] = np.full(len(points), M[i, k])
    for i in range(3):
        cols[f"center_{i}"] = np.full(len(points), center[i])
    cols["fnum"] = np.arange(len(points))
    pd.DataFrame(cols).to_csv(path, index=False)


def test_anipose_pose3d_csv_reorientation_undone(minimal, tmp_path):
    sess = copy_small(minimal, tmp_path / "s1", points3d=False)
    truth = read_points3d_h5(minimal / "points3d.h5").points[:, 0]  # (120, 15, 3) mm
    truth[5, 2] = np.nan  # a dropped point stays dropped
    M = rodrigues_to_matrix(np.array([0.3, -1.1, 0.7]))
    center = np.array([12.0, -40.0, 250.0])
    nodes = load_session(minimal).skeleton.nodes
    (sess / "pose-3d").mkdir()
    _write_anipose_csv(sess / "pose-3d" / "trial1.csv", truth, nodes, M, center)

    csv = read_pose3d_csv(sess / "pose-3d" / "trial1.csv")
    assert csv.bodyparts == nodes
    np.testing.assert_allclose(csv.M, M, atol=1e-12)
    np.testing.assert_allclose(csv.points, truth, atol=1e-9)
    assert np.isnan(csv.points[5, 2]).all()
    assert csv.error.shape == (120, 15) and csv.ncams[0, 0] == 3.0

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VideoMissingWarning)
        s = load_session(sess)
    assert s.points3d_source == "anipose csv"
    np.testing.assert_allclose(s.points3d[:, 0], truth, atol=1e-9)
    # the wrong direction (applying M instead of undoing it) would be far off: make sure the test can fail
    assert np.nanmax(np.abs((truth @ M.T - center) - truth)) > 50


def test_pose3d_csv_bad_rotation(tmp_path):
    p = tmp_path / "bad.csv"
    pts = np.zeros((2, 1, 3))
    _write_anipose_csv(p, pts, ["nose"], np.diag([2.0, 1.0, 1.0]), np.zeros(3))
    with pytest.raises(ValueError, match="not a rotation"):
        read_pose3d_csv(p)


def test_labels_file_ambiguity(minimal, tmp_path):
    sess = copy_small(minimal, tmp_path / "s1")
    shutil.copy(sess / "back" / "minimal_back_proofread.slp", sess / "back" / "other.slp")
    with pytest.warns(VideoMissingWarning):  # "proofread" in the name breaks the tie
        load_session(sess)
    shutil.copy(sess / "back" / "minimal_back_proofread.slp", sess / "back" / "b_proofread.slp")
    with pytest.raises(ValueError, match="several label files"):
        load_session(sess)


def test_analysis_h5_camera_folders(minimal, tmp_path):
    """Camera folders holding only SLEAP analysis .h5 files load like the .slp files."""
    sess = tmp_path / "s1"
    sess.mkdir()
    shutil.copy(minimal / "calibration.toml", sess)
    for cam in CAMS:
        (sess / cam).mkdir()
        shutil.copy(minimal / cam / f"minimal_{cam}_proofread.analysis.h5", sess / cam)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VideoMissingWarning)
        s = load_session(sess)
    ref = load_session(minimal)
    assert s.n_frames == 120 and s.points3d is None
    np.testing.assert_allclose(s.keypoints_2d(), ref.keypoints_2d())


def test_identity_rules_untracked_and_user_preference():
    import sleap_io as sio

    from napari_smil_mv.sessions.sleap_files import assemble_views, basename_of, collect_view

    skel = sio.Skeleton(["a", "b"])
    video = sio.Video(filename="cam.mp4")
    track = sio.Track("mouse")
    pred = sio.PredictedInstance.from_numpy(np.array([[1.0, 2.0], [3.0, 4.0]]), skel, point_scores=[0.5, 2.5],
                                            score=3.0, track=track)  # fmt: skip
    user = sio.Instance.from_numpy(
        np.array([[1.5, 2.5], [np.nan, np.nan]]), skel, track=track, from_predicted=pred
    )
    u0 = sio.PredictedInstance.from_numpy(np.array([[10.0, 20.0], [30.0, 40.0]]), skel, score=1.0)
    u1 = sio.PredictedInstance.from_numpy(np.array([[50.0, 60.0], [70.0, 80.0]]), skel, score=2.0)
    labels = sio.Labels([
        sio.LabeledFrame(video, 4, [pred, user]),
        sio.LabeledFrame(video, 9, [u0, u1]),
    ])  # fmt: skip
    with pytest.warns(UserWarning, match="NOT linked"):
        rec = collect_view(labels, None, ["b", "a"], source=Path("x.slp"))
    frames, animals, arrays = assemble_views({"cam": rec}, 2)
    assert list(frames) == [4, 9] and animals == ["mouse", "animal_0", "animal_1"]
    kp = arrays["cam"]["keypoints"]
    # frame 4: the user instance wins over its prediction; node order follows the requested ["b", "a"]
    np.testing.assert_array_equal(kp[0, 0], [[np.nan, np.nan], [1.5, 2.5]])
    assert arrays["cam"]["is_user"][0, 0] and np.isnan(arrays["cam"]["scores"][0, 0]).all()
    # frame 9: untracked predictions numbered by score (highest first)
    np.testing.assert_array_equal(kp[1, 1], [[70.0, 80.0], [50.0, 60.0]])
    np.testing.assert_array_equal(kp[1, 2], [[30.0, 40.0], [10.0, 20.0]])
    assert basename_of("D:\\data\\cam\\video 1.mp4") == "video 1.mp4" and basename_of("/a/b.avi") == "b.avi"
