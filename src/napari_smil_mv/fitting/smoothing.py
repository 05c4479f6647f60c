"""Temporal smoothing that cannot destroy a fit: which frames are neighbours, and the robust acceleration scale.

Two protections, both decided once per fit from the frame numbers, the frame rate and the initial 3D keypoints
(given or DLT-triangulated, before any smoothing):

1. **Breaks.** Frames ``t`` and ``t+1`` are smoothed against each other only when they are neighbours: their frame
   numbers differ by at most ``smooth_max_gap`` *and* (``smooth_detect_breaks``) the initial 3D keypoints do not
   jump between them. A jump is a median keypoint step above ``smooth_max_speed`` body lengths per second (÷ fps;
   30 fps assumed when unknown) or above ``smooth_jump_factor`` × the clip's median step (plus the noise floor).
   Sparse labelled frames exported and renumbered 0..N look adjacent by number, but the animal moves much further
   between them than between video frames, so their pairs are breaks.
2. **Robust acceleration.** The ``smooth_acc`` term is, per frame triple and joint, ``s² ρ(|a|²/s²)`` with the
   acceleration ``a`` in body lengths per frame², ``ρ`` Geman-McClure (``x/(1+x)``, default) or Cauchy
   (``log(1+x)``): equal to the old quadratic term ``|a|²`` for small accelerations, bounded (Geman-McClure) or
   logarithmic (Cauchy) for large ones, so a joint that really moves fast (or a missed break) is not pulled
   towards a straight line. The scale ``s`` is the larger of the keypoint noise (``8 × σ₃D``, σ₃D estimated from
   the DLT residual in pixels × depth / focal length) and a typical acceleration of the animal
   (``smooth_acc_typical`` body lengths/s² ÷ fps², when the fps is known); ``smooth_acc_scale`` overrides it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Frame rate assumed for the speed test when the data has none.
DEFAULT_FPS = 30.0


@dataclass
class SmoothingPlan:
    """Which consecutive frames are smoothed and at what acceleration scale.

    Attributes
    ----------
    pair_mask : (T-1,) float, 1 where frames t and t+1 are neighbours
    acc_scale : robust scale of the acceleration, body lengths per frame² (``inf``: plain quadratic)
    n_breaks : number of pairs that are not neighbours
    n_jumps : of those, pairs whose frame numbers are adjacent but whose 3D keypoints jump
    noise_bl : estimated 3D keypoint noise σ₃D in body lengths (NaN when unknown)
    acc_weight_gain : factor applied to the ``smooth_acc`` weight (1 unless ``smooth_adaptive_gain`` > 0, see
        :func:`jitter_to_motion`)
    jitter_to_motion : the measured ratio (NaN when not measured)
    jitter_to_noise : the jitter variance over the squared keypoint noise σ₃D² (about 6 for white noise; NaN when
        not measured); above ``smooth_adaptive_max_jitter`` the gain stays 1
    """

    pair_mask: np.ndarray
    acc_scale: float
    n_breaks: int
    n_jumps: int
    noise_bl: float
    acc_weight_gain: float = 1.0
    jitter_to_motion: float = float("nan")
    jitter_to_noise: float = float("nan")

    def to_dict(self) -> dict:
        return {
            "pairs_smoothed": int(self.pair_mask.sum()),
            "breaks": self.n_breaks,
            "jumps": self.n_jumps,
            "acc_scale_bl": self.acc_scale if math.isfinite(self.acc_scale) else None,
            "noise_bl": self.noise_bl if math.isfinite(self.noise_bl) else None,
            "acc_weight_gain": self.acc_weight_gain,
            "jitter_to_motion": self.jitter_to_motion if math.isfinite(self.jitter_to_motion) else None,
            "jitter_to_noise": self.jitter_to_noise if math.isfinite(self.jitter_to_noise) else None,
        }


def index_pairs(frame_indices: np.ndarray, max_gap: int) -> np.ndarray:
    """(T-1,) bool: frame numbers increase by at most ``max_gap`` between consecutive frames."""
    gaps = np.diff(np.asarray(frame_indices, dtype=np.int64))
    return (gaps > 0) & (gaps <= max_gap)


def keypoint_noise(points_3d: np.ndarray, keypoints_2d: np.ndarray, weights: np.ndarray, rig) -> float:
    """3D keypoint noise σ₃D (world units): median reprojection residual (px) × depth / focal length.

    Parameters
    ----------
    points_3d
        (T, N, 3) initial 3D keypoints, NaN = missing.
    keypoints_2d, weights
        (C, T, N, 2) observations (px) and (C, T, N) weights; only cameras/keypoints with weight > 0 count.
    rig
        The C cameras.
    """
    ratios = []
    for c, cam in enumerate(rig):
        ok = (weights[c] > 0) & np.isfinite(points_3d).all(-1) & np.isfinite(keypoints_2d[c]).all(-1)
        if not ok.any():
            continue
        X = points_3d[ok]
        depth = X @ cam.R[2] + cam.tvec[2]
        px = cam.project(X)
        err = np.linalg.norm(px - keypoints_2d[c][ok], axis=-1)
        focal = 0.5 * (cam.K[0, 0] + cam.K[1, 1])
        good = np.isfinite(err) & (depth > 0)
        if good.any():
            ratios.append(err[good] * depth[good] / focal)
    if not ratios:
        return float("nan")
    return float(np.median(np.concatenate(ratios)))


def jitter_and_motion(points_3d: np.ndarray, pair_mask: np.ndarray, span: int) -> tuple[float, float]:
    """Frame-to-frame jitter ``n`` and real acceleration ``m`` of 3D keypoint tracks (NaN, NaN if unknown).

    With ``X = smooth motion + white noise``, the second difference over ``k`` frames
    ``D_k = X(t+k) − 2X(t) + X(t−k)`` has ``E|D_k|² ≈ n + k⁴ m`` (``n`` the noise part, ``m`` the squared
    acceleration per frame²). From the medians ``d_1`` of ``|D_1|²`` and ``d_k`` of ``|D_k|²`` (``k = span``,
    triples inside runs of smoothed pairs only): ``n = (k⁴ d_1 − d_k) / (k⁴ − 1)`` and ``m = (d_k − n) / k⁴``.
    White noise of per-point RMS ``σ`` gives ``n ≈ 6 σ²``.

    Parameters
    ----------
    points_3d
        (T, N, 3) initial 3D keypoints, any length unit, NaN = missing.
    pair_mask
        (T-1,) bool, frames t and t+1 are neighbours.
    span
        ``k`` >= 2, frames.

    Returns
    -------
    tuple
        ``(n, m)``: squared length per frame triple and squared length per frame⁴ (units of ``points_3d``).
    """
    X = np.asarray(points_3d, dtype=np.float64)
    T = X.shape[0]
    if T < 2 * span + 1 or span < 2:
        return float("nan"), float("nan")
    run = np.concatenate([[0], np.cumsum(~np.asarray(pair_mask, dtype=bool))])  # run id of every frame

    def d2(k: int) -> float:
        ok = run[2 * k :] == run[: T - 2 * k]  # the three frames lie in one run of neighbours
        if not ok.any():
            return float("nan")
        D = X[2 * k :][ok] - 2.0 * X[k : T - k][ok] + X[: T - 2 * k][ok]
        sq = (D**2).sum(-1)
        sq = sq[np.isfinite(sq)]
        return float(np.median(sq)) if sq.size else float("nan")

    d1, dk = d2(1), d2(span)
    if not (math.isfinite(d1) and math.isfinite(dk)):
        return float("nan"), float("nan")
    k4 = float(span) ** 4
    noise = max((k4 * d1 - dk) / (k4 - 1.0), 0.0)
    motion = max((dk - noise) / k4, 0.0)
    return noise, motion


def jitter_to_motion(points_3d: np.ndarray, pair_mask: np.ndarray, span: int) -> float:
    """Variance ratio ``n / m`` of frame-to-frame jitter to real motion (:func:`jitter_and_motion`), clipped to
    ``[0, 1e6]``: 0 on noise-free smooth tracks, large when the tracks jitter much more than the animal moves;
    NaN when it cannot be measured (fewer than ``2 span + 1`` frames in one run of neighbours)."""
    return _variance_ratio(*jitter_and_motion(points_3d, pair_mask, span))


def _variance_ratio(noise: float, motion: float) -> float:
    """``noise / motion`` clipped to ``[0, 1e6]`` (0 without noise), NaN when either is unknown."""
    if not (math.isfinite(noise) and math.isfinite(motion)):
        return float("nan")
    if noise == 0.0:
        return 0.0
    return float(min(noise / motion, 1e6)) if motion > 0 else 1e6


def plan_smoothing(
    frame_indices: np.ndarray,
    points_3d: np.ndarray | None,
    body_length: float,
    fps: float | None,
    config,
    noise: float = float("nan"),
) -> SmoothingPlan:
    """Decide the neighbour pairs and the robust acceleration scale of a clip (see the module docstring).

    Parameters
    ----------
    frame_indices
        (T,) frame numbers.
    points_3d
        (T, N, 3) initial 3D keypoints (world units, NaN = missing), or None (then only the frame numbers count).
    body_length
        The fit's length scale (world units).
    fps
        Frame rate, or None.
    config
        The :class:`~napari_smil_mv.fitting.config.FitConfig`.
    noise
        3D keypoint noise σ₃D in world units (:func:`keypoint_noise`), NaN when unknown.
    """
    pairs = index_pairs(frame_indices, config.smooth_max_gap)
    rate = float(fps) if fps and fps > 0 else DEFAULT_FPS
    noise_bl = noise / body_length if math.isfinite(noise) and body_length > 0 else float("nan")
    n_jumps = 0
    if config.smooth_detect_breaks and points_3d is not None and len(frame_indices) > 1:
        X = np.asarray(points_3d, dtype=np.float64) / body_length
        with np.errstate(invalid="ignore"):
            steps = np.linalg.norm(X[1:] - X[:-1], axis=-1)  # (T-1, N), NaN where missing
        have = np.isfinite(steps).any(-1)
        step = np.full(len(steps), np.nan)
        step[have] = np.nanmedian(steps[have], axis=-1)
        gaps = np.maximum(np.diff(np.asarray(frame_indices, dtype=np.int64)), 1)
        per_frame = step / gaps
        floor = 3.0 * noise_bl if math.isfinite(noise_bl) else 0.0
        limit = config.smooth_max_speed / rate
        candidates = pairs & np.isfinite(per_frame)
        if candidates.any():
            typical = float(np.median(per_frame[candidates]))
            limit = min(limit, config.smooth_jump_factor * typical + floor) if typical > 0 else limit
        jump = candidates & (per_frame > max(limit, floor))
        n_jumps = int(jump.sum())
        pairs = pairs & ~jump
    if config.smooth_acc_scale is not None:
        scale = float(config.smooth_acc_scale)
    elif config.smooth_loss == "l2":
        scale = math.inf
    else:
        candidates = [config.smooth_acc_typical / rate**2 if fps and fps > 0 else 0.0]
        if math.isfinite(noise_bl):
            candidates.append(8.0 * noise_bl)
        scale = max(candidates)
        if not scale > 0:
            scale = config.smooth_acc_typical / DEFAULT_FPS**2
    gain, ratio, jitter_noise = 1.0, float("nan"), float("nan")
    if config.smooth_adaptive_gain > 0 and points_3d is not None:
        span = max(2, int(round(rate * config.smooth_adaptive_span_s)))
        n, m = jitter_and_motion(points_3d, pairs, span)
        if math.isfinite(n) and math.isfinite(noise) and noise > 0:
            jitter_noise = n / noise**2
        ratio = _variance_ratio(n, m)
        # Only jitter that keypoint noise explains is smoothed harder: frames that are far apart in time but
        # numbered as neighbours (renumbered sparse labels with undetected jumps) "jitter" by the animal's
        # motion, thousands of times the noise variance (white noise: about 6).
        if (
            math.isfinite(ratio)
            and math.isfinite(jitter_noise)
            and jitter_noise <= config.smooth_adaptive_max_jitter
        ):
            gain = min(max(1.0, config.smooth_adaptive_gain * ratio), config.smooth_adaptive_max)
    return SmoothingPlan(
        pair_mask=pairs.astype(np.float64),
        acc_scale=scale,
        n_breaks=int((~pairs).sum()),
        n_jumps=n_jumps,
        noise_bl=noise_bl,
        acc_weight_gain=gain,
        jitter_to_motion=ratio,
        jitter_to_noise=jitter_noise,
    )
