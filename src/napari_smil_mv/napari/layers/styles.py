"""Colours and symbols of the session layers (shared by the per-camera and world builders). Pure numpy."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Symbols of user-labelled and predicted keypoints.
USER_SYMBOL, PREDICTED_SYMBOL, REPROJECTION_SYMBOL = "square", "disc", "x"
LOW_SCORE_BORDER = "#ff2020"
BORDER = "#202020"
#: Reprojection errors at or above this many pixels are drawn fully red (0 px is green).
ERROR_SCALE_PX = 20.0

# A qualitative palette (Glasbey-like, readable on dark and grey video); node k uses PALETTE[k % len].
PALETTE = (
    "#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6", "#bcf60c",
    "#fabebe", "#008080", "#e6beff", "#9a6324", "#fffac8", "#800000", "#aaffc3", "#808000", "#ffd8b1",
    "#000075", "#808080",
)  # fmt: skip
ANIMAL_PALETTE = ("#ffffff", "#00e5ff", "#ff4dff", "#ffd500", "#7cff4d")


def hex_to_rgba(colors: Sequence[str]) -> np.ndarray:
    """``(K, 4)`` float32 RGBA in 0..1 from ``#rrggbb`` strings."""
    out = np.ones((len(colors), 4), dtype=np.float32)
    for i, c in enumerate(colors):
        c = c.lstrip("#")
        out[i, :3] = [int(c[j : j + 2], 16) / 255.0 for j in (0, 2, 4)]
    return out


def node_colors(n_nodes: int) -> np.ndarray:
    """``(N, 4)`` RGBA colour of each skeleton node (the same in every camera and in the world view)."""
    return hex_to_rgba([PALETTE[k % len(PALETTE)] for k in range(n_nodes)])


def animal_colors(animal_index: np.ndarray) -> np.ndarray:
    """``(M, 4)`` RGBA colour of each animal index ``(M,)`` (``ANIMAL_PALETTE``, cycled)."""
    return hex_to_rgba(ANIMAL_PALETTE)[np.asarray(animal_index, dtype=np.int64) % len(ANIMAL_PALETTE)]


def error_colors(err_px: np.ndarray, scale_px: float = ERROR_SCALE_PX) -> np.ndarray:
    """``(M, 4)`` RGBA ramp green (0 px) → yellow → red (``>= scale_px``); grey where the error is NaN."""
    e = np.asarray(err_px, dtype=np.float64)
    u = np.clip(np.nan_to_num(e, nan=0.0) / float(scale_px), 0.0, 1.0)
    rgba = np.ones((e.size, 4), dtype=np.float32)
    rgba[:, 0] = np.clip(2.0 * u, 0, 1)
    rgba[:, 1] = np.clip(2.0 * (1.0 - u), 0, 1)
    rgba[:, 2] = 0.0
    rgba[~np.isfinite(e)] = (0.6, 0.6, 0.6, 1.0)
    return rgba
