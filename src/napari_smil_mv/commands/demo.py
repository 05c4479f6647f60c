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
        "parameters and preview images into OUTDIR; then write a synthetic recording session of it (session/), "
        "fit the body model to that session (fit.smilmv.h5), evaluate the fit against the ground truth "
        "(evaluation.json) and draw the fitted mesh over each camera's video (fit_preview_<camera>.png); "
        "then preprocess the session into a training dataset, train the small network briefly, predict every "
        "frame, refine the prediction with the fitter and evaluate both (network*.smilmv.h5, "
        "network_evaluation.json, network_preview_<camera>.png). Nothing is downloaded.",
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
    parser.add_argument(
        "--no-fit",
        action="store_true",
        help="skip the synthetic session, its fit, evaluation and fit previews (written by default)",
    )
    parser.add_argument(
        "--session-frames", type=int, default=60, help="frames of the synthetic session to fit (default: 60)"
    )
    parser.add_argument(
        "--noise-px",
        type=float,
        default=0.7,
        help="keypoint noise of the synthetic session, px (default: 0.7)",
    )
    parser.add_argument(
        "--no-network",
        action="store_true",
        help="skip the network step (preprocess, train briefly, infer, refine, evaluate; run by default)",
    )
    parser.add_argument(
        "--train-seconds",
        type=float,
        default=60.0,
        help="training time budget of the network step in seconds (default: 60)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo generator, printing one progress line per event and a summary of the files."""
    from napari_smil_mv.cli import CommandError
    from napari_smil_mv.commands._progress import print_progress
    from napari_smil_mv.demo.pipeline import run_demo

    try:
        events = run_demo(
            args.outdir,
            n_frames=args.frames,
            n_cameras=args.cameras,
            seed=args.seed,
            overwrite=args.overwrite,
            fit=not args.no_fit,
            session_frames=args.session_frames,
            noise_px=args.noise_px,
            network=not args.no_network,
            train_seconds=args.train_seconds,
        )
    except (FileExistsError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    for event in events:
        print_progress(event)
    summary = json.loads((args.outdir / "summary.json").read_text(encoding="utf-8"))
    print(f"\nDemo written to {args.outdir} in {summary['seconds']:.1f} s:")
    width = max(len(name) for name in summary["files"])
    for name, text in summary["files"].items():
        print(f"  {name:<{width}}  {text}")
    fit = summary.get("fit")
    if fit and "ground_truth" in fit:
        gt = fit["ground_truth"]
        per_camera = ", ".join(
            f"{cam} {px:.2f}"
            for cam, px in (gt.get("reprojection_px_per_camera") or {}).items()
            if px is not None
        )
        print(
            f"\nFit of the synthetic session ({fit['n_frames']} frames x {len(fit['cameras'])} cameras, keypoint "
            f"noise {fit['noise_px']:g} px) in {fit['fit_seconds']:.1f} s:\n"
            f"  3D joint error   {_pct(gt.get('joint_error_3d_relative'))} of the body length over the observed "
            f"joints ({_num(gt.get('joint_error_3d_median'))} {fit['units']} median; body length "
            f"{_num(gt.get('body_length'))} {fit['units']}); all joints "
            f"{_pct(gt.get('joint_error_3d_relative_all_joints'))} "
            f"({_num(gt.get('joint_error_3d_median_all_joints'))} {fit['units']})\n"
            f"  reprojection     {_num(gt.get('reprojection_px_median'))} px median ({per_camera})"
        )
    net = summary.get("network")
    if net:
        gt_n, gt_r = net["network"]["ground_truth"], net.get("refined", {}).get("ground_truth", {})
        print(
            f"\nNetwork (small CNN, {net['training_epochs']} epochs in {net['training_s']:.0f} s of training) on "
            f"the same session:\n"
            f"  prediction       3D joint error {_num(gt_n.get('joint_error_3d_median'))} {fit['units']} median "
            f"({_pct(gt_n.get('joint_error_3d_relative'))}), reprojection "
            f"{_num(gt_n.get('reprojection_px_median'))} px, PCK@5 px {_num(gt_n.get('pck_5px'))}\n"
            f"  refined by fit   3D joint error {_num(gt_r.get('joint_error_3d_median'))} {fit['units']} median "
            f"({_pct(gt_r.get('joint_error_3d_relative'))}), reprojection "
            f"{_num(gt_r.get('reprojection_px_median'))} px, PCK@5 px {_num(gt_r.get('pck_5px'))}"
        )
    if fit and "skipped" in fit:
        print(f"\nFit skipped: {fit['skipped']}.")
    return 0


def _num(value) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.2f} %"
