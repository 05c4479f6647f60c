"""References a :class:`Results` is compared with: does a session match the one it was made from, and the
noise-free 2D keypoints of a synthetic session's ground truth.

:func:`session_mismatch` compares what a results file records about its session (``provenance["session_name"]``
and ``["session"]``, the camera names, the frame numbers, the 2D keypoints it was fitted to in ``observed_2d``) with
a loaded session; ``evaluate --session`` refuses on a mismatch unless told otherwise. :func:`ground_truth_2d`
gives the clean projections stored in ``ground_truth.npz`` in the results' camera/frame/joint order, so that
``evaluate --ground-truth`` measures the reprojection against the truth, not against the noisy labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from napari_smil_mv.results.model import Results

__all__ = ["SessionMatch", "ground_truth_2d", "session_mismatch"]

#: Two keypoints closer than this (px) count as the same observation.
SAME_KEYPOINT_PX = 1e-3


@dataclass
class SessionMatch:
    """How a session compares with the one a results file was made from.

    Attributes
    ----------
    recorded_name, recorded_path
        The session recorded in the results' provenance ("" when not recorded).
    problems
        One line per difference that means *another session* (name, cameras, frames, keypoints).
    keypoints_compared, keypoints_differing
        Observations compared (finite in both) and how many differ by more than :data:`SAME_KEYPOINT_PX`.
    """

    recorded_name: str = ""
    recorded_path: str = ""
    problems: list[str] = field(default_factory=list)
    keypoints_compared: int = 0
    keypoints_differing: int = 0

    @property
    def same_name(self) -> bool:
        return not any(p.startswith("name:") for p in self.problems)

    @property
    def other_session(self) -> bool:
        """True when the evidence says the results were made from another session: the recorded name differs
        and the keypoints (or cameras/frames) differ too, or nothing can be matched at all."""
        structural = any(p.startswith(("cameras:", "frames:")) for p in self.problems)
        keypoints = any(p.startswith("keypoints:") for p in self.problems)
        return structural or (keypoints and not self.same_name)

    def message(self, session) -> str:
        """One line: the results' session against ``session``, and the differences."""
        made = self.recorded_name or "an unrecorded session"
        where = f" ({self.recorded_path})" if self.recorded_path else ""
        details = "; ".join(p.split(": ", 1)[1] for p in self.problems)
        return f"the results were made from session {made!r}{where}, not {session.name!r} ({session.path}): {details}"


def session_mismatch(results: Results, session, animal: int | str | None = None) -> SessionMatch:
    """Compare ``session`` with the session recorded in ``results``.

    Parameters
    ----------
    results
        A results file's contents.
    session
        The :class:`~napari_smil_mv.sessions.Session` to evaluate against.
    animal
        The session's animal (default: the results' recorded one, else 0).

    Returns
    -------
    SessionMatch
        Its ``problems`` are empty when name, cameras, frames and keypoints agree. Keypoints are compared where
        both the results' ``observed_2d`` and the session's keypoints (through ``data_names``) are finite.
    """
    prov = results.provenance or {}
    out = SessionMatch(str(prov.get("session_name") or ""), str(prov.get("session") or ""))
    if out.recorded_name and out.recorded_name != session.name:
        out.problems.append(f"name: its name is {session.name!r}")
    missing = [c for c in results.camera_names if c not in session.views]
    if missing:
        out.problems.append(f"cameras: it has no camera {missing} (it has {session.camera_names})")
    frames = {int(f) for f in session.frame_indices}
    absent = [int(f) for f in results.frame_indices if int(f) not in frames]
    if absent:
        out.problems.append(
            f"frames: it has no keypoints in {len(absent)} of the results' {results.n_frames} frames "
            f"(e.g. {absent[:3]})"
        )
    if results.observed_2d is None or results.data_names is None or missing or absent:
        return out
    nodes = list(session.skeleton.nodes)
    pairs = [(j, nodes.index(n)) for j, n in enumerate(results.data_names) if n and n in nodes]
    if not pairs:
        out.problems.append("keypoints: none of the results' data nodes is in its skeleton")
        return out
    names = list(session.animal_names)
    if animal is None:
        animal = prov.get("animal", 0)
    a = names.index(animal) if isinstance(animal, str) and animal in names else animal
    if not isinstance(a, int) or not 0 <= a < len(names):
        return out  # evaluate reports the unknown animal itself
    rows = {int(f): i for i, f in enumerate(session.frame_indices)}
    r = np.array([rows[int(f)] for f in results.frame_indices])
    j_idx = np.array([p[0] for p in pairs])
    n_idx = np.array([p[1] for p in pairs])
    diffs = []
    for c, name in enumerate(results.camera_names):
        kp = session.views[name].keypoints[r, a][:, n_idx]  # (T, K, 2)
        stored = results.observed_2d[c][:, j_idx]
        both = np.isfinite(kp).all(-1) & np.isfinite(stored).all(-1)
        diffs.append(np.linalg.norm(kp - stored, axis=-1)[both])
        # keypoints present on one side only also differ
        diffs.append(np.full(int((np.isfinite(kp).all(-1) ^ np.isfinite(stored).all(-1)).sum()), np.inf))
    d = np.concatenate(diffs) if diffs else np.zeros(0)
    out.keypoints_compared = int(d.size)
    out.keypoints_differing = int((d > SAME_KEYPOINT_PX).sum())
    if out.keypoints_differing:
        finite = d[np.isfinite(d) & (d > SAME_KEYPOINT_PX)]
        med = f", median difference {np.median(finite):.3g} px" if finite.size else ""
        out.problems.append(
            f"keypoints: {out.keypoints_differing} of its {out.keypoints_compared} 2D keypoints differ from the "
            f"ones the results were made from{med}"
        )
    return out


def ground_truth_2d(results: Results, truth: Any) -> np.ndarray | None:
    """The ground truth's noise-free 2D keypoints ``(C, T, J, 2)`` px in the results' order, or None.

    Parameters
    ----------
    results
        The results (its ``data_names`` say which data node each model joint is).
    truth
        A :class:`~napari_smil_mv.sessions.synthetic_truth.GroundTruth` (``keypoints_2d_clean``, ``visible``,
        ``node_names``, ``camera_names``, ``frame_indices``), or anything else (then None).

    Returns
    -------
    numpy.ndarray or None
        Clean projections of the *visible* tracked nodes (the ones the labels show), NaN elsewhere and for
        cameras, frames or joints the ground truth lacks; None when the ground truth has no clean 2D keypoints
        or the results no ``data_names``.
    """
    arrays = getattr(truth, "arrays", None)
    if arrays is None or "keypoints_2d_clean" not in arrays or results.data_names is None:
        return None
    clean = np.asarray(arrays["keypoints_2d_clean"], dtype=np.float64)  # (C, F, N, 2)
    visible = np.asarray(arrays.get("visible", np.ones(clean.shape[:3], bool)), dtype=bool)
    nodes = list(truth.node_names)
    cams = list(truth.camera_names)
    frames = {int(f): i for i, f in enumerate(np.asarray(arrays["frame_indices"]))}
    out = np.full(results.projections_2d.shape, np.nan)
    pairs = [(j, nodes.index(n)) for j, n in enumerate(results.data_names) if n and n in nodes]
    t_rows = [(t, frames[int(f)]) for t, f in enumerate(results.frame_indices) if int(f) in frames]
    if not pairs or not t_rows:
        return out
    j_idx = np.array([p[0] for p in pairs])
    n_idx = np.array([p[1] for p in pairs])
    t_idx = np.array([p[0] for p in t_rows])
    f_idx = np.array([p[1] for p in t_rows])
    for c, name in enumerate(results.camera_names):
        if name not in cams:
            continue
        g = cams.index(name)
        kp = clean[g][f_idx][:, n_idx]  # (T', K, 2)
        vis = visible[g][f_idx][:, n_idx]
        block = np.where(vis[..., None], kp, np.nan)
        sub = out[c][t_idx]
        sub[:, j_idx] = block
        out[c][t_idx] = sub
    return out
