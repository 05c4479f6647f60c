"""npe2 readers, thin over :mod:`napari_smil_mv.sessions`.

* ``get_session_reader``: a session folder (camera-folder layout with ``calibration.toml``, or a folder holding
  one ``.slp`` recording session) or its ``calibration.toml``.
* ``get_slp_reader``: a ``.slp`` holding a recording session (all its cameras), or a plain ``.slp`` (its
  videos and keypoints, uncalibrated).

The ``get_*`` functions only sniff (file names, folder listing, HDF5 signature, the ``.slp`` session table via
h5py): they never raise and return None for anything they cannot read. The returned reader loads the data and
returns layer-data tuples (cameras side by side in a mosaic; the world layers are created when the viewer first
switches to the world layout: the Session dock widget's "3D world" button or
``napari_smil_mv.api.set_layout(viewer, "world")``; ``"grid"`` puts one camera per grid cell). Errors while reading (a broken
calibration, a folder with several sessions) are raised with a message naming the file and the fix.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from napari_smil_mv.napari.empty_text import watch_current_viewer
from napari_smil_mv.napari.layers.session_layers import LayerDataTuple, session_layer_data
from napari_smil_mv.napari.layers.video_array import prefetch_first_frames
from napari_smil_mv.napari.readers.reader_paths import single_path
from napari_smil_mv.napari.registry import register_session

ReaderFunction = Callable[[Any], list[LayerDataTuple]]


def get_session_reader(path: Any) -> ReaderFunction | None:
    """Reader for a session folder or its ``calibration.toml``; None for anything else (never raises)."""
    p = single_path(path)
    if p is None:
        return None
    try:
        if not (p.is_dir() or (p.is_file() and p.name == "calibration.toml")):
            return None
        from napari_smil_mv.sessions import is_session_path

        return read_session if is_session_path(p) else None
    except Exception:
        return None


def _is_hdf5(p: Path) -> bool:
    try:
        with open(p, "rb") as f:
            return f.read(8) == b"\x89HDF\r\n\x1a\n"
    except OSError:
        return False


def get_slp_reader(path: Any) -> ReaderFunction | None:
    """Reader for a SLEAP ``.slp`` file (with or without a recording session); None otherwise."""
    p = single_path(path)
    if p is None:
        return None
    try:
        if p.suffix.lower() != ".slp" or not p.is_file() or not _is_hdf5(p):
            return None
    except Exception:
        return None
    return read_slp


def _session_layers(p: Path) -> list[LayerDataTuple]:
    from napari_smil_mv.sessions import load_session

    session = load_session(p)
    sid = register_session(session)
    data = session_layer_data(session, session_id=sid, layout="mosaic", world=False)
    prefetch_first_frames(data)  # decoded in the background while napari adds the layers
    watch_current_viewer()  # the Points layers napari adds next draw no empty text (napari.empty_text)
    return data


def read_session(path: Any) -> list[LayerDataTuple]:
    """Load a session folder / ``calibration.toml`` into layer data (see the module docstring)."""
    p = single_path(path)
    if p is None:
        raise ValueError(f"open one session at a time, got {path!r}")
    return _session_layers(p)


def read_slp(path: Any) -> list[LayerDataTuple]:
    """Load a ``.slp``: the whole session when it holds one, else its videos and keypoints."""
    from napari_smil_mv.sessions.sleap_files import slp_session_summary

    p = single_path(path)
    if p is None:
        raise ValueError(f"open one .slp file at a time, got {path!r}")
    try:
        has_session = slp_session_summary(p)["n_sessions"] > 0
    except Exception as exc:
        raise ValueError(f"{p} could not be read as a SLEAP .slp file ({type(exc).__name__}: {exc})") from exc
    if has_session:
        return _session_layers(p)
    from napari_smil_mv.napari.layers.labels_view import labels_layer_data

    data = labels_layer_data(p)
    watch_current_viewer()
    return data
