"""Multi-view triangulation through aniposelib, without side effects on JAX or torch.

aniposelib 0.8 triangulates with JAX and, on its first ``triangulate`` call, switches JAX to 64-bit mode for
the whole process (``jax.config.update("jax_enable_x64", True)``) unless the environment variable
``ANIPOSE_DISABLE_JAX_X64`` is truthy or ``disable_64bit=True`` is passed. napari_smil_mv sets
``ANIPOSE_DISABLE_JAX_X64=1`` at import, and here every call additionally forces the variable for its
duration and runs under JAX's *scoped* ``jax.enable_x64(True)`` context, so the maths is float64 while the
process-wide flag (and torch's default dtype) stay as they were.

Non-RANSAC triangulation undistorts with :func:`projection.undistort_points` (Newton, accurate to ~1e-7 px;
``cv2.undistortPoints``, which aniposelib uses, stops after 5 fixed-point iterations) and hands normalised
coordinates to ``CameraGroup.triangulate(..., undistort=False)`` (a DLT on the extrinsics).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from .camera import CameraRig

__all__ = ["triangulate", "reprojection_errors", "jax_guard"]

_ENV = "ANIPOSE_DISABLE_JAX_X64"


@contextlib.contextmanager
def jax_guard() -> Iterator[None]:
    """Run aniposelib/JAX code in float64 without changing JAX's process-wide settings.

    Forces ``ANIPOSE_DISABLE_JAX_X64=1`` for the duration (restoring the previous value), enters
    ``jax.enable_x64(True)`` (thread-local) when JAX is installed, and restores ``jax_enable_x64`` should
    anything still have changed it.
    """
    old_env = os.environ.get(_ENV)
    os.environ[_ENV] = "1"
    try:
        try:
            import jax
        except ImportError:  # aniposelib < 0.8 does not use JAX
            yield
            return
        before = bool(jax.config.jax_enable_x64)
        scoped = getattr(jax, "enable_x64", None)
        if scoped is None:  # older JAX
            from jax.experimental import enable_x64 as scoped
        try:
            with scoped(True):
                yield
        finally:
            if bool(jax.config.jax_enable_x64) != before:
                jax.config.update("jax_enable_x64", before)
    finally:
        if old_env is None:
            os.environ.pop(_ENV, None)
        else:
            os.environ[_ENV] = old_env


def _check(points2d: Any, rig: CameraRig) -> np.ndarray:
    p = np.asarray(points2d, dtype=np.float64)
    if p.ndim < 2 or p.shape[-1] != 2:
        raise ValueError(f"2D points must have shape (C, ..., 2) with C = {len(rig)} cameras, got {p.shape}.")
    if p.shape[0] != len(rig):
        raise ValueError(
            f"2D points are for {p.shape[0]} cameras but the rig has {len(rig)} ({rig.names}); "
            "select the rig's cameras with rig.subset(names) in the same order as the points."
        )
    return p


def triangulate(points2d: Any, rig: CameraRig, ransac: bool = False, min_cameras: int = 2) -> np.ndarray:
    """Triangulate 2D detections from several cameras (DLT via aniposelib).

    Parameters
    ----------
    points2d
        ``(C, ..., 2)`` distorted pixel coordinates ``(x, y)``, camera axis first in rig order; NaN for
        missing detections.
    rig
        The cameras (``len(rig) == C``).
    ransac
        Use ``CameraGroup.triangulate_ransac``: for every point, try subsets of at least ``min_cameras``
        cameras and keep the one with the smallest mean reprojection error (aniposelib keeps no point whose
        best error is >= 200 px). Slow (a Python loop per point); for outlier rejection.
    min_cameras
        Points seen by fewer cameras are NaN (aniposelib's plain DLT needs 2).

    Returns
    -------
    np.ndarray
        ``(..., 3)`` world points in the rig's units; NaN where fewer than ``min_cameras`` views are valid
        or, without RANSAC, where a detection could not be undistorted (it is then treated as missing).
    """
    p = _check(points2d, rig)
    if min_cameras < 2:
        raise ValueError(f"min_cameras must be at least 2, got {min_cameras}.")
    lead = p.shape[1:-1]
    flat = p.reshape(len(rig), -1, 2)
    n = flat.shape[1]
    out = np.full((n, 3), np.nan)
    if n == 0 or len(rig) < 2:
        return out.reshape(lead + (3,))
    cgroup = rig.to_aniposelib()
    with jax_guard():
        if ransac:
            # aniposelib's RANSAC fails on points with fewer than two views: only pass the usable ones.
            usable = np.sum(~np.isnan(flat).any(-1), axis=0) >= min_cameras
            res = np.full((n, 3), np.nan)
            if usable.any():
                sub = cgroup.triangulate_ransac(flat[:, usable].copy(), undistort=True, min_cams=min_cameras)[
                    0
                ]
                res[usable] = sub
        else:
            norm = np.stack([cam.undistort_normalized(flat[i]) for i, cam in enumerate(rig)])
            res = np.asarray(cgroup.triangulate(norm, undistort=False, progress=False))
            flat = np.where(np.isnan(norm), np.nan, flat)
    out[:] = res
    n_views = np.sum(~np.isnan(flat).any(-1), axis=0)
    out[n_views < min_cameras] = np.nan
    return out.reshape(lead + (3,))


def reprojection_errors(points3d: Any, points2d: Any, rig: CameraRig) -> np.ndarray:
    """Pixel distance between 2D detections and the projections of 3D points.

    Parameters
    ----------
    points3d
        ``(..., 3)`` world points.
    points2d
        ``(C, ..., 2)`` distorted pixel detections.
    rig
        The cameras.

    Returns
    -------
    np.ndarray
        ``(C, ...)`` Euclidean errors in pixels; NaN where the detection or the 3D point is missing, or the
        point is behind the camera.
    """
    p2 = _check(points2d, rig)
    p3 = np.asarray(points3d, dtype=np.float64)
    if p3.shape[-1:] != (3,) or p3.shape[:-1] != p2.shape[1:-1]:
        raise ValueError(
            f"3D points {p3.shape} do not match 2D points {p2.shape}: expected (..., 3) with "
            f"... = {p2.shape[1:-1]}."
        )
    return np.linalg.norm(rig.project(p3) - p2, axis=-1)
