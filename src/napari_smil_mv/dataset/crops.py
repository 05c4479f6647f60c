"""Crops, camera-matrix adjustment and the undistort-crop-resize of one view image.

A stored view is an ``S x S`` image of an ideal pinhole camera: the source frame is undistorted and a crop box of
the undistorted image is resized to ``S x S`` in one resampling step. Everything is in the OpenCV convention
(pixel centres at integer coordinates). The crop box ``(x0, y0, w, h)`` is in pixel-edge coordinates of the
undistorted source (pixel ``i`` covers ``[i, i + 1)``), so a source pixel ``x`` maps to
``u = (x + 0.5 - x0) * S / w - 0.5`` and the camera matrix changes the same way (:func:`crop_matrix`).

Speed: the per-pixel lookup (``cv2.remap``) is computed once per camera and crop box (:class:`ViewRenderer`
caches it), and large downscales first halve the region of interest with exact 2x2 box averages (fast in OpenCV),
so the bilinear ``remap`` never downsamples by more than 2x (no aliasing) and only touches ``S x S`` pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from napari_smil_mv.cameras import Camera

CROP_MODES = ("default", "centred", "bbox_crop")


def crop_box_for(
    mode: str,
    size: tuple[int, int],
    keypoints: np.ndarray | None = None,
    bbox_scale: float = 1.2,
    bbox_min_size: float = 32.0,
) -> tuple[float, float, float, float]:
    """Crop box ``(x0, y0, w, h)`` (pixel-edge coordinates) of the undistorted source image.

    Parameters
    ----------
    mode
        ``"default"``: the whole image (resized non-uniformly to ``S x S``); ``"centred"``: the central square
        of side ``min(W, H)``; ``"bbox_crop"``: a square around the keypoints, side ``bbox_scale * max(w, h)`` of
        their bounding box (at least ``bbox_min_size``), moved inside the image when it fits and padded (black)
        otherwise, so it always stays square and ``K`` stays exact. Falls back to ``"centred"`` without keypoints.
    size
        Source image size ``(W, H)`` px.
    keypoints
        ``(N, 2)`` undistorted ``(x, y)`` px of the animal in this view (NaN rows ignored); for ``bbox_crop``.
    bbox_scale, bbox_min_size
        Margin factor and minimum side (px) of ``bbox_crop``.

    Returns
    -------
    tuple of float
        ``(x0, y0, w, h)``; ``w == h`` except for ``"default"``.
    """
    if mode not in CROP_MODES:
        raise ValueError(f"crop mode must be one of {CROP_MODES}, got {mode!r}")
    width, height = int(size[0]), int(size[1])
    if mode == "default":
        return 0.0, 0.0, float(width), float(height)
    pts = None if keypoints is None else np.asarray(keypoints, dtype=np.float64).reshape(-1, 2)
    if pts is not None:
        pts = pts[np.all(np.isfinite(pts), axis=1)]
    if mode == "centred" or pts is None or len(pts) == 0:
        c = min(width, height)
        return float((width - c) // 2), float((height - c) // 2), float(c), float(c)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    side = max(float(bbox_scale) * float(np.max(hi - lo)), float(bbox_min_size))
    centre = (lo + hi) / 2.0 + 0.5  # pixel-centre -> pixel-edge coordinates
    x0, y0 = centre - side / 2.0
    if side <= width:
        x0 = min(max(x0, 0.0), width - side)
    if side <= height:
        y0 = min(max(y0, 0.0), height - side)
    return float(x0), float(y0), float(side), float(side)


def crop_matrix(K: np.ndarray, box: tuple[float, float, float, float], out_size: int) -> np.ndarray:
    """Camera matrix ``(3, 3)`` of the ``out_size x out_size`` image made from crop ``box`` of a camera with ``K``."""
    x0, y0, w, h = box
    sx, sy = out_size / w, out_size / h
    k = np.array(K, dtype=np.float64, copy=True)
    k[0, 0] *= sx
    k[0, 1] *= sx
    k[1, 1] *= sy
    k[0, 2] = (k[0, 2] + 0.5 - x0) * sx - 0.5
    k[1, 2] = (k[1, 2] + 0.5 - y0) * sy - 0.5
    return k


def crop_points(points: np.ndarray, box: tuple[float, float, float, float], out_size: int) -> np.ndarray:
    """Undistorted source pixels ``(..., 2)`` ``(x, y)`` to pixels of the ``out_size`` crop ``(..., 2)``."""
    x0, y0, w, h = box
    p = np.asarray(points, dtype=np.float64)
    out = np.empty_like(p)
    out[..., 0] = (p[..., 0] + 0.5 - x0) * (out_size / w) - 0.5
    out[..., 1] = (p[..., 1] + 0.5 - y0) * (out_size / h) - 0.5
    return out


def uncrop_points(points: np.ndarray, box: tuple[float, float, float, float], out_size: int) -> np.ndarray:
    """Inverse of :func:`crop_points`: crop pixels ``(..., 2)`` back to undistorted source pixels."""
    x0, y0, w, h = box
    p = np.asarray(points, dtype=np.float64)
    out = np.empty_like(p)
    out[..., 0] = (p[..., 0] + 0.5) * (w / out_size) + x0 - 0.5
    out[..., 1] = (p[..., 1] + 0.5) * (h / out_size) + y0 - 0.5
    return out


@dataclass
class _Plan:
    """Everything needed to turn a source frame into the stored view."""

    roi: tuple[int, int, int, int]  # x, y, w, h of the source region read (multiples of 2**halvings)
    halvings: int
    map1: np.ndarray
    map2: np.ndarray


def _build_plan(camera: Camera, box, out_size: int, undistort: bool) -> _Plan | None:
    k_out = crop_matrix(camera.matrix, box, out_size)
    dist = camera.dist if (undistort and camera.has_distortion) else np.zeros(5)
    if camera.fisheye and undistort and camera.has_distortion:
        mx, my = cv2.fisheye.initUndistortRectifyMap(
            camera.matrix, camera.dist[:4], np.eye(3), k_out, (out_size, out_size), cv2.CV_32FC1
        )
    else:
        mx, my = cv2.initUndistortRectifyMap(
            camera.matrix, dist, None, k_out, (out_size, out_size), cv2.CV_32FC1
        )
    width, height = camera.size
    inside = (mx >= -1) & (mx <= width) & (my >= -1) & (my <= height) & np.isfinite(mx) & np.isfinite(my)
    if not np.any(inside):
        return None
    # Source pixels per output pixel (largest over both axes, from the crop box and the focal lengths).
    step = max(box[2] / out_size, box[3] / out_size)
    halvings = max(0, int(math.floor(math.log2(step)))) if step > 1 else 0
    f = 2**halvings
    xs, ys = mx[inside], my[inside]
    rx0 = max(0, (int(math.floor(xs.min())) - 2) // f * f)
    ry0 = max(0, (int(math.floor(ys.min())) - 2) // f * f)
    rx1 = min(width, int(math.ceil(xs.max())) + 3)
    ry1 = min(height, int(math.ceil(ys.max())) + 3)
    # Whole halvings: grow the region when the image allows, else trim (< f px, only at the image border).
    rw, rh = -(-(rx1 - rx0) // f) * f, -(-(ry1 - ry0) // f) * f
    if rx0 + rw > width:
        rw -= f
    if ry0 + rh > height:
        rh -= f
    if rw < f or rh < f:
        return None
    # Source pixel x -> pixel of the region halved `halvings` times: (x - rx0 + 0.5) / f - 0.5.
    mx = (mx - rx0 + 0.5) / f - 0.5
    my = (my - ry0 + 0.5) / f - 0.5
    map1, map2 = cv2.convertMaps(mx.astype(np.float32), my.astype(np.float32), cv2.CV_16SC2)
    return _Plan((rx0, ry0, rw, rh), halvings, map1, map2)


class ViewRenderer:
    """Undistort + crop + resize one camera's frames into ``S x S`` views, caching the lookup per crop box.

    Parameters
    ----------
    camera
        The source camera (original image size, ``K`` and distortion).
    out_size
        Side ``S`` of the stored image, px.
    undistort
        Remove the lens distortion (default). With False the distortion is kept in the image (and the keypoints
        must then not be undistorted either).
    cache_size
        Lookups kept (one per distinct crop box; ``default``/``centred`` crops need one per camera).
    """

    def __init__(self, camera: Camera, out_size: int, undistort: bool = True, cache_size: int = 4) -> None:
        self.camera = camera
        self.out_size = int(out_size)
        self.undistort = bool(undistort)
        self._cache: dict[tuple, _Plan | None] = {}
        self._cache_size = int(cache_size)

    def _plan(self, box) -> _Plan | None:
        key = tuple(round(float(b), 6) for b in box)
        if key not in self._cache:
            if len(self._cache) >= self._cache_size:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = _build_plan(self.camera, box, self.out_size, self.undistort)
        return self._cache[key]

    def render(self, frame: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        """The stored view of ``frame``.

        Parameters
        ----------
        frame
            ``(H, W, 3)`` or ``(H, W)`` / ``(H, W, 1)`` uint8 source frame at the camera's image size.
        box
            Crop box (:func:`crop_box_for`).

        Returns
        -------
        numpy.ndarray
            ``(S, S, 3)`` uint8, same channel order as ``frame``; black where the crop leaves the source image.
        """
        if frame.ndim == 2 or frame.shape[2] == 1:
            frame = cv2.cvtColor(np.ascontiguousarray(frame.reshape(frame.shape[:2])), cv2.COLOR_GRAY2BGR)
        h, w = frame.shape[:2]
        if (w, h) != tuple(self.camera.size):
            raise ValueError(
                f"camera {self.camera.name!r}: video frame is {w}x{h} px but the calibration says "
                f"{self.camera.size[0]}x{self.camera.size[1]}; fix the calibration 'size' or the video"
            )
        s = self.out_size
        plan = self._plan(box)
        if plan is None:
            return np.zeros((s, s, 3), dtype=np.uint8)
        x, y, rw, rh = plan.roi
        region = frame[y : y + rh, x : x + rw]
        for _ in range(plan.halvings):
            region = cv2.resize(
                region, (region.shape[1] // 2, region.shape[0] // 2), interpolation=cv2.INTER_AREA
            )
        return cv2.remap(region, plan.map1, plan.map2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
