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

from napari_smil_mv.fitting import FitConfig, FitEvent, FitResult
from napari_smil_mv.fitting.session_fit import (
    SessionFit,
    frame_rows,
    frames_text,
    iter_session_fit,
    prepare_session_fit,
)
from napari_smil_mv.results import Results
from napari_smil_mv.sessions import JointMap, Session, choose_joint_map

#: Everything a fit needs, resolved (session, model, observations, joint map and its source, frames, excluded
#: cameras): the core's :class:`~napari_smil_mv.fitting.session_fit.SessionFit`.
FitJob = SessionFit


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
    return choose_joint_map(session, model_joint_names, path)


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
    return prepare_session_fit(session, model, joint_map, frames, animal)


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

    prov = {"command": "napari-smil-mv napari Fit widget", "frames": frames_text(job.frames) or ":"}
    result, results = yield from iter_session_fit(
        job, config, device=device, cancel=cancel, producer="napari-smil-mv napari", provenance=prov
    )
    layer_data = None
    if build_layers:
        base = session_meta(job.session, session_id if session_id is not None else job.session.name)
        layer_data = results_layer_data(results, job.model, base_meta=base)
    return FitOutcome(result, results, layer_data, job.model, _inputs(job))


__all__ = ["FitJob", "FitOutcome", "frame_rows", "prepare_fit", "resolve_joint_map", "run_fit_job"]
