"""Outputs under adverse conditions: a full disk, a read-only folder, a folder given as the output file, existing
export files, wrongly typed config values and truncated datasets give one clear line (exit 2, or 1 for a full
disk), never a traceback or a crash, and never a half-written file under the final name."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import shutil
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest

from napari_smil_mv.cli import main
from napari_smil_mv.utils import atomic
from napari_smil_mv.utils.atomic import DiskFullError, write_bytes_atomic

_Usage = namedtuple("_Usage", "total used free")


def _one_line_error(capsys, *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    lines = [ln for ln in err.splitlines() if "error:" in ln]
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def _free(monkeypatch, free_bytes: int) -> None:
    monkeypatch.setattr(atomic.shutil, "disk_usage", lambda p: _Usage(1 << 40, 0, free_bytes))


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ------------------------------------------------------------------------------------------- full disk: preprocess
@pytest.fixture
def preprocess_args(synthetic_session):
    """``preprocess_args(out) -> argv`` of a 64 px preprocess of the synthetic session into ``out``."""
    return lambda out: ["preprocess", str(synthetic_session()), "-o", str(out), "--size", "64", "--quiet"]


def test_preprocess_full_disk_before_a_chunk_is_resumable(
    tmp_path, monkeypatch, capsys, preprocess_args, synthetic_dataset
):
    out = tmp_path / "ds.h5"
    _free(monkeypatch, (8 << 20) + 1000)  # enough to start (8 MiB headroom), not for a chunk as well
    assert main(preprocess_args(out)) == 1
    _one_line_error(capsys, "not enough free space", "ds.h5.partial", "resumes")
    assert _files(tmp_path) == ["ds.h5.partial", "ds.h5.partial.journal"]  # nothing looks complete
    monkeypatch.undo()
    assert main(preprocess_args(out)) == 0
    assert "resuming ds.h5.partial" in capsys.readouterr().err and _files(tmp_path) == ["ds.h5"]
    from napari_smil_mv.dataset.schema import read_dataset_info

    assert read_dataset_info(out).n_samples == read_dataset_info(synthetic_dataset(size=64)).n_samples


def test_preprocess_write_error_mid_run_keeps_the_journalled_chunks(
    tmp_path, monkeypatch, capsys, preprocess_args
):
    """The disk fills while HDF5 writes a chunk (simulated: the write raises ENOSPC): one line, the journal
    still ends at the last complete chunk, and the next run resumes from there and finishes."""
    from napari_smil_mv.dataset import writer

    calls = {"n": 0}
    real = writer._write_vlen

    def failing(ds, start, blobs):
        calls["n"] += 1
        if calls["n"] > writer_views:  # the second chunk fails
            raise OSError(errno.ENOSPC, "No space left on device")
        real(ds, start, blobs)

    writer_views = 3  # one call per view slot and chunk
    monkeypatch.setattr(writer, "_write_vlen", failing)
    from napari_smil_mv.dataset.plan import PreprocessOptions

    real_validate = PreprocessOptions.validate
    monkeypatch.setattr(  # 8 samples: two chunks of 4 (chunk_size is not part of the resume fingerprint)
        PreprocessOptions, "validate", lambda self: dataclasses.replace(real_validate(self), chunk_size=4)
    )
    out = tmp_path / "ds.h5"
    args = preprocess_args(out)
    assert main(args) == 1
    _one_line_error(capsys, "writing samples 4..7", "ds.h5.partial", "resumes")
    journal = (tmp_path / "ds.h5.partial.journal").read_text().splitlines()
    assert json.loads(journal[-1])["n"] == 4 and not out.exists()
    monkeypatch.setattr(writer, "_write_vlen", real)
    assert main(args) == 0
    assert "resuming ds.h5.partial: 4 samples done" in capsys.readouterr().err
    from napari_smil_mv.dataset.torch_dataset import MultiViewDataset

    ds = MultiViewDataset(out)
    assert len(ds) == 8 and all(ds[i][0]["images"][0].max() > 0 for i in (0, 7))


# ------------------------------------------------------------------------------------------- full disk: results
def test_results_file_on_a_full_disk_leaves_nothing(tmp_path, monkeypatch):
    from napari_smil_mv.sessions.anipose_files import write_points3d_h5

    _free(monkeypatch, 10_000)
    with pytest.raises(DiskFullError, match="not enough free space.*p3d.h5"):
        write_points3d_h5(tmp_path / "p3d.h5", np.zeros((4, 1, 3, 3)))
    monkeypatch.undo()
    real_fsync = os.fsync

    def full_fsync(fd):  # the disk fills while the bytes are written
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full_fsync)
    with pytest.raises(DiskFullError, match="became full while writing .*x.bin"):
        write_bytes_atomic(tmp_path / "x.bin", b"123")
    monkeypatch.setattr(atomic.os, "fsync", real_fsync)
    assert _files(tmp_path) == []  # no temporary or half-written file


@pytest.fixture
def fit_args(synthetic_session):
    """``fit_args(out, *extra) -> argv`` of a one-iteration fit of the synthetic session into ``out``."""
    return lambda out, *extra: [
        "fit",
        str(synthetic_session()),
        "-o",
        str(out),
        "--iterations",
        "1",
        "--quiet",
        *extra,
    ]


def test_fit_full_disk_refused_before_fitting(tmp_path, monkeypatch, capsys, fit_args):
    import napari_smil_mv.fitting as fitting

    monkeypatch.setattr(fitting, "fit_iter", lambda *a, **k: pytest.fail("the fit ran"))
    _free(monkeypatch, 100_000)
    assert main(fit_args(tmp_path / "r.smilmv.h5")) == 1
    _one_line_error(capsys, "not enough free space", "r.smilmv.h5")
    assert _files(tmp_path) == []


# ------------------------------------------------------------------------------------------- real tmpfs (root)
@pytest.fixture()
def full_tmpfs(tmp_path):
    """A 2 MB tmpfs filled to about 60 kB free (needs root and mount; skipped otherwise)."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("needs root to mount a small tmpfs")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2M", "tmpfs", str(mnt)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {proc.stderr.decode().strip()}")
    try:
        free = shutil.disk_usage(mnt).free
        (mnt / "filler").write_bytes(b"\0" * (free - 60_000))
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    return subprocess.run(
        [sys.executable, "-m", "napari_smil_mv.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def test_real_full_disk_preprocess_and_fit(full_tmpfs, preprocess_args, fit_args):
    """On a really full file system (before: rc 139, a segfault inside HDF5) both commands end with one line."""
    proc = _cli(*preprocess_args(full_tmpfs / "ds.h5"))
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "not enough free space" in proc.stderr and "Traceback" not in proc.stderr
    proc = _cli(*fit_args(full_tmpfs / "r.smilmv.h5"))
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "not enough free space" in proc.stderr and "Traceback" not in proc.stderr
    assert not (full_tmpfs / "ds.h5").exists() and not (full_tmpfs / "r.smilmv.h5").exists()
    assert not [p for p in full_tmpfs.iterdir() if ".tmp" in p.name]


# ------------------------------------------------------------------------------------------- other output errors
def test_fit_read_only_output_folder_refused_before_fitting(
    tmp_path, monkeypatch, capsys, preprocess_args, fit_args
):
    import napari_smil_mv.fitting as fitting

    monkeypatch.setattr(fitting, "fit_iter", lambda *a, **k: pytest.fail("the fit ran"))
    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() == 0:  # root writes anywhere: make the probe meet what a read-only folder answers

        def refuse(*args, **kwargs):
            raise PermissionError(errno.EROFS, "Read-only file system")

        monkeypatch.setattr(atomic.tempfile, "mkstemp", refuse)
    else:
        ro.chmod(0o555)
    try:
        assert main(fit_args(ro / "r.smilmv.h5")) == 2
        _one_line_error(capsys, f"cannot write into {ro}", "choose an output folder")
        assert main(preprocess_args(ro / "ds.h5")) == 2
        _one_line_error(capsys, f"cannot write into {ro}", "choose an output folder")
    finally:
        ro.chmod(0o755)


def test_output_that_is_a_folder(tmp_path, capsys, preprocess_args, fit_args):
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    assert main(fit_args(folder, "--overwrite")) == 2
    _one_line_error(capsys, f"{folder} is a folder")
    assert main([*preprocess_args(folder), "--overwrite"]) == 2
    _one_line_error(capsys, f"{folder} is a folder")
    assert _files(folder) == ["keep.txt"]


def test_wrongly_typed_fit_config(tmp_path, capsys, fit_args):
    for value, key, expected in (
        ({"report_every": "5"}, "FitConfig.report_every", "an integer"),
        ({"stages": [{"iterations": 2.5}]}, "FitConfig.stages[0].iterations", "an integer"),
        ({"use_points3d": "yes"}, "FitConfig.use_points3d", "true/false"),
        ({"weights": {"reproj": "1"}}, "FitConfig.weights", "an object of numbers"),
        ([1, 2], "FitConfig", "an object (dict)"),
    ):
        cfg = tmp_path / "cfg.json"
        cfg.write_text(json.dumps(value))
        assert main(fit_args(tmp_path / "r.smilmv.h5", "--config", str(cfg))) == 2
        _one_line_error(capsys, str(cfg), key, expected)


def _truncated_dataset(src: Path, tmp_path: Path) -> Path:
    out = tmp_path / "cut.smilmv-dataset.h5"
    out.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    return out


def test_truncated_dataset_to_train_and_infer(tmp_path, capsys, synthetic_dataset):
    cut = _truncated_dataset(synthetic_dataset(), tmp_path)
    assert main(["train", "--dataset", str(cut), "--output-dir", str(tmp_path / "run")]) == 2
    _one_line_error(capsys, str(cut), "truncated or damaged")
    ckpt = tmp_path / "last.pt"
    ckpt.write_bytes(b"not loaded: the dataset is checked first")
    assert main(["infer", "--checkpoint", str(ckpt), "--dataset", str(cut), "-o", str(tmp_path / "r")]) == 2
    _one_line_error(capsys, str(cut), "truncated or damaged")
    assert not (tmp_path / "run").exists()


def test_existing_export_file_refused_before_predicting(tmp_path, capsys, synthetic_dataset):
    ckpt = tmp_path / "last.pt"
    ckpt.write_bytes(b"never loaded")
    args = [
        "infer",
        "--checkpoint",
        str(ckpt),
        "--dataset",
        str(synthetic_dataset()),
        "-o",
        str(tmp_path / "r"),
    ]
    for flag, name in (
        ("--export-csv", "joints.csv"),
        ("--export-animation", "a.npz"),
        ("--export-meshes", "m.npz"),
    ):
        existing = tmp_path / name
        existing.write_text("mine")
        assert main([*args, flag, str(existing)]) == 2
        _one_line_error(capsys, f"{existing} already exists", "--overwrite")
        assert existing.read_text() == "mine"
