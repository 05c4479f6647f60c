"""Inputs of a fit as plain arrays in model-joint order, so sessions and datasets feed the same fitter."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from napari_smil_mv.cameras import Camera, CameraRig


def as_camera_rig(cameras: Any, units: str | None = None) -> CameraRig:
    """Normalise cameras given as a CameraRig, a sequence of Camera, or a dict of per-camera arrays.

    Parameters
    ----------
    cameras
        ``CameraRig``; ``[Camera, ...]``; or a mapping with ``K`` (C, 3, 3), ``rvec`` (C, 3), ``tvec`` (C, 3),
        ``size`` (C, 2) as (W, H), optional ``dist`` (C, n) and ``names`` (C,) (torch tensors are accepted).
    units
        Units label for a rig built from arrays.
    """
    if isinstance(cameras, CameraRig):
        return cameras
    if isinstance(cameras, Mapping):

        def arr(key: str) -> np.ndarray:
            if key not in cameras:
                raise KeyError(
                    f"camera arrays: missing {key!r}; need K, rvec, tvec, size (and optionally dist, names)"
                )
            value = cameras[key]
            value = value.detach().cpu().numpy() if hasattr(value, "detach") else value
            return np.asarray(value, dtype=np.float64)

        K, rvec, tvec, size = arr("K"), arr("rvec"), arr("tvec"), arr("size")
        n = K.shape[0]
        dist = arr("dist") if "dist" in cameras and cameras["dist"] is not None else np.zeros((n, 5))
        names = list(cameras.get("names") or [f"cam{i}" for i in range(n)])
        cams = [Camera(str(names[i]), K[i], dist[i], rvec[i], tvec[i], tuple(size[i])) for i in range(n)]
        return CameraRig(cams, units)
    if isinstance(cameras, Sequence) and all(isinstance(c, Camera) for c in cameras):
        return CameraRig(list(cameras), units)
    raise TypeError(
        f"cameras must be a CameraRig, a list of Camera or a dict of arrays, got {type(cameras).__name__}"
    )


@dataclass
class FitData:
    """Observations of one animal over a clip, in model-joint order.

    Attributes
    ----------
    keypoints_2d
        (C, T, N, 2) float pixel coordinates (x, y) per camera, frame and model joint; NaN = missing.
    weights
        (C, T, N) float per-keypoint weights (confidence × visibility; 0 = ignore). NaN keypoints get weight 0.
    cameras
        The C cameras (any form accepted by :func:`as_camera_rig`), in the order of the first axis.
    points_3d
        (T, N, 3) world points or None (NaN = missing), same world frame and units as the cameras.
    units
        World length unit of cameras and points (``"mm"``, ``"m"``, ``"unknown"``).
    frame_indices
        (T,) original frame numbers (defaults to 0..T-1); used for temporal smoothing gaps and in results.
    joint_names
        N model joint names, or None.
    data_names
        Per model joint the data node name mapped onto it ("" = unmapped), or None.
    camera_weights
        (C,) multiplier per camera (0 drops a camera from the fit; it is still evaluated).
    videos
        Per camera the original video file (or None), for exports.
    fps
        Frame rate of the recording, or None.
    metadata
        Free-form provenance (session path, animal index, joint-map file...).
    """

    keypoints_2d: np.ndarray
    weights: np.ndarray
    cameras: Any
    points_3d: np.ndarray | None = None
    units: str = "unknown"
    frame_indices: np.ndarray | None = None
    joint_names: list[str] | None = None
    data_names: list[str] | None = None
    camera_weights: np.ndarray | None = None
    videos: list[str | None] | None = None
    fps: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.cameras = as_camera_rig(self.cameras, None if self.units == "unknown" else self.units)
        kp = np.asarray(self.keypoints_2d, dtype=np.float64)
        if kp.ndim != 4 or kp.shape[-1] != 2:
            raise ValueError(f"FitData.keypoints_2d must be (C, T, N, 2) pixels, got shape {kp.shape}")
        C, T, N, _ = kp.shape
        if C != len(self.cameras):
            raise ValueError(
                f"FitData.keypoints_2d has {C} cameras but {len(self.cameras)} cameras were given "
                f"({self.cameras.names}); keep them in the same order"
            )
        w = np.asarray(self.weights, dtype=np.float64)
        if w.shape != (C, T, N):
            raise ValueError(f"FitData.weights must be (C, T, N) = {(C, T, N)}, got {w.shape}")
        missing = ~np.isfinite(kp).all(-1)
        w = np.where(missing | ~np.isfinite(w), 0.0, np.clip(w, 0.0, None))
        self.keypoints_2d = np.where(missing[..., None], np.nan, kp)
        self.weights = w
        if self.points_3d is not None:
            p3 = np.asarray(self.points_3d, dtype=np.float64)
            if p3.shape != (T, N, 3):
                raise ValueError(
                    f"FitData.points_3d must be (T, N, 3) = {(T, N, 3)} world points, got {p3.shape}"
                )
            self.points_3d = np.where(np.isfinite(p3).all(-1, keepdims=True), p3, np.nan)
        if self.frame_indices is None:
            self.frame_indices = np.arange(T)
        self.frame_indices = np.asarray(self.frame_indices, dtype=np.int64)
        if self.frame_indices.shape != (T,):
            raise ValueError(
                f"FitData.frame_indices must have T = {T} entries, got {self.frame_indices.shape}"
            )
        if self.joint_names is not None and len(self.joint_names) != N:
            raise ValueError(
                f"FitData.joint_names has {len(self.joint_names)} names for N = {N} model joints"
            )
        if self.data_names is not None and len(self.data_names) != N:
            raise ValueError(
                f"FitData.data_names has {len(self.data_names)} entries for N = {N} model joints"
            )
        cw = np.ones(C) if self.camera_weights is None else np.asarray(self.camera_weights, dtype=np.float64)
        if cw.shape != (C,):
            raise ValueError(f"FitData.camera_weights must have C = {C} entries, got {cw.shape}")
        self.camera_weights = cw
        if self.videos is not None and len(self.videos) != C:
            raise ValueError(f"FitData.videos has {len(self.videos)} entries for C = {C} cameras")
        self.units = str(self.units or "unknown")

    @property
    def n_cameras(self) -> int:
        return int(self.keypoints_2d.shape[0])

    @property
    def n_frames(self) -> int:
        return int(self.keypoints_2d.shape[1])

    @property
    def n_joints(self) -> int:
        return int(self.keypoints_2d.shape[2])

    @property
    def camera_names(self) -> list[str]:
        return self.cameras.names

    @property
    def mapped(self) -> np.ndarray:
        """(N,) bool: model joints that have any 2D or 3D observation."""
        seen = (self.weights > 0).any(axis=(0, 1))
        if self.points_3d is not None:
            seen |= np.isfinite(self.points_3d).all(-1).any(0)
        return seen

    def check_fittable(self) -> None:
        """Raise a ValueError when nothing can be fitted: every camera excluded, or no 2D keypoint observed.

        A fit needs at least one camera with a non-zero ``camera_weights`` entry and one finite 2D keypoint of
        positive weight in such a camera; otherwise it would run on the 3D points or priors alone and report NaN
        reprojection errors. The message names the session (``metadata["session_name"]``) and the cameras.
        """
        where = f" of session {self.metadata['session_name']!r}" if self.metadata.get("session_name") else ""
        used = np.asarray(self.camera_weights) > 0
        names = list(self.camera_names)
        if not used.any():
            raise ValueError(
                f"every camera{where} is excluded from the fit ({names}); leave at least one camera in "
                "(fewer --exclude-cameras)"
            )
        if not (self.weights[used] > 0).any():
            cams = [n for n, u in zip(names, used, strict=True) if u]
            raise ValueError(
                f"no 2D keypoint{where} is observed by the cameras {cams} in its {self.n_frames} frames: every "
                "mapped keypoint is missing (NaN) or has weight 0. Check the labels files, the frame range and "
                "the joint map"
            )

    def select_frames(self, frames: slice | Sequence[int] | np.ndarray) -> FitData:
        """Copy restricted to some frames (positions along T, not frame numbers)."""
        idx = np.arange(self.n_frames)[frames]
        return replace(
            self,
            keypoints_2d=self.keypoints_2d[:, idx],
            weights=self.weights[:, idx],
            points_3d=None if self.points_3d is None else self.points_3d[idx],
            frame_indices=self.frame_indices[idx],
            metadata=dict(self.metadata),
        )
