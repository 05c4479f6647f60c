"""npe2 reader for fit results files (``*.smilmv.h5``).

``get_results_reader`` only sniffs (file name suffix, HDF5 signature, the root ``format`` attribute): it never
raises and returns None at once for anything else. The reader returns the results on their own (what a session
would show, rebuilt from the file, plus the fitted mesh and keypoints; cameras in a mosaic, world layers hidden).
Meshes are time-stacked whatever the clip length (the per-frame updater needs the viewer).
To put results next to an open session's layers instead, use the Fit widget or
``napari_smil_mv.api.show_results(viewer, path)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from napari_smil_mv.napari.layers.session_layers import (
    LayerDataTuple,
)
from napari_smil_mv.napari.readers.reader_paths import single_path
from napari_smil_mv.results import FORMAT_NAME, RESULTS_SUFFIX

ReaderFunction = Callable[[Any], list[LayerDataTuple]]


def is_results_file(path: Any) -> bool:
    """Whether ``path`` is a napari-smil-mv results file (suffix, HDF5 signature and ``format`` attribute)."""
    p = single_path(path)
    if p is None or not p.name.lower().endswith(RESULTS_SUFFIX):
        return False
    try:
        if not p.is_file():
            return False
        with open(p, "rb") as f:
            if f.read(8) != b"\x89HDF\r\n\x1a\n":
                return False
        import h5py

        with h5py.File(p, "r") as f:
            fmt = f.attrs.get("format", "")
        return (fmt.decode() if isinstance(fmt, bytes) else str(fmt)) == FORMAT_NAME
    except Exception:
        return False


def get_results_reader(path: Any) -> ReaderFunction | None:
    """Reader for a ``*.smilmv.h5`` results file; None for anything else (never raises)."""
    return read_results_layers if is_results_file(path) else None


def read_results_layers(path: Any) -> list[LayerDataTuple]:
    """Layer data of a results file (see the module docstring). The mesh is shown for the embedded demo model
    only: a ``.pkl`` the file merely names is not loaded by opening it (no mesh layers, with a warning naming it;
    the Fit widget's Show results... asks first)."""
    from napari_smil_mv.napari.layers.results_layers import (
        results_layer_data,
    )
    from napari_smil_mv.results import read_results

    p = single_path(path)
    if p is None:
        raise ValueError(f"open one results file at a time, got {path!r}")
    results = read_results(p)
    # stacked meshes: a reader has no viewer to attach the per-frame updater to
    return results_layer_data(results, standalone=True, layout="mosaic", mesh_mode="stacked")


__all__ = ["get_results_reader", "is_results_file", "read_results_layers"]
