"""``--exclude-cameras`` takes the same syntax on every command: names separated by spaces or commas, repeatable."""

from __future__ import annotations

import pytest

from napari_smil_mv.cli import build_parser
from napari_smil_mv.commands._args import camera_names

COMMANDS = {
    "fit": ["fit", "S", "-o", "r.smilmv.h5"],
    "infer": ["infer", "--checkpoint", "c.pt", "--session", "S", "-o", "r.smilmv.h5"],
    "preprocess": ["preprocess", "S", "-o", "d.h5"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_same_exclude_cameras_syntax(command):
    parser = build_parser()
    base = COMMANDS[command]
    forms = (
        ["--exclude-cameras", "side,top"],
        ["--exclude-cameras", "side", "top"],
        ["--exclude-cameras", "side", "--exclude-cameras", "top"],
        ["--exclude-cameras", "side, top", "side"],
    )
    for extra in forms:
        args = parser.parse_args([*base, *extra])
        assert camera_names(args.exclude_cameras) == ("side", "top"), (command, extra)
    assert camera_names(parser.parse_args(base).exclude_cameras) == ()
