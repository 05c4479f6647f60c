"""Shared fixtures: paths to the real sample data in ../shared (skipped when absent) and GUI-test gating."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import _sample_data

#: Fixtures as plugins (tests/fixtures/*.py): available to every test module without an import.
pytest_plugins = [
    "fixtures.body",
    "fixtures.dataset",
    "fixtures.fitting",
    "fixtures.training",
    "fixtures.viewer",
]

REPO = Path(__file__).resolve().parents[1]
SHARED = _sample_data.SHARED


def shared_path(*parts: str) -> Path:
    """Path under ``../shared``; skips the calling test with a reason when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real sample data not available: {path} (tests read ../shared next to the repository)")
    return path


@pytest.fixture
def shared():
    """Callable fixture: ``shared("models", "SMILy_STICK.pkl")``."""
    return shared_path


def pytest_collection_modifyitems(config, items):
    # pytest-xvfb sets DISPLAY during configure when Xvfb is installed; without any display, GL tests cannot run.
    if os.environ.get("DISPLAY"):
        return
    skip = pytest.mark.skip(reason="no X display: install xvfb (see README) to run napari GUI tests")
    for item in items:
        if "gui" in item.keywords:
            item.add_marker(skip)
