"""Options of an inference run and the one workflow function that the Infer widget calls (no Qt/napari).

:func:`iter_inference` chooses :func:`~napari_smil_mv.inference.infer_dataset_iter` for a dataset file and
:func:`~napari_smil_mv.inference.infer_session_iter` for a session (object or folder), turning the options into
their arguments, so every option of ``napari-smil-mv infer`` is reachable from one dataclass.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class InferOptions:
    """Options of :func:`iter_inference` (the flags of ``napari-smil-mv infer``).

    Attributes
    ----------
    model
        Body model ``.pkl`` if it moved since training (checked by SHA-256); None = the checkpoint's.
    device
        Torch device (``"cpu"``, ``"cuda"``, ``"cuda:1"``).
    batch_size
        Samples per network batch.
    refine
        Refine the predictions with the fitter.
    refine_iterations
        Iterations of the fitter's last stage when refining (None = the FitConfig default).
    frame_start, frame_stop
        Session: video frames ``frame_start <= f < frame_stop`` (None = open end).
    animal
        Session: animal index (``"0"``) or name.
    joint_map
        Session: ``joint_lookup.csv`` (None = the session's, else the network's).
    units
        Session: length unit of the calibration, e.g. ``"mm"`` (None = the session's).
    exclude_cameras
        Session: cameras to leave out of prediction, results and refinement. None = the cameras the network's
        training dataset left out; an empty tuple keeps every camera (overrides the checkpoint's exclusion).
    """

    model: str | None = None
    device: str = "cpu"
    batch_size: int = 8
    refine: bool = False
    refine_iterations: int | None = None
    frame_start: int | None = None
    frame_stop: int | None = None
    animal: str = "0"
    joint_map: str | None = None
    units: str | None = None
    exclude_cameras: tuple[str, ...] | None = None

    def validate(self) -> InferOptions:
        """Check the values; returns self. ValueError names the option."""
        if self.batch_size < 1:
            raise ValueError(f"option batch_size must be >= 1, got {self.batch_size}")
        if self.refine_iterations is not None and self.refine_iterations < 1:
            raise ValueError(f"option refine_iterations must be >= 1 or None, got {self.refine_iterations}")
        if None not in (self.frame_start, self.frame_stop) and self.frame_stop <= self.frame_start:
            raise ValueError(
                f"option frame_stop ({self.frame_stop}) must be greater than frame_start ({self.frame_start})"
            )
        if not str(self.animal).strip():
            raise ValueError("option animal must be an index or a name, got an empty text")
        if self.exclude_cameras is not None:
            names = [str(n).strip() for n in self.exclude_cameras]
            if any(not n for n in names):
                raise ValueError(
                    f"option exclude_cameras must hold camera names, got {self.exclude_cameras!r}"
                )
            self.exclude_cameras = tuple(dict.fromkeys(names))
        return self

    def fit_config(self):
        """The FitConfig of the refinement (None: the default)."""
        if self.refine_iterations is None:
            return None
        from napari_smil_mv.fitting import FitConfig

        cfg = FitConfig()
        cfg.stages[-1].iterations = int(self.refine_iterations)
        return cfg

    def frame_rows(self, frame_indices: Any) -> np.ndarray | None:
        """Rows of ``frame_indices`` in ``[frame_start, frame_stop)`` (None = every frame)."""
        if self.frame_start is None and self.frame_stop is None:
            return None
        frames = np.asarray(frame_indices)
        keep = np.ones(len(frames), dtype=bool)
        if self.frame_start is not None:
            keep &= frames >= self.frame_start
        if self.frame_stop is not None:
            keep &= frames < self.frame_stop
        rows = np.flatnonzero(keep)
        if rows.size == 0:
            raise ValueError(
                f"options frame_start/frame_stop ({self.frame_start}, {self.frame_stop}) select none of the "
                f"session's frames ({int(frames.min())}..{int(frames.max())})"
            )
        return rows


def iter_inference(
    checkpoint: Any,
    source: Any,
    options: InferOptions | None = None,
    cancel: Any = None,
) -> Iterator:
    """Run a network on a dataset file or a session, yielding its :class:`InferEvent` objects.

    Parameters
    ----------
    checkpoint
        Checkpoint file or :class:`~napari_smil_mv.inference.Predictor`.
    source
        Dataset file (``.h5``), session folder/file, or a loaded Session.
    options
        :class:`InferOptions` (default: all defaults).
    cancel
        A ``threading.Event``: set, the run stops at the next batch.

    Raises
    ------
    ValueError
        Session-only options given for a dataset, or a bad option (the message names it).
    """
    from napari_smil_mv.dataset import sniff_dataset
    from napari_smil_mv.inference.predict import Predictor, infer_dataset_iter
    from napari_smil_mv.inference.session import infer_session_iter

    opt = (options or InferOptions()).validate()
    pr = checkpoint if isinstance(checkpoint, Predictor) else Predictor(checkpoint, opt.model, opt.device)
    common = dict(batch_size=opt.batch_size, refine=opt.refine, fit_config=opt.fit_config(), cancel=cancel)
    if isinstance(source, (str, os.PathLike)) and sniff_dataset(Path(source)):
        if opt.exclude_cameras is not None:
            raise ValueError(
                "option exclude_cameras applies to sessions; for a dataset, preprocess it with exclude_cameras"
            )
        yield from infer_dataset_iter(pr, source, **common)
        return
    if not hasattr(source, "views"):
        import warnings

        from napari_smil_mv.sessions import load_session

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            source = load_session(source, units=opt.units)
    animal: int | str = int(opt.animal) if str(opt.animal).lstrip("-").isdigit() else opt.animal
    yield from infer_session_iter(
        pr,
        source,
        frames=opt.frame_rows(source.frame_indices),
        animal=animal,
        joint_map=opt.joint_map,
        units=opt.units,
        exclude_cameras=opt.exclude_cameras,
        **common,
    )
