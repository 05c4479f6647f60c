"""The multi-view network: shared image backbone, cross-view fusion, one body head and per-camera heads.

No Qt/napari imports. See ``docs/training.md`` for the architecture and the parameterisation.
"""

from napari_smil_mv.network.backbones import (
    BACKBONES,
    BackboneOutput,
    ImageBackbone,
    ResNet,
    SmallCNN,
    build_backbone,
    load_pretrained,
)
from napari_smil_mv.network.multiview_net import MultiViewRegressor, body_joints, project
from napari_smil_mv.network.parameterisation import (
    IDENTITY_6D,
    ParamLayout,
    absolute_cameras,
    calibrated_cameras,
    pose_6d,
    ray_anchor,
)
from napari_smil_mv.network.spec import NetworkSpec

__all__ = [
    "BACKBONES",
    "IDENTITY_6D",
    "BackboneOutput",
    "ImageBackbone",
    "MultiViewRegressor",
    "NetworkSpec",
    "ParamLayout",
    "ResNet",
    "SmallCNN",
    "absolute_cameras",
    "body_joints",
    "build_backbone",
    "calibrated_cameras",
    "load_pretrained",
    "pose_6d",
    "project",
    "ray_anchor",
]
