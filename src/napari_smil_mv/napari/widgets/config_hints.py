"""The :class:`~napari_smil_mv.napari.widgets.config_forms.FormHints` of each config dataclass: choices of the ``str``
fields, path fields, and which fields sit in the collapsed "Advanced" section of the widgets' forms."""

from __future__ import annotations

from napari_smil_mv.napari.widgets.config_forms import FormHints


def fit_hints() -> FormHints:
    """FitConfig: the robust loss, its scale, camera exclusion and the loss weights in front."""
    from napari_smil_mv.fitting.config import OPTIMISERS, ROBUST_LOSSES, SMOOTH_LOSSES, FitConfig

    basic = {"robust_loss", "reproj_sigma_px", "exclude_inconsistent_cameras", "weights"}
    advanced = {f for f in FitConfig.__dataclass_fields__ if f not in basic}
    n = len(FitConfig().stages)
    choices = {
        "robust_loss": ROBUST_LOSSES,
        "smooth_loss": SMOOTH_LOSSES,
        **{f"stages.{i}.optimiser": OPTIMISERS for i in range(n)},
    }
    return FormHints(advanced=advanced, choices=choices)


def preprocess_hints() -> FormHints:
    """PreprocessOptions: crop, size, views, frame selection, undistortion and excluded cameras in front."""
    from napari_smil_mv.dataset.crops import CROP_MODES

    basic = {
        "image_size",
        "crop_mode",
        "min_views",
        "frame_skip",
        "max_frames_per_session",
        "undistort",
        "exclude_cameras",
    }
    from napari_smil_mv.dataset import PreprocessOptions

    advanced = {f for f in PreprocessOptions.__dataclass_fields__ if f not in basic}
    return FormHints(advanced=advanced, choices={"crop_mode": CROP_MODES})


def train_hints() -> FormHints:
    """TrainConfig: data/output paths, epochs, batch, learning rates, backbone, pretrained weights and fusion in
    front; the rest (schedule, loss weights, curriculum, split, architecture details) advanced."""
    from napari_smil_mv.network.backbones import BACKBONES
    from napari_smil_mv.network.spec import (
        ARCHITECTURE_FIELDS,
        BODY_HEADS,
        CAMERA_HEADS,
        CAMERA_MODES,
        FUSIONS,
        NetworkSpec,
    )

    basic_top = {"output_dir", "body_model", "epochs", "device", "data", "optim", "model"}
    basic_nested = {
        "data.dataset",
        "data.batch_size",
        "data.val_fraction",
        "data.augment",
        "optim.lr",
        "optim.backbone_lr",
        "model.backbone",
        "model.pretrained",
        "model.fusion",
    }
    from napari_smil_mv.training.config import DataConfig, OptimConfig, TrainConfig

    advanced = {f for f in TrainConfig.__dataclass_fields__ if f not in basic_top}
    advanced |= {f"data.{f}" for f in DataConfig.__dataclass_fields__} - basic_nested
    advanced |= {f"optim.{f}" for f in OptimConfig.__dataclass_fields__} - basic_nested
    advanced |= {f"model.{f}" for f in ARCHITECTURE_FIELDS} - basic_nested
    return FormHints(
        advanced=advanced,
        choices={
            "device": ("auto", "cpu", "cuda"),
            "amp": ("auto", "off", "bf16", "fp16"),
            "data.split_by": ("time_block", "session"),
            "optim.schedule": ("constant", "cosine", "steps"),
            "model.backbone": tuple(BACKBONES),
            "model.fusion": FUSIONS,
            "model.body_head": BODY_HEADS,
            "model.camera_head": CAMERA_HEADS,
            "model.camera_mode": CAMERA_MODES,
        },
        paths={
            "output_dir": "d",
            "body_model": "r",
            "data.dataset": "r",
            "data.val_dataset": "r",
            "model.pretrained": "r",
        },
        labels={"model": "network", "data": "data", "optim": "optimiser", "loss": "loss"},
        dict_as={"model": (NetworkSpec, ARCHITECTURE_FIELDS)},
    )


def infer_hints() -> FormHints:
    """InferOptions: device, batch, refinement, frame range and camera exclusion in front."""
    return FormHints(
        advanced={"model", "animal", "joint_map", "units", "refine_iterations"},
        paths={"model": "r", "joint_map": "r"},
        labels={"exclude_cameras": "exclude cameras (override)"},
    )
