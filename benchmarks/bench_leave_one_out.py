"""Leave-one-camera-out figures on the real minimal_session without points3d.h5, for several fit settings.

Usage::

    python benchmarks/bench_leave_one_out.py                                  # default and adaptive smoothing
    python benchmarks/bench_leave_one_out.py --set smooth_adaptive_gain=3 --set smooth_acc=100 --per-joint

Data: ``../shared/external/sleap-anipose/minimal_session`` linked into a temporary folder without ``points3d.h5``,
the model ``../shared/models/SMILy_Mouse_static_joints.pkl`` and ``examples/minimal_session_mouse_joint_lookup.csv``
(``side`` is left out by the camera check). For each setting (a FitConfig field, or a loss weight name) and each
good camera: fit/DLT median of the left-out camera (:func:`napari_smil_mv.fitting.validate.leave_one_camera_out`),
the median reprojection error of the fit with every camera, and with ``--per-joint`` the per-joint medians
(fit/DLT) of the left-out camera, all in the same run.

``--frontier`` prints, for each left-out camera, what any 3D estimate would have to give up to reach the target:
a weighted DLT of the same keypoints from every good camera with the left-out camera's weights multiplied by
``λ`` (0 = the DLT from the others, large = the left-out camera's own labels), and the median errors this gives
in the left-out camera and in each remaining camera. An estimate that reaches fit/DLT <= 0.8 without seeing the
left-out camera must sit as far from the remaining cameras' labels as the row that reaches 0.8 here.
"""

from __future__ import annotations

import argparse
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SESSION = SHARED / "external" / "sleap-anipose" / "minimal_session"
MODEL = SHARED / "models" / "SMILy_Mouse_static_joints.pkl"
JOINT_MAP = REPO / "examples" / "minimal_session_mouse_joint_lookup.csv"


def _config(setting: str):
    from napari_smil_mv.fitting import FitConfig
    from napari_smil_mv.fitting.config import LOSS_TERMS

    if not setting:
        return FitConfig()
    kwargs, weights = {}, {}
    for item in setting.split(","):
        key, value = item.split("=")
        (weights if key in LOSS_TERMS else kwargs)[key] = float(value)
    return FitConfig(weights=weights, **kwargs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--set",
        action="append",
        default=None,
        help="comma-separated key=value FitConfig fields or loss weights; repeat for several settings "
        "(default: the default config and smooth_adaptive_gain=3); an empty string is the default config",
    )
    p.add_argument("--per-joint", action="store_true", help="print per-joint medians of each left-out camera")
    p.add_argument(
        "--frontier", action="store_true", help="print the DLT trade-off of each left-out camera (no fits)"
    )
    args = p.parse_args()
    settings = args.set if args.set is not None else ["", "smooth_adaptive_gain=3"]

    from napari_smil_mv.body import load_smil_model
    from napari_smil_mv.fitting import fit, fit_data_from_session
    from napari_smil_mv.fitting.validate import held_out_errors, leave_one_camera_out
    from napari_smil_mv.sessions import JointMap, load_session

    model = load_smil_model(MODEL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        session = replace(load_session(SESSION), points3d=None, points3d_source=None)  # triangulated instead
    data = fit_data_from_session(session, JointMap.read(JOINT_MAP), model.joint_names)
    if args.frontier:
        _frontier(data, ("back", "mid", "top"))
        return
    for setting in settings:
        config = _config(setting)
        t0 = time.perf_counter()
        full = fit(model, data, config)
        used = np.array([c.used for c in full.cameras])
        full_px = float(np.nanmedian(full.reprojection_error[used]))
        rows = leave_one_camera_out(model, data, config, full=full)
        ratios = "  ".join(
            f"{r.camera} {r.ratio:.3f} ({r.fit_px:.2f}/{r.dlt_px:.2f} px, seen {r.seen_px:.2f})" for r in rows
        )
        print(
            f"{setting or 'default':<40} {ratios}  full fit {full_px:.2f} px  "
            f"({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
        if args.per_joint:
            names = data.camera_names
            for r in rows:
                c = names.index(r.camera)
                remaining = np.isin(names, r.remaining)
                sub_fit = fit(model, _without(data, remaining), config)
                fe, de = held_out_errors(sub_fit.joints_3d, data, c, remaining)
                parts = [
                    f"{data.data_names[j]} {np.nanmedian(fe[:, j]):.1f}/{np.nanmedian(de[:, j]):.1f}"
                    for j in range(data.n_joints)
                    if np.isfinite(fe[:, j]).any()
                ]
                print(f"    {r.camera}: " + ", ".join(parts))


def _frontier(data, good_names: tuple[str, ...]) -> None:
    """Median errors of weighted DLTs that trade the left-out camera's labels against the others' (see --frontier)."""
    from napari_smil_mv.fitting.initialise import triangulate_weighted
    from napari_smil_mv.fitting.quality import dlt_residuals

    names = list(data.camera_names)
    good = np.isin(names, good_names)
    for held in good_names:
        c = names.index(held)
        remaining = good.copy()
        remaining[c] = False
        base = dlt_residuals(data.keypoints_2d, data.weights, data.cameras, remaining)
        same = (data.weights[c] > 0) & np.isfinite(base[c])
        dlt = float(np.median(base[c][same]))
        print(
            f"{held} left out: DLT from {[n for n, r in zip(names, remaining, strict=True) if r]} {dlt:.2f} px"
        )
        for lam in (0.0, 0.1, 0.3, 0.5, 0.7, 1.0, 3.0):
            w = data.weights * good[:, None, None]
            w[c] = w[c] * lam
            points = triangulate_weighted(data.keypoints_2d, w, data.cameras)
            err = np.linalg.norm(data.cameras.project(points) - data.keypoints_2d, axis=-1)
            held_px = float(np.median(err[c][same]))
            others = ", ".join(
                f"{names[k]} {np.median(err[k][same & (data.weights[k] > 0)]):.2f} px"
                for k in np.flatnonzero(remaining)
            )
            print(f"    lambda {lam:<4}: {held} {held_px:6.2f} px (x{held_px / dlt:.2f} of DLT)  | {others}")


def _without(data, remaining: np.ndarray):
    from dataclasses import replace

    return replace(data, camera_weights=np.where(remaining, data.camera_weights, 0.0), metadata={})


if __name__ == "__main__":
    main()
