"""Atomic output files: write to a temporary sibling, then rename over the target.

A crash or a cancelled job never leaves a half-written file under the final name, and an existing file is
only replaced when the caller allows it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def check_can_write(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Return ``path`` as a Path, refusing to replace an existing file unless ``overwrite``.

    Raises
    ------
    FileExistsError
        If the file exists and ``overwrite`` is False; the message names the file and the flag to use.
    IsADirectoryError
        If ``path`` is an existing folder (an output file cannot replace it, with or without ``overwrite``).
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give the output a file name (e.g. {path / 'out'}...)")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; choose another output path or pass --overwrite.")
    return path


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed to ``path``.

    Parameters
    ----------
    path
        Final output file. Its parent directory is created when missing.
    overwrite
        Whether an existing ``path`` may be replaced.

    Yields
    ------
    Path
        Temporary file in the same directory (same file system, so the rename is atomic). It keeps the final
        suffix so libraries that infer the format from the name (``.npz``, ``.png``, ``.h5``) still work.
    """
    path = check_can_write(path, overwrite=overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{path.stem}.", suffix=".tmp" + "".join(path.suffixes), dir=path.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if tmp.exists():
            # mkstemp creates 0600 files; give the output the permissions a normal open() would.
            os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


class DiskFullError(OSError):
    """Not enough free space for an output; the message names the file, the sizes and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.ENOSPC, message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def check_free_space(path: str | os.PathLike, needed_bytes: int, what: str = "") -> None:
    """Raise :class:`DiskFullError` when the file system of ``path`` has less than ``needed_bytes`` free.

    ``path`` is a file or folder to be written (its nearest existing parent is measured).
    """
    folder = Path(path) if Path(path).is_dir() else Path(path).parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if free < needed_bytes:
        raise DiskFullError(
            f"not enough free space to write {what or path}: about {_mb(needed_bytes)} needed, {_mb(free)} free "
            f"on {folder}; free some space (or choose another output folder) and run again"
        )


def _mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def check_writable_folder(path: str | os.PathLike) -> Path:
    """Check, before any long work, that the output file ``path`` can be created: its nearest existing parent
    folder accepts a new file. Returns that folder.

    Raises
    ------
    NotADirectoryError, PermissionError
        The message names the folder and what to do.
    """
    folder = Path(path).parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise NotADirectoryError(f"cannot write {path}: {folder} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=folder)
    except OSError as exc:
        raise PermissionError(
            f"cannot write into {folder} ({exc.strerror or exc}); choose an output folder you can write to"
        ) from None
    os.close(fd)
    os.unlink(probe)
    return folder


def write_bytes_atomic(path: str | os.PathLike, data: bytes, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically; a full disk raises :class:`DiskFullError` and leaves nothing."""
    path = check_can_write(path, overwrite=overwrite)
    check_free_space(path, len(data) + (1 << 20), str(path))
    try:
        with atomic_path(path, overwrite=overwrite) as tmp:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
    except OSError as exc:
        if exc.errno == errno.ENOSPC and not isinstance(exc, DiskFullError):
            raise DiskFullError(
                f"the disk became full while writing {path} ({_mb(len(data))}); nothing was written. Free some "
                "space and run again"
            ) from exc
        raise
    return path


@contextlib.contextmanager
def h5_file_atomic(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Any]:
    """An HDF5 file built in memory and written to ``path`` atomically when the block ends without error.

    HDF5 itself never writes to the disk, so a full disk gives :class:`DiskFullError` (from
    :func:`write_bytes_atomic`) instead of a crash inside the HDF5 library, and never a half-written file.
    """
    import io

    import h5py

    path = check_can_write(path, overwrite=overwrite)
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        yield f
    write_bytes_atomic(path, buffer.getvalue(), overwrite=overwrite)
