"""Synthetic cameras for tests, demos and benchmarks (OpenCV convention)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .camera import Camera, CameraRig
from .projection import matrix_to_rodrigues

__all__ = ["look_at", "look_at_matrix", "ring_of_cameras", "intrinsics_from_fov"]


def look_at_matrix(eye: Any, target: Any, up: Any = (0.0, 0.0, 1.0)) -> tuple[np.ndarray, np.ndarray]:
    """World-to-camera ``(R (3, 3), t (3,))`` of a camera at ``eye`` looking at ``target``.

    OpenCV camera axes: +z from ``eye`` toward ``target``, image y (down) along the component of ``-up``
    perpendicular to the viewing direction, x = y cross z (to the right).
    """
    eye = np.asarray(eye, dtype=np.float64).reshape(3)
    target = np.asarray(target, dtype=np.float64).reshape(3)
    up = np.asarray(up, dtype=np.float64).reshape(3)
    z = target - eye
    nz = np.linalg.norm(z)
    if nz == 0:
        raise ValueError("look_at: eye and target coincide.")
    z = z / nz
    y = -(up - np.dot(up, z) * z)
    ny = np.linalg.norm(y)
    if ny < 1e-9 * max(np.linalg.norm(up), 1e-300):
        raise ValueError("look_at: the viewing direction is parallel to 'up'; choose another up vector.")
    y = y / ny
    x = np.cross(y, z)
    R = np.stack([x, y, z])
    return R, -R @ eye


def look_at(eye: Any, target: Any, up: Any = (0.0, 0.0, 1.0)) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`look_at_matrix` but returns ``(rvec (3,), tvec (3,))`` with a Rodrigues rotation."""
    R, t = look_at_matrix(eye, target, up)
    return matrix_to_rodrigues(R), t


def intrinsics_from_fov(
    image_size: tuple[int, int], fov_deg: float, principal_point_offset: Sequence[float] = (0.0, 0.0)
) -> np.ndarray:
    """Camera matrix with square pixels and vertical field of view ``fov_deg``.

    ``fy = fx = (H / 2) / tan(fov / 2)``; principal point at the image centre ``((W - 1) / 2, (H - 1) / 2)``
    (pixel centres at integer coordinates) plus ``principal_point_offset`` pixels.
    """
    w, h = image_size
    if not 0 < fov_deg < 180:
        raise ValueError(f"fov_deg must be in (0, 180), got {fov_deg}.")
    f = (h / 2.0) / np.tan(np.deg2rad(fov_deg) / 2.0)
    dx, dy = principal_point_offset
    return np.array([[f, 0.0, (w - 1) / 2.0 + dx], [0.0, f, (h - 1) / 2.0 + dy], [0.0, 0.0, 1.0]])


def ring_of_cameras(
    n_cameras: int = 4,
    distance: float = 3.0,
    elevation_deg: float = 25.0,
    image_size: tuple[int, int] = (640, 480),
    fov_deg: float = 45.0,
    target: Any = (0.0, 0.0, 0.0),
    up: Any = (0.0, 0.0, 1.0),
    names: Sequence[str] | None = None,
    units: str | None = None,
    principal_point_offset: Any = (0.0, 0.0),
    dist: Any = None,
    seed: int | None = None,
) -> CameraRig:
    """Cameras evenly spaced on a circle around ``target``, all looking at it.

    Parameters
    ----------
    n_cameras
        Number of cameras (azimuths ``360 * i / n`` degrees, from the first horizontal axis perpendicular
        to ``up``).
    distance
        Distance from each camera centre to ``target``, in world units.
    elevation_deg
        Height angle above the plane through ``target`` perpendicular to ``up``.
    image_size
        ``(W, H)`` pixels.
    fov_deg
        Vertical field of view (square pixels), see :func:`intrinsics_from_fov`.
    target, up
        Look-at point and world up direction (image y points along ``-up``).
    names
        Camera names, default ``"cam1" .. "camN"``.
    units
        Unit label of the rig.
    principal_point_offset
        ``(2,)`` or ``(n_cameras, 2)`` pixel offsets of ``(cx, cy)`` from the image centre.
    dist
        None, one distortion vector ``(k,)`` for all cameras or ``(n_cameras, k)``.
    seed
        If given, jitter each camera reproducibly: azimuth +-5 deg, elevation +-3 deg, distance +-5 %, focal
        length +-3 %, principal point +-5 px (added to ``principal_point_offset``).

    Returns
    -------
    CameraRig
    """
    if n_cameras < 1:
        raise ValueError(f"n_cameras must be at least 1, got {n_cameras}.")
    if distance <= 0:
        raise ValueError(f"distance must be positive, got {distance}.")
    names = [f"cam{i + 1}" for i in range(n_cameras)] if names is None else [str(n) for n in names]
    if len(names) != n_cameras:
        raise ValueError(f"got {len(names)} names for {n_cameras} cameras.")
    pp = np.broadcast_to(np.asarray(principal_point_offset, dtype=np.float64), (n_cameras, 2)).copy()
    if dist is None:
        dists = [None] * n_cameras
    else:
        d = np.asarray(dist, dtype=np.float64)
        dists = list(np.broadcast_to(d, (n_cameras, d.shape[-1]))) if d.ndim == 1 else list(d)
        if len(dists) != n_cameras:
            raise ValueError(f"dist has {len(dists)} rows for {n_cameras} cameras.")
    target = np.asarray(target, dtype=np.float64).reshape(3)
    up = np.asarray(up, dtype=np.float64).reshape(3)
    up = up / np.linalg.norm(up)
    helper = np.array([1.0, 0.0, 0.0]) if abs(up[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = helper - np.dot(helper, up) * up
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(up, e1)
    rng = np.random.default_rng(seed) if seed is not None else None
    cams = []
    for i in range(n_cameras):
        az = 2 * np.pi * i / n_cameras
        el = np.deg2rad(elevation_deg)
        dd, fscale = distance, 1.0
        off = pp[i].copy()
        if rng is not None:
            az += np.deg2rad(rng.uniform(-5, 5))
            el += np.deg2rad(rng.uniform(-3, 3))
            dd *= 1 + rng.uniform(-0.05, 0.05)
            fscale = 1 + rng.uniform(-0.03, 0.03)
            off += rng.uniform(-5, 5, 2)
        eye = target + dd * (np.cos(el) * (np.cos(az) * e1 + np.sin(az) * e2) + np.sin(el) * up)
        rvec, tvec = look_at(eye, target, up)
        K = intrinsics_from_fov(image_size, fov_deg, off)
        K[0, 0] *= fscale
        K[1, 1] *= fscale
        cams.append(Camera(names[i], K, dists[i], rvec, tvec, tuple(image_size)))
    return CameraRig(cams, units)
