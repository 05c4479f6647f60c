"""Pinhole projection with OpenCV lens distortion, in numpy and (differentiable) torch.

Convention (OpenCV / Anipose, see ``docs/cameras.md``):

* world to camera: ``X_cam = R @ X_world + t`` with ``R = Rodrigues(rvec)``;
* normalised coordinates ``x = X_cam / Z_cam``, ``y = Y_cam / Z_cam``, then OpenCV distortion;
* pixels ``u = fx * x_d + s * y_d + cx``, ``v = fy * y_d + cy`` (``s = K[0, 1]`` is the skew, zero in every
  Anipose calibration; OpenCV ignores it, we apply it);
* pixel centres at integer coordinates, 2D points as ``(x, y)``.

Distortion vectors follow OpenCV: ``(k1, k2, p1, p2[, k3[, k4, k5, k6[, s1, s2, s3, s4[, tau_x, tau_y]]]])``
(4, 5, 8, 12 or 14 coefficients; shorter vectors are zero-padded), or the 4 coefficients
``(k1, k2, k3, k4)`` of ``cv2.fisheye`` when ``fisheye=True``.

The same distortion code (:func:`_distort_normalized`) runs on numpy arrays and torch tensors, so the numpy
and torch projections agree to floating-point rounding.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .rodrigues import matrix_to_rodrigues, rodrigues_to_matrix, rodrigues_to_matrix_torch

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "OPENCV_DIST_LENGTHS",
    "normalize_distortion",
    "rodrigues_to_matrix",
    "matrix_to_rodrigues",
    "project_points",
    "distort_normalized",
    "undistort_points",
    "camera_depths",
    "project_points_torch",
    "rodrigues_to_matrix_torch",
]

#: Valid OpenCV (non-fisheye) distortion vector lengths.
OPENCV_DIST_LENGTHS = (4, 5, 8, 12, 14)
_N_MAX = 14


def normalize_distortion(dist: Any, fisheye: bool = False, what: str = "distortion") -> np.ndarray:
    """Return a float64 distortion vector of a valid OpenCV length.

    Parameters
    ----------
    dist
        ``None`` (no distortion) or a flat sequence of coefficients.
    fisheye
        If True, the vector holds the ``cv2.fisheye`` coefficients ``(k1, k2, k3, k4)``; shorter vectors are
        zero-padded to 4.
    what
        Name used in error messages (for example ``"camera 'back': dist"``).

    Returns
    -------
    np.ndarray
        Shape ``(4,)`` for fisheye, else ``(n,)`` with ``n`` in (5, 8, 12, 14): the shortest valid OpenCV
        length that holds all given coefficients (at least 5, the Anipose layout).
    """
    d = np.zeros(0) if dist is None else np.asarray(dist, dtype=np.float64)
    if d.ndim == 2 and 1 in d.shape:  # OpenCV returns (1, n) or (n, 1)
        d = d.reshape(-1)
    if d.ndim != 1:
        raise ValueError(f"{what} must be a flat vector of coefficients, got shape {d.shape}.")
    if not np.all(np.isfinite(d)):
        raise ValueError(f"{what} contains NaN or infinite values: {d.tolist()}.")
    if fisheye:
        if d.size > 4:
            raise ValueError(f"{what}: a fisheye camera takes 4 coefficients (k1, k2, k3, k4), got {d.size}.")
        return np.pad(d, (0, 4 - d.size))
    if d.size > _N_MAX:
        raise ValueError(f"{what}: OpenCV distortion takes at most 14 coefficients, got {d.size}.")
    n = next(length for length in (5, 8, 12, 14) if length >= d.size)
    return np.pad(d, (0, n - d.size))


# --------------------------------------------------------------------------------------------------
# Distortion shared by numpy and torch
# --------------------------------------------------------------------------------------------------


def _distort_normalized(x, y, coeffs, n: int, fisheye: bool, xp):
    """Apply OpenCV (or fisheye) distortion to normalised coordinates.

    ``x``, ``y`` are arrays/tensors of the same shape; ``coeffs`` is a list of coefficients (scalars or
    arrays broadcastable against ``x``); ``n`` is how many coefficients are meaningful; ``xp`` is ``numpy``
    or ``torch``. Works identically on both backends (only arithmetic, ``sqrt``, ``arctan``, ``sin``,
    ``cos`` and ``where``), so gradients flow in torch.
    """
    r2 = x * x + y * y
    if fisheye:
        k1, k2, k3, k4 = coeffs[:4]
        tiny = 1e-16
        ok = r2 > tiny
        r = xp.sqrt(xp.where(ok, r2, xp.ones_like(r2)))
        theta = xp.arctan(r)
        t2 = theta * theta
        theta_d = theta * (1 + t2 * (k1 + t2 * (k2 + t2 * (k3 + t2 * k4))))
        scale = xp.where(ok, theta_d / r, xp.ones_like(r2))
        return x * scale, y * scale
    k1, k2, p1, p2 = coeffs[:4]
    r4 = r2 * r2
    radial = 1 + k1 * r2 + k2 * r4
    if n >= 5:
        radial = radial + coeffs[4] * r4 * r2
    if n >= 8:
        radial = radial / (1 + coeffs[5] * r2 + coeffs[6] * r4 + coeffs[7] * r4 * r2)
    xy2 = 2 * x * y
    xd = x * radial + p1 * xy2 + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + p2 * xy2
    if n >= 12:
        xd = xd + coeffs[8] * r2 + coeffs[9] * r4
        yd = yd + coeffs[10] * r2 + coeffs[11] * r4
    if n >= 14:
        xd, yd = _tilt(xd, yd, coeffs[12], coeffs[13], xp)
    return xd, yd


def _tilt(xd, yd, tau_x, tau_y, xp):
    """OpenCV's tilted-sensor model (``computeTiltProjectionMatrix``), applied to distorted coordinates."""
    cx, sx, cy, sy = xp.cos(tau_x), xp.sin(tau_x), xp.cos(tau_y), xp.sin(tau_y)
    # rot_xy = rot_y @ rot_x, with rot_x = [[1,0,0],[0,cx,sx],[0,-sx,cx]], rot_y = [[cy,0,-sy],[0,1,0],[sy,0,cy]]
    rxy = [[cy, sy * sx, -sy * cx], [0 * cx, cx, sx], [sy, -cy * sx, cy * cx]]
    proj = [[rxy[2][2], 0, -rxy[0][2]], [0, rxy[2][2], -rxy[1][2]], [0, 0, 1]]
    tilt = [[sum(proj[i][k] * rxy[k][j] for k in range(3)) for j in range(3)] for i in range(3)]
    v0 = tilt[0][0] * xd + tilt[0][1] * yd + tilt[0][2]
    v1 = tilt[1][0] * xd + tilt[1][1] * yd + tilt[1][2]
    v2 = tilt[2][0] * xd + tilt[2][1] * yd + tilt[2][2]
    inv = xp.where(v2 != 0, 1 / xp.where(v2 != 0, v2, xp.ones_like(v2)), xp.ones_like(v2))
    return v0 * inv, v1 * inv


def _as_rotation(rvec_or_R: Any) -> np.ndarray:
    r = np.asarray(rvec_or_R, dtype=np.float64)
    if r.shape == (3, 3):
        return r
    if r.size == 3:
        return rodrigues_to_matrix(r.reshape(3))
    raise ValueError(f"expected a rotation vector (3,) or matrix (3, 3), got shape {r.shape}.")


def _check_K(K: Any) -> np.ndarray:
    k = np.asarray(K, dtype=np.float64)
    if k.shape != (3, 3):
        raise ValueError(f"camera matrix K must have shape (3, 3), got {k.shape}.")
    return k


def _check_points(points: Any, dim: int, what: str) -> np.ndarray:
    p = np.asarray(points, dtype=np.float64)
    if p.ndim == 0 or p.shape[-1] != dim:
        raise ValueError(f"{what} must have shape (..., {dim}), got {p.shape}.")
    return p


def distort_normalized(xy: Any, dist: Any, fisheye: bool = False) -> np.ndarray:
    """Distort normalised (ideal) image coordinates ``(..., 2)`` with an OpenCV/fisheye distortion vector."""
    xy = _check_points(xy, 2, "normalised points")
    d = normalize_distortion(dist, fisheye)
    xd, yd = _distort_normalized(xy[..., 0], xy[..., 1], list(d), d.size, fisheye, np)
    return np.stack([xd, yd], -1)


def project_points(
    points: Any,
    K: Any,
    rvec_or_R: Any,
    t: Any,
    dist: Any = None,
    fisheye: bool = False,
    nan_behind: bool = True,
) -> np.ndarray:
    """Project world points to pixels; equals ``cv2.projectPoints`` / ``cv2.fisheye.projectPoints``.

    Parameters
    ----------
    points
        World points, shape ``(..., 3)``, in calibration units.
    K
        Camera matrix ``(3, 3)``.
    rvec_or_R
        World-to-camera rotation: Rodrigues vector ``(3,)`` or matrix ``(3, 3)``.
    t
        World-to-camera translation ``(3,)``.
    dist
        OpenCV distortion vector (4/5/8/12/14 coefficients), fisheye ``(4,)``, or None.
    fisheye
        Use the ``cv2.fisheye`` model.
    nan_behind
        Return NaN for points with camera depth ``z <= 0`` (behind or on the camera plane). OpenCV projects
        them anyway (mirrored); set False to get OpenCV's numbers.

    Returns
    -------
    np.ndarray
        Pixels ``(..., 2)`` as ``(x, y)`` with pixel centres at integer coordinates.
    """
    p = _check_points(points, 3, "points")
    k = _check_K(K)
    rot = _as_rotation(rvec_or_R)
    tv = np.asarray(t, dtype=np.float64).reshape(3)
    d = normalize_distortion(dist, fisheye)
    xc = p @ rot.T + tv
    z = xc[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        x, y = xc[..., 0] / z, xc[..., 1] / z
        xd, yd = _distort_normalized(x, y, list(d), d.size, fisheye, np)
        out = np.stack([k[0, 0] * xd + k[0, 1] * yd + k[0, 2], k[1, 1] * yd + k[1, 2]], -1)
    if nan_behind:
        out[z <= 0] = np.nan
    return out


def undistort_points(
    pixels: Any,
    K: Any,
    dist: Any = None,
    fisheye: bool = False,
    output: str = "pixel",
    max_iter: int = 40,
    tol: float = 1e-10,
) -> np.ndarray:
    """Remove lens distortion from pixel coordinates (inverse of the distortion in :func:`project_points`).

    Solves ``distort(x) = x_d`` per point with Newton's method (central-difference Jacobian, step halving),
    which is more accurate than ``cv2.undistortPoints``' default 5 fixed-point iterations.

    Parameters
    ----------
    pixels
        Distorted pixel coordinates ``(..., 2)`` as ``(x, y)``; NaN rows stay NaN.
    K
        Camera matrix ``(3, 3)``.
    dist
        Distortion vector (see :func:`normalize_distortion`) or None.
    fisheye
        Use the ``cv2.fisheye`` model.
    output
        ``"pixel"``: ideal pinhole pixels with the same ``K`` (OpenCV ``undistortPoints(..., P=K)``);
        ``"normalized"``: normalised coordinates ``(X/Z, Y/Z)``.
    max_iter, tol
        Newton iterations and the convergence tolerance on the residual in normalised units
        (``1e-10`` is about ``1e-7`` px for ``f = 1000`` px).

    Returns
    -------
    np.ndarray
        ``(..., 2)``. Points the distortion model cannot invert (outside the region where it is one-to-one,
        e.g. image corners with a strong single ``k1``) are NaN.
    """
    px = _check_points(pixels, 2, "pixels")
    k = _check_K(K)
    if output not in ("pixel", "normalized"):
        raise ValueError(f"output must be 'pixel' or 'normalized', got {output!r}.")
    d = normalize_distortion(dist, fisheye)
    coeffs, n = list(d), d.size
    yd = (px[..., 1] - k[1, 2]) / k[1, 1]
    xd = (px[..., 0] - k[0, 2] - k[0, 1] * yd) / k[0, 0]
    if np.any(d != 0):
        x, y = _newton_undistort(xd, yd, coeffs, n, fisheye, max_iter, tol)
    else:
        x, y = xd, yd
    if output == "normalized":
        return np.stack([x, y], -1)
    return np.stack([k[0, 0] * x + k[0, 1] * y + k[0, 2], k[1, 1] * y + k[1, 2]], -1)


def _newton_undistort(xd, yd, coeffs, n, fisheye, max_iter, tol):
    def f(a, b):
        return _distort_normalized(a, b, coeffs, n, fisheye, np)

    x, y = xd.copy(), yd.copy()
    h = 1e-6
    with np.errstate(all="ignore"):
        fx_, fy_ = f(x, y)
        res = np.hypot(fx_ - xd, fy_ - yd)
        for _ in range(max_iter):
            if not np.any(res > tol * 1e-3):
                break
            a1, b1 = f(x + h, y)
            a0, b0 = f(x - h, y)
            a3, b3 = f(x, y + h)
            a2, b2 = f(x, y - h)
            jxx, jyx = (a1 - a0) / (2 * h), (b1 - b0) / (2 * h)
            jxy, jyy = (a3 - a2) / (2 * h), (b3 - b2) / (2 * h)
            det = jxx * jyy - jxy * jyx
            rx, ry = fx_ - xd, fy_ - yd
            dx = (jyy * rx - jxy * ry) / det
            dy = (-jyx * rx + jxx * ry) / det
            step = np.ones_like(x)
            for _ in range(8):  # step halving where the residual would grow
                nx, ny = x - step * dx, y - step * dy
                gx, gy = f(nx, ny)
                nres = np.hypot(gx - xd, gy - yd)
                worse = ~(nres <= res)
                if not np.any(worse & np.isfinite(res)):
                    break
                step = np.where(worse, step * 0.5, step)
            better = nres < res
            x, y = np.where(better, nx, x), np.where(better, ny, y)
            fx_, fy_ = np.where(better, gx, fx_), np.where(better, gy, fy_)
            res = np.where(better, nres, res)
        # Accept only converged points on the orientation-preserving (invertible) branch.
        a1, b1 = f(x + h, y)
        a0, b0 = f(x - h, y)
        a3, b3 = f(x, y + h)
        a2, b2 = f(x, y - h)
        det = (a1 - a0) * (b3 - b2) - (a3 - a2) * (b1 - b0)
        trace = (a1 - a0) + (b3 - b2)
        # det > 0 alone accepts the point-mirrored root beyond the fold of a strong barrel distortion
        # (both Jacobian eigenvalues negative); the invertible branch has both eigenvalues positive.
        bad = ~((res <= tol) & (det > 0) & (trace > 0))
    x = np.where(bad, np.nan, x)
    y = np.where(bad, np.nan, y)
    return x, y


def camera_depths(points: Any, R: Any, t: Any):
    """Depth ``z`` of points in camera coordinates (``> 0`` in front of the camera).

    Works with numpy arrays (``points (..., 3)``, ``R (3, 3)`` or Rodrigues ``(3,)``, ``t (3,)``) and with
    torch tensors (same broadcasting rules as :func:`project_points_torch`, ``R`` a matrix).
    """
    if _is_torch(points) or _is_torch(R) or _is_torch(t):
        import torch

        return (torch.matmul(points, R.transpose(-1, -2)) + t.unsqueeze(-2))[..., 2]
    p = _check_points(points, 3, "points")
    return (p @ _as_rotation(R).T + np.asarray(t, dtype=np.float64).reshape(3))[..., 2]


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


# --------------------------------------------------------------------------------------------------
# torch
# --------------------------------------------------------------------------------------------------


def project_points_torch(
    points: torch.Tensor,
    K: torch.Tensor,
    R: torch.Tensor,
    t: torch.Tensor,
    dist: torch.Tensor | None = None,
    fisheye: bool = False,
    return_depth: bool = False,
    min_depth: float = 1e-6,
):
    """Differentiable projection of world points to pixels (same numbers as :func:`project_points`).

    Batch dimensions broadcast: ``points (N, 3)`` or ``(B, N, 3)`` (any leading dims), ``K (3, 3)`` or
    ``(B, 3, 3)``, ``R (3, 3)`` or ``(B, 3, 3)`` (world-to-camera rotation *matrix*; use
    :func:`rodrigues_to_matrix_torch` for a Rodrigues vector), ``t (3,)`` or ``(B, 3)``, ``dist (n,)`` or
    ``(B, n)`` or None (n <= 14 OpenCV coefficients, or 4 fisheye coefficients). Computes in the dtype and on
    the device of ``points``.

    Parameters
    ----------
    min_depth
        Depths below this value (points behind the camera) are clamped to it before the perspective
        division, so the output and its gradients stay finite; such projections are meaningless (unlike
        :func:`project_points`, no NaN is produced) and must be masked with the depth, in world units.
    return_depth
        Also return the camera depth ``z`` (shape ``(..., N)``; visible points have ``z > 0``).

    Returns
    -------
    torch.Tensor or tuple
        Pixels ``(..., N, 2)`` as ``(x, y)``; with ``return_depth`` the tuple ``(pixels, depth)``.
    """
    import torch

    dtype, device = points.dtype, points.device
    K = torch.as_tensor(K, dtype=dtype, device=device)
    R = torch.as_tensor(R, dtype=dtype, device=device)
    t = torch.as_tensor(t, dtype=dtype, device=device)
    if points.shape[-1] != 3 or K.shape[-2:] != (3, 3) or R.shape[-2:] != (3, 3) or t.shape[-1] != 3:
        raise ValueError(
            f"project_points_torch: bad shapes points {tuple(points.shape)}, K {tuple(K.shape)}, "
            f"R {tuple(R.shape)}, t {tuple(t.shape)} (expected (...,N,3), (...,3,3), (...,3,3), "
            "(...,3))."
        )
    xc = torch.matmul(points, R.transpose(-1, -2)) + t.unsqueeze(-2)
    z = xc[..., 2]
    zs = torch.clamp(z, min=min_depth)
    x, y = xc[..., 0] / zs, xc[..., 1] / zs
    if dist is not None:
        dist = torch.as_tensor(dist, dtype=dtype, device=device)
        n = dist.shape[-1]
        if (fisheye and n > 4) or n > _N_MAX:
            raise ValueError(
                f"project_points_torch: {n} distortion coefficients (max {4 if fisheye else 14})."
            )
        n_model = 4 if fisheye else next(length for length in (5, 8, 12, 14) if length >= n)
        dist = torch.nn.functional.pad(dist, (0, n_model - n))
        coeffs = list(dist.unsqueeze(-1).unbind(-2))  # each (..., 1), broadcasts over N
        x, y = _distort_normalized(x, y, coeffs, n_model, fisheye, torch)
    u = K[..., 0, 0, None] * x + K[..., 0, 1, None] * y + K[..., 0, 2, None]
    v = K[..., 1, 1, None] * y + K[..., 1, 2, None]
    out = torch.stack([u, v], -1)
    return (out, z) if return_depth else out
