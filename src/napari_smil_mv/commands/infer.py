"""``napari-smil-mv infer --checkpoint CKPT (--dataset H5 | --session PATH) -o results.smilmv.h5``.

Predicts body parameters with a trained network, optionally refines them with the fitter, writes results files
(one per session and animal; several get ``_<session>_<animal>`` added to the name) and optional exports.
"""

from __future__ import annotations

import argparse
import re
import time
import warnings
from pathlib import Path

from napari_smil_mv.cli import CommandError
from napari_smil_mv.commands._args import (
    add_exclude_cameras,
    camera_names,
    check_output,
    parse_frames,
    printed_warnings,
    torch_device,
)


def register(subparsers) -> None:
    """Add the ``infer`` sub-command."""
    p = subparsers.add_parser(
        "infer",
        help="predict body parameters with a trained network (dataset or session) and write results",
        description=(
            "Run a trained network on every sample of a preprocessed dataset, or on every frame of a session "
            "(crops are made on the fly; no dataset file needed). Writes results files (.smilmv.h5) like 'fit'; "
            "--refine starts the fitter from the predictions."
        ),
    )
    p.add_argument("--checkpoint", required=True, help="network checkpoint (best.pt / last.pt)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", default=None, help="preprocessed dataset file (.h5)")
    src.add_argument(
        "--session", default=None, help="session folder, its calibration.toml, or a session .slp"
    )
    p.add_argument("-o", "--output", required=True, help="output results file (*.smilmv.h5)")
    p.add_argument(
        "--model", default=None, help="body model .pkl if it moved since training (checked by SHA-256)"
    )
    p.add_argument("--refine", action="store_true", help="refine the predictions with the fitter")
    p.add_argument(
        "--iterations", type=int, default=None, help="fitter iterations of its last stage (--refine)"
    )
    p.add_argument("--frames", default=None, metavar="A:B", help="session: video frames A <= f < B")
    p.add_argument("--animal", default="0", help="session: animal index or name (default 0)")
    p.add_argument(
        "--joint-map",
        default=None,
        help="session: joint_lookup.csv (default: the session's, else the network's)",
    )
    p.add_argument("--units", default=None, help="session: length unit of the calibration, e.g. mm")
    add_exclude_cameras(
        p,
        "session: leave these cameras out of prediction, results and refinement (default: the cameras the "
        "network's training dataset left out; cameras the network was not trained on are left out of the "
        "prediction only, with a note)",
        none_if_absent=True,
    )
    p.add_argument("--batch-size", type=int, default=8, help="samples per network batch (default 8)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--export-animation", default=None, metavar="NPZ", help="also write an animation .npz")
    p.add_argument(
        "--export-meshes", default=None, metavar="NPZ|DIR", help="also write meshes (.npz or OBJ folder)"
    )
    p.add_argument("--export-csv", default=None, metavar="CSV", help="also write the 3D joints as CSV")
    p.add_argument(
        "--export-slp", default=None, metavar="DIR", help="also write per-camera .slp reprojections"
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--quiet", action="store_true", help="print only the summary")
    p.set_defaults(func=run)


def _suffixed(path: Path, tag: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", tag)
    name = path.name
    base = name[: -len(".smilmv.h5")] if name.endswith(".smilmv.h5") else path.stem
    ext = ".smilmv.h5" if name.endswith(".smilmv.h5") else path.suffix
    return path.with_name(f"{base}_{safe}{ext}")


def run(args: argparse.Namespace) -> int:
    """Run ``infer``; returns the exit code. Warnings (a video shorter than its labels, ...) are printed."""
    with printed_warnings():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from napari_smil_mv.inference import InferOptions, Predictor, iter_inference
    from napari_smil_mv.results import (
        evaluate,
        export_animation,
        export_joints_csv,
        export_meshes,
        export_slp,
        write_results,
    )

    def say(line: str) -> None:
        if not args.quiet:
            print(line, flush=True)

    output = Path(args.output)
    check_output(output, args.overwrite)
    npz_meshes = args.export_meshes if str(args.export_meshes or "").lower().endswith(".npz") else None
    for export in (args.export_animation, args.export_csv, npz_meshes):  # refuse before predicting anything
        if export:
            check_output(export, args.overwrite)
    if args.batch_size < 1:
        raise CommandError("--batch-size must be at least 1")
    torch_device(args.device)
    if args.refine and args.iterations is not None and args.iterations < 1:
        raise CommandError("--iterations must be at least 1")
    excluded = None if args.exclude_cameras is None else camera_names(args.exclude_cameras)
    if args.exclude_cameras is not None and args.dataset:
        raise CommandError(
            "--exclude-cameras applies to --session; for a dataset, preprocess it with --exclude-cameras"
        )
    if not Path(args.checkpoint).is_file():
        raise CommandError(f"checkpoint not found: {args.checkpoint}")
    if args.dataset:  # a missing, truncated or foreign dataset is named before the network is loaded
        from napari_smil_mv.dataset.schema import read_dataset_info

        read_dataset_info(args.dataset)
    t0 = time.perf_counter()
    source = args.dataset
    start = stop = None
    if not args.dataset:
        from napari_smil_mv.sessions import VideoMissingWarning, load_session

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", VideoMissingWarning)  # a camera without video is an error later
            source = load_session(args.session, units=args.units)
        parse_frames(args.frames, source.frame_indices)  # names a bad --frames (CommandError)
        if args.frames is not None:
            a, b = (x.strip() for x in args.frames.split(":"))
            start, stop = (int(a) if a else None), (int(b) if b else None)
    options = InferOptions(
        model=args.model,
        device=args.device,
        batch_size=args.batch_size,
        refine=args.refine,
        refine_iterations=args.iterations if args.refine else None,
        frame_start=start,
        frame_stop=stop,
        animal=args.animal,
        joint_map=args.joint_map,
        units=args.units,
        exclude_cameras=excluded,
    )
    pr = Predictor(args.checkpoint, args.model, args.device)
    events = iter_inference(pr, source, options)  # the workflow the Infer widget runs too
    results = []
    for ev in events:
        if ev.stage in ("load", "refine", "done") or ev.done == ev.total:
            say(f"[{time.perf_counter() - t0:6.1f} s] {ev.message}")
        results = ev.results
    if not results:
        raise CommandError("nothing was predicted")
    outputs = []
    for res in results:
        tag = f"{res.provenance.get('session_name', '')}_{res.provenance.get('animal_name', '')}"
        path = output if len(results) == 1 else _suffixed(output, tag)
        check_output(path, args.overwrite)
        tag = "" if len(results) == 1 else "_" + path.name.split(".")[0]
        for export in (args.export_animation, args.export_csv, npz_meshes):
            if export:
                check_output(_tagged(export, tag), args.overwrite)
        outputs.append(path)
    for res, path in zip(results, outputs, strict=True):
        res.provenance["command"] = "napari-smil-mv infer"
        write_results(res, path, overwrite=args.overwrite)
        m = evaluate(res)
        print(
            f"wrote {path}: {res.n_frames} frames, cameras {res.camera_names}; reprojection median "
            f"{m['reprojection_px_median']:.2f} px, PCK@5 {m['pck_5px']:.3f}, PCK@10 {m['pck_10px']:.3f}"
        )
        tag = "" if len(results) == 1 else "_" + path.name.split(".")[0]
        if args.export_animation:
            export_animation(res, _tagged(args.export_animation, tag), overwrite=args.overwrite)
        if args.export_csv:
            export_joints_csv(res, _tagged(args.export_csv, tag), overwrite=args.overwrite)
        if args.export_meshes:
            export_meshes(res, pr.model_data, _tagged(args.export_meshes, tag), overwrite=args.overwrite)
        if args.export_slp:
            export_slp(
                res, Path(args.export_slp) / tag.lstrip("_") if tag else args.export_slp, args.overwrite
            )
    return 0


def _tagged(path: str, tag: str) -> Path:
    p = Path(path)
    return p if not tag else p.with_name(p.stem + tag + p.suffix)
