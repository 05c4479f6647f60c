"""Direct multi-view fitting of SMIL body models to 2D (and 3D) keypoints of calibrated cameras.

Typical use::

    from napari_smil_mv.body import load_smil_model
    from napari_smil_mv.fitting import FitConfig, fit, fit_data_from_session

    model = load_smil_model("mouse.pkl")
    data = fit_data_from_session(session, joint_map, model.joint_names)
    result = fit(model, data, FitConfig())          # or: for event in fit_iter(...): ...

No Qt/napari imports; torch runs on CPU or GPU (``device=``).
"""

from napari_smil_mv.body.kinematics import JointsModel
from napari_smil_mv.fitting.camera_check import CameraReport, check_cameras
from napari_smil_mv.fitting.config import LOSS_TERMS, PARAM_GROUPS, FitConfig, StageConfig
from napari_smil_mv.fitting.data import FitData, as_camera_rig
from napari_smil_mv.fitting.initialise import align_rest_pose, triangulate_weighted, umeyama
from napari_smil_mv.fitting.optimise import fit, fit_iter
from napari_smil_mv.fitting.result import FitEvent, FitResult
from napari_smil_mv.fitting.session_data import fit_data_from_session, keypoint_weights

__all__ = [
    "LOSS_TERMS",
    "PARAM_GROUPS",
    "CameraReport",
    "FitConfig",
    "FitData",
    "FitEvent",
    "FitResult",
    "JointsModel",
    "StageConfig",
    "align_rest_pose",
    "as_camera_rig",
    "check_cameras",
    "fit",
    "fit_data_from_session",
    "fit_iter",
    "keypoint_weights",
    "triangulate_weighted",
    "umeyama",
]
