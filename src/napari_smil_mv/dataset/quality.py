"""Consistency checks of a stored dataset: do the 3D keypoints project onto the 2D keypoints of every view?"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_smil_mv.dataset.schema import KEYPOINTS


def project_stored(kp3d: np.ndarray, K: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Project 3D points through stored (ideal pinhole) cameras.

    Parameters
    ----------
    kp3d
        ``(..., J, 3)`` world points (stored units).
    K, R, t
        ``(..., V, 3, 3)``, ``(..., V, 3, 3)``, ``(..., V, 3)`` stored cameras (same units as ``kp3d``).

    Returns
    -------
    numpy.ndarray
        ``(..., V, J, 2)`` pixels ``(x, y)`` of the stored image; NaN behind the camera.
    """
    x = np.einsum("...vij,...nj->...vni", R, kp3d) + t[..., None, :]
    z = x[..., 2:3]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv1 = np.einsum("...vij,...vnj->...vni", K, x / z)
    out = uv1[..., :2]
    return np.where(z > 1e-9, out, np.nan)


@dataclass
class ReprojectionReport:
    """Distance between projected 3D keypoints and stored 2D keypoints, in stored-image pixels.

    Attributes
    ----------
    errors
        ``(N, V, J)`` px; NaN where the view slot is empty, the 2D keypoint invisible or the 3D joint missing.
    camera_indices
        ``(N, V)`` canonical camera index per slot (-1 empty).
    camera_names
        Canonical camera names.
    """

    errors: np.ndarray
    camera_indices: np.ndarray
    camera_names: list[str]

    def per_camera(self) -> dict[str, dict[str, float]]:
        """Camera -> ``{"median", "p90", "max", "count"}`` px."""
        out = {}
        for ci, name in enumerate(self.camera_names):
            e = self.errors[self.camera_indices == ci]
            e = e[np.isfinite(e)]
            if e.size:
                out[name] = {
                    "median": float(np.median(e)),
                    "p90": float(np.percentile(e, 90)),
                    "max": float(e.max()),
                    "count": int(e.size),
                }
        return out

    def per_view(self) -> np.ndarray:
        """``(N, V)`` median error of each stored view, NaN where none."""
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                return np.nanmedian(self.errors, axis=-1)


def reprojection_report(h5_or_path, samples: slice | np.ndarray | None = None) -> ReprojectionReport:
    """Reproject the stored 3D keypoints through the stored cameras and compare with the stored 2D keypoints.

    Parameters
    ----------
    h5_or_path
        Open ``h5py.File`` or path of a dataset (ours or the reference tool's).
    samples
        Subset of sample indices (default all).
    """
    import h5py

    from napari_smil_mv.dataset.schema import read_dataset_info

    if isinstance(h5_or_path, (str, Path)):
        with h5py.File(h5_or_path, "r") as h5:
            return reprojection_report(h5, samples)
    h5 = h5_or_path
    info = read_dataset_info(h5)
    sel = slice(None) if samples is None else samples
    kp = h5[KEYPOINTS]

    def read(name):
        return np.asarray(kp[name][sel], dtype=np.float64)

    kp3d = read("keypoints_3d")
    if "keypoints_3d_valid" in kp:
        valid3d = np.asarray(kp["keypoints_3d_valid"][sel], dtype=bool)
    else:
        valid3d = np.any(kp3d != 0, axis=-1) & np.all(np.isfinite(kp3d), axis=-1)
    K, R, t = read("camera_intrinsics"), read("camera_extrinsics_R"), read("camera_extrinsics_t")
    size = info.image_size or 1
    if "image_sizes" in kp:
        sizes = read("image_sizes")  # (N, V, 2) (W, H)
    else:
        sizes = np.full(K.shape[:2] + (2,), float(size))
    kp2 = read("keypoints_2d")  # normalised (y, x)
    px = np.stack([kp2[..., 1] * sizes[..., None, 0], kp2[..., 0] * sizes[..., None, 1]], axis=-1)
    vis = read("keypoint_visibility") > 0
    cams = np.asarray(kp["camera_indices"][sel]) if "camera_indices" in kp else None
    slot_ok = cams >= 0 if cams is not None else np.ones(K.shape[:2], dtype=bool)
    proj = project_stored(kp3d, K, R, t)
    err = np.linalg.norm(proj - px, axis=-1)
    ok = vis & valid3d[:, None, :] & slot_ok[..., None]
    err = np.where(ok, err, np.nan)
    if cams is None:
        cams = np.where(slot_ok, np.arange(K.shape[1])[None], -1)
    return ReprojectionReport(
        err, cams, info.canonical_camera_order or [str(i) for i in range(int(cams.max()) + 1)]
    )
