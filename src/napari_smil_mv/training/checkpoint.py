"""Checkpoints: everything needed to rebuild the network (spec + weights) and to resume training exactly.

A checkpoint is a ``torch.save`` dict readable with ``weights_only=True``::

    format, version          "napari-smil-mv network checkpoint", 1
    spec                     NetworkSpec.to_dict(): backbone, camera order, input resolution, joints,
                             body-model identity (source + SHA-256), units, preprocessing, joint map
    model_state              network state dict (backbone normalisation buffers included)
    optimizer_state, scaler_state
    epoch, step_in_epoch     where training stopped (step_in_epoch 0 = the epoch had not started)
    global_step, best, history, config (the TrainConfig as a dict)
    rng                      torch (and CUDA) random states at that point
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from napari_smil_mv.network import MultiViewRegressor, NetworkSpec

CHECKPOINT_FORMAT = "napari-smil-mv network checkpoint"
CHECKPOINT_VERSION = 1
CHECKPOINT_SUFFIX = ".pt"
#: Files of a training run in its output folder (``epoch_*.pt`` too); a new run never replaces them silently.
RUN_FILES = ("best.pt", "last.pt", "history.json", "config.json")


def existing_run_files(output_dir: str | os.PathLike) -> list[Path]:
    """The training-run files already in ``output_dir`` (:data:`RUN_FILES` and ``epoch_*.pt``), sorted."""
    out = Path(output_dir)
    if not out.is_dir():
        return []
    found = [out / name for name in RUN_FILES if (out / name).exists()]
    return sorted(found + sorted(out.glob("epoch_*.pt")))


def check_new_run_folder(output_dir: str | os.PathLike, overwrite: bool = False) -> list[Path]:
    """Refuse (FileExistsError naming the folder) to start a new run over an earlier one unless ``overwrite``.

    Returns
    -------
    list of Path
        The earlier run's files (to remove when ``overwrite``).
    """
    found = existing_run_files(output_dir)
    if found and not overwrite:
        names = ", ".join(p.name for p in found[:5]) + (", ..." if len(found) > 5 else "")
        raise FileExistsError(
            f"{output_dir} already holds a training run ({names}); choose another output folder, resume it "
            "(--resume) or replace it (--overwrite)"
        )
    return found


def rng_state(device: torch.device) -> dict[str, Any]:
    """Random-number states that influence training (torch CPU and, on CUDA, the device's)."""
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng(state: dict[str, Any], device: torch.device) -> None:
    """Inverse of :func:`rng_state`."""
    if "torch" in state:
        torch.set_rng_state(state["torch"].cpu())
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)


def save_checkpoint(path: str | os.PathLike, **fields: Any) -> Path:
    """Write a checkpoint atomically (``fields`` as in the module docstring; ``format``/``version`` are added)."""
    from napari_smil_mv.utils.atomic import atomic_path

    p = Path(path)
    blob = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **fields}
    with atomic_path(p, overwrite=True) as tmp:
        torch.save(blob, tmp)
    return p


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check a checkpoint (on the CPU).

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Not one of our checkpoints, or a newer version.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"checkpoint not found: {p}")
    try:
        blob = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"{p} is not a readable torch checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(blob, dict) or blob.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{p} is not a napari-smil-mv network checkpoint (no format '{CHECKPOINT_FORMAT}')")
    if int(blob.get("version", 0)) > CHECKPOINT_VERSION:
        raise ValueError(
            f"{p} has checkpoint version {blob['version']}; this napari-smil-mv reads up to {CHECKPOINT_VERSION}"
        )
    return blob


def resolve_body_model(spec: NetworkSpec, body_model=None):
    """The body model a network was trained with, checked by SHA-256.

    Parameters
    ----------
    spec
        The network's spec (``body_model_source``, ``body_model_sha256``).
    body_model
        A model file path or :class:`~napari_smil_mv.body.SMILModelData` to use instead of ``body_model_source``
        (e.g. when the file moved). None: ``body_model_source`` (the embedded demo model for ``<demo model>``).

    Raises
    ------
    FileNotFoundError, ValueError
        The model file is missing, or it is a different model (SHA-256 mismatch).
    """
    from napari_smil_mv.body import SMILModelData, load_smil_model
    from napari_smil_mv.body.recorded_model import load_recorded_model

    if isinstance(body_model, SMILModelData):
        data = body_model
    elif body_model is not None:
        data = load_smil_model(body_model)
    elif spec.body_model_source in ("", "<demo model>"):
        data = load_smil_model(None)
    else:  # the path the checkpoint records: its bytes are checked against the recorded SHA-256 before unpickling
        data = load_recorded_model(
            spec.body_model_source,
            spec.body_model_sha256,
            "the network's checkpoint",
            "pass the model file (--model / body_model=)",
        )
    if spec.body_model_sha256 and data.sha256 != spec.body_model_sha256:
        raise ValueError(
            f"body model {data.source} (SHA-256 {data.sha256[:12]}...) is not the model the network was trained "
            f"with ({spec.body_model_source}, SHA-256 {spec.body_model_sha256[:12]}...)"
        )
    if list(data.joint_names) != list(spec.joint_names):
        raise ValueError(f"body model {data.source} has other joints than the network was trained with")
    return data


def load_network(
    path: str | os.PathLike, body_model=None, device: str | torch.device = "cpu"
) -> tuple[MultiViewRegressor, Any, dict[str, Any]]:
    """Rebuild a trained network from a checkpoint.

    Returns
    -------
    tuple
        ``(network in eval mode on device, SMILModelData, checkpoint dict)``.
    """
    blob = read_checkpoint(path)
    spec = NetworkSpec.from_dict(dict(blob["spec"]))
    data = resolve_body_model(spec, body_model)
    net = MultiViewRegressor(spec, load_pretrained=False)
    try:
        net.load_state_dict(blob["model_state"], strict=True)
    except RuntimeError as exc:
        raise ValueError(
            f"{path}: the weights do not fit the network described by its spec ({exc})"
        ) from None
    net.to(device).eval()
    return net, data, blob
