"""``NetworkSpec``: everything needed to rebuild a network (architecture + the facts it was trained on).

The architecture fields come from the ``[model]`` section of a training config; the data fields (camera order,
input resolution, joints, body-model identity, units, preprocessing) are filled in by the trainer from the
dataset and stored in every checkpoint, so inference needs nothing but the checkpoint (and the body model file
it names, checked by SHA-256).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

FUSIONS = ("attention", "mean", "concat")
BODY_HEADS = ("transformer", "mlp")
CAMERA_HEADS = ("per_camera", "shared")
CAMERA_MODES = ("auto", "calibrated", "absolute")

#: ``hidden_dim = "auto"``: head and decoder width by backbone. The heads are sized to the backbone: the small CNN
#: (1.1 M parameters, ~34 M multiply-adds per 64 px image) gets 128-wide heads (~1 M parameters), so that on a CPU the
#: training step is not dominated by fusion and decoder (``benchmarks/bench_train.py``, docs/training.md).
AUTO_HIDDEN_DIM = {"small_cnn": 128}
DEFAULT_HIDDEN_DIM = 256

#: Fields set from the training config's ``[model]`` section.
ARCHITECTURE_FIELDS = (
    "backbone",
    "pretrained",
    "input_size",
    "fusion",
    "fusion_layers",
    "fusion_heads",
    "dropout",
    "body_head",
    "hidden_dim",
    "decoder_depth",
    "decoder_heads",
    "ief_iters",
    "camera_head",
    "camera_mode",
    "predict_limb_scales",
    "predict_limb_trans",
    "max_rot_correction_deg",
    "max_trans_correction",
    "max_focal_correction",
    "max_pp_correction",
    "absolute_camera_distance",
    "mesh_scale_init",
)


@dataclass
class NetworkSpec:
    """Architecture and data facts of a multi-view network.

    Architecture
    ------------
    backbone : name in :data:`~napari_smil_mv.network.backbones.BACKBONES`
    pretrained : weight file loaded into the backbone when the network is first built (None = random init)
    input_size : side (px) the images are resized to before the backbone; None = the dataset's image size
    fusion : ``"attention"`` (cross-view self-attention with a key mask), ``"mean"`` or ``"concat"``
    fusion_layers, fusion_heads : attention layers and heads of the fusion
    dropout : dropout in fusion, heads and decoder
    body_head : ``"transformer"`` (decoder over all views' spatial tokens with iterative refinement) or ``"mlp"``
    hidden_dim : width of heads and decoder; ``"auto"`` = by backbone (:data:`AUTO_HIDDEN_DIM`, else 256), resolved
        when the network is built
    decoder_depth, decoder_heads, ief_iters : transformer decoder layers, heads and refinement iterations
    camera_head : ``"per_camera"`` (one head per canonical camera) or ``"shared"`` (one head + camera embedding)
    camera_mode : ``"calibrated"`` (bounded corrections to the calibration), ``"absolute"`` (free cameras), or
        ``"auto"`` (calibrated when the dataset has cameras; resolved by the trainer)
    predict_limb_scales, predict_limb_trans : predict per-joint log-scales / bone-offset translations
    max_rot_correction_deg, max_trans_correction, max_focal_correction, max_pp_correction : bounds of the
        calibrated corrections (degrees; fraction of the camera distance ``|t|``; fraction of the focal length;
        fraction of the image side)
    absolute_camera_distance : initial camera distance of absolute cameras, in body lengths
    mesh_scale_init : ``"auto"`` (from the training data's 3D keypoints) or a number (world units per model unit)

    Data (filled by the trainer)
    ----------------------------
    camera_names : canonical camera order (``camera_indices`` index it)
    image_size : side ``S`` of the dataset images (px); projections are in this pixel frame
    joint_names : body-model joint names; n_betas : shape coefficients
    body_model_source, body_model_sha256 : identity of the body model
    mesh_scale_value : resolved initial mesh scale (training world units per model unit)
    body_length : body length at ``mesh_scale_value`` (training world units)
    world_scale, world_units : factor from the dataset's units to training units (metres), and those units
    preprocessing : crop mode, image size, bbox settings and undistortion of the dataset (for session inference)
    joint_map : ``[[data_node, model_joint], ...]`` of the dataset (for session inference)
    """

    backbone: str = "small_cnn"
    pretrained: str | None = None
    input_size: int | None = None
    fusion: str = "attention"
    fusion_layers: int = 2
    fusion_heads: int = 4
    dropout: float = 0.1
    body_head: str = "transformer"
    hidden_dim: int | str = "auto"
    decoder_depth: int = 2
    decoder_heads: int = 4
    ief_iters: int = 3
    camera_head: str = "per_camera"
    camera_mode: str = "auto"
    predict_limb_scales: bool = True
    predict_limb_trans: bool = True
    max_rot_correction_deg: float = 5.0
    max_trans_correction: float = 0.05
    max_focal_correction: float = 0.1
    max_pp_correction: float = 0.02
    absolute_camera_distance: float = 10.0
    mesh_scale_init: float | str = "auto"
    # data facts
    camera_names: list[str] = field(default_factory=list)
    image_size: int = 0
    joint_names: list[str] = field(default_factory=list)
    n_betas: int = 0
    body_model_source: str = ""
    body_model_sha256: str = ""
    mesh_scale_value: float = 1.0
    body_length: float = 1.0
    world_scale: float = 1.0
    world_units: str = "unknown"
    preprocessing: dict[str, Any] = field(default_factory=dict)
    joint_map: list[list[str]] = field(default_factory=list)

    def validate(self) -> NetworkSpec:
        """Check the architecture fields; ValueError names the field and the allowed values."""
        choices = [
            ("fusion", FUSIONS),
            ("body_head", BODY_HEADS),
            ("camera_head", CAMERA_HEADS),
            ("camera_mode", CAMERA_MODES),
        ]
        for name, allowed in choices:
            if getattr(self, name) not in allowed:
                raise ValueError(f"model.{name} must be one of {allowed}, got {getattr(self, name)!r}")
        width_ok = isinstance(self.hidden_dim, int) and not isinstance(self.hidden_dim, bool)
        if self.hidden_dim != "auto" and not width_ok:
            raise ValueError(f"model.hidden_dim must be 'auto' or an integer >= 1, got {self.hidden_dim!r}")
        positive = ("fusion_heads", "decoder_heads", "ief_iters", "decoder_depth")
        positive += () if self.hidden_dim == "auto" else ("hidden_dim",)
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise ValueError(f"model.{name} must be an integer >= 1, got {getattr(self, name)!r}")
        if self.fusion_layers < 0:
            raise ValueError(f"model.fusion_layers must be >= 0, got {self.fusion_layers}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"model.dropout must be in [0, 1), got {self.dropout}")
        width = self.head_width
        if width % self.decoder_heads or width % self.fusion_heads:
            raise ValueError(
                f"model.hidden_dim ({self.hidden_dim}: {width}) must be divisible by decoder_heads "
                f"({self.decoder_heads}) and fusion_heads ({self.fusion_heads})"
            )
        if self.input_size is not None and int(self.input_size) < 16:
            raise ValueError(f"model.input_size must be None or >= 16 px, got {self.input_size}")
        for name in (
            "max_rot_correction_deg",
            "max_trans_correction",
            "max_focal_correction",
            "max_pp_correction",
        ):
            if not float(getattr(self, name)) >= 0:
                raise ValueError(f"model.{name} must be >= 0, got {getattr(self, name)}")
        if not self.absolute_camera_distance > 0:
            raise ValueError(
                f"model.absolute_camera_distance must be > 0, got {self.absolute_camera_distance}"
            )
        if not (
            self.mesh_scale_init == "auto" or (_is_number(self.mesh_scale_init) and self.mesh_scale_init > 0)
        ):
            raise ValueError(
                f"model.mesh_scale_init must be 'auto' or a number > 0, got {self.mesh_scale_init!r}"
            )
        return self

    @property
    def head_width(self) -> int:
        """``hidden_dim`` as a number (``"auto"`` resolved by backbone)."""
        if self.hidden_dim == "auto":
            return AUTO_HIDDEN_DIM.get(self.backbone, DEFAULT_HIDDEN_DIM)
        return int(self.hidden_dim)

    def resolve_hidden_dim(self) -> NetworkSpec:
        """Replace ``hidden_dim = "auto"`` by its value in place (what checkpoints store); returns self."""
        self.hidden_dim = self.head_width
        return self

    @property
    def n_cameras(self) -> int:
        return len(self.camera_names)

    @property
    def n_joints(self) -> int:
        return len(self.joint_names)

    @property
    def network_input_size(self) -> int:
        """Side (px) of the images the backbone sees."""
        return int(self.input_size or self.image_size)

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NetworkSpec:
        """Inverse of :meth:`to_dict`; unknown keys raise ValueError naming them."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"network spec: unknown key(s) {unknown}; known keys are {sorted(known)}")
        return cls(**data).validate()

    def architecture(self) -> dict[str, Any]:
        """The architecture fields only (the ``[model]`` section of a training config)."""
        return {k: getattr(self, k) for k in ARCHITECTURE_FIELDS}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
