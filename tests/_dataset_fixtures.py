"""Tiny synthetic sessions and preprocessed datasets for the dataset tests, written once per test run."""

from __future__ import annotations

import atexit
import shutil
import tempfile
import warnings
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
_ROOT = Path(tempfile.mkdtemp(prefix="smilmv-dataset-tests-"))
atexit.register(shutil.rmtree, _ROOT, True)
_CACHE: dict = {}


def synthetic_session(name: str = "s1", n_cameras: int = 3, n_frames: int = 8, seed: int = 0) -> Path:
    """A noise-free synthetic session (160x120 px videos, demo insect, distortion on some cameras)."""
    key = ("session", name, n_cameras, n_frames, seed)
    if key not in _CACHE:
        from napari_smil_mv.demo.synthetic_session import write_synthetic_session

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _CACHE[key] = write_synthetic_session(
                _ROOT / f"{name}_{n_cameras}_{n_frames}_{seed}" / name,
                n_cameras=n_cameras,
                n_frames=n_frames,
                seed=seed,
                noise_px=0.0,
                image_size=(160, 120),
            )
    return _CACHE[key]


def synthetic_dataset(crop_mode: str = "bbox_crop", size: int = 64, **options) -> Path:
    """The default synthetic session preprocessed (cached; treat as read-only)."""
    key = ("dataset", crop_mode, size, tuple(sorted(options.items())))
    if key not in _CACHE:
        from napari_smil_mv.dataset import PreprocessOptions, preprocess

        out = _ROOT / f"ds_{len(_CACHE)}.smilmv-dataset.h5"
        preprocess(
            synthetic_session(),
            out,
            options=PreprocessOptions(image_size=size, crop_mode=crop_mode, **options),
        )
        _CACHE[key] = out
    return _CACHE[key]


def fresh_dir(name: str) -> Path:
    """An empty folder under the shared temporary root."""
    path = Path(tempfile.mkdtemp(prefix=name, dir=_ROOT))
    return path


def shared_path(*parts: str) -> Path:
    """Path under ../shared or skip."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real sample data not available: {path}")
    return path


def preprocess_real_mouse_session(name: str, **options) -> tuple[Path, dict]:
    """sleap-anipose's ``minimal_session`` preprocessed with the real mouse model and its joint lookup
    (``options``: :class:`~napari_smil_mv.dataset.PreprocessOptions` fields); skips without ../shared."""
    from napari_smil_mv.dataset import PreprocessOptions, preprocess

    session = shared_path("external", "sleap-anipose", "minimal_session")
    model = shared_path("models", "SMILy_Mouse_static_joints.pkl")
    out = fresh_dir(name) / "d.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = preprocess(
            session, out, model=model, joint_map="auto", units="mm", options=PreprocessOptions(**options)
        )
    return out, stats
