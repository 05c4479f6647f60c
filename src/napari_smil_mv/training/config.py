"""The training configuration: one validated file (JSON or TOML) with defaults, saved next to the checkpoints.

Layout (every key optional except ``data.dataset``; see docs/training.md for the meaning of each)::

    output_dir = "runs/demo"        # checkpoints, config.json, history.json
    epochs = 30
    [data]    dataset, val_dataset, split_by, val_fraction, ..., batch_size, num_workers
    [model]   the architecture fields of NetworkSpec (backbone, fusion, body_head, camera_head, ...)
    [optim]   lr, backbone_lr, weight_decay, grad_clip, schedule, lr_steps, freeze_backbone_epochs
    [loss]    weights {term: w}, curriculum {epoch: {term: w}}, joint_weights {joint: multiplier}, ignored_joints

Relative paths are resolved against the config file's folder. Unknown keys, wrong types and out-of-range values
raise ValueError naming the key (``optim.lr``) and what is allowed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from napari_smil_mv.network.spec import ARCHITECTURE_FIELDS, NetworkSpec

#: Loss terms (weights live in ``loss.weights``; see :mod:`napari_smil_mv.training.losses`).
LOSS_TERMS = (
    "keypoint_2d",
    "keypoint_3d",
    "betas",
    "global_rot",
    "joint_rot",
    "cam_rot",
    "cam_trans",
    "cam_focal",
    "cam_pp",
    "joint_angle",
    "limb_scale",
    "limb_trans",
    "ief_intermediate",
)


def default_loss_weights() -> dict[str, float]:
    """Default weight of every loss term (terms are dimensionless, see the losses module)."""
    return {
        "keypoint_2d": 1.0,
        "keypoint_3d": 1.0,
        "betas": 0.1,
        "global_rot": 0.1,
        "joint_rot": 0.1,
        "cam_rot": 1.0,
        "cam_trans": 1.0,
        "cam_focal": 1.0,
        "cam_pp": 1.0,
        "joint_angle": 1e-3,
        "limb_scale": 1e-2,
        "limb_trans": 1e-2,
        "ief_intermediate": 0.0,
    }


@dataclass
class DataConfig:
    """``[data]``: dataset files, split and loading."""

    dataset: str = ""
    val_dataset: str | None = None
    split_by: str = "time_block"
    val_fraction: float = 0.15
    test_fraction: float = 0.0
    block_frames: int = 30
    gap_frames: int = 0
    split_seed: int = 0
    num_views: int | None = None
    random_view_sampling: bool = True
    permute_views: bool = False
    augment: bool = True
    zoom: bool = False
    batch_size: int = 8
    val_batch_size: int | None = None
    num_workers: int = 0
    max_train_samples: int | None = None
    max_val_samples: int | None = None

    def validate(self) -> None:
        if not self.dataset:
            raise ValueError("data.dataset is required: the preprocessed dataset file (.h5) to train on")
        if self.split_by not in ("session", "time_block"):
            raise ValueError(f"data.split_by must be 'session' or 'time_block', got {self.split_by!r}")
        if not (
            0 <= self.val_fraction < 1
            and 0 <= self.test_fraction < 1
            and self.val_fraction + self.test_fraction < 1
        ):
            raise ValueError(
                "data.val_fraction and data.test_fraction must be in [0, 1) and sum to less than 1"
            )
        _at_least("data.batch_size", self.batch_size, 1)
        _at_least("data.block_frames", self.block_frames, 1)
        _at_least("data.num_workers", self.num_workers, 0)
        _at_least("data.gap_frames", self.gap_frames, 0)
        for name in ("num_views", "val_batch_size", "max_train_samples", "max_val_samples"):
            if getattr(self, name) is not None:
                _at_least(f"data.{name}", getattr(self, name), 1)


@dataclass
class OptimConfig:
    """``[optim]``: AdamW with a separate backbone learning rate, gradient clipping and the schedule."""

    lr: float = 3e-4
    backbone_lr: float | None = 1e-4
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    schedule: str = "cosine"
    warmup_steps: int = 0
    min_lr_fraction: float = 0.05
    lr_steps: dict[int, float] = field(default_factory=dict)
    freeze_backbone_epochs: int = 0

    def validate(self) -> None:
        if not self.lr > 0:
            raise ValueError(f"optim.lr must be > 0, got {self.lr}")
        if self.backbone_lr is not None and not self.backbone_lr >= 0:
            raise ValueError(f"optim.backbone_lr must be >= 0 or null (= lr), got {self.backbone_lr}")
        if self.schedule not in ("constant", "cosine", "steps"):
            raise ValueError(f"optim.schedule must be 'constant', 'cosine' or 'steps', got {self.schedule!r}")
        if not self.weight_decay >= 0 or not self.grad_clip >= 0:
            raise ValueError(
                "optim.weight_decay and optim.grad_clip must be >= 0 (grad_clip 0 = no clipping)"
            )
        if not 0 <= self.min_lr_fraction <= 1:
            raise ValueError(f"optim.min_lr_fraction must be in [0, 1], got {self.min_lr_fraction}")
        _at_least("optim.warmup_steps", self.warmup_steps, 0)
        _at_least("optim.freeze_backbone_epochs", self.freeze_backbone_epochs, 0)
        bad = [e for e, m in self.lr_steps.items() if e < 0 or not m > 0]
        if bad:
            raise ValueError(f"optim.lr_steps: epochs must be >= 0 and multipliers > 0, bad entries {bad}")


@dataclass
class LossConfig:
    """``[loss]``: weights, a curriculum of weight changes by epoch, and joint importance."""

    weights: dict[str, float] = field(default_factory=default_loss_weights)
    curriculum: dict[int, dict[str, float]] = field(default_factory=dict)
    joint_weights: dict[str, float] = field(default_factory=dict)
    ignored_joints: list[str] = field(default_factory=list)

    def validate(self) -> None:
        merged = default_loss_weights()
        merged.update(self.weights)
        self.weights = merged
        for where, table in [("loss.weights", self.weights)] + [
            (f"loss.curriculum.{e}", t) for e, t in self.curriculum.items()
        ]:
            bad = [k for k in table if k not in LOSS_TERMS]
            if bad:
                raise ValueError(f"{where}: unknown loss term(s) {bad}; choose from {list(LOSS_TERMS)}")
            negative = [k for k, v in table.items() if not float(v) >= 0]
            if negative:
                raise ValueError(f"{where}: weights must be >= 0, got negative {negative}")
        if any(e < 0 for e in self.curriculum):
            raise ValueError("loss.curriculum: epochs must be >= 0")
        negative = [k for k, v in self.joint_weights.items() if not float(v) >= 0]
        if negative:
            raise ValueError(f"loss.joint_weights: multipliers must be >= 0, got negative {negative}")

    def weights_at(self, epoch: int) -> dict[str, float]:
        """Weights in effect at ``epoch`` (0-based): base weights, then every curriculum stage ``<= epoch``."""
        w = dict(self.weights)
        for e in sorted(self.curriculum):
            if e <= epoch:
                w.update(self.curriculum[e])
        return w


@dataclass
class TrainConfig:
    """A whole training run (see the module docstring)."""

    output_dir: str = "training_run"
    body_model: str | None = None
    epochs: int = 20
    device: str = "auto"
    amp: str = "auto"
    seed: int = 0
    deterministic: bool = False
    log_every: int = 10
    checkpoint_every: int = 1
    keep_epoch_checkpoints: bool = False
    sample_every: int = 1
    n_samples: int = 2
    max_steps_per_epoch: int | None = None
    time_limit_s: float | None = None
    threads: int | None = None
    data: DataConfig = field(default_factory=DataConfig)
    model: dict[str, Any] = field(default_factory=dict)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)

    def validate(self) -> TrainConfig:
        """Check every field; returns self."""
        _at_least("epochs", self.epochs, 1)
        _at_least("log_every", self.log_every, 1)
        _at_least("checkpoint_every", self.checkpoint_every, 1)
        _at_least("sample_every", self.sample_every, 1)
        _at_least("n_samples", self.n_samples, 0)
        if self.amp not in ("auto", "off", "bf16", "fp16"):
            raise ValueError(f"amp must be 'auto', 'off', 'bf16' or 'fp16', got {self.amp!r}")
        if self.max_steps_per_epoch is not None:
            _at_least("max_steps_per_epoch", self.max_steps_per_epoch, 1)
        if self.time_limit_s is not None and not self.time_limit_s > 0:
            raise ValueError(f"time_limit_s must be > 0 or null, got {self.time_limit_s}")
        if self.threads is not None:
            _at_least("threads", self.threads, 1)
        unknown = sorted(set(self.model) - set(ARCHITECTURE_FIELDS))
        if unknown:
            raise ValueError(f"model: unknown key(s) {unknown}; known keys are {sorted(ARCHITECTURE_FIELDS)}")
        self.network_spec()  # validates the architecture
        self.data.validate()
        self.optim.validate()
        self.loss.validate()
        return self

    def network_spec(self) -> NetworkSpec:
        """A :class:`NetworkSpec` with this config's architecture (data facts still empty)."""
        defaults = NetworkSpec()
        hints = typing.get_type_hints(NetworkSpec)
        data = {
            k: _coerce(hints[k], self.model[k], f"model.{k}") if k in self.model else getattr(defaults, k)
            for k in ARCHITECTURE_FIELDS
        }
        return NetworkSpec(**data).validate()

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dict (curriculum/lr_steps epochs become strings, as JSON needs)."""
        d = dataclasses.asdict(self)
        d["optim"]["lr_steps"] = {str(k): v for k, v in self.optim.lr_steps.items()}
        d["loss"]["curriculum"] = {str(k): v for k, v in self.loss.curriculum.items()}
        d["model"] = {**self.network_spec().architecture(), **self.model}
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any], base_dir: str | os.PathLike | None = None) -> TrainConfig:
        """Build and validate from a dict (e.g. a parsed JSON/TOML file); relative paths resolve against
        ``base_dir``."""
        cfg = _build(cls, data, "")
        if base_dir is not None:
            base = Path(base_dir)
            cfg.output_dir = _resolve(cfg.output_dir, base)
            cfg.body_model = _resolve(cfg.body_model, base)
            cfg.data.dataset = _resolve(cfg.data.dataset, base)
            cfg.data.val_dataset = _resolve(cfg.data.val_dataset, base)
            if cfg.model.get("pretrained"):
                cfg.model["pretrained"] = _resolve(cfg.model["pretrained"], base)
        return cfg.validate()


def load_config(path: str | os.PathLike) -> TrainConfig:
    """Read a ``.json`` or ``.toml`` training config (see the module docstring).

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Unreadable file or invalid content (the message names the file and the key).
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"training config not found: {p}")
    text = p.read_text(encoding="utf-8")
    try:
        if p.suffix.lower() == ".toml":
            import tomllib

            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{p}: cannot parse the config ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{p}: the config must be a table/object at the top level")
    try:
        return TrainConfig.from_dict(data, base_dir=p.parent.resolve())
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{p}: {exc}") from None


def save_config(config: TrainConfig, path: str | os.PathLike) -> Path:
    """Write the resolved config as JSON (atomically)."""
    from napari_smil_mv.utils.atomic import atomic_path

    p = Path(path)
    with atomic_path(p, overwrite=True) as tmp:
        tmp.write_text(json.dumps(config.to_dict(), indent=2) + "\n", encoding="utf-8")
    return p


# ------------------------------------------------------------------------------------------------ helpers
def _at_least(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def _resolve(value: str | None, base: Path) -> str | None:
    if not value:
        return value
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else (base / p).resolve())


def _coerce(tp: Any, value: Any, where: str) -> Any:
    """Check/convert ``value`` to the annotated type ``tp`` (ints accepted for floats, epoch keys as strings)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, where)
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError(errors[0] if errors else f"{where}: bad value {value!r}")
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where} must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{where} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, (str, os.PathLike)):
            raise ValueError(f"{where} must be a string, got {value!r}")
        return str(value)
    if origin is dict:
        kt, vt = typing.get_args(tp)
        if not isinstance(value, dict):
            raise ValueError(f"{where} must be a table/object, got {value!r}")
        out = {}
        for k, v in value.items():
            key = k
            if kt is int:
                try:
                    key = int(k)
                except (TypeError, ValueError):
                    raise ValueError(f"{where}: key {k!r} must be an integer (an epoch)") from None
            out[key] = _coerce(vt, v, f"{where}.{k}")
        return out
    if origin is list:
        (it,) = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where} must be a list, got {value!r}")
        return [_coerce(it, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, f"{where}.")
    return value


def _build(cls: type, data: Any, prefix: str) -> Any:
    where = prefix.rstrip(".") or "config"
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be a table/object, got {data!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known keys are {sorted(known)}")
    kwargs = {k: _coerce(hints[k], v, f"{prefix}{k}") for k, v in data.items()}
    return cls(**kwargs)
