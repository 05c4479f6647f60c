"""Consistency checks of a stored dataset: do the 3D keypoints project onto the 2D keypoints of every view?"""

from __future__ import annotations

from dataclasses import dataclass

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


def reprojection_report(dataset, samples: slice | np.ndarray | None = None) -> ReprojectionReport:
    """Reproject the stored 3D keypoints through the stored cameras and compare with the stored 2D keypoints.

    Parameters
    ----------
    dataset
        Path of a dataset (ours or the reference tool's), or an open
        :class:`~napari_smil_mv.dataset.reader.DatasetFile`.
    samples
        Subset of sample indices (default all).
    """
    from napari_smil_mv.dataset.reader import DatasetFile

    if not isinstance(dataset, DatasetFile):
        with DatasetFile(dataset) as ds:
            return reprojection_report(ds, samples)
    ds = dataset
    info = ds.info
    sel = slice(None) if samples is None else samples
    kp3d, valid3d = ds.keypoints_3d(sel)
    if kp3d is None:
        raise ValueError(f"{ds.path}: {KEYPOINTS}/keypoints_3d is missing; there is nothing to reproject")
    cams_stored = ds.cameras(sel)
    if cams_stored is None:
        raise ValueError(
            f"{ds.path}: the stored cameras (camera_intrinsics, camera_extrinsics_R/t) are missing"
        )
    K, R, t = cams_stored["K"], cams_stored["R"], cams_stored["t"]
    size = info.image_size or 1
    sizes = ds.keypoint_array("image_sizes", sel, np.float64)  # (N, V, 2) (W, H)
    if sizes is None:
        sizes = np.full(K.shape[:2] + (2,), float(size))
    kp2 = ds.keypoint_array("keypoints_2d", sel, np.float64)  # normalised (y, x)
    px = np.stack([kp2[..., 1] * sizes[..., None, 0], kp2[..., 0] * sizes[..., None, 1]], axis=-1)
    vis = ds.keypoint_array("keypoint_visibility", sel, np.float64) > 0
    cams = ds.keypoint_array("camera_indices", sel)
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
