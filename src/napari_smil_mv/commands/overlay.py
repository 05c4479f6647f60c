"""``napari-smil-mv overlay RESULTS.smilmv.h5 [--session S] -o DIR [--cameras ...] [--frames A:B]``.

One ``<camera>_overlay.mp4`` per camera: the fitted mesh and keypoints painted over the camera's video frames.
"""

from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    """Add the ``overlay`` sub-command."""
    p = subparsers.add_parser(
        "overlay",
        help="overlay videos per camera: fitted mesh + keypoints over the video frames",
        description=(
            "Write one <camera>_overlay.mp4 per camera into OUTDIR: the camera's video frames (from --session, "
            "else the video files recorded in the results; black frames where missing) with the fitted mesh "
            "(blended), the model keypoints and skeleton (discs) and the observed data keypoints (crosses)."
        ),
    )
    p.add_argument("results", help="results file (*.smilmv.h5)")
    p.add_argument("--session", default=None, help="session the results were fitted on (for its videos)")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder")
    p.add_argument(
        "--cameras",
        nargs="+",
        action="extend",
        default=None,
        metavar="CAMERA",
        help="cameras to render (default all); names separated by spaces or commas",
    )
    p.add_argument("--frames", default=None, metavar="A:B", help="video frames A <= f < B (default all)")
    p.add_argument("--model", default=None, help="body model .pkl (default: the one recorded in the results)")
    p.add_argument("--no-mesh", action="store_true", help="keypoints only (no body model needed)")
    p.add_argument(
        "--all-joints", action="store_true", help="draw every model joint, not only the mapped ones"
    )
    p.add_argument(
        "--fps", type=float, default=None, help="output frame rate (default the results', else 30)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing overlay videos")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``overlay``; returns 0."""
    from napari_smil_mv.cli import CommandError
    from napari_smil_mv.commands._args import camera_names, parse_frames
    from napari_smil_mv.results import read_results
    from napari_smil_mv.results.overlay import export_overlays

    if args.fps is not None and not args.fps > 0:
        raise CommandError(f"--fps must be a positive frame rate, got {args.fps}")
    results = read_results(args.results)
    rows = parse_frames(args.frames, results.frame_indices)
    last = [-1.0]

    def progress(event) -> None:
        if not args.quiet and (event.progress - last[0] >= 0.1 or event.done == event.total):
            last[0] = event.progress
            print(f"[{100 * event.progress:5.1f} %] {event.message}", file=sys.stderr)

    try:
        paths = export_overlays(
            results,
            args.output,
            progress=progress,
            session=args.session,
            model=args.model,
            cameras=camera_names(args.cameras) or None,
            rows=rows,
            mesh=not args.no_mesh,
            all_joints=args.all_joints,
            fps=args.fps,
            overwrite=args.overwrite,
        )
    except FileExistsError as exc:
        raise CommandError(str(exc)) from None
    for path in paths:
        print(path)
    return 0
