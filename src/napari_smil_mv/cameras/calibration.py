"""Read and write Anipose ``calibration.toml`` files.

Format (one table per camera, plus an optional free-form ``[metadata]`` table)::

    [cam_0]
    name = "back"
    size = [1280, 1024]                       # (width, height) px
    matrix = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]
    distortions = [k1, k2, p1, p2, k3]        # 4 coefficients and fisheye = true for cv2.fisheye
    rotation = [rx, ry, rz]                   # Rodrigues, world -> camera
    translation = [tx, ty, tz]                # world -> camera, calibration-board units (usually mm)

Reading: the file is parsed here (``tomllib``) rather than with ``aniposelib.CameraGroup.load``, because
aniposelib sorts the table keys as strings (``cam_10`` before ``cam_2``) and reports a missing key as a bare
``KeyError``. Camera tables are ordered by the number in ``cam_N`` (file order for other table names) and
cameras are identified by their ``name`` field. Writing goes through ``aniposelib.CameraGroup.dump``, so the
output is exactly what Anipose writes, into a temporary file renamed on success.

Units: Anipose stores none. :func:`load_calibration` returns ``units=None`` unless ``units=`` is given or
the ``[metadata]`` table has a ``units`` entry (which :func:`save_calibration` writes when the rig has units).
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

from ..utils.atomic import atomic_path, check_can_write
from .camera import Camera, CameraRig

__all__ = ["load_calibration", "save_calibration", "REQUIRED_CAMERA_KEYS"]

#: Keys every camera table must have (``name`` defaults to the table key, ``fisheye`` to false).
REQUIRED_CAMERA_KEYS = ("size", "matrix", "distortions", "rotation", "translation")

_CAM_KEY = re.compile(r"^cam_(\d+)$")


def load_calibration(path: str | os.PathLike, units: str | None = None) -> CameraRig:
    """Load an Anipose ``calibration.toml`` into a :class:`CameraRig`.

    Parameters
    ----------
    path
        The ``.toml`` file.
    units
        World unit of the calibration (``"mm"`` for the usual board in mm). Anipose files do not store it;
        if given and the file's ``[metadata] units`` says otherwise, a ValueError is raised.

    Returns
    -------
    CameraRig
        Cameras in ``cam_N`` numeric order, named by their ``name`` field; ``metadata`` = the file's
        ``[metadata]`` table.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        The file is not valid TOML, has no camera tables, or a camera table is missing a key or has a bad
        value (the message names the file, the table and the key).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"calibration file not found: {path}" + (" (it is a directory)" if path.is_dir() else "")
        )
    data = _read_toml(path)
    metadata = data.get("metadata", {})
    if not isinstance(metadata, dict):
        raise ValueError(f"{path}: 'metadata' must be a table, got {type(metadata).__name__}.")
    tables = []
    for key, value in data.items():
        if key == "metadata":
            continue
        if not isinstance(value, dict):
            raise ValueError(
                f"{path}: top-level entry {key!r} is not a camera table ([cam_N] with name, size, "
                "matrix, distortions, rotation, translation)."
            )
        tables.append((key, value))
    if not tables:
        raise ValueError(
            f"{path}: no camera tables found (expected [cam_0], [cam_1], ... as Anipose writes)."
        )
    if all(_CAM_KEY.match(k) for k, _ in tables):
        tables.sort(key=lambda kv: int(_CAM_KEY.match(kv[0]).group(1)))

    cameras = []
    for key, table in tables:
        cameras.append(_camera_from_table(path, key, table))
    names = [c.name for c in cameras]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"{path}: camera names must be unique, duplicated: {dupes}.")

    file_units = metadata.get("units")
    if file_units is not None and not isinstance(file_units, str):
        raise ValueError(f"{path}: [metadata] units must be a string such as 'mm', got {file_units!r}.")
    if units is not None and file_units is not None and units != file_units:
        raise ValueError(
            f"{path}: units={units!r} was requested but the file's [metadata] says units = {file_units!r}."
        )
    return CameraRig(cameras, units if units is not None else file_units, dict(metadata))


def save_calibration(rig: CameraRig, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write a rig as an Anipose ``calibration.toml`` (through ``aniposelib.CameraGroup.dump``), atomically.

    Cameras are written as ``[cam_0]``, ``[cam_1]``, ... in rig order; ``rig.metadata`` goes to
    ``[metadata]``, plus ``units`` when ``rig.units`` is set. The written file is read back and compared
    before it replaces ``path``.

    Parameters
    ----------
    rig
        The cameras.
    path
        Output file.
    overwrite
        Replace an existing file.

    Returns
    -------
    Path
        The written file.
    """
    if not isinstance(rig, CameraRig):
        raise TypeError(f"save_calibration takes a CameraRig, got {type(rig).__name__}.")
    if len(rig) == 0:
        raise ValueError("cannot save a calibration with no cameras.")
    path = check_can_write(path, overwrite=overwrite)
    cgroup = rig.to_aniposelib()
    metadata = _plain(dict(rig.metadata))
    if rig.units is not None:
        metadata["units"] = rig.units
    cgroup.metadata = metadata
    with atomic_path(path, overwrite=overwrite) as tmp:
        cgroup.dump(str(tmp))
        back = load_calibration(tmp)
        if back.names != rig.names or not all(a.isclose(b, atol=0) for a, b in zip(back, rig, strict=True)):
            raise RuntimeError(f"writing {path}: the file read back differs from the rig (please report).")
    return path


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as err:
        try:  # aniposelib reads with the lenient `toml` package; accept what it accepts
            import toml

            return toml.load(str(path))
        except Exception:
            raise ValueError(f"{path}: not a valid TOML calibration file: {err}") from None
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not a text (TOML) calibration file: {err}") from None


def _camera_from_table(path: Path, key: str, table: dict[str, Any]) -> Camera:
    missing = [k for k in REQUIRED_CAMERA_KEYS if k not in table]
    if missing:
        raise ValueError(
            f"{path}: camera table [{key}] is missing {', '.join(repr(m) for m in missing)} "
            f"(it has {sorted(table)})."
        )
    name = table.get("name", key)
    if not isinstance(name, (str, int)) or str(name) == "":
        raise ValueError(f"{path}: camera table [{key}] has an invalid name {name!r}.")
    fisheye = table.get("fisheye", False)
    if not isinstance(fisheye, bool):
        raise ValueError(f"{path}: camera table [{key}]: 'fisheye' must be true or false, got {fisheye!r}.")
    size = table["size"]
    if not isinstance(size, list) or len(size) != 2:
        raise ValueError(
            f"{path}: camera table [{key}] ({name}): 'size' must be [width, height], got {size!r}."
        )
    fields = {"matrix": "matrix", "distortions": "dist", "rotation": "rvec", "translation": "tvec"}
    values = {}
    for toml_key, attr in fields.items():
        try:
            values[attr] = np.asarray(table[toml_key], dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"{path}: camera table [{key}] ({name}): {toml_key!r} must be numeric, got "
                f"{table[toml_key]!r}."
            ) from None
    try:
        return Camera(name=str(name), size=(size[0], size[1]), fisheye=fisheye, **values)
    except ValueError as err:
        msg = str(err)
        for toml_key, attr in fields.items():
            msg = msg.replace(f": {attr} ", f": {toml_key!r} ")
        raise ValueError(f"{path}: camera table [{key}]: {msg}") from None


def _plain(value: Any) -> Any:
    """Convert numpy scalars/arrays (and tuples) to TOML-serialisable Python values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value
