"""Atomic output files: write to a temporary sibling, then rename over the target.

A crash or a cancelled job never leaves a half-written file under the final name, and an existing file is
only replaced when the caller allows it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def check_can_write(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Return ``path`` as a Path, refusing to replace an existing file unless ``overwrite``.

    Raises
    ------
    FileExistsError
        If the file exists and ``overwrite`` is False; the message names the file and the flag to use.
    """
    path = Path(path)
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
