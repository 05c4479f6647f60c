"""Export the 3D keypoints of a results file to NWB with the `ndx-pose <https://github.com/rly/ndx-pose>`_ extension.

Layout (the one movement and other ndx-pose readers expect)::

    /processing/behavior/Skeletons/<skeleton>   ndx_pose.Skeleton: nodes (J,), edges (E, 2) child/parent indices
    /processing/behavior/PoseEstimation         ndx_pose.PoseEstimation: one PoseEstimationSeries per joint,
                                                 linked to the skeleton; source_software napari-smil-mv
        <joint>                                  PoseEstimationSeries: data (T, 3) in the results' units
                                                 (``unit`` = e.g. "mm"), reference_frame, timestamps in seconds
    /devices/<camera>                            one CalibratedCamera per camera (K, R, t, distortion) where
                                                 ndx-pose has it (>= 0.4), else a Device describing it

Timestamps are ``video frame / fps`` in seconds: results without a frame rate (and without a readable video
file to take it from) need ``fps``. Needs the optional extra ``pip install 'napari-smil-mv[nwb]'``. No Qt/napari imports.
"""

from __future__ import annotations

import datetime
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from napari_smil_mv.results.movement_export import REFERENCE_FRAME, _keypoints, frame_rate
from napari_smil_mv.results.results import Results
from napari_smil_mv.utils.atomic import atomic_path

#: Name of the PoseEstimation container (movement's ``from_nwb_file`` default).
POSE_ESTIMATION = "PoseEstimation"
SKELETON = "smil_model_skeleton"


def _need_nwb():
    try:
        import ndx_pose
        import pynwb
    except ImportError:
        raise ImportError(
            "the NWB export needs 'pynwb' and 'ndx-pose': pip install 'napari-smil-mv[nwb]' "
            "(or pip install pynwb ndx-pose)"
        ) from None
    return pynwb, ndx_pose


def _edges(results: Results, idx: np.ndarray) -> np.ndarray:
    """(E, 2) uint8 index pairs ``(parent, child)`` among the exported joints (nearest exported ancestor)."""
    from napari_smil_mv.body.kinematics import subset_edges  # lazy: torch only when needed

    edges = subset_edges(results.parents, idx)
    dtype = np.uint8 if len(idx) < 256 else np.uint16
    return np.asarray(edges, dtype=dtype).reshape(-1, 2)


def _start_time(results: Results) -> datetime.datetime:
    created = str(results.provenance.get("created", ""))
    try:
        when = datetime.datetime.fromisoformat(created)
    except ValueError:
        return datetime.datetime.now(datetime.UTC)
    return when if when.tzinfo else when.replace(tzinfo=datetime.UTC)


def _camera_device(nwbfile: Any, ndx_pose: Any, cam: Any) -> Any:
    desc = (
        f"calibrated camera {cam.name}: image size (W, H) = {tuple(int(v) for v in cam.size)} px, "
        f"{'fisheye' if cam.fisheye else 'pinhole'} model, OpenCV convention x_cam = R X + t"
    )
    if hasattr(ndx_pose, "CalibratedCamera"):
        device = ndx_pose.CalibratedCamera(
            name=cam.name,
            intrinsic_matrix=np.asarray(cam.K, dtype=np.float64),
            rotation_matrix=np.asarray(cam.R, dtype=np.float64),
            translation_vector=np.asarray(cam.tvec, dtype=np.float64).reshape(3),
            distortion_coefficients=np.asarray(cam.dist, dtype=np.float64).reshape(-1),
            description=desc,
        )
        nwbfile.add_device(device)
        return device
    return nwbfile.create_device(name=cam.name, description=f"{desc}; K = {np.asarray(cam.K).tolist()}")


def to_nwb(
    results: Results,
    mapped_only: bool = False,
    fps: float | None = None,
    session_description: str | None = None,
    subject_id: str = "animal",
    species: str | None = None,
) -> Any:
    """Build an in-memory ``pynwb.NWBFile`` holding the results' 3D keypoints (see the module docstring).

    Parameters
    ----------
    results
        The results.
    mapped_only
        Export only the joints mapped to a data keypoint, named after the data nodes (default: every joint).
    fps
        Frame rate (Hz) when the results have none (default: the rate of the recorded videos).
    session_description, subject_id, species
        NWB metadata.

    Raises
    ------
    ValueError
        When the frame rate is unknown and ``fps`` is not given (NWB timestamps are seconds).
    """
    pynwb, ndx_pose = _need_nwb()
    rate = frame_rate(results, fps)
    if not rate or not np.isfinite(rate) or rate <= 0:
        raise ValueError(
            f"{results.provenance.get('path', 'the results')} has no frame rate and NWB needs timestamps in "
            "seconds: give the video frame rate (--fps)"
        )
    idx, names = _keypoints(results, mapped_only)
    nwbfile = pynwb.NWBFile(
        session_description=session_description or f"SMIL body fit, {results.n_cameras} cameras",
        identifier=str(uuid.uuid4()),
        session_start_time=_start_time(results),
        subject=pynwb.file.Subject(subject_id=subject_id, species=species),
    )
    for cam in results.cameras:
        _camera_device(nwbfile, ndx_pose, cam)
    skeleton = ndx_pose.Skeleton(
        name=SKELETON, nodes=list(names), edges=_edges(results, idx), subject=nwbfile.subject
    )
    timestamps = results.frame_indices.astype(np.float64) / float(rate)
    series = []
    for name, j in zip(names, idx, strict=True):
        data_name = (results.data_names or [""] * results.n_joints)[j]
        series.append(
            ndx_pose.PoseEstimationSeries(
                name=name,
                description=f"model joint {results.joint_names[j]}"
                + (f", fitted to data keypoint {data_name}" if data_name else ", not observed (model prior)"),
                data=np.asarray(results.joints_3d[:, j, :], dtype=np.float64),
                unit=results.units,
                reference_frame=REFERENCE_FRAME,
                timestamps=timestamps if not series else series[0],  # one timestamps dataset, linked
            )
        )
    videos = [v for v in (results.videos or []) if v]
    pose = ndx_pose.PoseEstimation(
        name=POSE_ESTIMATION,
        pose_estimation_series=series,
        description=(
            f"3D keypoints of the SMIL body model ({results.model_source or 'model'}) fitted to "
            f"{results.n_cameras} calibrated cameras ({', '.join(results.camera_names)}); "
            f"video frames {int(results.frame_indices[0])}..{int(results.frame_indices[-1])}"
            + (f"; videos: {', '.join(videos)}" if videos else "")
        ),
        scorer=str(results.provenance.get("producer", "napari-smil-mv")),
        source_software="napari-smil-mv",
        source_software_version=str(results.provenance.get("package_version", "")),
        skeleton=skeleton,
    )
    behavior = nwbfile.create_processing_module(name="behavior", description="body-model keypoints (3D)")
    behavior.add(ndx_pose.Skeletons(skeletons=[skeleton]))
    behavior.add(pose)
    return nwbfile


def export_nwb(
    results: Results,
    path: str | os.PathLike,
    overwrite: bool = False,
    mapped_only: bool = False,
    fps: float | None = None,
    **metadata: Any,
) -> Path:
    """Write the results' 3D keypoints to an NWB file (atomically); see :func:`to_nwb` for the options.

    Returns
    -------
    Path
        The written ``*.nwb`` file; ``pynwb.NWBHDF5IO(path).read()`` or movement's
        ``load_poses.from_nwb_file(path)`` reads it back.
    """
    pynwb, _ = _need_nwb()
    nwbfile = to_nwb(results, mapped_only=mapped_only, fps=fps, **metadata)
    path = Path(path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.unlink(missing_ok=True)  # pynwb opens with mode "w"; an empty placeholder is fine to replace
        with pynwb.NWBHDF5IO(str(tmp), "w") as io:
            io.write(nwbfile)
    return path
