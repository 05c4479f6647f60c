"""Consistency check of the cameras against each other before a fit.

A camera whose calibration does not match the others (wrong extrinsics pasted from another camera, a moved
camera, a swapped name) makes every multi-view fit worse. Before fitting we measure, per camera, how well the
initial 3D keypoints reproject into it; when the 3D keypoints are triangulated here, a leave-one-out search finds a
camera whose removal makes the remaining cameras much more consistent.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np

from napari_smil_mv.cameras.triangulation import reprojection_errors
from napari_smil_mv.fitting.initialise import triangulate_weighted
from napari_smil_mv.results.metrics import finite_median


@dataclass
class CameraReport:
    """What the fit says about one camera.

    Attributes
    ----------
    name : camera name
    init_median_px : median reprojection error of the initial 3D keypoints (px), NaN without observations
    fit_median_px : median reprojection error of the fitted model keypoints (px), NaN before the fit
    n_observations : number of observed keypoints (finite, weight > 0 before the camera weight)
    consistent : False when the camera disagrees with the others (see module docstring)
    used : whether the camera contributed to the fit
    note : human-readable verdict
    """

    name: str
    init_median_px: float
    fit_median_px: float
    n_observations: int
    consistent: bool
    used: bool
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def check_cameras(
    keypoints_2d: np.ndarray,
    weights: np.ndarray,
    rig,
    camera_weights: np.ndarray,
    points_3d: np.ndarray | None,
    outlier_px: float,
    outlier_ratio: float,
) -> tuple[np.ndarray, list[CameraReport], np.ndarray]:
    """Find cameras inconsistent with the others, and the 3D keypoints to initialise from.

    Parameters
    ----------
    keypoints_2d
        (C, T, N, 2) observations (px), NaN = missing.
    weights
        (C, T, N) keypoint weights.
    rig
        The C cameras.
    camera_weights
        (C,) user camera weights; cameras at 0 are not used for triangulation.
    points_3d
        (T, N, 3) given 3D keypoints, or None to triangulate here.
    outlier_px, outlier_ratio
        A camera is inconsistent when its median error exceeds ``outlier_px`` and ``outlier_ratio`` × the median
        error of the other cameras.

    Returns
    -------
    points_3d : (T, N, 3) 3D keypoints for initialisation (given, or triangulated from the consistent cameras)
    reports : one CameraReport per camera (fit_median_px still NaN)
    inconsistent : (C,) bool
    """
    C = keypoints_2d.shape[0]
    observed = np.isfinite(keypoints_2d).all(-1) & (weights > 0)
    active = [c for c in range(C) if camera_weights[c] > 0 and observed[c].any()]
    inconsistent = np.zeros(C, dtype=bool)
    w = weights * (np.asarray(camera_weights) > 0)[:, None, None]

    def errors_for(pts: np.ndarray) -> np.ndarray:
        err = reprojection_errors(pts, keypoints_2d, rig)  # (C, T, N), NaN behind a camera
        return np.where(observed, err, np.nan)

    if points_3d is not None:
        pts = points_3d
        err = errors_for(pts)
        med = np.array([finite_median(err[c]) for c in range(C)])
        for c in range(C):
            others = [finite_median(err[o]) for o in range(C) if o != c and np.isfinite(med[o])]
            ref = float(np.median(others)) if others else np.nan
            if (
                np.isfinite(med[c])
                and np.isfinite(ref)
                and med[c] > outlier_px
                and med[c] > outlier_ratio * ref
            ):
                inconsistent[c] = True
    else:
        wa = w.copy()
        pts = triangulate_weighted(keypoints_2d, wa, rig)
        while len(active) >= 3:
            best = None
            for c in active:
                wl = wa.copy()
                wl[c] = 0.0
                pts_c = triangulate_weighted(keypoints_2d, wl, rig)
                err_c = errors_for(pts_c)
                rest = finite_median(err_c[[o for o in active if o != c]])
                own = finite_median(err_c[c])
                if best is None or rest < best[1]:
                    best = (c, rest, own, pts_c)
            c, rest, own, pts_c = best
            if np.isfinite(own) and own > outlier_px and own > outlier_ratio * rest:
                inconsistent[c] = True
                active.remove(c)
                wa[c] = 0.0
                pts = pts_c
            else:
                break
        err = errors_for(pts)
        med = np.array([finite_median(err[c]) for c in range(C)])
    reports = []
    for c, cam in enumerate(rig):
        n_obs = int(observed[c].sum())
        if n_obs == 0:
            note = "no observations"
        elif inconsistent[c]:
            note = (
                f"pre-fit check: INCONSISTENT with the other cameras (the initial 3D keypoints reproject at "
                f"{med[c]:.1f} px median); check this camera's calibration (extrinsics, name)"
            )
        else:
            note = f"pre-fit check: consistent (initial 3D keypoints reproject at {med[c]:.1f} px median)"
        reports.append(
            CameraReport(
                cam.name,
                float(med[c]),
                float("nan"),
                n_obs,
                not inconsistent[c],
                bool(camera_weights[c] > 0),
                note,
            )
        )
    return pts, reports, inconsistent


def camera_verdicts(
    reports: list, err: np.ndarray, joint_names: list[str], data_names: list[str] | None, ratio: float = 2.0
) -> None:
    """Append to each camera's note how its fitted residuals compare with the other cameras'."""
    used = [c for c, r in enumerate(reports) if r.used and np.isfinite(r.fit_median_px)]
    for c, rep in enumerate(reports):
        others = [reports[o].fit_median_px for o in used if o != c]
        if not others or not np.isfinite(rep.fit_median_px):
            continue
        ref = float(np.median(others))
        if rep.fit_median_px <= ratio * ref:
            if rep.used:
                rep.note += f"; after the fit: in line with the others ({rep.fit_median_px:.1f} px, others' median {ref:.1f} px)"
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN joints
            per_joint = np.nanmedian(err[c], axis=0)  # (J,)
        worst = [j for j in np.argsort(-np.nan_to_num(per_joint, nan=-1.0))[:3] if np.isfinite(per_joint[j])]
        label = [
            f"{joint_names[j]}{f' ({data_names[j]})' if data_names and data_names[j] else ''} "
            f"{per_joint[j]:.0f} px"
            for j in worst
        ]
        rep.note += (
            f"; after the fit: residuals {rep.fit_median_px / ref:.1f}x the others' median ({rep.fit_median_px:.1f} "
            f"px vs {ref:.1f} px), its keypoints or calibration disagree with the other cameras; worst joints: "
            f"{', '.join(label)}"
        )
