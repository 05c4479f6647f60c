"""``napari-smil-mv preprocess SESSION_OR_DIR... -o dataset.h5``: build the multi-view training dataset.

Progress goes to stderr (one updating line on a terminal), the summary (views kept/dropped and why) to stdout.
An interrupted run (Ctrl-C) keeps ``<output>.partial`` and its journal; running the same command again resumes.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from napari_smil_mv.commands._args import add_exclude_cameras, camera_names


def register(subparsers) -> None:
    """Add the ``preprocess`` sub-command."""
    p = subparsers.add_parser(
        "preprocess",
        help="preprocess sessions into the multi-view HDF5 training dataset",
        description=(
            "Group synchronised frames of one or more sessions into multi-view samples (all cameras of one instant), "
            "undistort, crop and resize every view, and write images (JPEG), 2D keypoints, calibrated cameras and 3D "
            "keypoints into one HDF5 file (SMILify's layout plus explicit conventions). Interrupted runs resume."
        ),
    )
    p.add_argument(
        "sessions", nargs="+", metavar="SESSION_OR_DIR", help="session folder/.slp, or a folder of sessions"
    )
    p.add_argument("-o", "--output", required=True, help="dataset file to write, e.g. data.smilmv-dataset.h5")
    p.add_argument("--model", default=None, help="SMIL model .pkl (default: the built-in demo model)")
    p.add_argument(
        "--joint-map",
        default=None,
        help="joint_lookup.csv (columns model,data), or 'auto' to match names (default: the sessions folder's "
        "joint_lookup.csv, else nodes named like model joints)",
    )
    p.add_argument("--shape-betas", default=None, help="shape_betas.csv (columns label,PC1,...)")
    p.add_argument("--units", default=None, help="length unit of the calibrations, e.g. mm")
    p.add_argument("--crop-mode", default="default", choices=["default", "centred", "bbox_crop"])
    p.add_argument("--size", type=int, default=224, help="side of the stored square images, px (default 224)")
    p.add_argument("--min-views", type=int, default=2, help="cameras that must see a sample (default 2)")
    p.add_argument("--frame-skip", type=int, default=1, help="use every n-th frame (default 1)")
    p.add_argument("--max-frames", type=int, default=None, help="at most this many frames per session")
    p.add_argument("--jpeg-quality", type=int, default=95)
    p.add_argument(
        "--min-score", type=float, default=None, help="drop predicted keypoints scoring below this"
    )
    p.add_argument("--bbox-scale", type=float, default=1.2, help="bbox_crop margin factor (default 1.2)")
    p.add_argument("--no-undistort", action="store_true", help="keep lens distortion in images and keypoints")
    p.add_argument("--no-3d", action="store_true", help="do not store 3D keypoints")
    p.add_argument(
        "--triangulate", action="store_true", help="triangulate 3D keypoints for sessions without them"
    )
    add_exclude_cameras(p, "leave these cameras out of the dataset (e.g. one whose calibration is wrong)")
    p.add_argument(
        "--skip-unreadable-videos",
        action="store_true",
        help="leave out, with a warning recorded in the dataset, a camera whose video file cannot be decoded "
        "(default: stop with an error naming the file)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--restart", action="store_true", help="discard an unfinished run instead of resuming it")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from napari_smil_mv.cli import CommandError
    from napari_smil_mv.dataset import PreprocessOptions, iter_preprocess

    options = PreprocessOptions(
        image_size=args.size,
        crop_mode=args.crop_mode,
        min_views=args.min_views,
        frame_skip=args.frame_skip,
        max_frames_per_session=args.max_frames,
        jpeg_quality=args.jpeg_quality,
        undistort=not args.no_undistort,
        min_score=args.min_score,
        bbox_scale=args.bbox_scale,
        load_3d=not args.no_3d,
        triangulate_missing_3d=args.triangulate,
        exclude_cameras=camera_names(args.exclude_cameras),
    )
    if args.model is None:
        print("no --model given: using the built-in demo body model", file=sys.stderr)
    tty = sys.stderr.isatty()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        events = iter_preprocess(
            args.sessions,
            args.output,
            model=args.model,
            joint_map=args.joint_map,
            shape_betas=args.shape_betas,
            options=options,
            units=args.units,
            overwrite=args.overwrite,
            restart=args.restart,
            skip_unreadable_videos=args.skip_unreadable_videos,
        )
        last_pct = -1
        try:
            for ev in events:  # noqa: B007
                if ev.stage == "progress":
                    pct = int(100 * ev.progress)
                    if not args.quiet and (tty or pct // 10 != last_pct // 10):
                        end = "\r" if tty else "\n"
                        print(
                            f"  {ev.done}/{ev.total} samples ({pct}%)", end=end, file=sys.stderr, flush=True
                        )
                    last_pct = pct
                elif ev.stage == "done":
                    if tty and not args.quiet:
                        print(file=sys.stderr)
                    print(ev.message)
                else:
                    print(ev.message, file=sys.stderr)
        except FileExistsError as exc:
            raise CommandError(str(exc)) from None
        finally:
            events.close()  # on Ctrl-C: journal the finished samples so the next run resumes after them
            for w in dict.fromkeys(str(w.message) for w in caught):
                print(f"warning: {w}", file=sys.stderr)
    return 0
