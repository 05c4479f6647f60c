"""The one reader of the multi-view dataset HDF5 layout (ours, ``napari-smil-mv preprocess``, or SMILify's).

:class:`DatasetFile` opens the file, checks its layout (:func:`~napari_smil_mv.dataset.schema.read_dataset_info`:
the ``multiview_images`` / ``multiview_keypoints`` / ``metadata`` groups) and reads it through typed accessors with
the defaults the reference tool's files need (no ``camera_indices``, no ``view_mask``, no ``keypoints_3d_valid``,
...). Everything else (the torch dataset, training, quality, the napari browser) reads through it; the writer is
:mod:`napari_smil_mv.dataset.writer`. Group and array names and their conventions: ``docs/dataset.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from napari_smil_mv.dataset.schema import (
    AUXILIARY,
    IMAGES,
    KEYPOINTS,
    PARAMETERS,
    DatasetInfo,
    read_dataset_info,
)

__all__ = ["DatasetFile", "text_of"]

Selection = slice | np.ndarray | list | None


def text_of(value: Any) -> str:
    """An HDF5 string value (bytes or str) as str."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


class DatasetFile:
    """A multi-view dataset file, open for reading, its layout checked.

    Parameters
    ----------
    path
        The ``.h5`` file.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    ValueError
        When it is not an HDF5 file or not a multi-view dataset (the message names the file and what is missing).

    Examples
    --------
    >>> with DatasetFile("train.smilmv-dataset.h5") as ds:      # doctest: +SKIP
    ...     cams = ds.camera_indices()                          # (N, V), -1 = empty slot
    ...     kp3d, valid = ds.keypoints_3d()                     # (N, J, 3), (N, J)
    """

    def __init__(self, path: str | Path) -> None:
        import h5py

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"dataset file not found: {self.path}")
        try:
            self._h5 = h5py.File(self.path, "r")
        except OSError as exc:
            # truncated (interrupted copy), damaged, or not HDF5 at all
            raise ValueError(
                f"{self.path} cannot be read as a dataset file ({' '.join(str(exc).split())}); it is truncated or "
                "damaged: copy it again or run 'napari-smil-mv preprocess' again"
            ) from None
        try:
            self.info: DatasetInfo = read_dataset_info(self._h5)
        except Exception:
            self._h5.close()
            raise

    # ------------------------------------------------------------------------------------------ life cycle
    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._h5 is not None:
            self._h5.close()
            self._h5 = None

    def __enter__(self) -> DatasetFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def h5(self):
        """The open ``h5py.File`` (for code that needs the raw layout; prefer the accessors)."""
        if self._h5 is None:
            raise ValueError(f"{self.path} is closed")
        return self._h5

    @property
    def n_samples(self) -> int:
        return self.info.n_samples

    @property
    def max_views(self) -> int:
        return self.info.max_views

    @property
    def attrs(self) -> dict:
        """The decoded ``metadata`` attributes."""
        return self.info.attrs

    # ------------------------------------------------------------------------------------------ arrays
    def _array(self, group: str, name: str, sel: Selection = None, dtype=None) -> np.ndarray | None:
        g = self.h5[group] if group in self.h5 else None
        if g is None or name not in g:
            return None
        a = g[name][()] if sel is None else g[name][sel]
        return np.asarray(a) if dtype is None else np.asarray(a, dtype=dtype)

    def has(self, group: str, name: str) -> bool:
        """Whether ``group/name`` exists (``group``: one of the schema's group names)."""
        return group in self.h5 and name in self.h5[group]

    def keypoint_array(self, name: str, sel: Selection = None, dtype=None) -> np.ndarray | None:
        """``multiview_keypoints/<name>`` (rows ``sel``, all by default) or None when absent."""
        return self._array(KEYPOINTS, name, sel, dtype)

    def auxiliary_array(self, name: str, sel: Selection = None, dtype=None) -> np.ndarray | None:
        """``auxiliary/<name>`` or None when absent."""
        return self._array(AUXILIARY, name, sel, dtype)

    def parameter_array(self, name: str, sel: Selection = None, dtype=None) -> np.ndarray | None:
        """``parameters/<name>`` (ground-truth body parameters) or None when absent."""
        return self._array(PARAMETERS, name, sel, dtype)

    def texts(self, name: str) -> list[str]:
        """``auxiliary/<name>`` as ``(N,)`` strings (``""`` for every sample when absent)."""
        a = self.auxiliary_array(name)
        return [""] * self.n_samples if a is None else [text_of(x) for x in a]

    # ------------------------------------------------------------------------------------------ typed
    def camera_indices(self, sel: Selection = None) -> np.ndarray:
        """``(N, V)`` int64 canonical camera of each view slot, -1 for an empty slot (slot index when absent)."""
        a = self.keypoint_array("camera_indices", sel, np.int64)
        if a is None:
            n = self.n_samples if sel is None else len(np.arange(self.n_samples)[sel])
            a = np.tile(np.arange(self.max_views), (n, 1))
        return a

    def view_mask(self, sel: Selection = None) -> np.ndarray:
        """``(N, V)`` bool: the slot holds a view (``multiview_images/view_mask``; all True when absent)."""
        a = self._array(IMAGES, "view_mask", sel, bool)
        if a is None:
            n = self.n_samples if sel is None else len(np.arange(self.n_samples)[sel])
            a = np.ones((n, self.max_views), bool)
        return a

    def keypoints_3d(self, sel: Selection = None) -> tuple[np.ndarray | None, np.ndarray | None]:
        """``(N, J, 3)`` float64 stored 3D keypoints (file units) and their ``(N, J)`` validity, or (None, None).

        Validity: ``keypoints_3d_valid`` when stored, else finite and not all zero (the reference tool's
        convention for missing points).
        """
        pts = self.keypoint_array("keypoints_3d", sel, np.float64)
        if pts is None:
            return None, None
        valid = self.keypoint_array("keypoints_3d_valid", sel, bool)
        if valid is None:
            valid = np.all(np.isfinite(pts), -1) & np.any(pts != 0, -1)
        return pts, valid

    def keypoints_2d_px(self, sel: Selection = None) -> np.ndarray:
        """``(N, V, J, 2)`` float64 stored 2D keypoints as ``(x, y)`` px of the stored image, NaN where invisible.

        The file stores normalised ``(y, x)`` (``keypoints_2d``) and the stored image sizes ``(W, H)``
        (``image_sizes``; 1 when absent).
        """
        kp2 = self.keypoint_array("keypoints_2d", sel, np.float64)
        vis = self.keypoint_array("keypoint_visibility", sel)
        sizes = self.keypoint_array("image_sizes", sel, np.float64)
        if sizes is None:
            sizes = np.full(kp2.shape[:2] + (2,), 1.0)
        px = np.stack([kp2[..., 1] * sizes[..., None, 0], kp2[..., 0] * sizes[..., None, 1]], axis=-1)
        if vis is not None:
            px[~(vis > 0)] = np.nan
        return px

    def cameras(self, sel: Selection = None) -> dict[str, np.ndarray] | None:
        """Stored (crop-adjusted) cameras: ``K (N, V, 3, 3)``, ``R (N, V, 3, 3)``, ``t (N, V, 3)`` float64, or
        None when the file has no camera parameters."""
        names = {"K": "camera_intrinsics", "R": "camera_extrinsics_R", "t": "camera_extrinsics_t"}
        out = {k: self.keypoint_array(v, sel, np.float64) for k, v in names.items()}
        return None if any(v is None for v in out.values()) else out

    def image_dataset(self, slot: int):
        """The ``h5py`` dataset of view slot ``slot``'s JPEG bytes (``(N,)`` variable-length uint8)."""
        return self.h5[IMAGES][f"image_jpeg_view_{slot}"]

    def image_jpeg(self, sample: int, slot: int) -> np.ndarray:
        """JPEG bytes (uint8) of one view slot of one sample (empty for an empty slot)."""
        return np.asarray(self.image_dataset(slot)[sample], dtype=np.uint8)

    def __repr__(self) -> str:
        state = "closed" if self._h5 is None else "open"
        return f"DatasetFile({str(self.path)!r}, {self.n_samples} samples, {self.max_views} views, {state})"
