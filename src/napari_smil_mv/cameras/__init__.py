"""Cameras in the OpenCV/Anipose convention: model, projection (numpy and torch), calibration I/O,
triangulation, synthetic rigs and PyTorch3D interop. No Qt/napari imports; torch, aniposelib, JAX and
PyTorch3D are imported lazily by the functions that need them. See ``docs/cameras.md``."""

import os as _os

# aniposelib 0.8 switches JAX to float64 process-wide on its first triangulate() unless this is set.
_os.environ.setdefault("ANIPOSE_DISABLE_JAX_X64", "1")

from .calibration import REQUIRED_CAMERA_KEYS, load_calibration, save_calibration  # noqa: E402
from .camera import Camera, CameraRig  # noqa: E402
from .projection import (  # noqa: E402
    OPENCV_DIST_LENGTHS,
    camera_depths,
    distort_normalized,
    matrix_to_rodrigues,
    normalize_distortion,
    project_points,
    project_points_torch,
    rodrigues_to_matrix,
    rodrigues_to_matrix_torch,
    undistort_points,
)
from .pytorch3d_interop import (  # noqa: E402
    CV_TO_P3D,
    camera_from_pytorch3d,
    camera_to_pytorch3d,
    fov_perspective_cameras,
    opencv_to_pytorch3d_torch,
    rig_to_pytorch3d,
)
from .synthetic import intrinsics_from_fov, look_at, look_at_matrix, ring_of_cameras  # noqa: E402
from .triangulation import jax_guard, reprojection_errors, triangulate  # noqa: E402

__all__ = [
    "CV_TO_P3D",
    "OPENCV_DIST_LENGTHS",
    "REQUIRED_CAMERA_KEYS",
    "Camera",
    "CameraRig",
    "camera_depths",
    "camera_from_pytorch3d",
    "camera_to_pytorch3d",
    "distort_normalized",
    "fov_perspective_cameras",
    "intrinsics_from_fov",
    "jax_guard",
    "load_calibration",
    "look_at",
    "look_at_matrix",
    "matrix_to_rodrigues",
    "normalize_distortion",
    "opencv_to_pytorch3d_torch",
    "project_points",
    "project_points_torch",
    "reprojection_errors",
    "rig_to_pytorch3d",
    "ring_of_cameras",
    "rodrigues_to_matrix",
    "rodrigues_to_matrix_torch",
    "save_calibration",
    "triangulate",
    "undistort_points",
]
