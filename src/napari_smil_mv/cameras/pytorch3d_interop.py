"""Explicit conversion between our OpenCV cameras and PyTorch3D ``FoVPerspectiveCameras``.

PyTorch3D is optional: nothing here imports it except :func:`fov_perspective_cameras`.

Formulas (SMILify ``convert_sleap_to_pytorch3d_camera``; ``D = diag(-1, -1, 1)`` turns OpenCV's
x-right/y-down camera into PyTorch3D's x-left/y-up camera; PyTorch3D uses row vectors,
``X_view = X_world @ R_p3d + T_p3d``)::

    R_p3d = R_cv.T @ D            T_p3d = D @ t_cv
    R_cv  = D @ R_p3d.T           t_cv  = D @ T_p3d

Intrinsics. A FoV camera has only a vertical field of view and a pixel aspect ratio. PyTorch3D maps NDC to
screen with one scale ``s = min(H, W) / 2`` for both axes (``x_screen = W/2 - s * x_ndc``), so the exact
match of ``fx, fy`` is ``fov_y = 2 atan(min(W, H) / (2 fy))``, ``aspect_ratio = fy / fx``
(``convention="pytorch3d"``, the default). SMILify uses ``fov_y = 2 atan(H / (2 fy))`` and
``aspect_ratio = (W fy) / (H fx)`` (``convention="smilify"``): identical for the square images SMILify
trains on, but for ``W != H`` its camera has the wrong focal length along the longer side.

What the FoV camera loses:

* the principal point: PyTorch3D's optical axis passes through the image centre, so ``cx``, ``cy`` are
  forced to the centre (``camera_to_pytorch3d`` reports the dropped offset in pixels);
* lens distortion (undistort images and keypoints first) and skew;
* half a pixel: PyTorch3D screen coordinates are continuous with pixel centres at ``i + 0.5`` (the optical
  axis lands on ``W / 2``), ours have pixel centres at integers (image centre ``(W - 1) / 2``).
  ``x_ours = x_screen - 0.5``. :func:`camera_from_pytorch3d` therefore puts the principal point at
  ``((W - 1) / 2, (H - 1) / 2)``; SMILify reads screen coordinates as pixels directly (``cx = W / 2``), a
  0.5 px shift.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .camera import Camera, CameraRig
from .projection import matrix_to_rodrigues

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "CV_TO_P3D",
    "camera_to_pytorch3d",
    "camera_from_pytorch3d",
    "opencv_to_pytorch3d_torch",
    "rig_to_pytorch3d",
    "fov_perspective_cameras",
]

#: ``diag(-1, -1, 1)``: OpenCV camera axes to PyTorch3D camera axes (a 180 degree turn about z).
CV_TO_P3D = np.diag([-1.0, -1.0, 1.0])
_CONVENTIONS = ("pytorch3d", "smilify")


def _check_convention(convention: str) -> None:
    if convention not in _CONVENTIONS:
        raise ValueError(f"convention must be one of {_CONVENTIONS}, got {convention!r}.")


def _scale_side(w: float, h: float, convention: str) -> float:
    return min(w, h) if convention == "pytorch3d" else h


def camera_to_pytorch3d(camera: Camera, convention: str = "pytorch3d") -> dict[str, Any]:
    """Parameters of a PyTorch3D ``FoVPerspectiveCameras`` equivalent to ``camera`` (numpy).

    The FoV camera drops the principal point (``cx``, ``cy`` forced to the image centre), the distortion and
    the skew, and uses PyTorch3D's half-pixel-shifted screen coordinates (see the module docstring).

    Parameters
    ----------
    camera
        Our camera.
    convention
        ``"pytorch3d"`` (exact for any image size) or ``"smilify"`` (SMILify's formulas; same for square
        images).

    Returns
    -------
    dict
        ``R (3, 3)``, ``T (3,)`` (PyTorch3D row-vector convention), ``fov_y_deg`` (float, degrees),
        ``aspect_ratio`` (float), ``image_size`` ``(H, W)`` (PyTorch3D order!), and
        ``principal_point_offset`` ``(2,)``: ``(cx - (W-1)/2, cy - (H-1)/2)`` px, the error the FoV camera
        makes by centring the principal point.
    """
    _check_convention(convention)
    w, h = camera.size
    k = camera.matrix
    fx, fy = k[0, 0], k[1, 1]
    side = _scale_side(w, h, convention)
    fov_y = np.degrees(2.0 * np.arctan(side / (2.0 * fy)))
    aspect = fy / fx if convention == "pytorch3d" else (w * fy) / (h * fx)
    return {
        "R": camera.R.T @ CV_TO_P3D,
        "T": CV_TO_P3D @ camera.tvec,
        "fov_y_deg": float(fov_y),
        "aspect_ratio": float(aspect),
        "image_size": (h, w),
        "principal_point_offset": np.array([k[0, 2] - (w - 1) / 2.0, k[1, 2] - (h - 1) / 2.0]),
    }


def camera_from_pytorch3d(
    R: Any,
    T: Any,
    fov_y_deg: float,
    aspect_ratio: float,
    image_size: tuple[int, int],
    name: str,
    convention: str = "pytorch3d",
) -> Camera:
    """Our (distortion-free) camera equivalent to a PyTorch3D FoV camera.

    Parameters
    ----------
    R, T
        PyTorch3D rotation ``(3, 3)`` and translation ``(3,)`` (numpy or torch; a leading batch dimension of
        1 is accepted).
    fov_y_deg
        Vertical field of view in degrees.
    aspect_ratio
        PyTorch3D ``aspect_ratio``.
    image_size
        ``(H, W)`` in PyTorch3D order.
    name
        Camera name.
    convention
        As in :func:`camera_to_pytorch3d`.

    Returns
    -------
    Camera
        Principal point at the image centre ``((W - 1) / 2, (H - 1) / 2)`` (pixel centres at integers, the
        geometric equivalent of PyTorch3D's centred optical axis), no distortion.
    """
    _check_convention(convention)
    r = _numpy(R).reshape(3, 3)
    t = _numpy(T).reshape(3)
    h, w = (int(v) for v in image_size)
    fov = float(_numpy(fov_y_deg).reshape(()))
    a = float(_numpy(aspect_ratio).reshape(()))
    if not 0 < fov < 180 or a <= 0:
        raise ValueError(f"camera {name!r}: need 0 < fov_y_deg < 180 and aspect_ratio > 0, got {fov}, {a}.")
    fy = _scale_side(w, h, convention) / (2.0 * np.tan(np.radians(fov) / 2.0))
    fx = fy / a if convention == "pytorch3d" else (w * fy) / (h * a)
    K = np.array([[fx, 0.0, (w - 1) / 2.0], [0.0, fy, (h - 1) / 2.0], [0.0, 0.0, 1.0]])
    r_cv = CV_TO_P3D @ r.T
    return Camera(name, K, None, matrix_to_rodrigues(r_cv), CV_TO_P3D @ t, (w, h))


def opencv_to_pytorch3d_torch(
    R: torch.Tensor,
    t: torch.Tensor,
    K: torch.Tensor,
    image_size: tuple[int, int],
    convention: str = "pytorch3d",
) -> dict[str, torch.Tensor]:
    """Differentiable batch conversion (torch): ``R (..., 3, 3)``, ``t (..., 3)``, ``K (..., 3, 3)``.

    ``image_size`` is ``(W, H)`` (our order, one size for the batch). Returns ``R``, ``T``, ``fov_y_deg`` and
    ``aspect_ratio`` tensors with the batch shape, in the dtype/device of ``R``; the same formulas as
    :func:`camera_to_pytorch3d`.
    """
    import torch

    _check_convention(convention)
    w, h = image_size
    d = torch.tensor([-1.0, -1.0, 1.0], dtype=R.dtype, device=R.device)
    fx, fy = K[..., 0, 0], K[..., 1, 1]
    side = _scale_side(w, h, convention)
    fov = torch.rad2deg(2.0 * torch.atan(side / (2.0 * fy)))
    aspect = fy / fx if convention == "pytorch3d" else (w * fy) / (h * fx)
    return {"R": R.transpose(-1, -2) * d, "T": t * d, "fov_y_deg": fov, "aspect_ratio": aspect}


def rig_to_pytorch3d(
    rig: CameraRig, device: Any = None, dtype: Any = None, convention: str = "pytorch3d"
) -> dict[str, Any]:
    """Batched torch tensors for all cameras of a rig (``FoVPerspectiveCameras(**out)``-ready keys).

    Returns ``R (C, 3, 3)``, ``T (C, 3)``, ``fov (C,)`` degrees, ``aspect_ratio (C,)`` as tensors
    (default float32), plus ``image_size`` (list of ``(H, W)``) and ``principal_point_offset (C, 2)``
    numpy pixels (not FoV-camera arguments; pop them before constructing).
    """
    import torch

    dtype = torch.float32 if dtype is None else dtype
    conv = [camera_to_pytorch3d(c, convention) for c in rig]

    def stack(key: str) -> torch.Tensor:
        return torch.as_tensor(
            np.stack([np.asarray(c[key], dtype=np.float64) for c in conv]), dtype=dtype, device=device
        )

    return {
        "R": stack("R"),
        "T": stack("T"),
        "fov": stack("fov_y_deg"),
        "aspect_ratio": stack("aspect_ratio"),
        "image_size": [c["image_size"] for c in conv],
        "principal_point_offset": np.stack([c["principal_point_offset"] for c in conv]),
    }


def fov_perspective_cameras(
    rig: CameraRig,
    device: Any = None,
    convention: str = "pytorch3d",
    znear: float = 0.001,
    zfar: float = 1000.0,
) -> Any:
    """``pytorch3d.renderer.FoVPerspectiveCameras`` for a rig (needs PyTorch3D; degrees=True)."""
    try:
        from pytorch3d.renderer import FoVPerspectiveCameras
    except ImportError as err:
        raise ImportError(
            "PyTorch3D is not installed; it is optional (pip install 'napari-smil-mv[pytorch3d]'). "
            "Use camera_to_pytorch3d() for the plain parameters."
        ) from err
    p = rig_to_pytorch3d(rig, device=device, convention=convention)
    return FoVPerspectiveCameras(
        znear=znear,
        zfar=zfar,
        aspect_ratio=p["aspect_ratio"],
        fov=p["fov"],
        degrees=True,
        R=p["R"],
        T=p["T"],
        device=device or "cpu",
    )


def _numpy(x: Any) -> np.ndarray:
    if type(x).__module__.startswith("torch"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)
