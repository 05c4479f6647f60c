"""``infer --session`` never drops a camera's video silently nor predicts from black crops: a missing or
undecodable video is an error naming the camera and file unless that camera is excluded."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from _training_fixtures import synthetic_session, trained_checkpoint
from napari_smil_mv.cli import main
from napari_smil_mv.inference import infer_session_iter


def moved_copy(tmp_path: Path) -> Path:
    """The network's training session written anew and moved, so its .slp files' absolute video paths lead
    nowhere (a plain copy would fall back to the original's videos)."""
    from napari_smil_mv.sessions.synthetic import write_synthetic_session

    name = synthetic_session().name
    written = write_synthetic_session(
        tmp_path / "w" / name, n_cameras=3, n_frames=8, seed=0, noise_px=0.0, image_size=(160, 120)
    )
    return Path(shutil.move(written, tmp_path / name))


def run_cli(argv, capsys) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_infer_session_names_a_camera_without_a_readable_video(damage, tmp_path, capsys):
    s_dir = moved_copy(tmp_path)
    video = s_dir / "cam2" / "cam2.mp4"
    if damage == "missing":
        video.unlink()
    else:
        video.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    ckpt = trained_checkpoint()
    with pytest.raises(ValueError, match="'cam2'.*--exclude-cameras cam2"):
        list(infer_session_iter(ckpt, s_dir))
    out = tmp_path / "r.smilmv.h5"
    rc, _, err = run_cli(["infer", "--checkpoint", ckpt, "--session", s_dir, "-o", out, "--quiet"], capsys)
    assert rc == 2 and not out.exists()
    [line] = [x for x in err.splitlines() if "error:" in x]
    assert "'cam2'" in line and "cam2.mp4" in line
    argv = [
        "infer",
        "--checkpoint",
        ckpt,
        "--session",
        s_dir,
        "-o",
        out,
        "--quiet",
        "--exclude-cameras",
        "cam2",
    ]
    rc, stdout, err = run_cli(argv, capsys)
    assert rc == 0, err
    assert out.exists() and "cameras ['cam1', 'cam3']" in stdout
