"""napari coordinates of the plugin's arrays (pure numpy): image ``(x, y)`` to ``(frame, row, col)`` and skeleton
edges as napari Vectors. World coordinates: :func:`napari_smil_mv.napari.layers.world_layers.world_to_napari`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def xy_to_rowcol(xy: np.ndarray) -> np.ndarray:
    """Swap ``(..., 2)`` ``(x, y)`` pixels (OpenCV/SLEAP) to napari ``(row, col) = (y, x)``; no offset needed."""
    xy = np.asarray(xy)
    return xy[..., ::-1]


def rowcol_at(xy: np.ndarray, frame: np.ndarray | float) -> np.ndarray:
    """``(M, 2)`` ``(x, y)`` px at frame coordinates ``(M,)`` (or one for all) -> ``(M, 3)`` ``(frame, row, col)``."""
    xy = np.asarray(xy)
    return np.column_stack([np.broadcast_to(np.asarray(frame, dtype=np.float64), len(xy)), xy_to_rowcol(xy)])


def skeleton_vectors(
    points: np.ndarray,
    frames: np.ndarray,
    edges: Sequence[tuple[int, int]],
    to_napari: Callable[[np.ndarray, np.ndarray | float], np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """napari Vectors ``(start, direction)`` of the skeleton edges whose two ends are finite.

    Parameters
    ----------
    points
        ``(T, A, N, C)`` points (``C`` = 2 image ``(x, y)`` px or 3 world coordinates).
    frames
        ``(T,)`` frame coordinate of each row.
    edges
        ``(i, j)`` node-index pairs; an edge runs from node ``i`` to node ``j``.
    to_napari
        ``(M, C)`` points and ``(M,)`` frame coordinates (or a scalar) -> ``(M, D)`` napari coordinates
        (:func:`rowcol_at`, :func:`napari_smil_mv.napari.layers.world_layers.world_to_napari`).

    Returns
    -------
    data, animal, edge
        ``(K, 2, D)`` vectors ordered by animal, edge, then frame; ``(K,)`` animal and ``(K,)`` edge index of each.
    """
    vec, animal, edge = [], [], []
    for a in range(points.shape[1]):
        for k, (i, j) in enumerate(edges):
            p, q = points[:, a, i], points[:, a, j]
            ok = np.all(np.isfinite(p), -1) & np.all(np.isfinite(q), -1)
            if np.any(ok):
                vec.append(np.stack([to_napari(p[ok], frames[ok]), to_napari(q[ok] - p[ok], 0.0)], axis=1))
                animal.append(np.full(int(ok.sum()), a))
                edge.append(np.full(int(ok.sum()), k))
    if not vec:
        n_dims = to_napari(np.zeros((0, points.shape[-1])), np.zeros(0)).shape[-1]
        return np.zeros((0, 2, n_dims)), np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(vec), np.concatenate(animal), np.concatenate(edge)


__all__ = ["rowcol_at", "skeleton_vectors", "xy_to_rowcol"]
