"""`Camera` (one calibrated camera, OpenCV/Anipose convention) and `CameraRig` (an ordered, named set).

Convention: ``X_cam = R @ X_world + t`` (world to camera, ``R = Rodrigues(rvec)``), camera centre
``C = -R.T @ t``, camera looks along its +z axis, image x to the right and y down, pixels ``(x, y)`` with
pixel centres at integer coordinates, image size ``(W, H)``. See ``docs/cameras.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .projection import (
    matrix_to_rodrigues,
    normalize_distortion,
    project_points,
    rodrigues_to_matrix,
    undistort_points,
)

__all__ = ["Camera", "CameraRig"]


@dataclass(eq=False)
class Camera:
    """One calibrated camera.

    Attributes
    ----------
    name
        Camera name (matches the Anipose ``name`` field, video folders, sleap-io camera names).
    matrix
        Camera matrix ``K`` ``(3, 3)``: ``[[fx, s, cx], [0, fy, cy], [0, 0, 1]]``, in pixels.
    dist
        Distortion ``(n,)``: OpenCV ``(k1, k2, p1, p2, k3[, ...])`` (stored with 5, 8, 12 or 14 entries;
        shorter inputs are zero-padded), or ``(k1, k2, k3, k4)`` for a fisheye camera.
    rvec
        Rodrigues rotation vector ``(3,)``, world to camera, radians.
    tvec
        Translation ``(3,)``, world to camera, in world units.
    size
        Image size ``(W, H)`` in pixels.
    fisheye
        Use the ``cv2.fisheye`` distortion model (Anipose ``fisheye = true``).
    """

    name: str
    matrix: np.ndarray
    dist: np.ndarray
    rvec: np.ndarray
    tvec: np.ndarray
    size: tuple[int, int]
    fisheye: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"camera name must be a non-empty string, got {self.name!r}.")
        who = f"camera {self.name!r}"
        self.matrix = _array(self.matrix, (3, 3), f"{who}: matrix")
        k = self.matrix
        if not (k[0, 0] > 0 and k[1, 1] > 0):
            raise ValueError(
                f"{who}: matrix must have positive focal lengths fx, fy, got {k[0, 0]}, {k[1, 1]}."
            )
        if k[1, 0] != 0 or not np.allclose(k[2], [0.0, 0.0, 1.0]):
            raise ValueError(
                f"{who}: matrix must have the form [[fx, s, cx], [0, fy, cy], [0, 0, 1]], got {k.tolist()}."
            )
        self.fisheye = bool(self.fisheye)
        self.dist = normalize_distortion(self.dist, self.fisheye, what=f"{who}: dist")
        self.rvec = _array(self.rvec, (3,), f"{who}: rvec")
        self.tvec = _array(self.tvec, (3,), f"{who}: tvec")
        try:
            w, h = (int(round(float(v))) for v in self.size)
        except (TypeError, ValueError):
            raise ValueError(f"{who}: size must be (width, height) in pixels, got {self.size!r}.") from None
        if w <= 0 or h <= 0 or not np.allclose(np.asarray(self.size, dtype=float), [w, h]):
            raise ValueError(f"{who}: size must be two positive integers (width, height), got {self.size!r}.")
        self.size = (w, h)

    # ---------------------------------------------------------------- basic properties
    @property
    def K(self) -> np.ndarray:
        """Alias of :attr:`matrix` ``(3, 3)``."""
        return self.matrix

    @property
    def width(self) -> int:
        return self.size[0]

    @property
    def height(self) -> int:
        return self.size[1]

    @property
    def R(self) -> np.ndarray:
        """World-to-camera rotation matrix ``(3, 3)``."""
        return rodrigues_to_matrix(self.rvec)

    @property
    def center(self) -> np.ndarray:
        """Camera centre in world coordinates ``(3,)``: ``-R.T @ t``."""
        return -self.R.T @ self.tvec

    @property
    def extrinsics(self) -> np.ndarray:
        """World-to-camera 4x4 matrix ``[[R, t], [0, 1]]``."""
        m = np.eye(4)
        m[:3, :3] = self.R
        m[:3, 3] = self.tvec
        return m

    @property
    def projection_matrix(self) -> np.ndarray:
        """``K @ [R | t]`` ``(3, 4)`` (ideal pinhole, no distortion)."""
        return self.matrix @ np.hstack([self.R, self.tvec[:, None]])

    @property
    def has_distortion(self) -> bool:
        return bool(np.any(self.dist != 0))

    # ---------------------------------------------------------------- geometry
    def world_to_camera(self, points: Any) -> np.ndarray:
        """World points ``(..., 3)`` to camera coordinates ``(..., 3)`` (z = depth along the optical axis)."""
        p = np.asarray(points, dtype=np.float64)
        if p.shape[-1:] != (3,):
            raise ValueError(f"camera {self.name!r}: points must have shape (..., 3), got {p.shape}.")
        return p @ self.R.T + self.tvec

    def project(self, points: Any, distort: bool = True) -> np.ndarray:
        """Project world points ``(..., 3)`` to pixels ``(..., 2)`` as ``(x, y)``.

        Points with camera depth ``z <= 0`` (behind the camera) give NaN. With ``distort=False`` the ideal
        pinhole projection (same ``K``) is returned, i.e. what :meth:`undistort_points` gives for the
        distorted projection. Points are not clipped to the image.
        """
        dist = self.dist if distort else None
        return project_points(points, self.matrix, self.R, self.tvec, dist, self.fisheye and distort)

    def undistort_points(self, pixels: Any) -> np.ndarray:
        """Distorted pixels ``(..., 2)`` to ideal pinhole pixels with the same ``K`` ``(..., 2)``.

        NaN where the distortion model is not invertible (see :func:`projection.undistort_points`).
        """
        return undistort_points(pixels, self.matrix, self.dist, self.fisheye)

    def undistort_normalized(self, pixels: Any) -> np.ndarray:
        """Distorted pixels ``(..., 2)`` to normalised camera coordinates ``(X/Z, Y/Z)`` ``(..., 2)``."""
        return undistort_points(pixels, self.matrix, self.dist, self.fisheye, output="normalized")

    def pixel_rays(self, pixels: Any) -> np.ndarray:
        """Unit viewing-ray directions in world coordinates ``(..., 3)`` through (distorted) pixels."""
        xy = self.undistort_normalized(pixels)
        d = np.concatenate([xy, np.ones(xy.shape[:-1] + (1,))], -1) @ self.R  # R.T @ d, row form
        return d / np.linalg.norm(d, axis=-1, keepdims=True)

    def frustum(self, depth: float) -> np.ndarray:
        """Camera centre and the four image corners at camera depth ``depth``, in world coordinates.

        Returns
        -------
        np.ndarray
            ``(5, 3)``: apex (camera centre), then the corners top-left, top-right, bottom-right,
            bottom-left of the image *border* (pixel coordinates ``-0.5`` and ``W - 0.5`` / ``H - 0.5``),
            undistorted. Where a corner lies outside the invertible region of the distortion model (strong
            barrel distortion), the pinhole corner (distortion ignored) is used instead.
        """
        if not np.isfinite(depth) or depth <= 0:
            raise ValueError(f"camera {self.name!r}: frustum depth must be positive, got {depth}.")
        w, h = self.size
        corners = np.array([[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]])
        xy = self.undistort_normalized(corners)
        pinhole = undistort_points(corners, self.matrix, None, output="normalized")
        xy = np.where(np.isnan(xy), pinhole, xy)
        cam = np.concatenate([xy * depth, np.full((4, 1), float(depth))], -1)
        world = (cam - self.tvec) @ self.R  # R.T @ (x - t)
        return np.vstack([self.center, world])

    # ---------------------------------------------------------------- copies / edits
    def copy(self) -> Camera:
        """Deep copy."""
        return Camera(
            self.name,
            self.matrix.copy(),
            self.dist.copy(),
            self.rvec.copy(),
            self.tvec.copy(),
            self.size,
            self.fisheye,
        )

    def with_pose(self, rvec: Any = None, tvec: Any = None, R: Any = None, center: Any = None) -> Camera:
        """Copy with a new pose (intrinsics unchanged).

        Give the rotation as ``rvec`` (Rodrigues, world to camera) or ``R`` (matrix), and the position as
        ``tvec`` (world-to-camera translation) or ``center`` (camera centre in world coordinates, then
        ``t = -R @ center``). Unspecified parts keep their current values (with ``center`` and a new rotation,
        the centre stays where given).
        """
        if rvec is not None and R is not None:
            raise ValueError(f"camera {self.name!r}: give rvec or R, not both.")
        if tvec is not None and center is not None:
            raise ValueError(f"camera {self.name!r}: give tvec or center, not both.")
        new_rvec = (
            self.rvec.copy()
            if rvec is None and R is None
            else (
                np.asarray(rvec, dtype=np.float64)
                if rvec is not None
                else matrix_to_rodrigues(_array(R, (3, 3), f"camera {self.name!r}: R"))
            )
        )
        if center is not None:
            c = _array(center, (3,), f"camera {self.name!r}: center")
            new_t = -rodrigues_to_matrix(np.asarray(new_rvec, dtype=float).reshape(3)) @ c
        else:
            new_t = self.tvec.copy() if tvec is None else tvec
        return Camera(
            self.name, self.matrix.copy(), self.dist.copy(), new_rvec, new_t, self.size, self.fisheye
        )

    def renamed(self, name: str) -> Camera:
        """Copy with another name."""
        cam = self.copy()
        cam.name = name
        cam.__post_init__()
        return cam

    def resized(self, size: tuple[int, int]) -> Camera:
        """Copy for the image resized to ``size`` ``(W', H')`` (intrinsics scaled, distortion unchanged).

        With pixel centres at integer coordinates a pixel coordinate maps as ``x' = (x + 0.5) * s - 0.5``,
        so ``fx' = fx * sx``, ``cx' = (cx + 0.5) * sx - 0.5`` (same for y).
        """
        w2, h2 = size
        sx, sy = w2 / self.size[0], h2 / self.size[1]
        k = self.matrix.copy()
        k[0, 0] *= sx
        k[0, 1] *= sx
        k[1, 1] *= sy
        k[0, 2] = (k[0, 2] + 0.5) * sx - 0.5
        k[1, 2] = (k[1, 2] + 0.5) * sy - 0.5
        return Camera(
            self.name, k, self.dist.copy(), self.rvec.copy(), self.tvec.copy(), (w2, h2), self.fisheye
        )

    def cropped(self, x0: float, y0: float, size: tuple[int, int]) -> Camera:
        """Copy for the crop whose top-left pixel is ``(x0, y0)`` and whose size is ``(W', H')``:
        ``cx' = cx - x0``, ``cy' = cy - y0``."""
        k = self.matrix.copy()
        k[0, 2] -= x0
        k[1, 2] -= y0
        return Camera(self.name, k, self.dist.copy(), self.rvec.copy(), self.tvec.copy(), size, self.fisheye)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Camera):
            return NotImplemented
        return (
            self.name == other.name
            and self.size == other.size
            and self.fisheye == other.fisheye
            and np.array_equal(self.matrix, other.matrix)
            and np.array_equal(self.dist, other.dist)
            and np.array_equal(self.rvec, other.rvec)
            and np.array_equal(self.tvec, other.tvec)
        )

    __hash__ = None  # type: ignore[assignment]

    def isclose(self, other: Camera, atol: float = 1e-9) -> bool:
        """Same name, size and model, and all parameters within ``atol``."""
        return (
            self.name == other.name
            and self.size == other.size
            and self.fisheye == other.fisheye
            and self.dist.shape == other.dist.shape
            and all(
                np.allclose(a, b, rtol=0, atol=atol)
                for a, b in (
                    (self.matrix, other.matrix),
                    (self.dist, other.dist),
                    (self.R, other.R),
                    (self.tvec, other.tvec),
                )
            )
        )

    # ---------------------------------------------------------------- aniposelib
    @classmethod
    def from_aniposelib(cls, cam: Any) -> Camera:
        """Build from an ``aniposelib.cameras.Camera`` / ``FisheyeCamera``."""
        from aniposelib.cameras import FisheyeCamera

        return cls(
            name=str(cam.get_name()),
            matrix=cam.get_camera_matrix(),
            dist=cam.get_distortions(),
            rvec=cam.get_rotation(),
            tvec=cam.get_translation(),
            size=tuple(cam.get_size()),
            fisheye=isinstance(cam, FisheyeCamera),
        )

    def to_aniposelib(self) -> Any:
        """Return an ``aniposelib.cameras.Camera`` (or ``FisheyeCamera``) with the same parameters."""
        from aniposelib.cameras import Camera as ACamera
        from aniposelib.cameras import FisheyeCamera

        cls = FisheyeCamera if self.fisheye else ACamera
        return cls(
            matrix=self.matrix.copy(),
            dist=self.dist.copy(),
            size=list(self.size),
            rvec=self.rvec.copy(),
            tvec=self.tvec.copy(),
            name=self.name,
        )

    def to_dict(self) -> dict[str, Any]:
        """Anipose ``calibration.toml`` table (plain Python types)."""
        d = {
            "name": self.name,
            "size": list(self.size),
            "matrix": self.matrix.tolist(),
            "distortions": self.dist.tolist(),
            "rotation": self.rvec.tolist(),
            "translation": self.tvec.tolist(),
        }
        if self.fisheye:
            d["fisheye"] = True
        return d


def _array(value: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    try:
        a = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be numeric with shape {shape}, got {value!r}.") from None
    if a.shape != shape:
        if a.size == int(np.prod(shape)) and len(shape) == 1:
            a = a.reshape(shape)  # accept (3, 1) / (1, 3) vectors as OpenCV returns them
        else:
            raise ValueError(f"{what} must have shape {shape}, got {a.shape}.")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{what} contains NaN or infinite values.")
    return a


@dataclass(eq=False)
class CameraRig:
    """Ordered collection of uniquely named cameras sharing one world frame.

    Attributes
    ----------
    cameras
        The cameras, in rig order (the order of every ``(C, ...)`` array).
    units
        World length unit (``"mm"``, ``"m"``, ...) or None when unknown (``calibration.toml`` stores none).
    metadata
        Free-form metadata (the Anipose ``[metadata]`` table).
    """

    cameras: list[Camera]
    units: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.cameras = list(self.cameras)
        for c in self.cameras:
            if not isinstance(c, Camera):
                raise TypeError(f"CameraRig takes Camera objects, got {type(c).__name__}.")
        names = [c.name for c in self.cameras]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"camera names must be unique in a rig; duplicated: {dupes}.")
        if self.units is not None and (not isinstance(self.units, str) or not self.units.strip()):
            raise ValueError(f"units must be a non-empty string such as 'mm' or None, got {self.units!r}.")
        self.metadata = dict(self.metadata or {})

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.cameras]

    def index(self, name: str) -> int:
        """Position of the camera called ``name``."""
        for i, c in enumerate(self.cameras):
            if c.name == name:
                return i
        raise KeyError(f"no camera named {name!r} in the rig; cameras are {self.names}.")

    def __getitem__(self, key: str | int) -> Camera:
        if isinstance(key, str):
            return self.cameras[self.index(key)]
        if isinstance(key, (int, np.integer)):
            try:
                return self.cameras[key]
            except IndexError:
                raise IndexError(
                    f"camera index {key} out of range for a rig of {len(self)} cameras."
                ) from None
        raise TypeError(f"index a CameraRig by camera name or integer, got {type(key).__name__}.")

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def __iter__(self) -> Iterator[Camera]:
        return iter(self.cameras)

    def __len__(self) -> int:
        return len(self.cameras)

    def __repr__(self) -> str:
        return f"CameraRig({self.names}, units={self.units!r})"

    def subset(self, names: Iterable[str | int]) -> CameraRig:
        """New rig with the given cameras (copies) in the given order."""
        return CameraRig([self[n].copy() for n in names], self.units, dict(self.metadata))

    def copy(self) -> CameraRig:
        return self.subset(range(len(self)))

    @property
    def centers(self) -> np.ndarray:
        """Camera centres in world coordinates ``(C, 3)``."""
        return np.stack([c.center for c in self.cameras]) if self.cameras else np.zeros((0, 3))

    def project(self, points: Any, distort: bool = True) -> np.ndarray:
        """Project world points ``(..., 3)`` into every camera: ``(C, ..., 2)`` pixels (NaN behind a camera)."""
        p = np.asarray(points, dtype=np.float64)
        return (
            np.stack([c.project(p, distort) for c in self.cameras])
            if self.cameras
            else np.zeros((0,) + p.shape[:-1] + (2,))
        )

    def with_units(self, units: str | None) -> CameraRig:
        """Copy with the ``units`` label changed (no rescaling)."""
        rig = self.copy()
        rig.units = units
        rig.__post_init__()
        return rig

    def scaled(self, factor: float, units: str | None = None) -> CameraRig:
        """Copy with world coordinates multiplied by ``factor`` (e.g. 0.001 for mm to m): ``t' = factor * t``."""
        if not np.isfinite(factor) or factor <= 0:
            raise ValueError(f"scale factor must be positive, got {factor}.")
        cams = [c.with_pose(tvec=c.tvec * factor) for c in self.cameras]
        return CameraRig(cams, units, dict(self.metadata))

    @classmethod
    def from_aniposelib(cls, cgroup: Any, units: str | None = None) -> CameraRig:
        """Build from an ``aniposelib.cameras.CameraGroup`` (keeps its camera order)."""
        return cls([Camera.from_aniposelib(c) for c in cgroup.cameras], units, dict(cgroup.metadata or {}))

    def to_aniposelib(self) -> Any:
        """Return an ``aniposelib.cameras.CameraGroup`` with the cameras in rig order."""
        from aniposelib.cameras import CameraGroup

        return CameraGroup([c.to_aniposelib() for c in self.cameras], dict(self.metadata))

    def require(self, names: Sequence[str]) -> None:
        """Raise a KeyError naming every camera in ``names`` that the rig lacks."""
        missing = [n for n in names if n not in self]
        if missing:
            raise KeyError(f"cameras {missing} are not in the calibration; it has {self.names}.")
