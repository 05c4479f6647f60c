"""Image backbones shared by every view: a small CNN, plain-torch ResNets, and optional timm/torchvision models.

Every backbone takes float RGB images in ``[0, 1]`` with shape ``(N, 3, H, W)`` and owns its input normalisation
(persistent ``pixel_mean`` / ``pixel_std`` buffers, saved in checkpoints). It returns a :class:`BackboneOutput`:
one global feature vector per image and a grid of spatial tokens (for the transformer body head).

Pretrained weights are never downloaded: :func:`build_backbone` loads them only from a file the user gives
(``torch.save`` of a state dict, or a checkpoint with a ``state_dict`` / ``model`` entry). Our ResNets use
torchvision's module names, so a torchvision ``resnet18/34/50/101`` weight file loads into them directly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

__all__ = [
    "BACKBONES",
    "BackboneOutput",
    "ImageBackbone",
    "ResNet",
    "SmallCNN",
    "build_backbone",
    "load_pretrained",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class BackboneOutput:
    """Features of a batch of images.

    Attributes
    ----------
    global_features : torch.Tensor
        ``(N, feature_dim)`` one vector per image.
    tokens : torch.Tensor
        ``(N, P, token_dim)`` spatial tokens (``P`` grid cells, row-major).
    """

    global_features: torch.Tensor
    tokens: torch.Tensor


class ImageBackbone(nn.Module):
    """Base class: normalisation buffers and the output contract (see the module docstring).

    Subclasses implement :meth:`features` on normalised images and set ``feature_dim`` / ``token_dim``.
    """

    feature_dim: int
    token_dim: int

    def __init__(self, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> None:
        super().__init__()
        self.register_buffer("pixel_mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("pixel_std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def features(self, x: torch.Tensor) -> BackboneOutput:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, images: torch.Tensor) -> BackboneOutput:
        """Normalise ``(N, 3, H, W)`` images in ``[0, 1]`` and extract features."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"backbone input must be (N, 3, H, W) RGB images, got {tuple(images.shape)}")
        x = (images - self.pixel_mean.to(images.dtype)) / self.pixel_std.to(images.dtype)
        return self.features(x)


def _grid_output(fmap: torch.Tensor) -> BackboneOutput:
    """Global average pool and row-major tokens of a ``(N, C, h, w)`` feature map."""
    return BackboneOutput(fmap.mean(dim=(2, 3)), fmap.flatten(2).transpose(1, 2))


def _conv_bn(cin: int, cout: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class SmallCNN(ImageBackbone):
    """A small CNN that trains on a CPU in minutes (the demo default).

    Four stride-2 3x3 conv + BatchNorm + ReLU stages (``widths``), with an extra stride-1 conv in the last two
    stages; global average pool. At 64 px input it gives 4 x 4 tokens.

    Parameters
    ----------
    widths
        Channels of the four stages; the last one is ``feature_dim``.
    """

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128, 256)) -> None:
        super().__init__(mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
        layers: list[nn.Module] = []
        cin = 3
        for i, w in enumerate(widths):
            layers += _conv_bn(cin, w, 2)
            if i >= len(widths) - 2:
                layers += _conv_bn(w, w, 1)
            cin = w
        self.body = nn.Sequential(*layers)
        self.feature_dim = self.token_dim = int(widths[-1])
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def features(self, x: torch.Tensor) -> BackboneOutput:
        return _grid_output(self.body(x))


# ------------------------------------------------------------------------------------------------ ResNet
class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, width: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)  # stride on the 3x3 (torchvision v1.5)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, width * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


_RESNET_LAYOUTS = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
    "resnet101": (Bottleneck, (3, 4, 23, 3)),
}


class ResNet(ImageBackbone):
    """Plain-torch ResNet (He et al. 2016, torchvision's v1.5 layout and module names), without the classifier.

    Parameters
    ----------
    depth
        ``"resnet18"``, ``"resnet34"``, ``"resnet50"`` or ``"resnet101"``.
    """

    def __init__(self, depth: str = "resnet50") -> None:
        super().__init__()
        if depth not in _RESNET_LAYOUTS:
            raise ValueError(f"unknown ResNet {depth!r}; choose one of {sorted(_RESNET_LAYOUTS)}")
        block, counts = _RESNET_LAYOUTS[depth]
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self._cin = 64
        self.layer1 = self._layer(block, 64, counts[0], 1)
        self.layer2 = self._layer(block, 128, counts[1], 2)
        self.layer3 = self._layer(block, 256, counts[2], 2)
        self.layer4 = self._layer(block, 512, counts[3], 2)
        self.feature_dim = self.token_dim = 512 * block.expansion
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for m in self.modules():  # zero-init the last BN of each residual branch (identity blocks at start)
            if isinstance(m, Bottleneck):
                nn.init.zeros_(m.bn3.weight)
            elif isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    def _layer(self, block, width: int, count: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self._cin != width * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self._cin, width * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(width * block.expansion),
            )
        layers = [block(self._cin, width, stride, downsample)]
        self._cin = width * block.expansion
        layers += [block(self._cin, width) for _ in range(count - 1)]
        return nn.Sequential(*layers)

    def features(self, x: torch.Tensor) -> BackboneOutput:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return _grid_output(x)


# ------------------------------------------------------------------------------------------------ optional
class TimmBackbone(ImageBackbone):
    """A ``timm`` model (``"timm:<name>"``), created without weights; normalisation from its data config.

    CNNs give their last feature map as tokens; ViTs their patch tokens (the class token, when present, is the
    global feature, else the mean of the tokens).
    """

    def __init__(self, name: str) -> None:
        try:
            import timm
        except Exception as exc:  # ImportError, or timm failing on a torch without torchvision
            raise ValueError(
                f"backbone 'timm:{name}' needs the timm package, which cannot be imported here ({exc}). Use a "
                "built-in backbone ('small_cnn', 'resnet18', 'resnet50', ...) or install timm with a matching "
                "torchvision"
            ) from None
        model = timm.create_model(name, pretrained=False, num_classes=0, global_pool="")
        cfg = timm.data.resolve_model_data_config(model)
        super().__init__(mean=tuple(cfg["mean"]), std=tuple(cfg["std"]))
        self.model = model
        self.feature_dim = self.token_dim = int(model.num_features)
        self.prefix_tokens = int(getattr(model, "num_prefix_tokens", 0))

    def features(self, x: torch.Tensor) -> BackboneOutput:
        f = self.model.forward_features(x)
        if f.ndim == 4:
            return _grid_output(f)
        if self.prefix_tokens:
            return BackboneOutput(f[:, 0], f[:, self.prefix_tokens :])
        return BackboneOutput(f.mean(1), f)


class TorchvisionBackbone(ImageBackbone):
    """A torchvision CNN (``"torchvision:<name>"``, e.g. ``convnext_tiny``), created without weights.

    The classifier is dropped and the last feature map (``model.features`` or everything before ``avgpool``)
    gives tokens and the global feature. ImageNet normalisation.
    """

    def __init__(self, name: str) -> None:
        try:
            import torchvision
        except Exception as exc:
            raise ValueError(
                f"backbone 'torchvision:{name}' needs torchvision, which cannot be imported here ({exc}). Use a "
                "built-in backbone ('small_cnn', 'resnet18', 'resnet50', ...)"
            ) from None
        super().__init__()
        model = torchvision.models.get_model(name, weights=None)
        if hasattr(model, "features"):
            trunk = model.features
        else:
            children = dict(model.named_children())
            keep = [m for n, m in children.items() if n not in ("avgpool", "fc", "classifier", "head")]
            trunk = nn.Sequential(*keep)
        self.model = trunk
        with torch.no_grad():
            dim = trunk(torch.zeros(1, 3, 64, 64)).shape[1]
        self.feature_dim = self.token_dim = int(dim)

    def features(self, x: torch.Tensor) -> BackboneOutput:
        return _grid_output(self.model(x))


BACKBONES: dict[str, str] = {
    "small_cnn": "small CNN (4 stride-2 stages, 256 features, ~0.8 M parameters); trains on a CPU in minutes",
    "resnet18": "plain-torch ResNet-18 (512 features, 11 M parameters; torchvision weight files load)",
    "resnet34": "plain-torch ResNet-34 (512 features, 21 M parameters)",
    "resnet50": "plain-torch ResNet-50 (2048 features, 23.5 M parameters)",
    "resnet101": "plain-torch ResNet-101 (2048 features, 42.5 M parameters)",
    "timm:<name>": "any timm model (ResNet, ViT, ConvNeXt, ...) when timm is installed",
    "torchvision:<name>": "any torchvision CNN (e.g. convnext_tiny) when torchvision is installed",
}


def _make(name: str) -> ImageBackbone:
    if name == "small_cnn":
        return SmallCNN()
    if name in _RESNET_LAYOUTS:
        return ResNet(name)
    if name.startswith("timm:"):
        return TimmBackbone(name[5:])
    if name.startswith("torchvision:"):
        return TorchvisionBackbone(name[12:])
    raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)}")


def load_pretrained(backbone: ImageBackbone, path: str | os.PathLike) -> list[str]:
    """Load weights from a file into ``backbone`` (never downloads).

    The file holds a state dict (``torch.save(model.state_dict())``) or a dict with a ``state_dict``, ``model``
    or ``model_state`` entry. Keys may carry a ``module.``/``backbone.``/``model.`` prefix; classifier weights
    (``fc.*``, ``head.*``, ``classifier.*``) are ignored. Every backbone weight must be present with the right
    shape.

    Returns
    -------
    list of str
        Keys of the file that were not used.

    Raises
    ------
    FileNotFoundError, ValueError
        Missing file, or a file that does not fit this backbone (the message names missing/mismatched keys).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained backbone weights not found: {path}")
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(blob, dict):
        for key in ("state_dict", "model", "model_state"):
            if key in blob and isinstance(blob[key], dict):
                blob = blob[key]
                break
    if not isinstance(blob, dict):
        raise ValueError(f"{path}: expected a state dict of tensors, got {type(blob).__name__}")
    own = backbone.state_dict()
    inner = isinstance(backbone, (TimmBackbone, TorchvisionBackbone))
    mapped: dict[str, torch.Tensor] = {}
    unused: list[str] = []
    for key, value in blob.items():
        k = key
        for prefix in ("module.", "backbone.", "model."):
            if k.startswith(prefix) and k not in own:
                k = k[len(prefix) :]
        if inner and ("model." + k) in own:
            k = "model." + k
        if k in own and torch.is_tensor(value):
            mapped[k] = value
        else:
            unused.append(key)
    missing = [k for k in own if k not in mapped and not k.startswith("pixel_")]
    wrong = [k for k, v in mapped.items() if tuple(v.shape) != tuple(own[k].shape)]
    if missing or wrong:
        raise ValueError(
            f"{path} does not fit backbone {type(backbone).__name__}: {len(missing)} weights missing "
            f"(e.g. {missing[:3]}), {len(wrong)} with another shape (e.g. {wrong[:3]}); give weights of the same "
            "architecture"
        )
    mapped.update({k: own[k] for k in own if k.startswith("pixel_") and k not in mapped})
    backbone.load_state_dict(mapped, strict=True)
    return unused


def build_backbone(name: str, pretrained: str | os.PathLike | None = None) -> ImageBackbone:
    """Create a backbone by name (see :data:`BACKBONES`), optionally loading weights from a file."""
    backbone = _make(str(name))
    if pretrained:
        load_pretrained(backbone, pretrained)
    return backbone
