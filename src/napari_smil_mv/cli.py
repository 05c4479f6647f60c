"""Command line entry point: ``napari-smil-mv <command> ...``.

Each command lives in its own module that exposes ``register(subparsers)``; the registered parser sets
``func`` (a callable taking the parsed namespace and returning an exit code). Modules are imported lazily so that
``napari-smil-mv --help`` stays fast and a broken optional dependency only breaks its own command.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# (command name, module that registers it). Keep alphabetical within each group.
COMMAND_MODULES: list[tuple[str, str]] = [
    ("demo", "napari_smil_mv.commands.demo"),
    ("evaluate", "napari_smil_mv.commands.evaluate"),
    ("fit", "napari_smil_mv.commands.fit"),
    ("infer", "napari_smil_mv.commands.infer"),
    ("make-demo-session", "napari_smil_mv.commands.make_demo_session"),
    ("mesh", "napari_smil_mv.commands.mesh"),
    ("model-info", "napari_smil_mv.commands.model_info"),
    ("preprocess", "napari_smil_mv.commands.preprocess"),
    ("session-info", "napari_smil_mv.commands.session_info"),
    ("train", "napari_smil_mv.commands.train"),
]


class CommandError(Exception):
    """An error caused by the user's input; printed as one clear line, without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every available sub-command."""
    from napari_smil_mv import __version__

    parser = argparse.ArgumentParser(
        prog="napari-smil-mv",
        description="Fit SMIL body models to calibrated multi-camera SLEAP/Anipose recordings.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for _name, module_name in COMMAND_MODULES:
        module = importlib.import_module(module_name)
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except CommandError as exc:
        print(f"napari-smil-mv {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError, KeyError) as exc:
        # Our own loaders raise these with messages that name the file/field and the fix.
        print(f"napari-smil-mv {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        # file-system trouble (read-only or full disk, a folder where a file is expected, a damaged HDF5 file):
        # one line (HDF5 messages span several), exit 1 for a full disk, else 2
        import errno

        text = " ".join(str(exc).split())
        print(f"napari-smil-mv {args.command}: error: {text}", file=sys.stderr)
        return 1 if exc.errno == errno.ENOSPC else 2
    except KeyboardInterrupt:
        print(f"napari-smil-mv {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    # ``python -m napari_smil_mv.cli``: run the imported module's main, whose CommandError is the class the
    # commands raise (this __main__ module defines a second, different one).
    from napari_smil_mv.cli import main as _main

    sys.exit(_main())
