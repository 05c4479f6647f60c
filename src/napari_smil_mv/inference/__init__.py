"""Inference with a trained network: on a preprocessed dataset or straight from a session (crops made on the fly),
written as results files, optionally refined by the fitter. No Qt/napari imports."""

from napari_smil_mv.inference.options import InferOptions, iter_inference
from napari_smil_mv.inference.predict import (
    InferEvent,
    Predictor,
    build_results,
    infer_dataset_iter,
)
from napari_smil_mv.inference.refine import refine_results
from napari_smil_mv.inference.session import infer_session_iter

__all__ = [
    "InferEvent",
    "InferOptions",
    "Predictor",
    "build_results",
    "infer",
    "infer_dataset_iter",
    "infer_session_iter",
    "iter_inference",
    "refine_results",
]


def infer(checkpoint, source, **kwargs) -> list:
    """Run inference to the end and return the list of :class:`~napari_smil_mv.results.Results`.

    ``source`` is a dataset file (``.h5``), or a session (path or :class:`~napari_smil_mv.sessions.Session`);
    keyword arguments go to :func:`infer_dataset_iter` / :func:`infer_session_iter`.
    """
    from pathlib import Path

    from napari_smil_mv.dataset import sniff_dataset

    if isinstance(source, (str, Path)) and sniff_dataset(source):
        events = infer_dataset_iter(checkpoint, source, **kwargs)
    else:
        events = infer_session_iter(checkpoint, source, **kwargs)
    results = []
    for event in events:
        if event.stage == "done":
            results = event.results
    return results
