"""The import layering of the package, read from the source with ``ast`` (every import, also the lazy ones inside
functions): a package may import only packages of its own layer or below, and the core imports no Qt/napari.

Layers, low to high (each line may import the lines above it; the real dependencies, checked here)::

    utils
    body, cameras, rendering
    sessions
    results             (results.metrics reads a session and its ground truth)
    fitting             (FitResult.to_results builds Results)
    dataset, network
    training
    inference           (the fitter refines predictions; training holds the checkpoints)
    demo                (the demo application: nothing below imports it)
    commands, cli, api, napari
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "napari_smil_mv"

LAYERS: list[set[str]] = [
    {"utils", "sample_data_fetch"},
    {"body", "cameras", "rendering"},
    {"sessions"},
    {"results"},
    {"fitting"},
    {"dataset", "network"},
    {"training"},
    {"inference"},
    {"demo"},
    {"commands", "cli", "api", "napari"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
CORE = {"utils", "body", "cameras", "rendering", "sessions", "results", "fitting", "dataset", "network"} | {
    "training",
    "inference",
}
GUI_MODULES = {
    "napari",
    "qtpy",
    "PyQt5",
    "PyQt6",
    "PySide2",
    "PySide6",
    "vispy",
    "magicgui",
    "superqt",
    "npe2",
}


def unit_of(path: Path) -> str:
    """Top-level unit of a source file: its package (``body``) or its module (``cli``)."""
    parts = path.relative_to(SRC).parts
    return parts[0][:-3] if len(parts) == 1 else parts[0]


def imported_modules(path: Path) -> list[tuple[str, int]]:
    """``(absolute module name, line)`` of every import in ``path`` (``from X import a`` gives ``X`` and
    ``X.a``: ``a`` may be a submodule)."""
    rel = path.relative_to(SRC.parent).with_suffix("").parts  # ("napari_smil_mv", "body", "smil")
    package = rel[:-1]  # the package holding the file (for an __init__.py: its own package)
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            out.append((module, node.lineno))
            out += [(f"{module}.{a.name}", node.lineno) for a in node.names]
    return out


def sources() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if p.relative_to(SRC).parts != ("__init__.py",))


def test_every_unit_has_a_layer():
    units = {unit_of(p) for p in sources()}
    assert units <= set(RANK), f"add {sorted(units - set(RANK))} to LAYERS in tests/test_layering.py"


def layer_violations() -> list[str]:
    bad = []
    for path in sources():
        unit = unit_of(path)
        for module, line in imported_modules(path):
            parts = module.split(".")
            if parts[0] != "napari_smil_mv" or len(parts) < 2 or parts[1] not in RANK:
                continue
            target = parts[1]
            if RANK[target] > RANK[unit]:
                message = (
                    f"{path.relative_to(SRC)}:{line} imports napari_smil_mv.{target} ({unit} is in layer "
                    f"{RANK[unit]}, {target} in layer {RANK[target]})"
                )
                if message not in bad:
                    bad.append(message)
    return bad


def test_no_lower_layer_imports_a_higher_one():
    assert layer_violations() == []


@pytest.mark.parametrize("unit", sorted(CORE | {"demo"}))
def test_core_and_demo_import_no_qt_or_napari(unit):
    bad = [
        f"{p.relative_to(SRC)}:{line} imports {module}"
        for p in sources()
        if unit_of(p) == unit
        for module, line in imported_modules(p)
        if module.split(".")[0] in GUI_MODULES
    ]
    assert bad == []


def test_the_checker_sees_lazy_and_relative_imports(tmp_path, monkeypatch):
    # a fake package: a lower layer (body) importing a higher one (fitting) lazily and relatively
    pkg = tmp_path / "napari_smil_mv"
    (pkg / "body").mkdir(parents=True)
    (pkg / "fitting").mkdir()
    (pkg / "body" / "__init__.py").write_text("")
    (pkg / "fitting" / "__init__.py").write_text("")
    (pkg / "body" / "x.py").write_text("def f():\n    from ..fitting import optimise\n    import napari\n")
    monkeypatch.setattr(f"{__name__}.SRC", pkg)
    assert imported_modules(pkg / "body" / "x.py")[:2] == [
        ("napari_smil_mv.fitting", 2),
        ("napari_smil_mv.fitting.optimise", 2),
    ]
    assert layer_violations() == [
        "body/x.py:2 imports napari_smil_mv.fitting (body is in layer 1, fitting in layer 4)"
    ]
    with pytest.raises(AssertionError):
        test_core_and_demo_import_no_qt_or_napari("body")
