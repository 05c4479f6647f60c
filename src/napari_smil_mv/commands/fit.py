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
from napari_smil_mv.commands._args import camera_names, check_output, parse_animal, parse_frames, torch_device


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
    p.add_argument(
        "--exclude-cameras", default="", help="comma-separated camera names to leave out of the fit"
    )
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
    p.set_defaults(func=run)


def resolve_joint_map(args, session, model_joint_names, say):
    """The joint map from --joint-map, the session's joint_lookup.csv, or an automatic match."""
    from napari_smil_mv.sessions import JOINT_LOOKUP_CSV, JointMap, auto_match

    if args.joint_map:
        return JointMap.read(args.joint_map), str(args.joint_map)
    folder = session.path if session.path.is_dir() else session.path.parent
    for candidate in (folder / JOINT_LOOKUP_CSV, folder.parent / JOINT_LOOKUP_CSV):
        if candidate.is_file():
            jm = JointMap.read(candidate)
            if not jm.validate(session.skeleton.nodes, model_joint_names):
                say(f"joint map: {candidate}")
                return jm, str(candidate)
            say(f"ignoring {candidate}: it does not fit this session and model")
    jm = auto_match(session.skeleton.nodes, model_joint_names)
    if len(jm) < 3:
        raise CommandError(
            f"could not match the data nodes {list(session.skeleton.nodes)} to the model joints by name (only "
            f"{len(jm)} matched); write a joint_lookup.csv (columns model,data) and pass it with --joint-map"
        )
    say(
        f"joint map: automatic match by name ({len(jm)} nodes): "
        + ", ".join(f"{d}->{m}" for d, m in jm.pairs)
        + " (review it; pass --joint-map to override)"
    )
    return jm, "auto"


def run(args: argparse.Namespace) -> int:
    """Run ``fit``; returns the exit code."""
    import numpy as np

    from napari_smil_mv.body import load_smil_model
    from napari_smil_mv.fitting import FitConfig, fit_data_from_session, fit_iter
    from napari_smil_mv.results import write_results
    from napari_smil_mv.sessions import load_session
    from napari_smil_mv.utils.atomic import check_free_space

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
    joint_map, map_source = resolve_joint_map(args, session, model.joint_names, say)
    animal = parse_animal(args.animal)
    rows = parse_frames(args.frames, session.frame_indices)
    data = fit_data_from_session(session, joint_map, model.joint_names, animal=animal, frames=rows)
    excluded = list(camera_names([args.exclude_cameras]))
    unknown = [c for c in excluded if c not in data.camera_names]
    if unknown:
        raise CommandError(f"--exclude-cameras: no camera {unknown}; the session has {data.camera_names}")
    for name in excluded:
        data.camera_weights[data.camera_names.index(name)] = 0.0
    say(
        f"session {session.name}: {data.n_frames} frames, cameras {data.camera_names}, model {model.source} "
        f"({model.n_joints} joints, {int(data.mapped.sum())} observed), units {data.units}"
    )

    # refuse before the fit when the results could not be written (upper bound: uncompressed float64 arrays)
    t_, c_, j_ = data.n_frames, len(data.camera_names), model.n_joints
    check_free_space(output, 8 * t_ * (j_ * 6 + c_ * j_ * 6 + 64) + (1 << 20), str(output))
    t0 = time.perf_counter()
    result = None
    for event in fit_iter(model, data, config, device=device):
        last_of_stage = event.iteration == event.total or event.message.endswith("(converged)")
        if event.stage == "init" or event.stage == "done" or last_of_stage:
            say(f"[{event.elapsed_s:6.2f} s] {event.message}")
        elif not args.quiet and event.iteration % (config.report_every * 5) == 0:
            terms = ", ".join(f"{k} {v:.3g}" for k, v in event.loss_terms.items() if k != "total")
            say(f"[{event.elapsed_s:6.2f} s] {event.message} ({terms})")
        result = event.result
    assert result is not None
    prov = {
        "command": "napari-smil-mv fit",
        "model_file": model.source,
        "joint_map": map_source,
        "joint_map_pairs": [list(p) for p in joint_map.pairs],
        "frames": args.frames,
        "excluded_cameras": excluded,
    }
    results = result.to_results(data, model, provenance=prov)
    write_results(results, output, overwrite=args.overwrite)
    print(result.summary())
    print(f"wrote {output} ({results.n_frames} frames, {time.perf_counter() - t0:.1f} s)")
    return 0 if np.isfinite(result.reprojection_median()) else 1
