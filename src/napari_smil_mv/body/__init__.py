"""SMIL body model: model files, rotation conversions, the differentiable torch model and animation files."""

from napari_smil_mv.body.model_file import (
    SMILModelData,
    load_smil_model,
    save_smil_model,
    smil_model_from_dict,
)
from napari_smil_mv.body.rotations import (
    as_rotation_matrices,
    axis_angle_to_matrix,
    matrix_to_axis_angle,
    matrix_to_rotation_6d,
    rotation_6d_to_matrix,
)
from napari_smil_mv.body.smil import SMILModel, SMILOutput

__all__ = [
    "SMILModelData",
    "load_smil_model",
    "smil_model_from_dict",
    "save_smil_model",
    "SMILModel",
    "SMILOutput",
    "axis_angle_to_matrix",
    "matrix_to_axis_angle",
    "rotation_6d_to_matrix",
    "matrix_to_rotation_6d",
    "as_rotation_matrices",
]
