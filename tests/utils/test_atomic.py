"""Atomic output files: rename on success, nothing left behind on failure, no silent overwrite."""

import os
import stat

import pytest

from napari_smil_mv.utils.atomic import atomic_path


def test_success_renames_with_normal_permissions(tmp_path):
    target = tmp_path / "sub" / "out.npz"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.endswith(".npz")
        tmp.write_bytes(b"data")
    assert target.read_bytes() == b"data"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask
    assert list(target.parent.iterdir()) == [target]


def test_failure_leaves_no_file(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("partial")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_overwrite_unless_asked(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("user data")
    with pytest.raises(FileExistsError, match="--overwrite"), atomic_path(target, overwrite=False):
        pass
    assert target.read_text() == "user data"
    with atomic_path(target, overwrite=True) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"
