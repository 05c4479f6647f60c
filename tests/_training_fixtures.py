"""A tiny trained network (trained once per test run) and helpers for the network/training/inference tests."""

from __future__ import annotations

from pathlib import Path

from _dataset_fixtures import fresh_dir, synthetic_dataset, synthetic_session

_CACHE: dict = {}

#: A small architecture so a test step takes milliseconds.
TINY_MODEL = {"hidden_dim": 32, "fusion_heads": 2, "decoder_heads": 2, "decoder_depth": 1, "ief_iters": 2}


def tiny_config(output_dir: Path, **overrides) -> dict:
    """A config dict for the cached synthetic dataset (8 samples, 3 cameras, 64 px)."""
    cfg = {
        "output_dir": str(output_dir),
        "epochs": 2,
        "log_every": 1,
        "n_samples": 1,
        "data": {
            "dataset": str(synthetic_dataset()),
            "batch_size": 2,
            "val_fraction": 0.25,
            "block_frames": 2,
            "augment": False,
        },
        "model": dict(TINY_MODEL),
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    return cfg


def trained_checkpoint() -> Path:
    """``last.pt`` of a 2-epoch run on the synthetic dataset (cached)."""
    if "ckpt" not in _CACHE:
        from napari_smil_mv.training import train

        out = fresh_dir("trained")
        train(tiny_config(out))
        _CACHE["ckpt"] = out / "last.pt"
    return _CACHE["ckpt"]


__all__ = [
    "fresh_dir",
    "synthetic_dataset",
    "synthetic_session",
    "tiny_config",
    "trained_checkpoint",
    "TINY_MODEL",
]
