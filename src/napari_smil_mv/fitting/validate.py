"""Leave-one-camera-out validation: how well does a fit predict a camera it has not seen?

For every good camera (used by the fit and consistent with the others) the clip is fitted again without it, and the
held-out camera's keypoints are compared with

* the fit's model keypoints projected into it, and
* a plain weighted DLT triangulation from the same remaining cameras, projected into it,

on the same keypoints (observed in the held-out camera, with a DLT point from at least two remaining cameras), in
the same run. ``ratio = fit median / DLT median`` below 1 means the body model predicts the unseen view better
than free triangulation of the same keypoints from the remaining views.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from napari_smil_mv.fitting.config import FitConfig
from napari_smil_mv.fitting.data import FitData
from napari_smil_mv.fitting.quality import dlt_residuals
from napari_smil_mv.results.metrics import finite_median


@dataclass
class HeldOutCamera:
    """Result of one left-out camera (pixels).

    Attributes
    ----------
    camera : name of the left-out camera
    fit_px : median error of the fit (without this camera) projected into it
    dlt_px : median error of the DLT triangulation from the remaining cameras projected into it
    ratio : fit_px / dlt_px
    n_keypoints : keypoints compared
    remaining : the cameras the fit and the triangulation used
    fit_p90_px, dlt_p90_px : 90th percentiles
    seen_px : median error on the same keypoints of the fit that *did* use this camera (the camera's own label
        noise and calibration error: a floor below which no estimate from the other cameras can go)
    """

    camera: str
    fit_px: float
    dlt_px: float
    ratio: float
    n_keypoints: int
    remaining: list[str]
    fit_p90_px: float
    dlt_p90_px: float
    seen_px: float = float("nan")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _p90(values: np.ndarray) -> float:
    v = values[np.isfinite(values)]
    return float(np.percentile(v, 90)) if v.size else float("nan")


def held_out_errors(
    joints_3d: np.ndarray, data: FitData, camera: int, remaining: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Errors (T, J) of the fitted joints and of the DLT from ``remaining`` (C,) bool in ``camera``, on the same
    keypoints (NaN elsewhere)."""
    obs = data.keypoints_2d[camera]
    proj = data.cameras[camera].project(joints_3d.reshape(-1, 3)).reshape(obs.shape)
    fit_err = np.linalg.norm(proj - obs, axis=-1)
    dlt_err = dlt_residuals(data.keypoints_2d, data.weights, data.cameras, remaining)[camera]
    same = (data.weights[camera] > 0) & np.isfinite(fit_err) & np.isfinite(dlt_err)
    return np.where(same, fit_err, np.nan), np.where(same, dlt_err, np.nan)


def leave_one_camera_out(
    model,
    data: FitData,
    config: FitConfig | None = None,
    cameras: Sequence[str] | None = None,
    good: np.ndarray | None = None,
    full=None,
    progress: Callable[[str], None] | None = None,
    **fit_kwargs: Any,
) -> list[HeldOutCamera]:
    """Fit without each good camera in turn and compare its keypoints with the fit and with DLT.

    Parameters
    ----------
    model
        The body model (anything :func:`~napari_smil_mv.fitting.fit` accepts).
    data
        The clip; ``data.camera_weights`` at 0 leaves a camera out of everything.
    config
        Fit settings of every fit (default ``FitConfig()``).
    cameras
        Names of the cameras to leave out in turn (default: every good camera).
    good
        (C,) bool, the cameras that take part (default: the full fit's used cameras, which leaves out the
        cameras the camera check finds inconsistent).
    full
        The :class:`~napari_smil_mv.fitting.FitResult` of the fit with every camera (fitted here when None; gives
        the cameras used and ``seen_px``).
    progress
        Called with a line per step.
    fit_kwargs
        Passed to :func:`~napari_smil_mv.fitting.fit` (``device``, ``dtype``...).

    Returns
    -------
    One :class:`HeldOutCamera` per left-out camera.
    """
    from napari_smil_mv.fitting.optimise import fit

    config = config or FitConfig()
    say = progress or (lambda line: None)
    names = list(data.camera_names)
    if full is None:
        say("fit with every camera")
        full = fit(model, data, config, **fit_kwargs)
    if good is None:
        good = np.array([c.used for c in full.cameras], dtype=bool)
    good = np.asarray(good, dtype=bool) & (np.asarray(data.camera_weights) > 0)
    targets = [names.index(n) for n in cameras] if cameras is not None else list(np.flatnonzero(good))
    if int(good.sum()) < 3:
        raise ValueError(
            f"leave-one-camera-out needs at least 3 good cameras (2 remain to triangulate), got "
            f"{[n for n, g in zip(names, good, strict=True) if g]}"
        )
    out = []
    for c in targets:
        remaining = good.copy()
        remaining[c] = False
        weights = np.where(remaining, data.camera_weights, 0.0)
        sub = replace(data, camera_weights=weights, metadata=dict(data.metadata))
        say(f"fit without {names[c]} (cameras {[n for n, r in zip(names, remaining, strict=True) if r]})")
        result = fit(model, sub, config, **fit_kwargs)
        fit_err, dlt_err = held_out_errors(result.joints_3d, data, c, remaining)
        f, d = finite_median(fit_err), finite_median(dlt_err)
        seen = np.where(np.isfinite(fit_err), full.reprojection_error[c], np.nan)
        out.append(
            HeldOutCamera(
                camera=names[c],
                fit_px=f,
                dlt_px=d,
                ratio=f / d if d > 0 else float("nan"),
                n_keypoints=int(np.isfinite(fit_err).sum()),
                remaining=[n for n, r in zip(names, remaining, strict=True) if r],
                fit_p90_px=_p90(fit_err),
                dlt_p90_px=_p90(dlt_err),
                seen_px=finite_median(seen),
            )
        )
    return out


def format_table(rows: list[HeldOutCamera]) -> list[str]:
    """Lines of a table: left-out camera, fit and DLT medians (p90), ratio."""
    lines = [
        "leave-one-camera-out: error in the left-out camera, fit without it vs DLT from the same cameras"
    ]
    for r in rows:
        lines.append(
            f"  {r.camera:<12} fit {r.fit_px:6.2f} px (p90 {r.fit_p90_px:6.1f})  DLT {r.dlt_px:6.2f} px "
            f"(p90 {r.dlt_p90_px:6.1f})  fit/DLT {r.ratio:.3f}  [fit that saw it: {r.seen_px:.2f} px; "
            f"{r.n_keypoints} keypoints; from {', '.join(r.remaining)}]"
        )
    return lines
