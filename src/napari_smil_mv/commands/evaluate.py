"""``napari-smil-mv evaluate RESULTS.smilmv.h5 [--session PATH] [--ground-truth GT] [--json]``.

Reprojection error (median overall and per camera), PCK at 5 and 10 px, and, against 3D references, the 3D joint
error (with a ground truth also relative to the body length).
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings


def register(subparsers) -> None:
    """Add the ``evaluate`` sub-command."""
    p = subparsers.add_parser(
        "evaluate",
        help="metrics of a results file: reprojection error per camera, PCK, 3D joint error",
        description=(
            "Evaluate a results file (.smilmv.h5) against the 2D keypoints stored in it (default), the keypoints "
            "and 3D points of a session (--session), or a ground truth (--ground-truth: a synthetic session's "
            "ground_truth.npz, or the session folder holding it). Errors are in pixels and in the results' units."
        ),
    )
    p.add_argument("results", help="results file (*.smilmv.h5)")
    p.add_argument(
        "--session", default=None, help="session to evaluate against (matched by camera and frame)"
    )
    p.add_argument("--ground-truth", default=None, help="ground_truth.npz (or its session folder)")
    p.add_argument("--animal", default=None, help="animal of the session (default: the fitted one)")
    p.add_argument(
        "--allow-mismatch",
        action="store_true",
        help="evaluate against --session even when it is not the session the results were made from "
        "(default: refuse; differences are printed as warnings either way)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def _fmt(value, unit: str = "") -> str:
    if isinstance(value, float):
        return "n/a" if not math.isfinite(value) else f"{value:.3g}{unit}"
    return f"{value}{unit}"


def run(args: argparse.Namespace) -> int:
    """Run ``evaluate``; returns 0 (2, through CommandError, for a session the results were not made from)."""
    from napari_smil_mv.commands._args import parse_animal
    from napari_smil_mv.results import evaluate, metrics_json, read_results

    results = read_results(args.results)
    animal = None if args.animal is None else parse_animal(args.animal)
    metrics = {"results": str(args.results)}
    if args.session:
        from napari_smil_mv.sessions import load_session

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            session = load_session(args.session, units=results.units if results.units != "unknown" else None)
        from napari_smil_mv.cli import CommandError
        from napari_smil_mv.results.references import session_mismatch

        match = session_mismatch(results, session, animal)
        if match.problems:
            text = match.message(session)
            if match.other_session and not args.allow_mismatch:
                raise CommandError(f"{text}. Pass --allow-mismatch to compare them anyway")
            print(f"warning: {text}", file=sys.stderr)
            metrics["warnings"] = [text]
        metrics["session"] = evaluate(results, session, animal=animal)
    else:
        metrics["stored"] = evaluate(results)
    if args.ground_truth:
        metrics["ground_truth"] = evaluate(results, args.ground_truth)
    if args.json:
        print(metrics_json(metrics))
        return 0
    units = results.units
    print(
        f"{args.results}: {results.n_frames} frames, {results.n_joints} joints, cameras {results.camera_names}, "
        f"units {units}"
    )
    for key, m in metrics.items():
        if key in ("results", "warnings"):
            continue
        print(f"against {m['reference']}:")
        print(f"  reprojection error against {m['reprojection_reference']}:")
        print(
            f"  median {_fmt(m['reprojection_px_median'], ' px')} (mean "
            f"{_fmt(m['reprojection_px_mean'], ' px')}) over {', '.join(m['cameras_used'])}; PCK@5px "
            f"{_fmt(m['pck_5px'])}, PCK@10px {_fmt(m['pck_10px'])}; {m['n_keypoints']} keypoints"
        )
        for name, value in m["reprojection_px_per_camera"].items():
            used = "" if name in m["cameras_used"] else " (not used in the fit)"
            print(f"    {name:<14} {_fmt(value, ' px')}{used}")
        if "joint_error_3d_median" in m:
            line = (
                f"  3D joint error median {_fmt(m['joint_error_3d_median'], ' ' + units)} over the "
                f"{len(m['joints_compared'])} observed joints"
            )
            if "body_length" in m:
                line += (
                    f" = {_fmt(100 * m['joint_error_3d_relative'])} % of the body length "
                    f"({_fmt(m['body_length'], ' ' + units)}, largest distance between the axial joints)"
                )
            print(line)
        if "joint_error_3d_median_all_joints" in m:
            print(
                f"  all {m['n_joints_all']} model joints: median "
                f"{_fmt(m['joint_error_3d_median_all_joints'], ' ' + units)} = "
                f"{_fmt(100 * m.get('joint_error_3d_relative_all_joints', float('nan')))} % of the body length; "
                f"the {m['n_joints_all'] - m['n_joints_observed']} unobserved joints (placed by the model and "
                f"its priors): {_fmt(m['joint_error_3d_median_unobserved_joints'], ' ' + units)}"
            )
    return 0
