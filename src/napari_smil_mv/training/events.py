"""Events of a training run and the small helpers that report them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class TrainEvent:
    """Progress of a training run.

    Attributes
    ----------
    kind : ``start``, ``step``, ``epoch``, ``samples``, ``checkpoint``, ``done`` or ``stopped``
    epoch : 0-based epoch; epochs : number of epochs
    step_in_epoch, steps_per_epoch, global_step : position in the run
    progress : fraction of all steps done, 0..1
    message : one human-readable line
    losses : training loss terms (running means since the epoch started, plus ``total``)
    val_losses : validation loss terms (epoch events)
    metrics : validation metrics (``px_median``, ``pck_5px``, ``pck_10px``, ``joint_error_3d_median``, ...)
    lr : head learning rate
    samples : for ``samples`` events, one dict per validation sample: ``images (V, S, S, 3)`` uint8,
        ``keypoints (V, J, 2)`` annotated px (x, y), ``visible (V, J)``, ``predicted (V, J, 2)`` px,
        ``camera_names``
    checkpoint : path of the checkpoint just written
    history : one record per finished epoch (epoch/done events)
    elapsed_s : seconds since the run started
    rank : process rank
    """

    kind: str
    epoch: int = 0
    epochs: int = 0
    step_in_epoch: int = 0
    steps_per_epoch: int = 0
    global_step: int = 0
    progress: float = 0.0
    message: str = ""
    losses: dict[str, float] = field(default_factory=dict)
    val_losses: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    lr: float = 0.0
    samples: list[dict] | None = None
    checkpoint: str | None = None
    history: list[dict] = field(default_factory=list)
    elapsed_s: float = 0.0
    rank: int = 0


def format_metrics(metrics: dict) -> str:
    if not metrics:
        return ""
    parts = [
        f"val {metrics['pixel_frame']} px median {metrics['px_median']:.2f}",
        f"PCK@5 {metrics['pck_5px']:.3f}",
    ]
    if np.isfinite(metrics.get("joint_error_3d_median", np.nan)):
        parts.append(f"3D median {metrics['joint_error_3d_median']:.3g}")
    return ", ".join(parts)


def write_history(path: Path, history: list[dict]) -> None:
    from napari_smil_mv.utils.atomic import atomic_path

    def clean(v):
        if isinstance(v, float) and not np.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        return v

    with atomic_path(path, overwrite=True) as tmp:
        tmp.write_text(json.dumps([clean(r) for r in history], indent=1) + "\n", encoding="utf-8")
