"""Validation metrics in the original images, computed with the same functions as ``napari-smil-mv evaluate``.

For every validation view the predicted 3D keypoints are projected through the view's *original* calibrated
camera (distortion included) and compared with the annotated keypoints mapped back from the stored crop to the
original image (:func:`crop_to_original`). The resulting ``(C, N, J)`` error array (C canonical cameras, N samples)
goes through :func:`napari_smil_mv.results.reprojection_summary`, the function ``evaluate`` uses on a results file,
and the 3D errors through :func:`~napari_smil_mv.results.joint_errors_3d` / ``finite_median``. So inference on the
validation samples written to a results file evaluates to the same numbers.

Files without the original calibration (the reference tool's) fall back to the stored crop pixels
(``pixel_frame = "crop"``); networks without calibration report crop pixels through their own cameras and no 3D
error (their world frame is arbitrary).
"""

from __future__ import annotations

import warnings

import numpy as np

from napari_smil_mv.cameras import distort_normalized
from napari_smil_mv.dataset.crops import uncrop_points
from napari_smil_mv.results.metrics import finite_median, joint_errors_3d, reprojection_summary


def crop_to_original(
    pixels: np.ndarray,
    box: np.ndarray,
    image_size: int,
    K: np.ndarray,
    dist: np.ndarray,
    fisheye: bool = False,
    undistorted: bool = True,
) -> np.ndarray:
    """Map stored-crop pixels ``(..., 2)`` (x, y) to pixels of the original (distorted) image.

    Inverse of the preprocessing: un-crop to the undistorted source image, then apply the camera's distortion
    (``K`` and ``dist`` are the original calibration) when the dataset removed it.
    """
    src = uncrop_points(np.asarray(pixels, dtype=np.float64), tuple(float(b) for b in box), image_size)
    d = np.asarray(dist, dtype=np.float64)
    if not undistorted or not np.any(d):
        return src
    K = np.asarray(K, dtype=np.float64)
    y = (src[..., 1] - K[1, 2]) / K[1, 1]
    x = (src[..., 0] - K[0, 2] - K[0, 1] * y) / K[0, 0]
    xd = distort_normalized(np.stack([x, y], -1), d[:4] if fisheye else d, fisheye)
    out = np.empty_like(src)
    out[..., 0] = K[0, 0] * xd[..., 0] + K[0, 1] * xd[..., 1] + K[0, 2]
    out[..., 1] = K[1, 1] * xd[..., 1] + K[1, 2]
    return out


class ValidationMetrics:
    """Accumulates per-sample errors of a validation pass, then summarises them.

    Parameters
    ----------
    camera_names
        Canonical camera order (rows of the error array).
    image_size
        Stored crop side ``S`` (px).
    world_scale
        Dataset units -> training units factor (3D errors are reported in the dataset's units).
    original
        :class:`~napari_smil_mv.training.data.OriginalCameras` of the dataset, or None (crop pixels).
    calibrated
        Whether the dataset has calibrated cameras (3D errors need them).
    """

    def __init__(
        self, camera_names, image_size: int, world_scale: float, original=None, calibrated: bool = True
    ):
        self.camera_names = list(camera_names)
        self.S = int(image_size)
        self.world_scale = float(world_scale)
        self.original = original
        self.calibrated = bool(calibrated)
        self.rows_2d: list[np.ndarray] = []
        self.rows_3d: list[np.ndarray] = []
        self._cams: dict = {}

    @property
    def pixel_frame(self) -> str:
        return "original" if (self.original is not None and self.calibrated) else "crop"

    def _camera(self, sample: int, c: int):
        key = (sample, c)
        if key not in self._cams:
            self._cams[key] = self.original.camera(sample, c, self.camera_names[c])
        return self._cams[key]

    def add(
        self,
        sample_index: np.ndarray,
        camera_indices: np.ndarray,
        joints: np.ndarray,
        kp2d: np.ndarray,
        vis: np.ndarray,
        kp3d: np.ndarray,
        kp3d_valid: np.ndarray,
        crop_pixels: np.ndarray,
    ) -> None:
        """Add a batch.

        Parameters
        ----------
        sample_index, camera_indices
            ``(B,)`` dataset sample of each row; ``(B, V)`` canonical camera of each view (-1 = padding).
        joints
            ``(B, J, 3)`` predicted keypoints, training units.
        kp2d, vis
            ``(B, V, J, 2)`` annotated crop pixels (x, y), ``(B, V, J)`` visibility.
        kp3d, kp3d_valid
            ``(B, J, 3)`` reference 3D keypoints (training units) and their mask.
        crop_pixels
            ``(B, V, J, 2)`` prediction in the crop (through the calibrated crop cameras, or the predicted ones
            without calibration); used when the original images are unavailable.
        """
        C, J = len(self.camera_names), joints.shape[1]
        use_original = self.pixel_frame == "original"
        for b, i in enumerate(np.asarray(sample_index)):
            row = np.full((C, J), np.nan)
            for v, c in enumerate(camera_indices[b]):
                if c < 0:
                    continue
                seen = vis[b, v] > 0
                if not seen.any():
                    continue
                if use_original:
                    cam = self._camera(int(i), int(c))
                    s = self.original.slot(int(i), int(c))
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", RuntimeWarning)
                        pred = cam.project(joints[b] / self.world_scale)
                    obs = crop_to_original(
                        kp2d[b, v],
                        self.original.crop_box[i, s],
                        self.S,
                        cam.K,
                        self.original.dist[i, s],
                        cam.fisheye,
                        self.original.undistorted,
                    )
                else:
                    pred, obs = crop_pixels[b, v], kp2d[b, v]
                err = np.linalg.norm(pred - obs, axis=-1)
                row[c] = np.where(seen, err, np.nan)
            self.rows_2d.append(row)
            ok = np.asarray(kp3d_valid[b], dtype=bool)
            e3 = joint_errors_3d(joints[b] / self.world_scale, kp3d[b] / self.world_scale)
            self.rows_3d.append(np.where(ok & self.calibrated, e3, np.nan))

    def state(self) -> dict:
        """Picklable accumulated rows (for gathering across processes)."""
        return {"rows_2d": self.rows_2d, "rows_3d": self.rows_3d}

    def merge(self, states: list[dict]) -> None:
        """Replace the rows by the concatenation of several :meth:`state` dicts."""
        self.rows_2d = [r for s in states for r in s["rows_2d"]]
        self.rows_3d = [r for s in states for r in s["rows_3d"]]

    def errors(self) -> tuple[np.ndarray, np.ndarray]:
        """``(C, N, J)`` 2D pixel errors and ``(N, J)`` 3D errors (NaN where not observed)."""
        C = len(self.camera_names)
        if not self.rows_2d:
            return np.full((C, 0, 0), np.nan), np.full((0, 0), np.nan)
        e2 = np.stack(self.rows_2d, axis=1)
        e3 = np.stack(self.rows_3d, axis=0)
        return e2, e3

    def compute(self) -> dict:
        """``px_median``, ``px_mean``, ``pck_5px``, ``pck_10px``, ``px_per_camera``, ``n_keypoints``,
        ``joint_error_3d_median``/``_mean`` (dataset units), ``pixel_frame``, ``n_samples``."""
        e2, e3 = self.errors()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            summary = reprojection_summary(e2, self.camera_names)
        finite3 = e3[np.isfinite(e3)]
        return {
            "px_median": summary["reprojection_px_median"],
            "px_mean": summary["reprojection_px_mean"],
            "pck_5px": summary["pck_5px"],
            "pck_10px": summary["pck_10px"],
            "px_per_camera": summary["reprojection_px_per_camera"],
            "n_keypoints": summary["n_keypoints"],
            "joint_error_3d_median": finite_median(e3),
            "joint_error_3d_mean": float(np.mean(finite3)) if finite3.size else float("nan"),
            "pixel_frame": self.pixel_frame,
            "n_samples": int(e2.shape[1]),
        }
