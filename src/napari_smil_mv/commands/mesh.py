"""``napari-smil-mv mesh MODEL.pkl ANIMATION.npz -o OUT [--obj]``: evaluate an animation into meshes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from napari_smil_mv.cli import CommandError
from napari_smil_mv.commands._args import check_output, model_arg, torch_device


def register(subparsers) -> None:
    """Add the ``mesh`` sub-command."""
    parser = subparsers.add_parser(
        "mesh",
        help="evaluate a SMIL animation (.npz) into a mesh sequence (.npz) or OBJ files",
        description=(
            "Evaluate every frame of an animation file (poses, betas, trans, log_beta_scales, betas_trans, "
            "mesh_scale; the SMILify export schema) with a SMIL model and write the placed meshes. Without --obj, "
            "OUT is a .npz with vertices (F, V, 3), joints (F, J, 3), faces, joint_names, parents. With --obj, OUT "
            "is a folder that receives frame_000000.obj, ... and mesh_sequence.npz. Coordinates are in model units "
            "(after (x - root) * mesh_scale + trans)."
        ),
    )
    parser.add_argument("model", help="SMIL model .pkl file, or 'demo' for the embedded demo model")
    parser.add_argument("animation", help="animation .npz file")
    parser.add_argument("-o", "--output", required=True, help="output .npz file, or a folder with --obj")
    parser.add_argument(
        "--obj", action="store_true", help="write one OBJ file per frame into the OUTPUT folder"
    )
    parser.add_argument("--batch-size", type=int, default=64, help="frames per forward pass (default 64)")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``mesh``; returns the exit code."""
    import torch

    from napari_smil_mv.body.animation import (
        evaluate_animation,
        load_animation,
        write_mesh_sequence_npz,
        write_obj_sequence,
    )
    from napari_smil_mv.body.model_file import load_smil_model
    from napari_smil_mv.body.smil import SMILModel

    output = Path(args.output)
    inputs = {Path(args.model).resolve(), Path(args.animation).resolve()}
    if output.resolve() in inputs:
        raise CommandError(f"output {output} is one of the input files; choose another output path")
    if args.batch_size < 1:
        raise CommandError("--batch-size must be at least 1")
    if not args.obj and output.suffix.lower() != ".npz":
        raise CommandError(
            f"output {output} must end in .npz (or pass --obj to write OBJ files into a folder)"
        )
    if args.obj and output.exists() and not output.is_dir():
        raise CommandError(f"output {output} exists and is not a folder; --obj writes a folder of OBJ files")
    check_output(
        output / "mesh_sequence.npz" if args.obj else output, args.overwrite
    )  # refuse before working
    if args.obj:
        check_output(output / "frame_000000.obj", args.overwrite)
    device = torch_device(args.device)

    data = load_smil_model(model_arg(args.model))
    anim = load_animation(args.animation, data)
    model = SMILModel(data, dtype=torch.float32, device=device)
    meshes = evaluate_animation(model, anim, batch_size=args.batch_size)
    try:
        if args.obj:
            files = write_obj_sequence(output, meshes.vertices, meshes.faces, overwrite=args.overwrite)
            npz = write_mesh_sequence_npz(output / "mesh_sequence.npz", meshes, overwrite=args.overwrite)
        else:
            write_mesh_sequence_npz(output, meshes, overwrite=args.overwrite)
    except FileExistsError as exc:
        raise CommandError(str(exc)) from exc
    if args.obj:
        print(f"wrote {len(files)} OBJ files and {npz.name} to {output}", file=sys.stdout)
    else:
        print(
            f"wrote {anim.n_frames} frames ({data.n_vertices} vertices, {data.n_joints} joints) to {output}",
            file=sys.stdout,
        )
    return 0
