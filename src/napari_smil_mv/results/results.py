"""The in-memory results of a body fit or a network inference (one animal over a clip, seen by C cameras)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from napari_smil_mv.cameras import CameraRig

#: Version of the ``*.smilmv.h5`` layout written by :func:`napari_smil_mv.results.write_results`.
SCHEMA_VERSION = 1
#: Value of the root ``format`` attribute of a results file.
FORMAT_NAME = "napari-smil-mv results"
#: File name suffix of results files.
RESULTS_SUFFIX = ".smilmv.h5"


def _arr(value: Any, name: str, shape: tuple, dtype=np.float64) -> np.ndarray:
    a = np.asarray(value, dtype=dtype)
    if a.ndim != len(shape) or any(s is not None and s != n for s, n in zip(shape, a.shape, strict=False)):
        want = "(" + ", ".join("?" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"results field '{name}' must have shape {want}, got {a.shape}")
    return a


@dataclass
class Results:
    """Body parameters per frame, their 3D keypoints, and their 2D projections into every camera.

    Attributes
    ----------
    poses : (T, J, 3) axis-angle rotations, root first, radians
    betas : (T, K) shape coefficients per frame
    trans : (T, 3) world translation, world units
    mesh_scale : (T,) global scale about the root (model units → world units)
    log_beta_scales, betas_trans : (T, J, 3) per-joint log-scales / offsets (model units)
    joints_3d : (T, J, 3) model keypoints, world units
    frame_indices : (T,) video frame number of each row
    cameras : CameraRig with the C cameras used (K, dist, rvec, tvec, size, name)
    projections_2d : (C, T, J, 2) model keypoints projected into every camera, px (x, y); NaN behind a camera
    reprojection_error : (C, T, J) px distance to the observed keypoints; NaN where not observed
    joint_names : J model joint names
    model_sha256, model_source : identity of the body-model file
    units : world length unit
    observed_2d : (C, T, J, 2) or None, the data keypoints in model-joint order (NaN = missing)
    observed_weights : (C, T, J) or None, their weights (confidence × visibility)
    data_names : J data node names observed at each model joint ("" = unmapped), or None
    camera_used : (C,) bool, cameras that contributed to the result
    videos : per camera the original video file, or None
    parents : (J,) parent joint indices, or None
    fps : frame rate, or None
    provenance : what produced the file (``producer``, ``created``, ``config``, ...), JSON-compatible
    schema_version : layout version
    quality : ``{"attrs": {...}, "arrays": {name: array}}`` (a fit's verdict and per frame/camera/joint errors,
        see :mod:`napari_smil_mv.fitting.quality`), or None
    """

    poses: np.ndarray
    betas: np.ndarray
    trans: np.ndarray
    mesh_scale: np.ndarray
    log_beta_scales: np.ndarray
    betas_trans: np.ndarray
    joints_3d: np.ndarray
    frame_indices: np.ndarray
    cameras: CameraRig
    projections_2d: np.ndarray
    reprojection_error: np.ndarray
    joint_names: list[str]
    model_sha256: str = ""
    model_source: str = ""
    units: str = "unknown"
    observed_2d: np.ndarray | None = None
    observed_weights: np.ndarray | None = None
    data_names: list[str] | None = None
    camera_used: np.ndarray | None = None
    videos: list[str | None] | None = None
    parents: np.ndarray | None = None
    fps: float | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION
    quality: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.cameras, CameraRig):
            raise TypeError(f"results field 'cameras' must be a CameraRig, got {type(self.cameras).__name__}")
        self.poses = _arr(self.poses, "poses", (None, None, 3))
        T, J = self.poses.shape[:2]
        C = len(self.cameras)
        betas = np.asarray(self.betas, dtype=np.float64)
        self.betas = np.broadcast_to(betas, (T, betas.shape[-1])).copy() if betas.ndim == 1 else betas
        self.betas = _arr(self.betas, "betas", (T, None))
        self.trans = _arr(self.trans, "trans", (T, 3))
        self.mesh_scale = _arr(
            np.broadcast_to(np.asarray(self.mesh_scale, float).reshape(-1), (T,)), "mesh_scale", (T,)
        )
        self.log_beta_scales = _arr(self.log_beta_scales, "log_beta_scales", (T, J, 3))
        self.betas_trans = _arr(self.betas_trans, "betas_trans", (T, J, 3))
        self.joints_3d = _arr(self.joints_3d, "joints_3d", (T, J, 3))
        self.frame_indices = _arr(self.frame_indices, "frame_indices", (T,), np.int64)
        self.projections_2d = _arr(self.projections_2d, "projections_2d", (C, T, J, 2))
        self.reprojection_error = _arr(self.reprojection_error, "reprojection_error", (C, T, J))
        self.joint_names = [str(n) for n in self.joint_names]
        if len(self.joint_names) != J:
            raise ValueError(
                f"results field 'joint_names' has {len(self.joint_names)} names for J = {J} joints"
            )
        if self.observed_2d is not None:
            self.observed_2d = _arr(self.observed_2d, "observed_2d", (C, T, J, 2))
        if self.observed_weights is not None:
            self.observed_weights = _arr(self.observed_weights, "observed_weights", (C, T, J))
        if self.data_names is not None:
            self.data_names = ["" if n is None else str(n) for n in self.data_names]
            if len(self.data_names) != J:
                raise ValueError(f"results field 'data_names' has {len(self.data_names)} entries for J = {J}")
        used = np.ones(C, dtype=bool) if self.camera_used is None else self.camera_used
        self.camera_used = _arr(used, "camera_used", (C,), bool)
        if self.videos is not None and len(self.videos) != C:
            raise ValueError(f"results field 'videos' has {len(self.videos)} entries for C = {C} cameras")
        if self.parents is not None:
            self.parents = _arr(self.parents, "parents", (J,), np.int64)
        self.fps = None if self.fps is None or not np.isfinite(self.fps) else float(self.fps)
        self.units = str(self.units or "unknown")

    @property
    def n_frames(self) -> int:
        return int(self.poses.shape[0])

    @property
    def n_joints(self) -> int:
        return int(self.poses.shape[1])

    @property
    def n_cameras(self) -> int:
        return len(self.cameras)

    @property
    def camera_names(self) -> list[str]:
        return self.cameras.names

    @property
    def mapped(self) -> np.ndarray:
        """(J,) bool: model joints with a data keypoint (all joints when the mapping is unknown)."""
        if self.data_names is None:
            return np.ones(self.n_joints, dtype=bool)
        return np.array([bool(n) for n in self.data_names])

    def to_animation(self):
        """The body parameters as a :class:`napari_smil_mv.body.animation.Animation` (world placement)."""
        from napari_smil_mv.body.animation import Animation

        return Animation(
            poses=self.poses,
            betas=self.betas,
            trans=self.trans,
            log_beta_scales=self.log_beta_scales,
            betas_trans=self.betas_trans,
            mesh_scale=self.mesh_scale,
            fps=self.fps,
            source=str(self.provenance.get("path", "results")),
        )
