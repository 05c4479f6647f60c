"""Browse a multi-view dataset (``.h5`` written by ``napari-smil-mv preprocess`` or SMILify) in napari.

* :func:`get_dataset_reader` (npe2 reader): ``*.smilmv-dataset.h5`` or any ``.h5``/``.hdf5`` whose metadata says it
  is a multi-view dataset (sniffed; anything else gets None at once).
* :func:`dataset_layer_data` (pure, no viewer): per canonical camera an Image layer ``(sample, row, col, rgb)``
  that decodes only the JPEG napari asks for, the stored 2D keypoints and the stored 3D keypoints projected
  through the stored camera (coloured by their error, green 0 px to red), tiled side by side; the sample slider
  walks through the samples; a camera whose view is missing in a sample shows black.
* The dock widget (:mod:`napari_smil_mv.napari.widgets.dataset_browser_widget`) adds metadata, a histogram of views per
  sample, the reprojection error per camera and the current sample's session, frame and per-view errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from napari_smil_mv.dataset.schema import DATASET_SUFFIX, DatasetInfo, sniff_dataset
from napari_smil_mv.napari.layers.lazy_stack import LazyImageStack
from napari_smil_mv.napari.layers.styles import error_colors, node_colors
from napari_smil_mv.napari.readers.reader_paths import single_path

LayerDataTuple = tuple[Any, dict, str]
ROLES = ("view", "reprojection", "keypoints")


@dataclass
class DatasetOverview:
    """What the browser shows, read once from the file (small arrays only; images stay on disk).

    Attributes
    ----------
    info
        File metadata.
    camera_indices
        ``(N, V)`` canonical camera per slot (-1 empty).
    keypoints_px
        ``(N, V, J, 2)`` stored 2D keypoints as ``(x, y)`` px of the stored image, NaN where invisible.
    projected_px
        ``(N, V, J, 2)`` stored 3D keypoints projected through the stored cameras, NaN where missing.
    errors
        ``(N, V, J)`` px between the two (NaN where either is missing).
    session_name, frame_idx, animal
        ``(N,)`` sample identity.
    """

    info: DatasetInfo
    camera_indices: np.ndarray
    keypoints_px: np.ndarray
    projected_px: np.ndarray
    errors: np.ndarray
    session_name: list[str]
    frame_idx: np.ndarray
    animal: list[str]

    @property
    def cameras(self) -> list[str]:
        return self.info.canonical_camera_order or [str(i) for i in range(int(self.camera_indices.max()) + 1)]

    @property
    def num_views(self) -> np.ndarray:
        """``(N,)`` views per sample."""
        return (self.camera_indices >= 0).sum(axis=1)

    def view_histogram(self) -> dict[int, int]:
        """Views per sample -> number of samples (every count from 1 to the maximum, zeros included)."""
        nv = self.num_views
        return {k: int((nv == k).sum()) for k in range(1, max(1, int(nv.max(initial=0))) + 1)}

    def slot_of(self, sample: int, camera: int) -> int | None:
        """View slot of ``camera`` in ``sample``, or None when the sample lacks that camera."""
        hits = np.flatnonzero(self.camera_indices[sample] == camera)
        return int(hits[0]) if hits.size else None

    def sample_errors(self, sample: int) -> dict[str, tuple[int, float]]:
        """Camera -> (visible keypoints, median reprojection error px) for one sample (cameras it has)."""
        out = {}
        for ci, name in enumerate(self.cameras):
            slot = self.slot_of(sample, ci)
            if slot is None:
                continue
            vis = int(np.isfinite(self.keypoints_px[sample, slot, :, 0]).sum())
            e = self.errors[sample, slot]
            e = e[np.isfinite(e)]
            out[name] = (vis, float(np.median(e)) if e.size else float("nan"))
        return out


def load_overview(path: str | Path) -> DatasetOverview:
    """Read the metadata and small arrays of a dataset and compute the reprojection of its 3D keypoints."""
    from napari_smil_mv.dataset.quality import project_stored
    from napari_smil_mv.dataset.reader import DatasetFile

    with DatasetFile(path) as ds:
        info = ds.info
        cams = np.where(ds.view_mask(), ds.camera_indices(), -1)
        px = ds.keypoints_2d_px()
        k3, valid = ds.keypoints_3d()
        stored = ds.cameras()
        if k3 is not None and stored is not None:
            proj = project_stored(k3, stored["K"], stored["R"], stored["t"])
            proj[~np.broadcast_to(valid[:, None, :], proj.shape[:3])] = np.nan
        else:
            proj = np.full_like(px, np.nan)
        proj[cams < 0] = np.nan
        frames = ds.auxiliary_array("frame_idx", dtype=np.int64)
        frames = frames if frames is not None else np.arange(info.n_samples)
        names, animals = ds.texts("session_name"), ds.texts("animal")
    errors = np.linalg.norm(proj - px, axis=-1)
    return DatasetOverview(info, cams, px, proj, errors, names, frames, animals)


class DatasetViewArray(LazyImageStack):
    """Array-like ``(N, S, S, 3)`` uint8 of one camera's stored views; decodes only the samples napari asks for.

    Samples without that camera are black. ``np.asarray`` refuses to decode the whole dataset.
    """

    def __init__(self, path: str | Path, slots: np.ndarray, size: int, camera: str = "") -> None:
        self.path = Path(path)
        self.slots = np.asarray(slots, dtype=np.int64)  # (N,) slot of this camera per sample, -1 = absent
        self.camera = camera
        self.shape = (len(self.slots), int(size), int(size), 3)
        self.dtype = np.dtype(np.uint8)
        self._h5 = None
        self._cache: dict[int, np.ndarray] = {}

    def describe(self) -> str:
        return f"camera {self.camera!r} of dataset {self.path.name}"

    def image(self, i: int) -> np.ndarray:
        """``(S, S, 3)`` RGB of sample ``i``."""
        import cv2

        from napari_smil_mv.dataset.reader import DatasetFile

        i = self._index(i)
        if i in self._cache:
            return self._cache[i]
        slot = int(self.slots[i])
        img = np.zeros(self.shape[1:], dtype=np.uint8)
        if slot >= 0:
            if self._h5 is None:
                self._h5 = DatasetFile(self.path)
            raw = self._h5.image_jpeg(i, slot)
            dec = cv2.imdecode(raw, cv2.IMREAD_COLOR) if raw.size else None
            if dec is not None and dec.shape[:2] == self.shape[1:3]:
                img = cv2.cvtColor(dec, cv2.COLOR_BGR2RGB)
        if len(self._cache) >= 8:
            self._cache.pop(next(iter(self._cache)))
        self._cache[i] = img
        return img


def _points(values: np.ndarray, cams: np.ndarray, ci: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows ``(sample, row, col)``, joint index and error index for camera ``ci``'s finite points."""
    n, v, j, _ = values.shape
    rows, joints, where = [], [], []
    for s in range(v):
        ok = (cams[:, s] == ci)[:, None] & np.all(np.isfinite(values[:, s]), axis=-1)
        smp, jj = np.nonzero(ok)
        rows.append(np.column_stack([smp, values[smp, s, jj, 1], values[smp, s, jj, 0]]))
        joints.append(jj)
        where.append(np.column_stack([smp, np.full_like(smp, s), jj]))
    return np.concatenate(rows), np.concatenate(joints), np.concatenate(where)


def dataset_layer_data(overview: DatasetOverview, gap: float = 0.06) -> list[LayerDataTuple]:
    """Layer data for a dataset: per camera ``view`` (Image), ``reprojection`` (Points), ``keypoints`` (Points).

    Axes ``(sample, row, col)``; camera ``k`` is shifted by ``translate`` to tile ``k`` of a near-square mosaic.
    ``metadata["napari_smil_mv"]`` holds ``dataset`` (path), ``camera``, ``role``.
    """
    info = overview.info
    size = info.image_size or 1
    cams = overview.cameras
    n_col = int(np.ceil(np.sqrt(len(cams))))
    names = info.joint_names or [f"joint_{k}" for k in range(info.n_joints)]
    colors = node_colors(len(names))
    out: list[LayerDataTuple] = []
    for ci, cam in enumerate(cams):
        offset = (0.0, (ci // n_col) * size * (1 + gap), (ci % n_col) * size * (1 + gap))
        match = overview.camera_indices == ci
        slots = np.where(match.any(axis=1), match.argmax(axis=1), -1)

        def meta(role, cam=cam):
            return {"napari_smil_mv": {"dataset": str(info.path), "camera": cam, "role": role}}

        arr = DatasetViewArray(info.path, slots, size, cam)
        out.append(
            (
                arr,
                {"name": f"{cam} · view", "rgb": True, "translate": offset, "metadata": meta("view")},
                "image",
            )
        )
        pts, jj, where = _points(overview.projected_px, overview.camera_indices, ci)
        err = overview.errors[where[:, 0], where[:, 1], where[:, 2]] if len(where) else np.zeros(0)
        out.append(
            (
                pts,
                {
                    "name": f"{cam} · 3D reprojected",
                    "symbol": "x",
                    "size": max(2.0, size / 40),
                    "face_color": error_colors(err, scale_px=max(1.0, size / 45)) if len(err) else "red",
                    "border_width": 0,
                    "features": {"joint": [names[k] for k in jj], "error_px": err},
                    "translate": offset,
                    "metadata": meta("reprojection"),
                },
                "points",
            )
        )
        pts, jj, _ = _points(overview.keypoints_px, overview.camera_indices, ci)
        out.append(
            (
                pts,
                {
                    "name": f"{cam} · keypoints",
                    "size": max(2.0, size / 45),
                    "face_color": colors[jj] if len(jj) else "white",
                    "border_color": "black",
                    "border_width": 0.1,
                    "features": {"joint": [names[k] for k in jj]},
                    "translate": offset,
                    "metadata": meta("keypoints"),
                },
                "points",
            )
        )
    for _, kw, _ in out:
        kw["axis_labels"] = ("sample", "y", "x")
    tiles = np.array(
        [((ci // n_col) * size * (1 + gap), (ci % n_col) * size * (1 + gap)) for ci in range(len(cams))]
    )
    out.append(
        (
            tiles + np.array([size * 0.03, size * 0.03]),
            {
                "name": "camera names",
                "size": 0,
                "features": {"camera": list(cams)},
                "text": {"string": "{camera}", "color": "white", "size": 11, "anchor": "upper_left"},
                "metadata": {"napari_smil_mv": {"dataset": str(info.path), "camera": None, "role": "names"}},
            },
            "points",
        )
    )
    return out


def read_dataset(path: Any) -> list[LayerDataTuple]:
    """npe2 reader function: layer data of a dataset file (see :func:`dataset_layer_data`)."""
    return dataset_layer_data(load_overview(single_path(path)))


def get_dataset_reader(path: Any):
    """Reader for a multi-view dataset ``.h5``; None (fast, never raises) for anything else.

    ``*.smilmv-dataset.h5`` is ours by name; other ``.h5``/``.hdf5`` files are claimed only when their
    ``metadata`` attributes mark a multi-view dataset (ours or SMILify's).
    """
    try:
        p = single_path(path)
        if p is None or p.suffix.lower() not in (".h5", ".hdf5"):
            return None
        if p.name.endswith(DATASET_SUFFIX) and p.is_file():
            return read_dataset
        return read_dataset if sniff_dataset(p) else None
    except Exception:
        return None


__all__ = [
    "DatasetOverview",
    "DatasetViewArray",
    "dataset_layer_data",
    "get_dataset_reader",
    "load_overview",
    "read_dataset",
]
