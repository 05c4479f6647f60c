"""Verdict on a fit: its reprojection error against the DLT triangulation residual of the same keypoints.

A body fit has fewer degrees of freedom than a free triangulation of every keypoint, so on the same keypoints and
cameras its reprojection error is normally a little above the residual of a plain weighted DLT triangulation (the
free 3D point closest to the rays). Both are computed in the same run, on the same keypoints: observed (weight > 0)
in a camera used by the fit, whose DLT point exists (seen by at least two used cameras). The reference is the DLT
median, but at least ``floor_px`` (1 px: on noise-free data both are ~0). With ``ratio = fit median / reference``:

* **good**: ratio ≤ ``good_ratio`` (2) and at most ``max_bad_frames`` (10 %) of the frames are *failed*;
* **poor**: ratio ≤ ``failed_ratio`` (5) and at most ``max_failed_frames`` (25 %) of the frames are *failed*;
* **failed**: otherwise (e.g. smoothing or a wrong joint map pulled the model away from the keypoints).

Each frame gets the same verdict from its own medians (codes 0 good, 1 poor, 2 failed, -1 no keypoints). Per camera
and per joint the medians of both are reported too, so thin chains (tail, ears) and bad cameras show up.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from napari_smil_mv.fitting.initialise import triangulate_weighted
from napari_smil_mv.results.metrics import finite_median

VERDICTS = ("good", "poor", "failed")


@dataclass
class QualityThresholds:
    """Thresholds of the verdict (see the module docstring)."""

    good_ratio: float = 2.0
    failed_ratio: float = 5.0
    floor_px: float = 1.0
    max_bad_frames: float = 0.10
    max_failed_frames: float = 0.25


@dataclass
class FitQuality:
    """Per frame, camera and joint quality of a fit (all errors in pixels).

    Attributes
    ----------
    verdict : ``"good"``, ``"poor"`` or ``"failed"``
    fit_px, dlt_px : medians of the fit's reprojection error and of the DLT residual over the compared keypoints
    ratio : fit_px / max(dlt_px, floor_px)
    dlt_residual : (C, T, J) DLT residual per keypoint (NaN where not compared)
    compared : (C, T, J) bool, the keypoints compared
    frame_fit_px, frame_dlt_px : (T,) per-frame medians; frame_verdict : (T,) int codes (-1 none, 0, 1, 2)
    camera_fit_px, camera_dlt_px : (C,) per camera over its observed keypoints (a camera not used by the fit: its
        error against the model / against the triangulation from the used cameras); joint_fit_px, joint_dlt_px : (J,) per joint (NaN: unobserved)
    joint_p90_px : (J,) 90th percentile of the fit error per joint
    thresholds : the thresholds used
    """

    verdict: str
    fit_px: float
    dlt_px: float
    ratio: float
    dlt_residual: np.ndarray
    compared: np.ndarray
    frame_fit_px: np.ndarray
    frame_dlt_px: np.ndarray
    frame_verdict: np.ndarray
    camera_fit_px: np.ndarray
    camera_dlt_px: np.ndarray
    joint_fit_px: np.ndarray
    joint_dlt_px: np.ndarray
    joint_p90_px: np.ndarray
    thresholds: QualityThresholds = field(default_factory=QualityThresholds)

    def frame_counts(self) -> dict[str, int]:
        return {name: int((self.frame_verdict == k).sum()) for k, name in enumerate(VERDICTS)}

    def worst_frames(self, n: int = 5) -> list[int]:
        """Positions (along T) of the ``n`` frames with the largest fit/DLT ratio."""
        ratio = self.frame_fit_px / np.maximum(np.nan_to_num(self.frame_dlt_px), self.thresholds.floor_px)
        order = np.argsort(-np.nan_to_num(ratio, nan=-np.inf))
        return [int(t) for t in order[:n] if np.isfinite(ratio[t])]

    def attrs(self) -> dict[str, Any]:
        """Scalars (JSON-compatible) for the results file."""
        return {
            "verdict": self.verdict,
            "fit_px": self.fit_px,
            "dlt_px": self.dlt_px,
            "ratio": self.ratio,
            "n_compared": int(self.compared.sum()),
            "frames": self.frame_counts(),
            "thresholds": vars(self.thresholds).copy(),
        }

    def arrays(self) -> dict[str, np.ndarray]:
        """Arrays for the results file (``/quality``)."""
        return {
            "dlt_residual": self.dlt_residual,
            "frame_fit_px": self.frame_fit_px,
            "frame_dlt_px": self.frame_dlt_px,
            "frame_verdict": self.frame_verdict.astype(np.int8),
            "camera_fit_px": self.camera_fit_px,
            "camera_dlt_px": self.camera_dlt_px,
            "joint_fit_px": self.joint_fit_px,
            "joint_dlt_px": self.joint_dlt_px,
            "joint_p90_px": self.joint_p90_px,
        }

    def summary_lines(
        self, joint_names: list[str] | None = None, frame_numbers: np.ndarray | None = None
    ) -> list[str]:
        """Human-readable verdict (and the worst frames) for the fit summary."""
        c = self.frame_counts()
        lines = [
            f"verdict: {self.verdict.upper()}: fit {self.fit_px:.2f} px vs DLT triangulation {self.dlt_px:.2f} px "
            f"on the same {int(self.compared.sum())} keypoints (ratio {self.ratio:.2f}; good <= "
            f"{self.thresholds.good_ratio:g}, failed > {self.thresholds.failed_ratio:g}); frames: {c['good']} good, "
            f"{c['poor']} poor, {c['failed']} failed"
        ]
        observed = [j for j in range(len(self.joint_fit_px)) if np.isfinite(self.joint_fit_px[j])]
        if observed:
            names = joint_names or [str(j) for j in range(len(self.joint_fit_px))]
            order = sorted(observed, key=lambda j: -self.joint_fit_px[j])
            cells = [
                f"{names[j]} {self.joint_fit_px[j]:.1f}/{self.joint_p90_px[j]:.1f} ({self.joint_dlt_px[j]:.1f})"
                for j in order
            ]
            lines.append("  per joint, fit median/p90 px (DLT median), worst first:")
            lines.extend("    " + "; ".join(cells[i : i + 4]) for i in range(0, len(cells), 4))
        worst = self.worst_frames(5)
        if worst:
            label = frame_numbers if frame_numbers is not None else np.arange(len(self.frame_fit_px))
            lines.append(
                "  worst frames: "
                + ", ".join(
                    f"{int(label[t])} ({self.frame_fit_px[t]:.1f} px vs {self.frame_dlt_px[t]:.1f})"
                    for t in worst
                )
            )
        return lines


def _medians(values: np.ndarray, axis) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices
        return np.nanmedian(values, axis=axis)


def _verdict(ratio: np.ndarray, th: QualityThresholds) -> np.ndarray:
    out = np.full(ratio.shape, -1, dtype=np.int8)
    ok = np.isfinite(ratio)
    out[ok] = np.where(ratio[ok] <= th.good_ratio, 0, np.where(ratio[ok] <= th.failed_ratio, 1, 2))
    return out


def dlt_residuals(keypoints_2d: np.ndarray, weights: np.ndarray, rig, used: np.ndarray) -> np.ndarray:
    """(C, T, J) reprojection residual (px) of a weighted DLT triangulation from the ``used`` cameras.

    Parameters
    ----------
    keypoints_2d, weights
        (C, T, J, 2) observed keypoints (px) and (C, T, J) weights.
    rig
        The C cameras.
    used
        (C,) bool: cameras that take part (the others get residuals too: their error against the triangulation).
    """
    w = np.asarray(weights, dtype=np.float64) * np.asarray(used, dtype=bool)[:, None, None]
    points = triangulate_weighted(keypoints_2d, w, rig)  # (T, J, 3), NaN where < 2 cameras
    proj = rig.project(points)
    return np.linalg.norm(proj - keypoints_2d, axis=-1)


def assess_fit(
    reprojection_error: np.ndarray,
    keypoints_2d: np.ndarray,
    weights: np.ndarray,
    rig,
    used: np.ndarray,
    thresholds: QualityThresholds | None = None,
) -> FitQuality:
    """Verdict of a fit from its reprojection errors and the DLT residual of the same keypoints.

    Parameters
    ----------
    reprojection_error
        (C, T, J) fit reprojection error, px (NaN where not observed).
    keypoints_2d, weights
        (C, T, J, 2) observed keypoints and (C, T, J) weights, in the same order.
    rig
        The C cameras.
    used
        (C,) bool, the cameras used by the fit.
    thresholds
        Verdict thresholds (defaults: :class:`QualityThresholds`).
    """
    th = thresholds or QualityThresholds()
    used = np.asarray(used, dtype=bool)
    dlt = dlt_residuals(keypoints_2d, weights, rig, used)
    fit_err = np.asarray(reprojection_error, dtype=np.float64)
    compared = (np.asarray(weights) > 0) & used[:, None, None] & np.isfinite(dlt) & np.isfinite(fit_err)
    f = np.where(compared, fit_err, np.nan)
    d = np.where(compared, dlt, np.nan)
    fit_px, dlt_px = finite_median(f), finite_median(d)
    ratio = fit_px / max(dlt_px, th.floor_px) if np.isfinite(fit_px) else float("nan")
    C, T, J = f.shape
    frame_fit = _medians(f.transpose(1, 0, 2).reshape(T, -1), axis=1)
    frame_dlt = _medians(d.transpose(1, 0, 2).reshape(T, -1), axis=1)
    frame_verdict = _verdict(frame_fit / np.maximum(np.nan_to_num(frame_dlt), th.floor_px), th)
    have = frame_verdict >= 0
    failed_frac = float((frame_verdict == 2).sum() / max(have.sum(), 1))
    if not np.isfinite(ratio):
        verdict = "failed"
    elif ratio <= th.good_ratio and failed_frac <= th.max_bad_frames:
        verdict = "good"
    elif ratio <= th.failed_ratio and failed_frac <= th.max_failed_frames:
        verdict = "poor"
    else:
        verdict = "failed"
    observed = (np.asarray(weights) > 0) & np.isfinite(fit_err)
    cam_fit = np.where(observed, fit_err, np.nan)  # every camera, used or not
    cam_dlt = np.where(observed, dlt, np.nan)
    all_err = np.where(used[:, None, None], cam_fit, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        joint_p90 = np.nanpercentile(all_err.transpose(2, 0, 1).reshape(J, -1), 90, axis=1)
    return FitQuality(
        verdict=verdict,
        fit_px=fit_px,
        dlt_px=dlt_px,
        ratio=float(ratio),
        dlt_residual=d,
        compared=compared,
        frame_fit_px=frame_fit,
        frame_dlt_px=frame_dlt,
        frame_verdict=frame_verdict,
        camera_fit_px=_medians(cam_fit.reshape(C, -1), axis=1),
        camera_dlt_px=_medians(cam_dlt.reshape(C, -1), axis=1),
        joint_fit_px=_medians(all_err.transpose(2, 0, 1).reshape(J, -1), axis=1),
        joint_dlt_px=_medians(d.transpose(2, 0, 1).reshape(J, -1), axis=1),
        joint_p90_px=joint_p90,
        thresholds=th,
    )
