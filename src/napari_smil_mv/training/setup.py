"""Setting up a training run: device, precision, processes, body model, network spec, optimiser and schedule."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import torch

from napari_smil_mv.network import NetworkSpec
from napari_smil_mv.training.config import OptimConfig, TrainConfig


@dataclass
class Runtime:
    """Where and how this process trains.

    Attributes
    ----------
    device : the torch device
    rank, world : process rank and count (1 without DDP)
    local_rank : GPU index of this process
    distributed : a process group is active
    owns_group : this run created the process group (and destroys it at the end)
    amp_dtype : autocast dtype (None = full precision)
    """

    device: torch.device
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    distributed: bool = False
    owns_group: bool = False
    amp_dtype: torch.dtype | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def make_runtime(config: TrainConfig) -> Runtime:
    """Resolve the device, AMP and DDP (``torchrun`` sets ``WORLD_SIZE``/``RANK``/``LOCAL_RANK``).

    Raises
    ------
    ValueError
        A CUDA device was requested but is not available, or fp16 AMP on the CPU.
    """
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    want = config.device
    if want == "auto":
        want = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(want)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {config.device!r} was requested but CUDA is not available; use device 'cpu'"
            )
        if world > 1 or device.index is None:
            device = torch.device("cuda", local_rank if world > 1 else (device.index or 0))
        torch.cuda.set_device(device)
    distributed, owns = False, False
    if world > 1:
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
            owns = True
        distributed = True
        rank, world = dist.get_rank(), dist.get_world_size()
    amp = config.amp
    if amp == "auto":
        amp = "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "off"
    if amp == "fp16" and device.type != "cuda":
        raise ValueError("amp 'fp16' needs a CUDA device; use 'off' or 'bf16' on the CPU")
    dtype = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    if config.threads:
        torch.set_num_threads(int(config.threads))
    if config.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not config.deterministic
    return Runtime(device, rank, world, local_rank, distributed, owns, dtype)


def resolve_training_body_model(config: TrainConfig, info):
    """The body model for a dataset: ``config.body_model`` or the dataset's recorded model (checked)."""
    from napari_smil_mv.body import load_smil_model
    from napari_smil_mv.body.recorded_model import load_recorded_model

    source = str(info.attrs.get("body_model_source", ""))
    if config.body_model:
        data = load_smil_model(config.body_model)
    elif source in ("", "<demo model>"):
        data = load_smil_model(None)
    else:  # the path the dataset records: hashed before it is unpickled
        data = load_recorded_model(
            source,
            str(info.attrs.get("body_model_sha256", "")),
            f"the dataset {info.path}",
            "set body_model in the config",
        )
    sha = str(info.attrs.get("body_model_sha256", ""))
    if sha and data.sha256 != sha:
        raise ValueError(
            f"body model {data.source} (SHA-256 {data.sha256[:12]}...) is not the model the dataset {info.path} "
            f"was made with ({source}, SHA-256 {sha[:12]}...); its joints would not match"
        )
    if info.n_joints != data.n_joints or (
        info.joint_names and list(info.joint_names) != list(data.joint_names)
    ):
        raise ValueError(
            f"dataset {info.path} has {info.n_joints} joints but body model {data.source} has {data.n_joints} "
            "(or other names); use the model the dataset was preprocessed with"
        )
    return data


def _rest_extent(model_data) -> tuple[np.ndarray, float]:
    """Rest-pose keypoints ``(J, 3)`` (model units) and their largest pairwise distance."""
    from napari_smil_mv.body import SMILModel

    with torch.no_grad():
        J = model_data.n_joints
        pose = torch.zeros(1, J, 3)
        joints = SMILModel(model_data)(pose).joints[0].double().numpy()
    extent = float(np.max(np.linalg.norm(joints[:, None] - joints[None], axis=-1)))
    return joints, extent


def estimate_mesh_scale(model_data, kp3d: np.ndarray, valid: np.ndarray) -> float | None:
    """Median over samples of the scale that best maps rest-pose joint distances onto the 3D keypoints' ones.

    ``kp3d (N, J, 3)`` in training units with mask ``valid (N, J)``; None without usable samples.
    """
    rest, _ = _rest_extent(model_data)
    ratios = []
    for pts, ok in zip(kp3d, valid, strict=True):
        idx = np.flatnonzero(ok)
        if idx.size < 3:
            continue
        d_gt = np.linalg.norm(pts[idx, None] - pts[None, idx], axis=-1)
        d_rest = np.linalg.norm(rest[idx, None] - rest[None, idx], axis=-1)
        denom = float((d_rest**2).sum())
        if denom > 0:
            ratios.append(float((d_gt * d_rest).sum()) / denom)
    return float(np.median(ratios)) if ratios else None


def _keypoints_3d(path, indices) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``keypoints_3d (N, J, 3)`` (file units) and their validity ``(N, J)`` of the given samples (all: None)."""
    from napari_smil_mv.dataset.reader import DatasetFile

    with DatasetFile(path) as ds:
        pts, valid = ds.keypoints_3d()
    if pts is None:
        return None, None
    if indices is not None:
        pts, valid = pts[indices], valid[indices]
    return pts, valid


def build_spec(config: TrainConfig, dataset, model_data, indices: np.ndarray | None = None) -> NetworkSpec:
    """The network spec: the config's architecture plus the facts of ``dataset`` (a MultiViewDataset).

    ``indices`` are the training samples (for the automatic mesh scale); None = all samples.
    """
    info = dataset.info
    spec = config.network_spec()
    spec.camera_names = list(dataset.get_canonical_camera_order())
    spec.image_size = int(info.image_size)
    spec.joint_names = list(model_data.joint_names)
    spec.n_betas = int(model_data.n_betas)
    spec.body_model_source = str(model_data.source)
    spec.body_model_sha256 = str(model_data.sha256)
    spec.world_scale = float(dataset.world_scale)
    spec.world_units = "m" if dataset.world_scale != 1.0 else str(info.world_units)
    options = info.attrs.get("options") if isinstance(info.attrs.get("options"), dict) else {}
    spec.preprocessing = {
        "crop_mode": str(info.attrs.get("crop_mode", options.get("crop_mode", "default"))),
        "image_size": int(info.image_size),
        "bbox_scale": float(options.get("bbox_scale", 1.2)),
        "bbox_min_size": float(options.get("bbox_min_size", 32.0)),
        "undistort": bool(info.attrs.get("undistort_images", True)),
        "jpeg_quality": int(info.attrs.get("jpeg_quality", options.get("jpeg_quality", 95))),
        "min_score": options.get("min_score"),
        "min_keypoints": int(options.get("min_keypoints", 1)),
        "dataset_units": str(info.world_units),
        "exclude_cameras": [str(c) for c in options.get("exclude_cameras") or []],
    }
    jm = info.attrs.get("joint_map")
    spec.joint_map = [[str(a), str(b)] for a, b in jm] if isinstance(jm, list) else []
    spec.resolve_hidden_dim()
    if spec.camera_mode == "auto":
        spec.camera_mode = "calibrated" if info.has_camera_parameters else "absolute"
    if spec.camera_mode == "calibrated" and not info.has_camera_parameters:
        raise ValueError(
            f"model.camera_mode is 'calibrated' but {info.path} has no camera parameters; use 'absolute' or 'auto'"
        )
    if spec.mesh_scale_init == "auto":
        scale = None
        if info.has_3d_keypoints:
            kp, valid = _keypoints_3d(info.path, indices)
            if kp is not None:
                scale = estimate_mesh_scale(model_data, kp * dataset.world_scale, valid)
        spec.mesh_scale_value = float(scale) if scale else 1.0
    else:
        spec.mesh_scale_value = float(spec.mesh_scale_init)
    _, extent = _rest_extent(model_data)
    spec.body_length = spec.mesh_scale_value * extent
    return spec.validate()


def make_optimizer(network: torch.nn.Module, optim: OptimConfig) -> torch.optim.AdamW:
    """AdamW with the backbone at ``backbone_lr`` (or ``lr``), no weight decay on norms, biases and embeddings."""
    groups: dict[tuple[bool, bool], list] = {}
    for name, p in network.named_parameters():
        is_backbone = name.startswith("backbone.")
        no_decay = p.ndim <= 1 or "embedding" in name or name.endswith(("position", "query"))
        groups.setdefault((is_backbone, no_decay), []).append(p)
    params = []
    for (is_backbone, no_decay), ps in sorted(groups.items()):
        lr = optim.backbone_lr if (is_backbone and optim.backbone_lr is not None) else optim.lr
        params.append(
            {
                "params": ps,
                "lr": lr,
                "base_lr": lr,
                "weight_decay": 0.0 if no_decay else optim.weight_decay,
                "is_backbone": is_backbone,
            }
        )
    try:  # the fused kernel (CPU and CUDA) is several times faster than the per-parameter loop
        return torch.optim.AdamW(params, lr=optim.lr, weight_decay=optim.weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(params, lr=optim.lr, weight_decay=optim.weight_decay, foreach=True)


def lr_factor(optim: OptimConfig, epoch: int, step: int, total_steps: int) -> float:
    """Multiplier of the base learning rates at global ``step`` (0-based) of ``total_steps``, in ``epoch``."""
    if optim.warmup_steps and step < optim.warmup_steps:
        warm = (step + 1) / optim.warmup_steps
    else:
        warm = 1.0
    if optim.schedule == "cosine":
        frac = min(1.0, step / max(1, total_steps))
        low = optim.min_lr_fraction
        factor = low + (1 - low) * 0.5 * (1 + math.cos(math.pi * frac))
    elif optim.schedule == "steps":
        factor = 1.0
        for e in sorted(optim.lr_steps):
            if e <= epoch:
                factor = optim.lr_steps[e]
    else:
        factor = 1.0
    return warm * factor


def set_lr(optimizer: torch.optim.Optimizer, factor: float, freeze_backbone: bool) -> float:
    """Apply ``factor`` to every group's base rate (0 for a frozen backbone); returns the head rate."""
    head = 0.0
    for g in optimizer.param_groups:
        g["lr"] = 0.0 if (freeze_backbone and g.get("is_backbone")) else g["base_lr"] * factor
        if not g.get("is_backbone"):
            head = g["lr"]
    return head


def clip_grad_norm(parameters, max_norm: float) -> torch.Tensor:
    """:func:`torch.nn.utils.clip_grad_norm_` (total 2-norm, ``foreach``), without the multiplication by 1.

    The gradients are scaled by ``min(1, max_norm / (norm + 1e-6))``, as torch does. On a CPU, where reading
    the norm costs no device synchronisation, gradients whose norm is already within the bound are left as they
    are instead of being multiplied by exactly 1.0 (one operation per parameter tensor saved). Returns the total
    norm before clipping.
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.tensor(0.0)
    total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    coef = max_norm / (total + 1e-6)
    if total.device.type == "cpu" and bool(coef >= 1.0):
        return total
    torch._foreach_mul_(grads, torch.clamp(coef, max=1.0))
    return total
