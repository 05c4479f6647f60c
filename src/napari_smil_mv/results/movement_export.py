"""Export the 3D keypoints of a results file as a `movement <https://movement.neuroinformatics.dev>`_ dataset.

The dataset is built with movement's own constructor (:func:`movement.io.load_poses.from_numpy`), so it passes
movement's validation and opens in its napari plugin and analysis functions; it is written as netCDF (the
format movement documents for saving datasets: ``xarray.open_dataset(path)`` loads it back).

Layout (T frames, J keypoints, one individual):

* ``position`` (time, space = x, y, z, keypoints, individuals): model keypoints in the results' world units
  (calibration frame, OpenCV/Anipose convention); NaN where the fit has no value.
* ``confidence`` (time, keypoints, individuals): NaN (fitted model keypoints carry no detection confidence).
* coordinates ``time`` (seconds = video frame / fps, or video frame numbers when the frame rate is unknown),
  ``frame`` (time,) video frame numbers, ``keypoints``, ``space``, ``individuals``.
* attributes: movement's own (``source_software``, ``fps``, ``time_unit``, ``ds_type``) plus ``space_unit``,
  ``reference_frame``, ``source_file``, ``camera_names``, ``model_source``, ``model_sha256``,
  ``data_names`` (the data node observed at each keypoint, "" = none).

Needs the optional extra ``pip install 'napari-smil-mv[movement]'``. No Qt/napari imports.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from napari_smil_mv.results.results import Results
from napari_smil_mv.sessions.video import video_frame_rate
from napari_smil_mv.utils.atomic import atomic_path

#: Name of the one individual in exported datasets.
INDIVIDUAL = "animal"
REFERENCE_FRAME = (
    "world frame of the camera calibration (OpenCV/Anipose: x_cam = R X + t per camera); "
    "origin and axes as in the session's calibration.toml"
)


def _need_movement():
    try:
        from movement.io import load_poses
    except ImportError:
        raise ImportError(
            "the movement export needs the 'movement' package: pip install 'napari-smil-mv[movement]' "
            "(or pip install movement)"
        ) from None
    return load_poses


def _keypoints(results: Results, mapped_only: bool) -> tuple[np.ndarray, list[str]]:
    """Joint indices and their exported names (model joint names; data node names with ``mapped_only``)."""
    if not mapped_only:
        return np.arange(results.n_joints), list(results.joint_names)
    idx = np.flatnonzero(results.mapped)
    if idx.size == 0:
        raise ValueError("the results map no model joint to a data keypoint; export all joints instead")
    names = [(results.data_names[j] if results.data_names else "") or results.joint_names[j] for j in idx]
    if len(set(names)) != len(names):
        names = [results.joint_names[j] for j in idx]  # several joints share a data node: keep model names
    return idx, names


def frame_rate(results: Results, fps: float | None = None) -> float | None:
    """Frame rate (Hz) of the results: their own, else ``fps``, else the first readable recorded video's, else None."""
    if results.fps is not None:
        return results.fps
    if fps:
        return float(fps)
    for video in results.videos or []:
        rate = video_frame_rate(video) if video else None
        if rate is not None:
            return rate
    return None


def to_movement_dataset(results: Results, mapped_only: bool = False, fps: float | None = None) -> Any:
    """The results' 3D keypoints as a movement poses dataset (``xarray.Dataset``).

    Parameters
    ----------
    results
        The results.
    mapped_only
        Export only the model joints mapped to a data keypoint, named after the data nodes (e.g. ``Nose``), so
        the dataset lines up with the original tracks; default: every model joint, by model name.
    fps
        Frame rate to use when the results have none (None: the recorded videos' rate, else time in frame
        numbers).

    Returns
    -------
    xarray.Dataset
        See the module docstring for the layout.
    """
    load_poses = _need_movement()
    idx, names = _keypoints(results, mapped_only)
    rate = frame_rate(results, fps)
    position = np.transpose(results.joints_3d[:, idx, :], (0, 2, 1))[..., None]  # (T, 3, J', 1)
    ds = load_poses.from_numpy(
        position_array=position.astype(np.float64),
        confidence_array=np.full((results.n_frames, len(idx), 1), np.nan),
        individual_names=[INDIVIDUAL],
        keypoint_names=names,
        fps=rate,
        source_software="napari-smil-mv",
    )
    frames = results.frame_indices.astype(np.int64)
    time = frames / rate if rate else frames.astype(np.float64)
    ds = ds.assign_coords(time=time, frame=("time", frames))
    ds.attrs.update(
        space_unit=results.units,
        reference_frame=REFERENCE_FRAME,
        source_file=str(results.provenance.get("path", "")),
        camera_names=",".join(results.camera_names),
        model_source=results.model_source,
        model_sha256=results.model_sha256,
        data_names=",".join((results.data_names or [""] * results.n_joints)[j] for j in idx),
        model_joint_names=",".join(results.joint_names[j] for j in idx),
    )
    return ds


def _netcdf_safe_attrs(attrs: dict) -> dict:
    """netCDF attributes cannot be None or bool: drop None, store bools as 0/1, paths as text."""
    out = {}
    for key, value in attrs.items():
        if value is None:
            continue
        if isinstance(value, bool | np.bool_):
            value = int(value)
        elif isinstance(value, Path):
            value = str(value)
        out[key] = value
    return out


def export_movement(
    results: Results,
    path: str | os.PathLike,
    overwrite: bool = False,
    mapped_only: bool = False,
    fps: float | None = None,
) -> Path:
    """Write the results' 3D keypoints as a movement dataset in a netCDF file (atomically).

    Parameters
    ----------
    results
        The results.
    path
        Output ``*.nc`` file.
    overwrite
        Replace an existing file (otherwise FileExistsError names it).
    mapped_only, fps
        As :func:`to_movement_dataset`.

    Returns
    -------
    Path
        The written file; ``xarray.open_dataset(path)`` reads it back.
    """
    ds = to_movement_dataset(results, mapped_only=mapped_only, fps=fps)
    ds.attrs = _netcdf_safe_attrs(dict(ds.attrs))
    path = Path(path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        ds.to_netcdf(tmp)
    return path
