"""A fit of a whole session, start to end: the one orchestration used by the CLI, the napari Fit widget, the
scripting API and the demo.

:func:`prepare_session_fit` resolves the model, the joint map (:func:`napari_smil_mv.sessions.choose_joint_map`),
the frames and the excluded cameras into a :class:`SessionFit`; :func:`iter_session_fit` is a generator of
:class:`~napari_smil_mv.fitting.FitEvent` that returns the :class:`~napari_smil_mv.fitting.FitResult` and its
:class:`~napari_smil_mv.results.Results` with the provenance filled in. No Qt, no napari.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from napari_smil_mv.fitting.config import FitConfig
from napari_smil_mv.fitting.optimise import fit_iter
from napari_smil_mv.fitting.result import FitEvent, FitResult
from napari_smil_mv.fitting.session_data import fit_data_from_session
from napari_smil_mv.sessions.joint_map import JointMap, choose_joint_map

__all__ = ["SessionFit", "frame_rows", "frames_text", "iter_session_fit", "prepare_session_fit"]


@dataclass
class SessionFit:
    """Everything a fit of a session needs, resolved.

    Attributes
    ----------
    session
        The :class:`~napari_smil_mv.sessions.Session`.
    model
        The body model (:class:`~napari_smil_mv.body.SMILModelData`).
    data
        The observations (:class:`~napari_smil_mv.fitting.FitData`) in model-joint order.
    joint_map
        The joint map used.
    joint_map_source
        Its file, ``"given"``, or ``"auto"`` for an automatic match by name.
    frames
        ``(start, stop)`` video frames asked for (stop exclusive; None = open end).
    excluded_cameras
        Cameras left out of the fit (weight 0).
    """

    session: Any
    model: Any
    data: Any
    joint_map: JointMap
    joint_map_source: str
    frames: tuple[int | None, int | None] = (None, None)
    excluded_cameras: list[str] = field(default_factory=list)

    @property
    def frames_text(self) -> str | None:
        """``"A:B"`` of :attr:`frames` (either end may be empty), or None when all frames are fitted."""
        return frames_text(self.frames)


def frames_text(frames: tuple[int | None, int | None]) -> str | None:
    """``"A:B"`` of a ``(start, stop)`` frame range (either end may be empty), or None when both are None."""
    start, stop = frames
    if start is None and stop is None:
        return None
    return f"{'' if start is None else start}:{'' if stop is None else stop}"


def frame_rows(
    frame_indices: np.ndarray, start: int | None = None, stop: int | None = None
) -> np.ndarray | None:
    """Rows of ``frame_indices`` ``(T,)`` with ``start <= frame < stop`` (None: open end); None when both are None.

    Raises
    ------
    ValueError
        When the range selects no frame (the message gives the session's frame range).
    """
    if start is None and stop is None:
        return None
    f = np.asarray(frame_indices)
    keep = np.ones(len(f), dtype=bool)
    if start is not None:
        keep &= f >= int(start)
    if stop is not None:
        keep &= f < int(stop)
    rows = np.flatnonzero(keep)
    if rows.size == 0:
        lo, hi = (int(f.min()), int(f.max())) if len(f) else (0, -1)
        raise ValueError(f"frames {start}..{stop} select none of the session's frames ({lo}..{hi})")
    return rows


def prepare_session_fit(
    session: Any,
    model: Any = None,
    joint_map: str | os.PathLike | JointMap | None = None,
    frames: tuple[int | None, int | None] = (None, None),
    animal: int | str = 0,
    exclude_cameras: Sequence[str] = (),
    *,
    rows: np.ndarray | None = None,
    check_joint_map: bool = True,
    note: Callable[[str], None] | None = None,
) -> SessionFit:
    """Resolve the inputs of a fit of ``session``.

    Parameters
    ----------
    session
        The session.
    model
        SMILModelData, a model ``.pkl`` path, or None for the embedded demo model.
    joint_map
        A JointMap, a ``joint_lookup.csv`` path, or None (:func:`~napari_smil_mv.sessions.choose_joint_map`).
    frames
        ``(start, stop)`` video frame numbers, stop exclusive; None ends are open.
    animal
        Animal index or name.
    exclude_cameras
        Camera names to leave out (weight 0).
    rows
        Session rows to fit, already selected (overrides ``frames`` for the selection; ``frames`` is then only
        recorded).
    check_joint_map
        Refuse a given ``joint_lookup.csv`` that does not fit the session and model.
    note
        Called with the joint-map decisions worth telling the user.

    Raises
    ------
    ValueError
        A joint map that does not fit, frames that select nothing, an unknown camera to exclude.
    """
    from napari_smil_mv.body import SMILModelData, load_smil_model

    model = model if isinstance(model, SMILModelData) else load_smil_model(model or None)
    jm, source = choose_joint_map(
        session, model.joint_names, joint_map, check_given=check_joint_map, note=note
    )
    if rows is None:
        rows = frame_rows(session.frame_indices, *frames)
    data = fit_data_from_session(session, jm, model.joint_names, animal=animal, frames=rows)
    excluded = list(dict.fromkeys(exclude_cameras))
    unknown = [c for c in excluded if c not in data.camera_names]
    if unknown:
        raise ValueError(f"no camera {unknown} to exclude; the session has {data.camera_names}")
    for name in excluded:
        data.camera_weights[data.camera_names.index(name)] = 0.0
    return SessionFit(session, model, data, jm, source, tuple(frames), excluded)


def iter_session_fit(
    job: SessionFit,
    config: FitConfig | None = None,
    device: Any = None,
    cancel: threading.Event | None = None,
    producer: str = "napari-smil-mv fit",
    provenance: dict | None = None,
) -> Generator[FitEvent, None, tuple[FitResult, Any]]:
    """Fit ``job``, yielding progress events; returns ``(FitResult, Results)`` (also when stopped via ``cancel``).

    Parameters
    ----------
    job
        From :func:`prepare_session_fit`.
    config
        Fit settings (default ``FitConfig()``).
    device
        Torch device (default CPU).
    cancel
        Set it to stop; the outcome then holds the last iterate (``result.cancelled``).
    producer
        Stored in the results' provenance.
    provenance
        Entries added to (or replacing) the standard ones: ``model_file``, ``joint_map``, ``joint_map_pairs``,
        ``frames`` (``"A:B"`` or None) and ``excluded_cameras``.
    """
    result = None
    for event in fit_iter(job.model, job.data, config, device=device, cancel=cancel):
        result = event.result if event.result is not None else result
        yield event
    if result is None:
        raise RuntimeError("the fit ended without a result")
    prov = {
        "model_file": job.model.source,
        "joint_map": job.joint_map_source,
        "joint_map_pairs": [list(p) for p in job.joint_map.pairs],
        "frames": frames_text(job.frames),
        "excluded_cameras": list(job.excluded_cameras),
    }
    prov.update(provenance or {})
    return result, result.to_results(job.data, job.model, producer=producer, provenance=prov)
