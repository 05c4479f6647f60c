"""A fit of a session shown in napari, as plain Python (no Qt, no viewer): what the Fit widget runs in its worker
thread and :func:`napari_smil_mv.api.fit_session` runs directly.

:func:`prepare_fit` resolves the model, joint map and frames into a :class:`FitJob`; :func:`run_fit_job` is a
generator of :class:`~napari_smil_mv.fitting.FitEvent` that returns a :class:`FitOutcome` (the results and their
layer data, built in the worker so the main thread only adds layers).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from napari_smil_mv.fitting import FitConfig, FitEvent, FitResult, fit_data_from_session, fit_iter
from napari_smil_mv.results import Results
from napari_smil_mv.sessions import JOINT_LOOKUP_CSV, JointMap, Session, auto_match


@dataclass
class FitJob:
    """Everything a fit needs, resolved.

    Attributes
    ----------
    session
        The session.
    model
        The body model (SMILModelData).
    data
        The observations (FitData) in model-joint order.
    joint_map
        The joint map used.
    joint_map_source
        Its file, or ``"auto"`` for an automatic match by name.
    frames
        ``(start, stop)`` video frames asked for (stop exclusive; None = open end).
    """

    session: Session
    model: Any
    data: Any
    joint_map: JointMap
    joint_map_source: str
    frames: tuple[int | None, int | None] = (None, None)


@dataclass
class FitOutcome:
    """What a finished (or stopped) fit hands to the main thread.

    Attributes
    ----------
    result
        The :class:`~napari_smil_mv.fitting.FitResult`.
    results
        The same as :class:`~napari_smil_mv.results.Results` (what ``write_results`` stores).
    layer_data
        Result layer data (:func:`napari_smil_mv.napari.layers.results_layers.results_layer_data`), or None.
    model
        The body model.
    inputs
        Files the fit read (never to be overwritten by a save).
    """

    result: FitResult
    results: Results
    layer_data: list | None
    model: Any
    inputs: list[Path] = field(default_factory=list)


def resolve_joint_map(
    session: Session, model_joint_names: Sequence[str], path: str | os.PathLike | None = None
) -> tuple[JointMap, str]:
    """The joint map: ``path``; else the session's ``joint_lookup.csv`` (in its folder or the folder above) when
    it fits the session and model; else an automatic match by name (at least 3 nodes, ValueError otherwise)."""
    if path:
        jm = JointMap.read(path)
        problems = jm.validate(session.skeleton.nodes, model_joint_names)
        if problems:
            raise ValueError(
                f"joint map {path} does not fit session {session.name!r}: " + "; ".join(problems)
            )
        return jm, str(path)
    folder = session.path if session.path.is_dir() else session.path.parent
    for candidate in (folder / JOINT_LOOKUP_CSV, folder.parent / JOINT_LOOKUP_CSV):
        if candidate.is_file():
            jm = JointMap.read(candidate)
            if not jm.validate(session.skeleton.nodes, model_joint_names):
                return jm, str(candidate)
    jm = auto_match(session.skeleton.nodes, model_joint_names)
    if len(jm) < 3:
        raise ValueError(
            f"could not match the data nodes {list(session.skeleton.nodes)} to the model joints by name (only "
            f"{len(jm)} matched); choose a joint_lookup.csv (columns model,data)"
        )
    return jm, "auto"


def frame_rows(
    frame_indices: np.ndarray, start: int | None = None, stop: int | None = None
) -> np.ndarray | None:
    """Rows of ``frame_indices`` with ``start <= frame < stop`` (None: open end); None when both are None."""
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


def prepare_fit(
    session: Session,
    model: Any = None,
    joint_map: str | os.PathLike | JointMap | None = None,
    frames: tuple[int | None, int | None] = (None, None),
    animal: int | str = 0,
) -> FitJob:
    """Resolve the inputs of a fit of ``session``.

    Parameters
    ----------
    session
        The session.
    model
        SMILModelData, a model ``.pkl`` path, or None for the demo model.
    joint_map
        A JointMap, a ``joint_lookup.csv`` path, or None (:func:`resolve_joint_map`).
    frames
        ``(start, stop)`` video frame numbers, stop exclusive; None ends are open.
    animal
        Animal index or name.
    """
    from napari_smil_mv.body import SMILModelData, load_smil_model

    model = model if isinstance(model, SMILModelData) else load_smil_model(model or None)
    if isinstance(joint_map, JointMap):
        jm, source = joint_map, "given"
    else:
        jm, source = resolve_joint_map(session, model.joint_names, joint_map)
    rows = frame_rows(session.frame_indices, *frames)
    data = fit_data_from_session(session, jm, model.joint_names, animal=animal, frames=rows)
    return FitJob(session, model, data, jm, source, tuple(frames))


def _inputs(job: FitJob) -> list[Path]:
    paths = [Path(job.session.path)]
    if job.model.source and Path(job.model.source).is_file():
        paths.append(Path(job.model.source))
    if job.joint_map_source not in ("auto", "given"):
        paths.append(Path(job.joint_map_source))
    for view in job.session.views.values():
        for p in (getattr(view, "source_path", None), getattr(getattr(view, "video", None), "path", None)):
            if p is not None:
                paths.append(Path(p))
    return paths


def run_fit_job(
    job: FitJob,
    config: FitConfig | None = None,
    cancel: threading.Event | None = None,
    session_id: str | None = None,
    build_layers: bool = True,
    device: str | None = None,
) -> Generator[FitEvent, None, FitOutcome]:
    """Fit ``job``, yielding progress events; returns a :class:`FitOutcome` (also when stopped via ``cancel``).

    Parameters
    ----------
    job
        From :func:`prepare_fit`.
    config
        Fit settings (default ``FitConfig()``).
    cancel
        Set it to stop; the outcome then holds the last iterate (``result.cancelled``).
    session_id
        Registry id of the session in the viewer; with ``build_layers`` the result layers are built for it.
    build_layers
        Build the result layer data here (posing the mesh of every frame), so the caller's thread only adds them.
    device
        Torch device (default CPU).
    """
    from napari_smil_mv.napari.layers.results_layers import results_layer_data
    from napari_smil_mv.napari.layers.session_layers import session_meta

    result = None
    for event in fit_iter(job.model, job.data, config, device=device, cancel=cancel):
        result = event.result if event.result is not None else result
        yield event
    assert result is not None
    prov = {
        "command": "napari-smil-mv napari Fit widget",
        "model_file": job.model.source,
        "joint_map": job.joint_map_source,
        "joint_map_pairs": [list(p) for p in job.joint_map.pairs],
        "frames": f"{job.frames[0] if job.frames[0] is not None else ''}:"
        f"{job.frames[1] if job.frames[1] is not None else ''}",
    }
    results = result.to_results(job.data, job.model, producer="napari-smil-mv napari", provenance=prov)
    layer_data = None
    if build_layers:
        base = session_meta(job.session, session_id if session_id is not None else job.session.name)
        layer_data = results_layer_data(results, job.model, base_meta=base)
    return FitOutcome(result, results, layer_data, job.model, _inputs(job))


__all__ = ["FitJob", "FitOutcome", "frame_rows", "prepare_fit", "resolve_joint_map", "run_fit_job"]
