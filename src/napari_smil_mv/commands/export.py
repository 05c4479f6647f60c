"""``napari-smil-mv export RESULTS.smilmv.h5 [--movement OUT.nc] [--nwb OUT.nwb] [--mapped-only] [--fps F]``.

Writes the fitted 3D keypoints for the field's analysis tools: a movement dataset (netCDF, opened with
``xarray.open_dataset`` or movement's napari plugin) and an NWB file with ndx-pose (PoseEstimation with one
PoseEstimationSeries per joint, the skeleton and the calibrated cameras). Each needs its optional extra
(``pip install 'napari-smil-mv[movement]'`` / ``'napari-smil-mv[nwb]'``).
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    """Add the ``export`` sub-command."""
    p = subparsers.add_parser(
        "export",
        help="export a results file's 3D keypoints as a movement dataset (.nc) and/or NWB (ndx-pose)",
        description=(
            "Export the 3D model keypoints of a results file (.smilmv.h5): --movement writes a movement poses "
            "dataset as netCDF (extra [movement]); --nwb writes an NWB file with ndx-pose PoseEstimationSeries "
            "per joint, the skeleton and the cameras (extra [nwb]). Positions keep the results' world units."
        ),
    )
    p.add_argument("results", help="results file (*.smilmv.h5)")
    p.add_argument("--movement", default=None, metavar="OUT.nc", help="movement dataset to write (netCDF)")
    p.add_argument("--nwb", default=None, metavar="OUT.nwb", help="NWB file to write (ndx-pose)")
    p.add_argument(
        "--mapped-only",
        action="store_true",
        help="only the joints mapped to a data keypoint, named after the data nodes (default: every joint)",
    )
    p.add_argument(
        "--fps", type=float, default=None, help="frame rate when the results file has none (NWB needs one)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``export``; returns 0 (CommandError for bad input or a missing optional package)."""
    from napari_smil_mv.cli import CommandError
    from napari_smil_mv.commands._args import check_output
    from napari_smil_mv.results import read_results

    if not args.movement and not args.nwb:
        raise CommandError("nothing to export: give --movement OUT.nc and/or --nwb OUT.nwb")
    if args.fps is not None and not args.fps > 0:
        raise CommandError(f"--fps must be a positive frame rate, got {args.fps}")
    for out in (args.movement, args.nwb):
        if out:
            check_output(out, args.overwrite)
    results = read_results(args.results)
    try:
        if args.movement:
            from napari_smil_mv.results.movement_export import export_movement

            path = export_movement(
                results, args.movement, overwrite=args.overwrite, mapped_only=args.mapped_only, fps=args.fps
            )
            print(f"movement dataset: {path} ({results.n_frames} frames, units {results.units})")
        if args.nwb:
            from napari_smil_mv.results.nwb_export import export_nwb

            path = export_nwb(
                results, args.nwb, overwrite=args.overwrite, mapped_only=args.mapped_only, fps=args.fps
            )
            print(f"NWB file: {path} ({results.n_frames} frames, units {results.units})")
    except ImportError as exc:
        raise CommandError(str(exc)) from None
    return 0
