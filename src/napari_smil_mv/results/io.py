"""Reading and writing results files (``*.smilmv.h5``, HDF5).

Layout (schema version 1; T frames, J model joints, K betas, C cameras)::

    /                      attrs: format, schema_version, units, fps (NaN = unknown), producer, created,
                                  package_version, config_json (the fit/inference config), provenance_json
    /frame_indices         (T,) int64 video frame numbers
    /body/poses            (T, J, 3) axis-angle, root first
    /body/betas            (T, K)
    /body/trans            (T, 3) world units
    /body/mesh_scale       (T,) about the root: x = (x - root) * mesh_scale + trans
    /body/log_beta_scales  (T, J, 3)
    /body/betas_trans      (T, J, 3)
    /joints_3d             (T, J, 3) world units
    /model                 attrs: sha256, source; datasets joint_names (J,), data_names (J,) ("" = unmapped),
                           parents (J,) when known
    /cameras/cam_000 ...   one group per camera in order: attrs name, video ("" = none), used, fisheye;
                           datasets K (3, 3), dist (n,), rvec (3,), tvec (3,), size (2,) = (W, H)
    /projections_2d        (C, T, J, 2) px (x, y)
    /reprojection_error    (C, T, J) px, NaN where not observed
    /observed_2d           (C, T, J, 2) optional, the data keypoints in model-joint order
    /observed_weights      (C, T, J) optional

Files are written atomically (temporary file + rename) and never over an existing file unless asked.
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from napari_smil_mv.cameras import Camera, CameraRig
from napari_smil_mv.results.model import FORMAT_NAME, SCHEMA_VERSION, Results
from napari_smil_mv.utils.atomic import h5_file_atomic

_BODY = ("poses", "betas", "trans", "mesh_scale", "log_beta_scales", "betas_trans")
_STR = h5py.string_dtype()


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)


def _package_version() -> str:
    try:
        from napari_smil_mv import __version__

        return str(__version__)
    except ImportError:  # pragma: no cover
        return "unknown"


def write_results(results: Results, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write ``results`` to ``path`` (``*.smilmv.h5``) atomically.

    Parameters
    ----------
    results
        What to store.
    path
        Output file; its folder is created when missing.
    overwrite
        Replace an existing file (otherwise FileExistsError names the file).

    Returns
    -------
    Path of the written file.

    Raises
    ------
    napari_smil_mv.utils.atomic.DiskFullError
        Not enough free space; nothing is left under ``path`` (nor a temporary file).
    """
    path = Path(path)
    prov = dict(results.provenance)
    prov.setdefault("created", datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"))
    prov.setdefault("package_version", _package_version())
    prov.setdefault("producer", "unknown")
    config = prov.get("config", {})
    gz = {"compression": "gzip", "compression_opts": 4}
    # built in memory, then written in one go: a full disk is a clean DiskFullError, never a crash inside HDF5
    with h5_file_atomic(path, overwrite=overwrite) as f:
        f.attrs["format"] = FORMAT_NAME
        f.attrs["schema_version"] = SCHEMA_VERSION
        f.attrs["units"] = results.units
        f.attrs["fps"] = np.nan if results.fps is None else float(results.fps)
        f.attrs["producer"] = str(prov["producer"])
        f.attrs["created"] = str(prov["created"])
        f.attrs["package_version"] = str(prov["package_version"])
        f.attrs["config_json"] = json.dumps(config, default=_json_default)
        f.attrs["provenance_json"] = json.dumps(prov, default=_json_default)
        f.create_dataset("frame_indices", data=results.frame_indices.astype(np.int64))
        body = f.create_group("body")
        for key in _BODY:
            body.create_dataset(key, data=np.asarray(getattr(results, key), dtype=np.float64), **gz)
        f.create_dataset("joints_3d", data=results.joints_3d, **gz)
        model = f.create_group("model")
        model.attrs["sha256"] = results.model_sha256
        model.attrs["source"] = results.model_source
        model.create_dataset("joint_names", data=np.asarray(results.joint_names, dtype=object), dtype=_STR)
        names = results.data_names if results.data_names is not None else [""] * results.n_joints
        model.create_dataset("data_names", data=np.asarray(names, dtype=object), dtype=_STR)
        model.attrs["has_data_names"] = results.data_names is not None
        if results.parents is not None:
            model.create_dataset("parents", data=results.parents.astype(np.int64))
        cams = f.create_group("cameras")
        for i, cam in enumerate(results.cameras):
            g = cams.create_group(f"cam_{i:03d}")
            g.attrs["name"] = cam.name
            video = results.videos[i] if results.videos is not None else None
            g.attrs["video"] = "" if video is None else str(video)
            g.attrs["used"] = bool(results.camera_used[i])
            g.attrs["fisheye"] = bool(cam.fisheye)
            for key, value in (
                ("K", cam.K),
                ("dist", cam.dist),
                ("rvec", cam.rvec),
                ("tvec", cam.tvec),
                ("size", np.asarray(cam.size, dtype=np.int64)),
            ):
                g.create_dataset(key, data=value)
        cams.attrs["units"] = results.cameras.units or ""
        f.create_dataset("projections_2d", data=results.projections_2d, **gz)
        f.create_dataset("reprojection_error", data=results.reprojection_error, **gz)
        if results.observed_2d is not None:
            f.create_dataset("observed_2d", data=results.observed_2d, **gz)
        if results.observed_weights is not None:
            f.create_dataset("observed_weights", data=results.observed_weights, **gz)
    return path


def _need(f: h5py.File, key: str, path: Path) -> np.ndarray:
    if key not in f:
        raise ValueError(f"{path}: results file lacks '/{key}'; the file is incomplete or not a results file")
    return f[key][()]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def read_results(path: str | os.PathLike) -> Results:
    """Read a results file written by :func:`write_results`.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If it is not a results file, was written by a newer schema, or lacks a dataset (named in the message).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"results file not found: {path}")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"{path} is not an HDF5 results file ({exc})") from None
    with f:
        fmt = _text(f.attrs.get("format", ""))
        if fmt != FORMAT_NAME:
            raise ValueError(f"{path} is not a napari-smil-mv results file (format attribute {fmt!r})")
        version = int(f.attrs.get("schema_version", 0))
        if version > SCHEMA_VERSION:
            raise ValueError(
                f"{path} uses results schema {version}, newer than this napari-smil-mv reads "
                f"({SCHEMA_VERSION}); update napari-smil-mv"
            )
        body = {key: _need(f, f"body/{key}", path) for key in _BODY}
        cams, used, videos = [], [], []
        if "cameras" not in f:
            raise ValueError(f"{path}: results file lacks '/cameras'")
        for key in sorted(f["cameras"].keys()):
            g = f["cameras"][key]
            cams.append(
                Camera(
                    _text(g.attrs["name"]),
                    g["K"][()],
                    g["dist"][()],
                    g["rvec"][()],
                    g["tvec"][()],
                    tuple(int(v) for v in g["size"][()]),
                    fisheye=bool(g.attrs.get("fisheye", False)),
                )
            )
            used.append(bool(g.attrs.get("used", True)))
            video = _text(g.attrs.get("video", ""))
            videos.append(video or None)
        units = _text(f.attrs.get("units", "unknown"))
        cam_units = _text(f["cameras"].attrs.get("units", "")) or None
        model = f["model"] if "model" in f else None
        joint_names = [_text(n) for n in _need(f, "model/joint_names", path)]
        data_names = None
        if model is not None and bool(model.attrs.get("has_data_names", False)):
            data_names = [_text(n) for n in model["data_names"][()]]
        fps = float(f.attrs.get("fps", np.nan))
        prov = json.loads(_text(f.attrs.get("provenance_json", "{}")))
        prov["path"] = str(path)
        return Results(
            **body,
            joints_3d=_need(f, "joints_3d", path),
            frame_indices=_need(f, "frame_indices", path),
            cameras=CameraRig(cams, cam_units),
            projections_2d=_need(f, "projections_2d", path),
            reprojection_error=_need(f, "reprojection_error", path),
            joint_names=joint_names,
            model_sha256=_text(model.attrs.get("sha256", "")) if model is not None else "",
            model_source=_text(model.attrs.get("source", "")) if model is not None else "",
            units=units,
            observed_2d=f["observed_2d"][()] if "observed_2d" in f else None,
            observed_weights=f["observed_weights"][()] if "observed_weights" in f else None,
            data_names=data_names,
            camera_used=np.asarray(used),
            videos=videos,
            parents=model["parents"][()] if model is not None and "parents" in model else None,
            fps=None if not np.isfinite(fps) else fps,
            provenance=prov,
            schema_version=version,
        )
