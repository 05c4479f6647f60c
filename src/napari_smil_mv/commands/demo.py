"""``napari-smil-mv demo OUTDIR``: write the synthetic multi-camera demo (a procedural insect walking)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``demo`` sub-command."""
    parser = subparsers.add_parser(
        "demo",
        help="write a synthetic multi-camera demo (procedural insect, cameras, keypoints, previews)",
        description="Generate the procedural demo insect, animate it walking, film it with a ring of "
        "calibrated "
        "cameras and write the model, calibration.toml, ground-truth meshes, 3D/2D keypoints, the animation "
        "parameters and preview images into OUTDIR. Nothing is downloaded.",
    )
    parser.add_argument("outdir", type=Path, help="output folder (created; must be empty unless --overwrite)")
    parser.add_argument("--frames", type=int, default=30, help="number of frames at 30 fps (default: 30)")
    parser.add_argument("--cameras", type=int, default=4, help="number of cameras in the ring (default: 4)")
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed for model proportions, camera jitter and textures (default: 0)",
    )
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty OUTDIR")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo generator, printing one progress line per event and a summary of the files."""
    from napari_smil_mv.cli import CommandError
    from napari_smil_mv.demo import run_demo

    try:
        events = run_demo(
            args.outdir,
            n_frames=args.frames,
            n_cameras=args.cameras,
            seed=args.seed,
            overwrite=args.overwrite,
        )
    except FileExistsError as exc:
        raise CommandError(str(exc)) from None
    for event in events:
        print(f"[{100.0 * event.progress:5.1f}%] {event.stage:<8} {event.message}", flush=True)
    summary = json.loads((args.outdir / "summary.json").read_text(encoding="utf-8"))
    print(f"\nDemo written to {args.outdir} in {summary['seconds']:.1f} s:")
    width = max(len(name) for name in summary["files"])
    for name, text in summary["files"].items():
        print(f"  {name:<{width}}  {text}")
    return 0
