"""``napari-smil-mv fit SESSION -o results.smilmv.h5``: fit a SMIL body model to a multi-camera session.

Prints one progress line per reported step, then a per-camera summary, and writes a results file.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

from napari_smil_mv.cli import CommandError
from napari_smil_mv.commands._args import (
    add_exclude_cameras,
    camera_names,
    check_output,
    parse_animal,
    parse_frames,
    torch_device,
)


def register(subparsers) -> None:
    """Add the ``fit`` sub-command."""
    p = subparsers.add_parser(
        "fit",
        help="fit a SMIL body model to the 2D keypoints of every calibrated camera of a session",
        description=(
            "Fit body pose (per frame), shape, mesh scale and per-joint scales/offsets (per clip) of a SMIL model "
            "to the 2D keypoints of every camera of a session (and its 3D points when present), and write a "
            "results file (.smilmv.h5). The model is initialised automatically by aligning it to the triangulated "
            "keypoints; cameras whose calibration disagrees with the others are detected and left out."
        ),
    )
    p.add_argument(
        "session", help="session folder, its calibration.toml, or a .slp holding a recording session"
    )
    p.add_argument("-o", "--output", required=True, help="output results file (*.smilmv.h5)")
    p.add_argument("--model", default=None, help="SMIL model .pkl (default: the embedded demo insect model)")
    p.add_argument(
        "--joint-map",
        default=None,
        help="joint_lookup.csv (columns model,data) mapping data nodes to model joints (default: the session's "
        "joint_lookup.csv, else an automatic match by name, printed)",
    )
    p.add_argument(
        "--frames",
        default=None,
        metavar="A:B",
        help="video frames to fit, A <= frame < B (either end may be empty; default: all)",
    )
    p.add_argument("--animal", default="0", help="animal index or name (default 0)")
    p.add_argument(
        "--units", default=None, help="length unit of the calibration, e.g. mm (default: as loaded)"
    )
    add_exclude_cameras(p, "leave these cameras out of the fit")
    p.add_argument("--config", default=None, help="JSON file with FitConfig settings (see the fitting docs)")
    p.add_argument(
        "--iterations",
        type=int,
        default=None,
        help="maximum iterations of the last stage (default: 25 Levenberg-Marquardt steps)",
    )
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--quiet", action="store_true", help="print only the summary")
    p.add_argument(
        "--validate-cameras",
        action="store_true",
        help="leave-one-camera-out validation: fit again without each used camera and report its error next to "
        "DLT triangulation from the remaining cameras (one extra fit per camera; stored in the provenance)",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="exit with status 3 when the fit's verdict is 'failed' (the results file is still written)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``fit``; returns the exit code."""
    import numpy as np

    from napari_smil_mv.body import load_smil_model
    from napari_smil_mv.fitting import FitConfig
    from napari_smil_mv.fitting.session_fit import iter_session_fit, prepare_session_fit
    from napari_smil_mv.results import write_results
    from napari_smil_mv.sessions import load_session
    from napari_smil_mv.utils.atomic import check_free_space
    from napari_smil_mv.utils.events import drain

    def say(line: str) -> None:
        if not args.quiet:
            print(line, flush=True)

    output = Path(args.output)
    check_output(output, args.overwrite)
    device = torch_device(args.device)
    config = FitConfig()
    if args.config:
        try:
            config = FitConfig.from_dict(json.loads(Path(args.config).read_text()))
        except json.JSONDecodeError as exc:
            raise CommandError(f"{args.config} is not valid JSON: {exc}") from exc
        except ValueError as exc:  # unknown key or wrongly typed value, named
            raise CommandError(f"{args.config}: {exc}") from None
    if args.iterations is not None:
        if args.iterations < 1:
            raise CommandError("--iterations must be at least 1")
        config.stages[-1].iterations = args.iterations

    model = load_smil_model(args.model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # missing videos are fine for fitting
        session = load_session(args.session, units=args.units)
    rows = parse_frames(args.frames, session.frame_indices)
    excluded = list(camera_names(args.exclude_cameras))
    job = prepare_session_fit(  # ValueError (exit 2): a joint map that does not fit, an unknown camera
        session,
        model,
        args.joint_map,
        animal=parse_animal(args.animal),
        exclude_cameras=excluded,
        rows=rows,
        check_joint_map=False,
        note=say,
    )
    data = job.data
    say(
        f"session {session.name}: {data.n_frames} frames, cameras {data.camera_names}, model {model.source} "
        f"({model.n_joints} joints, {int(data.mapped.sum())} observed), units {data.units}"
    )

    # refuse before the fit when the results could not be written (upper bound: uncompressed float64 arrays)
    t_, c_, j_ = data.n_frames, len(data.camera_names), model.n_joints
    check_free_space(output, 8 * t_ * (j_ * 6 + c_ * j_ * 6 + 64) + (1 << 20), str(output))
    t0 = time.perf_counter()

    def report(event) -> None:
        last_of_stage = event.iteration == event.total or event.message.endswith("(converged)")
        if event.stage == "init" or event.stage == "done" or last_of_stage:
            say(f"[{event.elapsed_s:6.2f} s] {event.message}")
        elif not args.quiet and event.iteration % (config.report_every * 5) == 0:
            terms = ", ".join(f"{k} {v:.3g}" for k, v in event.loss_terms.items() if k != "total")
            say(f"[{event.elapsed_s:6.2f} s] {event.message} ({terms})")

    provenance = {"command": "napari-smil-mv fit", "frames": args.frames}
    result, results = drain(iter_session_fit(job, config, device=device, provenance=provenance), report)
    if args.validate_cameras:
        from napari_smil_mv.fitting.validate import format_table, leave_one_camera_out

        try:
            rows = leave_one_camera_out(model, data, config, full=result, progress=say, device=device)
        except ValueError as exc:
            raise CommandError(f"--validate-cameras: {exc}") from exc
        results.provenance["validate_cameras"] = [r.to_dict() for r in rows]
    write_results(results, output, overwrite=args.overwrite)
    print(result.summary())
    if args.validate_cameras:
        print("\n".join(format_table(rows)))
    print(f"wrote {output} ({results.n_frames} frames, {time.perf_counter() - t0:.1f} s)")
    if args.strict and result.quality is not None and result.quality.verdict == "failed":
        print("--strict: the fit's verdict is FAILED (see the verdict line above); exit status 3")
        return 3
    return 0 if np.isfinite(result.reprojection_median()) else 1
