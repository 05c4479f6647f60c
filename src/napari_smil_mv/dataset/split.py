"""Train/validation/test splits by session or by contiguous blocks of time - never by random single frames.

Neighbouring video frames are nearly identical, so a random per-frame split puts near-copies of training
samples into the test set and flatters every metric. Both strategies here keep whole sessions or whole time
blocks together; ``gap_frames`` additionally drops samples within that many frames of a block belonging to
another split.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SPLIT_NAMES = ("train", "val", "test")


def _assign(groups: list, weights: np.ndarray, fractions: np.ndarray, rng: np.random.Generator) -> dict:
    """Shuffle groups; give one to each split with a non-zero share (largest share first), then each further
    group to the split whose share of samples is furthest below its target."""
    order = list(rng.permutation(len(groups)))
    filled = np.zeros(len(fractions))
    total = float(weights.sum()) or 1.0
    out = {}
    for k in np.argsort(-fractions, kind="stable"):
        if fractions[k] > 0 and order:
            gi = order.pop(0)
            out[groups[gi]] = int(k)
            filled[k] += weights[gi]
    for gi in order:
        deficit = fractions - filled / total
        deficit[fractions == 0] = -np.inf
        k = int(np.argmax(deficit))
        out[groups[gi]] = k
        filled[k] += weights[gi]
    return out


def split_samples(
    session_names: Sequence[str],
    frame_idx: Sequence[int],
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    by: str = "session",
    block_frames: int = 300,
    gap_frames: int = 0,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Split sample indices into ``train``/``val``/``test``.

    Parameters
    ----------
    session_names, frame_idx
        ``(N,)`` session and video frame of every sample (``MultiViewDataset.sample_keys()``).
    fractions
        Target shares of samples for train, val and test (normalised; zeros allowed).
    by
        ``"session"``: whole sessions per split (needs at least as many sessions as non-zero fractions);
        ``"time_block"``: each session is cut into blocks of ``block_frames`` consecutive video frames, and whole
        blocks are assigned.
    block_frames
        Block length in video frames for ``"time_block"``.
    gap_frames
        Drop samples closer than this (in frames) to a sample of another split in the same session.
    seed
        Shuffling seed.

    Returns
    -------
    dict
        ``{"train": idx, "val": idx, "test": idx}`` sorted int64 index arrays.
    """
    names = np.asarray([str(s) for s in session_names])
    frames = np.asarray(frame_idx, dtype=np.int64)
    if names.shape != frames.shape:
        raise ValueError("session_names and frame_idx must have the same length")
    frac = np.asarray(fractions, dtype=np.float64)
    if frac.shape != (3,) or np.any(frac < 0) or frac.sum() <= 0:
        raise ValueError(
            f"fractions must be three non-negative numbers (train, val, test), got {list(fractions)}"
        )
    frac = frac / frac.sum()
    rng = np.random.default_rng(seed)
    if by == "session":
        sessions = sorted(set(names.tolist()))
        if len(sessions) < int(np.count_nonzero(frac)):
            raise ValueError(
                f"a split by session needs at least {int(np.count_nonzero(frac))} sessions, the dataset has "
                f"{len(sessions)} ({sessions}); use by='time_block' to split within sessions"
            )
        weights = np.array([np.sum(names == s) for s in sessions], dtype=np.float64)
        which = _assign(sessions, weights, frac, rng)
        label = np.array([which[s] for s in names], dtype=np.int64)
    elif by == "time_block":
        if block_frames < 1:
            raise ValueError(f"block_frames must be >= 1, got {block_frames}")
        blocks = [(s, int(b)) for s, b in zip(names.tolist(), (frames // block_frames).tolist(), strict=True)]
        keys = sorted(set(blocks))
        weights = np.array([blocks.count(k) for k in keys], dtype=np.float64)
        which = _assign(keys, weights, frac, rng)
        label = np.array([which[k] for k in blocks], dtype=np.int64)
    else:
        raise ValueError(f"by must be 'session' or 'time_block', got {by!r}")
    keep = np.ones(len(names), dtype=bool)
    if gap_frames > 0:
        for s in set(names.tolist()):
            idx = np.flatnonzero(names == s)
            f, lab = frames[idx], label[idx]
            for k in range(3):
                other = f[lab != k]
                if other.size == 0:
                    continue
                other = np.sort(other)
                mine = np.flatnonzero(lab == k)
                pos = np.searchsorted(other, f[mine])
                near = np.full(mine.size, np.inf)
                for p_off in (0, -1):
                    p = np.clip(pos + p_off, 0, other.size - 1)
                    near = np.minimum(near, np.abs(other[p] - f[mine]))
                keep[idx[mine[near <= gap_frames]]] = False
    return {name: np.flatnonzero((label == k) & keep) for k, name in enumerate(SPLIT_NAMES)}
