"""``napari-smil-mv train CONFIG``: train the multi-view network (also under ``torchrun`` for several processes).

Prints one line per logged step and per epoch (training and validation losses, validation 2D error in pixels of
the original images, PCK and 3D error), writes checkpoints, ``config.json`` and ``history.json`` into the
config's ``output_dir``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from napari_smil_mv.cli import CommandError


def register(subparsers) -> None:
    """Add the ``train`` sub-command."""
    p = subparsers.add_parser(
        "train",
        help="train the multi-view network on a preprocessed dataset",
        description=(
            "Train the network that predicts one SMIL body and one camera per view from synchronised views. "
            "CONFIG is a .json or .toml file (see docs/training.md); --dataset alone trains with the defaults. "
            "For several processes run: torchrun --standalone --nproc_per_node=N -m napari_smil_mv.cli train CONFIG"
        ),
    )
    p.add_argument("config", nargs="?", default=None, help="training config (.json or .toml)")
    p.add_argument("--dataset", default=None, help="dataset file (.h5); overrides data.dataset")
    p.add_argument("--output-dir", default=None, help="folder for checkpoints and logs; overrides output_dir")
    p.add_argument("--epochs", type=int, default=None, help="number of epochs; overrides epochs")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 or auto; overrides device")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help='override any config key, e.g. --set optim.lr=1e-4 --set model.backbone="resnet50" (JSON value)',
    )
    p.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=None,
        metavar="CHECKPOINT",
        help="resume exactly from CHECKPOINT (default: <output_dir>/last.pt)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier run in the output folder (best.pt, last.pt, history.json, config.json)",
    )
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.add_argument("--quiet", action="store_true", help="print only epoch summaries")
    p.set_defaults(func=run)


def _override(data: dict, key: str, text: str) -> None:
    try:
        value = json.loads(text)
    except ValueError:
        value = text  # a bare string
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise CommandError(f"--set {key}: {part} is not a section")
    node[parts[-1]] = value


def build_config(args: argparse.Namespace):
    """The TrainConfig from CONFIG and the command-line overrides."""
    from napari_smil_mv.training import TrainConfig, load_config

    if args.config is None and args.dataset is None:
        raise CommandError("give a CONFIG file or at least --dataset")
    data = load_config(args.config).to_dict() if args.config else {}
    base = Path(args.config).resolve().parent if args.config else Path.cwd()
    if args.dataset:
        data.setdefault("data", {})["dataset"] = str(Path(args.dataset).resolve())
    if args.output_dir:
        data["output_dir"] = str(Path(args.output_dir).resolve())
    if args.epochs is not None:
        data["epochs"] = args.epochs
    if args.device:
        data["device"] = args.device
    for item in args.set:
        if "=" not in item:
            raise CommandError(f"--set expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        _override(data, key.strip(), value.strip())
    return TrainConfig.from_dict(data, base_dir=base)


def run(args: argparse.Namespace) -> int:
    """Run ``train``; returns the exit code."""
    from napari_smil_mv.training import train_iter

    cfg = build_config(args)
    if args.print_config:
        print(json.dumps(cfg.to_dict(), indent=2))
        return 0
    main = int(os.environ.get("RANK", "0")) == 0

    def say(line: str) -> None:
        if main:
            print(line, flush=True)

    if args.resume and args.overwrite:
        raise CommandError(
            "--resume continues the run in the output folder; --overwrite replaces it: give one"
        )
    if not args.resume:
        from napari_smil_mv.training.checkpoint import check_new_run_folder

        try:
            check_new_run_folder(cfg.output_dir, args.overwrite)
        except FileExistsError as exc:
            raise CommandError(str(exc)) from None
    last = None
    for ev in train_iter(cfg, resume=args.resume, overwrite=args.overwrite):
        last = ev
        if ev.kind == "step" and args.quiet:
            continue
        if ev.kind in ("start", "step", "epoch", "stopped", "done"):
            say(f"[{ev.elapsed_s:7.1f} s] {ev.message}")
        elif ev.kind == "checkpoint" and not args.quiet:
            say(f"[{ev.elapsed_s:7.1f} s] {ev.message}")
    if last is not None and last.kind == "done" and main:
        say(f"history: {Path(cfg.output_dir) / 'history.json'}")
    return 0
