"""Argument helpers shared by several commands; bad values raise :class:`~napari_smil_mv.cli.CommandError`."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from napari_smil_mv.cli import CommandError

if TYPE_CHECKING:
    import numpy as np


def add_exclude_cameras(parser: argparse.ArgumentParser, what: str, none_if_absent: bool = False) -> None:
    """Add ``--exclude-cameras NAME [NAME ...]`` (names may also be comma-separated) to ``parser``.

    Its value is ``[]`` when the option is not given, or None with ``none_if_absent`` (to tell "not given" from
    an explicit list)."""
    parser.add_argument(
        "--exclude-cameras",
        nargs="+",
        action="extend",
        default=None if none_if_absent else [],
        metavar="CAMERA",
        help=f"{what}; names separated by spaces or commas (give it after the positional arguments)",
    )


def camera_names(values: list[str] | None) -> tuple[str, ...]:
    """Camera names from ``--exclude-cameras`` values (``["a,b", "c"]`` -> ``("a", "b", "c")``)."""
    names = [n.strip() for v in values or [] for n in v.split(",")]
    return tuple(dict.fromkeys(n for n in names if n))


def parse_frames(text: str | None, frame_indices: Any) -> np.ndarray | None:
    """Rows of ``frame_indices`` selected by ``"A:B"`` (video frame numbers, ``A <= f < B``), or None for all."""
    import numpy as np

    if text is None:
        return None
    if text.count(":") != 1:
        raise CommandError(f"--frames expects A:B (e.g. 0:100), got {text!r}")
    a, b = (s.strip() for s in text.split(":"))
    try:
        lo = int(a) if a else None
        hi = int(b) if b else None
    except ValueError:
        raise CommandError(f"--frames expects integers A:B, got {text!r}") from None
    frames = np.asarray(frame_indices)
    keep = np.ones(len(frames), dtype=bool)
    if lo is not None:
        keep &= frames >= lo
    if hi is not None:
        keep &= frames < hi
    rows = np.flatnonzero(keep)
    if rows.size == 0:
        raise CommandError(
            f"--frames {text} selects none of the session's frames ({int(frames.min())}..{int(frames.max())})"
        )
    return rows


def parse_animal(text: str) -> int | str:
    """``--animal``: an index when the text is an integer, else an animal name."""
    return int(text) if text.lstrip("-").isdigit() else text


def model_arg(text: str) -> str | None:
    """A ``MODEL`` argument: the ``.pkl`` path, or None (the embedded demo model) for ``demo`` unless a file of
    that name exists."""
    return None if text == "demo" and not Path(text).exists() else text


def torch_device(name: str) -> Any:
    """``torch.device(name)``, checked by allocating an empty tensor on it."""
    import torch

    try:
        device = torch.device(name)
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as exc:
        raise CommandError(f"device '{name}' is not available: {exc}") from exc
    return device


def check_output(path: str | Path, overwrite: bool) -> None:
    """Refuse (before any work) to replace an existing output file unless ``overwrite``, to write over a folder,
    or to write into a folder that does not accept new files (read-only)."""
    from napari_smil_mv.utils.atomic import check_can_write, check_writable_folder

    try:
        check_can_write(path, overwrite=overwrite)
        check_writable_folder(path)
    except OSError as exc:
        raise CommandError(str(exc)) from None


@contextmanager
def printed_warnings() -> Iterator[None]:
    """Collect the warnings issued inside and print each distinct one as ``warning: ...`` on stderr at the end
    (also when an error ends the block), instead of Python's ``file:line: Category: ...`` lines."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            for text in dict.fromkeys(str(w.message) for w in caught):
                print(f"warning: {text}", file=sys.stderr)
