"""Training augmentation of one multi-view sample: photometric changes shared by all views, optional zoom.

Photometric parameters are drawn once per sample and applied to every view (the views show the same instant
under the same light); only the pixel noise is drawn per view. The zoom is a centred scaling shared by all views;
it updates the keypoints and the camera matrices so that ``K [R | t]`` still maps the 3D keypoints onto the 2D
keypoints. Keypoints that leave the image become invisible. Values follow SMILify's ``AugmentationConfig``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class AugmentationConfig:
    """Augmentation settings (ranges are uniform).

    Attributes
    ----------
    photometric
        Enable brightness/contrast/saturation/noise/blur/erasing.
    brightness
        Additive brightness in ``[-brightness, brightness]`` (images in 0..1).
    contrast, saturation
        Factor ranges ``(lo, hi)``: contrast about each view's mean, saturation as a blend with the gray image.
    noise_std
        Gaussian pixel noise standard deviation (per view).
    blur_prob, blur_kernel
        Probability of a Gaussian blur and the odd kernel size range ``(lo, hi)``.
    erase_prob, erase_area, erase_aspect
        Random erasing: probability, area fraction range, aspect ratio range; the same relative rectangle in every
        view, filled with the view's mean.
    zoom
        Enable the centred zoom (geometric; updates keypoints and ``K``).
    zoom_range
        Scale range ``(lo, hi)``; > 1 zooms in.
    """

    photometric: bool = True
    brightness: float = 0.2
    contrast: tuple[float, float] = (0.8, 1.2)
    saturation: tuple[float, float] = (0.85, 1.15)
    noise_std: float = 0.015
    blur_prob: float = 0.3
    blur_kernel: tuple[int, int] = (3, 7)
    erase_prob: float = 0.2
    erase_area: tuple[float, float] = (0.02, 0.1)
    erase_aspect: tuple[float, float] = (0.3, 3.33)
    zoom: bool = False
    zoom_range: tuple[float, float] = (0.9, 1.1)


def photometric(
    images: list[np.ndarray], rng: np.random.Generator, cfg: AugmentationConfig
) -> list[np.ndarray]:
    """Apply shared photometric changes to ``images`` (each ``(S, S, 3)`` float32 RGB in 0..1); returns new arrays."""
    b = rng.uniform(-cfg.brightness, cfg.brightness)
    c = rng.uniform(*cfg.contrast)
    s = rng.uniform(*cfg.saturation)
    blur = rng.random() < cfg.blur_prob
    k = int(rng.integers(cfg.blur_kernel[0] // 2, cfg.blur_kernel[1] // 2 + 1)) * 2 + 1
    erase = None
    if rng.random() < cfg.erase_prob:
        area = rng.uniform(*cfg.erase_area)
        aspect = np.exp(rng.uniform(np.log(cfg.erase_aspect[0]), np.log(cfg.erase_aspect[1])))
        eh, ew = min(1.0, np.sqrt(area / aspect)), min(1.0, np.sqrt(area * aspect))
        erase = (rng.uniform(0, 1 - eh), rng.uniform(0, 1 - ew), eh, ew)
    # brightness, contrast about the mean and saturation folded into one affine colour transform per view:
    # x' = c S x + (m (1 - c) + c b), S = s I + (1 - s) / 3 (rows sum to 1, so S maps gray to itself).
    sat = s * np.eye(3) + (1 - s) / 3.0
    out = []
    for img in images:
        x = np.ascontiguousarray(img, dtype=np.float32)
        m = float(np.mean(cv2.mean(x)[:3])) + b
        affine = np.hstack([c * sat, np.full((3, 1), m * (1 - c) + c * b)]).astype(np.float32)
        x = cv2.transform(x, affine)
        if cfg.noise_std > 0:  # OpenCV's generator (4x faster than numpy's), seeded from ours: reproducible
            noise = np.empty_like(x)
            cv2.setRNGSeed(int(rng.integers(0, 2**31 - 1)))
            cv2.randn(noise.reshape(noise.shape[0], -1), 0.0, float(cfg.noise_std))
            x += noise
        if blur:
            x = cv2.GaussianBlur(x, (k, k), 0)
        if erase is not None:
            h, w = x.shape[:2]
            y0, x0 = int(erase[0] * h), int(erase[1] * w)
            x[y0 : y0 + max(1, int(erase[2] * h)), x0 : x0 + max(1, int(erase[3] * w))] = float(
                np.mean(cv2.mean(x)[:3])
            )
        np.clip(x, 0.0, 1.0, out=x)
        out.append(x)
    return out


def zoom(
    images: list[np.ndarray],
    keypoints_2d: np.ndarray,
    visibility: np.ndarray,
    intrinsics: np.ndarray,
    scale: float,
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """Zoom every view by ``scale`` about the image centre, updating keypoints and camera matrices.

    Parameters
    ----------
    images
        ``V`` images ``(S, S, C)``.
    keypoints_2d
        ``(V, J, 2)`` normalised ``(y, x)`` (pixel = value * S).
    visibility
        ``(V, J)`` visibility.
    intrinsics
        ``(V, 3, 3)`` camera matrices of the stored images.
    scale
        Zoom factor (> 1 magnifies).

    Returns
    -------
    tuple
        New images, keypoints, visibility and intrinsics. With ``c = (S - 1) / 2`` (pixel centres at integers):
        ``x' = scale (x - c) + c`` and ``K' = T K`` with ``T = [[scale, 0, c (1 - scale)], [0, scale, ...], [0, 0, 1]]``.
    """
    out_imgs, kps, vis, ks = [], keypoints_2d.copy(), visibility.copy(), intrinsics.copy()
    for v, img in enumerate(images):
        size = img.shape[0]
        c = (size - 1) / 2.0
        t = np.array([[scale, 0.0, c * (1 - scale)], [0.0, scale, c * (1 - scale)], [0.0, 0.0, 1.0]])
        out_imgs.append(
            cv2.warpAffine(
                img,
                t[:2],
                (img.shape[1], img.shape[0]),
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REFLECT_101,
            )
        )
        px = kps[v] * size
        px = scale * (px - c) + c
        inside = np.all((px >= -0.5) & (px <= size - 0.5), axis=-1)
        vis[v] = np.where(inside, vis[v], 0.0)
        kps[v] = np.where(vis[v][:, None] > 0, px / size, 0.0)
        ks[v] = t @ ks[v]
    return out_imgs, kps.astype(np.float32), vis.astype(np.float32), ks.astype(np.float32)
