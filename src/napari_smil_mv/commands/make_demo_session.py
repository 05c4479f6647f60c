"""``napari-smil-mv make-demo-session DIR``: write a synthetic multi-camera session of the demo insect."""

from __future__ import annotations

import argparse
import re
from pathlib import Path


def _image_size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*[xX,]\s*(\d+)\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"image size must look like 640x480 (width x height), got {text!r}")
    return int(m.group(1)), int(m.group(2))


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``make-demo-session`` sub-command."""
    parser = subparsers.add_parser(
        "make-demo-session",
        help="write a synthetic sleap-anipose session (videos, .slp, calibration, 3D points, ground truth)",
        description="Animate the procedural demo insect, film it with a ring of calibrated cameras and write a "
        "session in the sleap-anipose camera-folder layout: calibration.toml, <cam>/<cam>.mp4, <cam>/<cam>.slp "
        "(noisy SLEAP predictions, nodes hidden by the body left out), points3d.h5, joint_lookup.csv, "
        "ground_truth.npz, session.toml and README.txt. World units are mm. Deterministic for a seed; "
        "nothing is downloaded.",
    )
    parser.add_argument("outdir", type=Path, help="session folder to create (must be new or empty)")
    parser.add_argument("--cameras", type=int, default=4, help="number of cameras (default: 4)")
    parser.add_argument("--frames", type=int, default=120, help="number of frames at 30 fps (default: 120)")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed for size, cameras, textures, noise (default: 0)"
    )
    parser.add_argument(
        "--noise-px",
        type=float,
        default=0.7,
        help="typical 2D keypoint noise in px; 0 writes exact projections (default: 0.7)",
    )
    parser.add_argument(
        "--image-size",
        type=_image_size,
        default=(640, 480),
        metavar="WxH",
        help="video size (default: 640x480)",
    )
    parser.add_argument(
        "--save-vertices", action="store_true", help="also store the posed mesh in ground_truth.npz (~5 MB)"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace OUTDIR if it holds a session written by this command",
    )
    parser.add_argument("--quiet", action="store_true", help="print only the final line")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the session, printing one progress line per event."""
    from napari_smil_mv.cli import CommandError
    from napari_smil_mv.commands._progress import print_progress
    from napari_smil_mv.demo.synthetic_session import iter_write_synthetic_session

    try:
        events = iter_write_synthetic_session(
            args.outdir,
            n_cameras=args.cameras,
            n_frames=args.frames,
            seed=args.seed,
            noise_px=args.noise_px,
            image_size=args.image_size,
            overwrite=args.overwrite,
            save_vertices=args.save_vertices,
        )
    except FileExistsError as exc:
        raise CommandError(str(exc)) from None
    for event in events:
        if not args.quiet or event.stage == "done":
            print_progress(event)
    return 0
