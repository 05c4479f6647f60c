"""What every npe2 reader does first: turn napari's ``path`` argument into one file path."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def single_path(path: Any) -> Path | None:
    """The one path napari passed (a str/Path, or a one-element list), else None."""
    if isinstance(path, (list, tuple)):
        if len(path) != 1:
            return None
        path = path[0]
    if not isinstance(path, (str, Path)):
        return None
    return Path(path)
