"""Training the multi-view network: config, data feeding, losses, validation metrics, checkpoints and the loop.

No Qt/napari imports. See ``docs/training.md``.
"""

from napari_smil_mv.training.checkpoint import load_network, read_checkpoint, resolve_body_model
from napari_smil_mv.training.config import (
    LOSS_TERMS,
    DataConfig,
    LossConfig,
    OptimConfig,
    TrainConfig,
    default_loss_weights,
    load_config,
    save_config,
)
from napari_smil_mv.training.losses import compute_losses, keypoint_2d_loss, keypoint_3d_loss
from napari_smil_mv.training.metrics import ValidationMetrics, crop_to_original
from napari_smil_mv.training.trainer import TrainEvent, train, train_iter

__all__ = [
    "LOSS_TERMS",
    "DataConfig",
    "LossConfig",
    "OptimConfig",
    "TrainConfig",
    "TrainEvent",
    "ValidationMetrics",
    "compute_losses",
    "crop_to_original",
    "default_loss_weights",
    "keypoint_2d_loss",
    "keypoint_3d_loss",
    "load_config",
    "load_network",
    "read_checkpoint",
    "resolve_body_model",
    "save_config",
    "train",
    "train_iter",
]
