"""Broken inputs are named, never silently used: corrupt, missing, short or borrowed videos; bad joint maps;
nothing left to fit. Each test builds a small broken copy of a synthetic session in tmp_path."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest

from napari_smil_mv.cli import main
from napari_smil_mv.sessions import VideoPathWarning, load_session
from napari_smil_mv.sessions.video_checks import check_session_videos


def write_session(path: Path) -> Path:
    """A 3-camera, 6-frame, 160x120 synthetic session at ``path``."""
    from napari_smil_mv.sessions.synthetic import write_synthetic_session

    return write_synthetic_session(path, n_cameras=3, n_frames=6, image_size=(160, 120), noise_px=1.0)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    """A small synthetic session (read-only: tests copy it). It was moved after writing, so the absolute video
    paths in its .slp files lead nowhere and a copy with a missing video really has none."""
    root = tmp_path_factory.mktemp("pristine")
    written = write_session(root / "written" / "s1")
    return Path(shutil.move(written, root / "s1"))


def copy_session(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def corrupt(video: Path) -> None:
    """Replace a video by bytes that are no video."""
    video.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())


def shorten(video: Path, n: int) -> None:
    """Rewrite ``video`` with only its first ``n`` frames."""
    import cv2

    cap = cv2.VideoCapture(str(video))
    frames = [cap.read()[1] for _ in range(n)]
    cap.release()
    h, w = frames[0].shape[:2]
    tmp = video.with_name("short.mp4")
    out = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (w, h))
    for f in frames:
        out.write(f)
    out.release()
    tmp.replace(video)


def run_cli(argv, capsys) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if "error:" in line]


# ------------------------------------------------------------------------------------------------ videos
def test_copied_session_reads_its_own_videos(tmp_path):
    pristine = write_session(tmp_path / "original" / "s1")  # its .slp files name its videos by absolute path
    copy = copy_session(pristine, tmp_path / "copy")
    with warnings.catch_warnings():
        warnings.simplefilter("error", VideoPathWarning)
        s = load_session(copy)
    for v in s.views.values():  # the .slp files store the original's absolute paths; the copy's own are read
        assert v.video.path.parent.parent == copy
    (copy / "cam1" / "cam1.mp4").unlink()
    with pytest.warns(VideoPathWarning) as record:
        s = load_session(copy)
    msg = str(record[0].message)
    assert "'cam1'" in msg and str(pristine / "cam1" / "cam1.mp4") in msg and "copied" in msg
    assert s.views["cam1"].video.path == pristine / "cam1" / "cam1.mp4"  # falls back, with the warning


def test_check_session_videos_names_each_problem(pristine, tmp_path):
    s_dir = copy_session(pristine, tmp_path / "s1")
    corrupt(s_dir / "cam1" / "cam1.mp4")
    (s_dir / "cam2" / "cam2.mp4").unlink()
    shorten(s_dir / "cam3" / "cam3.mp4", 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = load_session(s_dir)
    problems = {p.camera: p for p in check_session_videos(s)}
    assert problems["cam1"].kind == "unreadable" and "cam1.mp4" in problems["cam1"].message
    assert problems["cam2"].kind == "missing" and "cam2.mp4" in problems["cam2"].message
    assert problems["cam3"].kind == "short"
    assert (problems["cam3"].video_frames, problems["cam3"].label_frames) == (3, 6)
    assert check_session_videos(load_session(pristine)) == []


def test_preprocess_corrupt_video_is_an_error_naming_the_file(pristine, tmp_path, capsys):
    s_dir = copy_session(pristine, tmp_path / "s1")
    corrupt(s_dir / "cam2" / "cam2.mp4")
    out = tmp_path / "d.h5"
    rc, _, err = run_cli(["preprocess", s_dir, "-o", out, "--size", 64, "--quiet"], capsys)
    assert rc == 2
    [line] = error_lines(err)
    assert (
        "'cam2'" in line and str(s_dir / "cam2" / "cam2.mp4") in line and "--skip-unreadable-videos" in line
    )
    assert not out.exists() and not list(tmp_path.glob("d.h5*"))


def test_preprocess_skips_a_corrupt_camera_only_when_asked_and_records_it(pristine, tmp_path, capsys):
    s_dir = copy_session(pristine, tmp_path / "s1")
    corrupt(s_dir / "cam2" / "cam2.mp4")
    out = tmp_path / "d.h5"
    argv = ["preprocess", s_dir, "-o", out, "--size", 64, "--quiet", "--skip-unreadable-videos"]
    rc, stdout, err = run_cli(argv, capsys)
    assert rc == 0, err
    assert "warning:" in err and "'cam2'" in err and "skipped" in err
    with h5py.File(out, "r") as f:
        recorded = json.loads(f["metadata"].attrs["warnings"])
        cams = {c for v in f["auxiliary/camera_names"][:] for c in v.decode().split(",")}
    assert len(recorded) == 1 and "'cam2'" in recorded[0] and "cam2.mp4" in recorded[0]
    assert cams == {"cam1", "cam3"}  # no all-black cam2 views
    # excluding the camera is the other way out
    rc, _, err = run_cli(["preprocess", s_dir, "-o", tmp_path / "e.h5", "--size", 64, "--quiet",
                          "--exclude-cameras", "cam2"], capsys)  # fmt: skip
    assert rc == 0, err


def test_preprocess_warns_about_a_video_shorter_than_its_labels(pristine, tmp_path, capsys):
    s_dir = copy_session(pristine, tmp_path / "s1")
    shorten(s_dir / "cam3" / "cam3.mp4", 3)
    out = tmp_path / "d.h5"
    rc, stdout, err = run_cli(["preprocess", s_dir, "-o", out, "--size", 64, "--quiet"], capsys)
    assert rc == 0, err
    [line] = [x for x in err.splitlines() if x.startswith("warning:") and "'cam3'" in x]
    assert "has 3 frames" in line and "frame 5 (6 frames)" in line
    with h5py.File(out, "r") as f:
        assert any("'cam3'" in w for w in json.loads(f["metadata"].attrs["warnings"]))


def test_preprocess_records_a_missing_video_in_the_dataset(pristine, tmp_path, capsys):
    s_dir = copy_session(pristine, tmp_path / "s1")
    (s_dir / "cam1" / "cam1.mp4").unlink()
    out = tmp_path / "d.h5"
    rc, _, err = run_cli(["preprocess", s_dir, "-o", out, "--size", 64, "--quiet"], capsys)
    assert rc == 0, err
    assert "warning:" in err and "'cam1'" in err and "not found" in err
    with h5py.File(out, "r") as f:
        [recorded] = json.loads(f["metadata"].attrs["warnings"])
        cams = {c for v in f["auxiliary/camera_names"][:] for c in v.decode().split(",")}
    assert "'cam1'" in recorded and "not found" in recorded and cams == {"cam2", "cam3"}


def test_preprocess_rejects_a_joint_map_with_unknown_names_like_fit(pristine, tmp_path, capsys):
    jm = tmp_path / "map.csv"
    jm.write_text("model,data\nhead,head\nthorax,no_such_node\nno_such_joint,petiole\n")
    rc, _, err = run_cli(
        ["preprocess", pristine, "-o", tmp_path / "d.h5", "--joint-map", jm, "--quiet"], capsys
    )
    assert rc == 2
    [pre] = error_lines(err)
    assert "no_such_node" in pre and "no_such_joint" in pre and not (tmp_path / "d.h5").exists()
    rc, _, err = run_cli(
        ["fit", pristine, "-o", tmp_path / "f.smilmv.h5", "--joint-map", jm, "--quiet"], capsys
    )
    assert rc == 2
    [fit] = error_lines(err)
    # the same check and wording (preprocess also names the file)
    assert pre.split("does not fit", 1)[1] == fit.split("does not fit", 1)[1]


# ------------------------------------------------------------------------------------------------ fit
def _nan_labels(session: Path) -> None:
    import sleap_io as sio

    for path in session.glob("*/*.slp"):
        labels = sio.load_slp(str(path), open_videos=False)
        for lf in labels.labeled_frames:
            for inst in lf.instances:
                inst.points["xy"][:] = np.nan
                inst.points["visible"][:] = False
        sio.save_slp(labels, str(path))


def test_fit_with_every_camera_excluded_is_an_error_and_writes_nothing(pristine, tmp_path, capsys):
    out = tmp_path / "f.smilmv.h5"
    argv = ["fit", pristine, "-o", out, "--exclude-cameras", "cam1,cam2,cam3", "--quiet"]
    rc, _, err = run_cli(argv, capsys)
    assert rc == 2
    [line] = error_lines(err)
    assert "every camera" in line and "'cam1'" in line and not out.exists()


def test_fit_with_all_nan_keypoints_is_an_error_and_writes_nothing(pristine, tmp_path, capsys):
    s_dir = copy_session(pristine, tmp_path / "s1")  # keeps points3d.h5: the fit could run on 3D alone
    _nan_labels(s_dir)
    out = tmp_path / "f.smilmv.h5"
    rc, _, err = run_cli(["fit", s_dir, "-o", out, "--quiet"], capsys)
    assert rc == 2
    [line] = error_lines(err)
    assert "no 2D keypoint" in line and "'s1'" in line and not out.exists()
