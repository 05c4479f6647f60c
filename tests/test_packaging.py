"""The plugin manifest reaches npe2, its commands import, and the core stays free of Qt/napari."""

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_manifest_at_repo_root_is_the_packaged_one():
    packaged = REPO / "src" / "napari_smil_mv" / "napari.yaml"
    assert (REPO / "napari.yaml").is_file()
    assert packaged.read_text() == (REPO / "napari.yaml").read_text()


def test_manifest_valid_and_every_command_imports():
    npe2 = pytest.importorskip("npe2")
    manifest = npe2.PluginManifest.from_file(REPO / "napari.yaml")
    assert manifest.name == "napari-smil-mv"
    assert manifest.contributions.commands, "the manifest declares no commands"
    for command in manifest.contributions.commands:
        module_name, _, attr = command.python_name.partition(":")
        module = importlib.import_module(module_name)
        assert callable(getattr(module, attr)), command.python_name


def test_plugin_is_discovered_by_npe2_through_its_entry_point():
    npe2 = pytest.importorskip("npe2")
    pm = npe2.PluginManager.instance()
    pm.discover()
    assert "napari-smil-mv" in pm._manifests


@pytest.mark.parametrize(
    "module", ["napari_smil_mv.body", "napari_smil_mv.cameras", "napari_smil_mv.sessions", "napari_smil_mv.cli"]
)
def test_core_imports_no_qt_or_napari(module):
    code = (
        f"import sys, {module}\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'napari', 'qtpy', 'PyQt6', 'PyQt5', 'PySide6', 'vispy'})\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_help_lists_every_command(capsys):
    from napari_smil_mv.cli import COMMAND_MODULES, main

    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name, _module in COMMAND_MODULES:
        assert name in out
