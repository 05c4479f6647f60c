"""Multi-camera recording sessions: discovery, reading (sleap-io, h5py), triangulation and calibration QC.

Layouts and rules are described in ``docs/sessions.md``. No Qt/napari imports.
"""

from napari_smil_mv.sessions.anipose_files import (
    AniposeCSV,
    Points3DFile,
    read_points3d_h5,
    read_pose3d_csv,
    write_points3d_h5,
)
from napari_smil_mv.sessions.discover import (
    SessionSet,
    find_sessions,
    is_session_path,
    load_session,
    load_sessions,
)
from napari_smil_mv.sessions.joint_map import JOINT_LOOKUP_CSV, JointMap, auto_match, normalise_name
from napari_smil_mv.sessions.model import CameraView, Session, Skeleton
from napari_smil_mv.sessions.qc import ErrorStats, QCReport, calibration_qc, flag_cameras, units_hint
from napari_smil_mv.sessions.shape_betas import SHAPE_BETAS_CSV, ShapeBetas
from napari_smil_mv.sessions.video import LazyVideo, VideoMissingWarning, VideoPathWarning

__all__ = [
    "JOINT_LOOKUP_CSV",
    "SHAPE_BETAS_CSV",
    "AniposeCSV",
    "CameraView",
    "ErrorStats",
    "JointMap",
    "LazyVideo",
    "Points3DFile",
    "QCReport",
    "Session",
    "SessionSet",
    "ShapeBetas",
    "Skeleton",
    "VideoMissingWarning",
    "VideoPathWarning",
    "auto_match",
    "calibration_qc",
    "find_sessions",
    "flag_cameras",
    "is_session_path",
    "load_session",
    "load_sessions",
    "normalise_name",
    "read_points3d_h5",
    "read_pose3d_csv",
    "units_hint",
    "write_points3d_h5",
]
