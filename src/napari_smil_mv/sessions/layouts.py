"""Readers for the two on-disk session layouts: camera folders (sleap-anipose) and a session inside one ``.slp``.

Camera-folder layout (sleap-anipose, SMILify ``camera_dirs``)::

    session/calibration.toml            (or session/calibration/calibration.toml, as in Anipose projects)
    session/points3d.h5                 optional 3D points (or session/pose-3d/<trial>.csv from Anipose)
    session/session.toml                optional: units = "mm", [camera_map] back = "cam1"
    session/<camera>/<video>.mp4        + one *.slp (or *.analysis.h5) per camera folder

Session in a ``.slp`` (SLEAP multi-view / sleap-io ``RecordingSession``, legacy ``sessions_json`` or format 2.8):
the calibration, the camera-to-video map and the InstanceGroups are read from the file; moved videos are found by
basename (see :func:`~napari_smil_mv.sessions.sleap_files.resolve_video_path`).
"""

from __future__ import annotations

import tomllib
import warnings
from pathlib import Path

import numpy as np

from napari_smil_mv.cameras import CameraRig, load_calibration
from napari_smil_mv.sessions import sleap_files as sf
from napari_smil_mv.sessions.anipose_files import align_points3d, read_points3d_h5, read_pose3d_csv
from napari_smil_mv.sessions.session import CameraView, Session, Skeleton
from napari_smil_mv.sessions.video import LazyVideo

SESSION_TOML = "session.toml"
LABEL_SUFFIXES = (".slp",)
NOT_LABELS_H5 = ("points3d", "calibration", "reprojection", "reprojected")


# --------------------------------------------------------------------------------------------- helpers
def read_session_toml(folder: Path) -> dict:
    """The optional ``session.toml`` of a session folder (``units``, ``[camera_map]``), or ``{}``."""
    path = folder / SESSION_TOML
    if not path.is_file():
        return {}
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f'{path} is not valid TOML ({exc}); expected e.g. units = "mm"') from exc
    cmap = data.get("camera_map", {})
    if not isinstance(cmap, dict) or not all(isinstance(v, str) for v in cmap.values()):
        raise ValueError(f"{path}: [camera_map] must map camera names to folder or file names (strings)")
    units = data.get("units")
    if units is not None and (not isinstance(units, str) or not units.strip()):
        raise ValueError(f'{path}: units must be a non-empty string such as "mm", got {units!r}')
    return data


def resolve_units(explicit: str | None, session_toml: dict) -> str:
    """Units: the explicit argument, else ``session.toml``'s ``units``, else ``"unknown"`` (never guessed).

    ``session_toml`` is the folder's :func:`read_session_toml`.
    """
    if explicit is not None:
        if not str(explicit).strip():
            raise ValueError("units must be a non-empty string such as 'mm'")
        return str(explicit).strip()
    return str(session_toml.get("units", "unknown")).strip()


def merged_camera_map(explicit: dict[str, str] | None, session_toml: dict) -> dict[str, str]:
    """``session.toml``'s ``[camera_map]`` (``session_toml`` from :func:`read_session_toml`), updated by ``explicit``."""
    cmap = dict(session_toml.get("camera_map", {}))
    cmap.update(explicit or {})
    return cmap


def find_calibration(folder: Path) -> Path | None:
    """``calibration.toml`` in the session folder or its ``calibration/`` sub-folder (Anipose)."""
    for cand in (folder / "calibration.toml", folder / "calibration" / "calibration.toml"):
        if cand.is_file():
            return cand
    return None


def _is_analysis_h5(path: Path) -> bool:
    """True for a SLEAP analysis file (an HDF5 file with a ``tracks`` dataset); never raises.

    Our own outputs (results ``*.smilmv.h5``, training datasets ``*.smilmv-dataset.h5``) and other HDF5 files in
    an output folder (for example a demo's ``network/``) are not label files, so such a folder is not a camera.
    """
    name = path.name.lower()
    if ".smilmv" in name or any(k in name for k in NOT_LABELS_H5):
        return False
    try:
        import h5py

        with h5py.File(path, "r") as f:
            return "tracks" in f
    except (OSError, ValueError):
        return False


def label_files(folder: Path) -> list[Path]:
    """SLEAP label files directly in ``folder``: ``*.slp``, else SLEAP analysis ``*.h5`` (with ``tracks``)."""
    if not folder.is_dir():
        return []
    slps = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".slp")
    if slps:
        return slps
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".h5" and _is_analysis_h5(p)
    )


def camera_data_folders(folder: Path) -> list[Path]:
    """Sub-folders of a session holding SLEAP label files (candidate camera folders)."""
    if not folder.is_dir():
        return []
    return [
        d
        for d in sorted(folder.iterdir())
        if d.is_dir() and not d.name.startswith(".") and d.name != "calibration" and label_files(d)
    ]


def pick_label_file(files: list[Path], camera: str) -> Path:
    """One labels file per camera: prefer ``*proofread*``, then ``*.predictions.*``; error when still ambiguous."""
    if len(files) == 1:
        return files[0]
    for key in ("proofread", ".predictions."):
        hits = [f for f in files if key in f.name.lower()]
        if len(hits) == 1:
            return hits[0]
        if hits:
            files = hits
    raise ValueError(
        f"camera {camera!r}: several label files in {files[0].parent}: {[f.name for f in files]}; keep one, or "
        f"pass camera_map={{'{camera}': '<path to the file>'}}"
    )


def _single_video_in(folder: Path) -> Path | None:
    vids = [
        p
        for p in sorted(folder.iterdir())
        if p.is_file() and p.suffix.lower() in sf.VIDEO_EXTENSIONS and p.suffix.lower() != ".h5"
    ]
    return vids[0] if len(vids) == 1 else None


def _make_view(
    name: str, rig: CameraRig, video: LazyVideo | None, arrays: dict, source: Path | None
) -> CameraView:
    return CameraView(
        name=name,
        camera=rig[name],
        video=video,
        keypoints=arrays["keypoints"],
        scores=arrays["scores"],
        visible=arrays["visible"],
        is_user=arrays["is_user"],
        source_path=source,
    )


def match_cameras(calib_names: list[str], folders: dict[str, Path], camera_map: dict[str, str], root: Path):
    """Camera name -> data path (folder or file), by explicit map, exact name, then case-insensitive name.

    Raises
    ------
    KeyError
        When ``camera_map`` names an unknown camera.
    ValueError
        When a calibration camera has no data; the message lists both sides and how to map them.
    """
    unknown = [k for k in camera_map if k not in calib_names]
    if unknown:
        raise KeyError(f"camera_map names cameras {unknown} that are not in the calibration {calib_names}")
    out: dict[str, Path] = {}
    lower = {k.lower(): v for k, v in folders.items()}
    for cam in calib_names:
        if cam in camera_map:
            target = Path(camera_map[cam])
            target = target if target.is_absolute() else root / target
            if not target.exists():
                raise FileNotFoundError(f"camera_map['{cam}'] = {camera_map[cam]!r}: {target} does not exist")
            out[cam] = target
        elif cam in folders:
            out[cam] = folders[cam]
        elif cam.lower() in lower:
            out[cam] = lower[cam.lower()]
    missing = [c for c in calib_names if c not in out]
    if missing:
        raise ValueError(
            f"camera names do not match in {root}: calibration cameras {calib_names}, camera folders with SLEAP "
            f"files {sorted(folders)}; no data for {missing}. Rename the folders to the calibration names or pass "
            f"camera_map={{calibration name: folder}} (e.g. camera_map={{'{missing[0]}': "
            f"'{sorted(folders)[0] if folders else '<folder>'}'}})."
        )
    used = {p.resolve() for p in out.values()}
    extra = [n for n, p in folders.items() if p.resolve() not in used]
    if extra:
        warnings.warn(
            f"{root}: folders {extra} hold SLEAP files but match no calibration camera; ignored",
            UserWarning,
            stacklevel=3,
        )
    return out


# ------------------------------------------------------------------------------------- camera folders
def load_camera_folder_session(
    folder: Path,
    calibration: Path | None = None,
    camera_map: dict[str, str] | None = None,
    units: str | None = None,
) -> Session:
    """Load the sleap-anipose / camera-folder layout (see the module docstring)."""
    folder = Path(folder)
    calibration = calibration or find_calibration(folder)
    if calibration is None:
        raise FileNotFoundError(f"{folder}: no calibration.toml (looked in the folder and in calibration/)")
    session_toml = read_session_toml(folder)
    units_str = resolve_units(units, session_toml)
    rig = load_calibration(calibration, units=None if units_str == "unknown" else units_str)
    if units_str == "unknown" and rig.units:  # declared in the calibration's [metadata] units
        units_str = rig.units
    cmap = merged_camera_map(camera_map, session_toml)
    folders = {d.name: d for d in camera_data_folders(folder)}
    data_paths = match_cameras(rig.names, folders, cmap, folder)

    skeleton: Skeleton | None = None
    records: dict[str, sf.ViewRecords] = {}
    videos: dict[str, tuple] = {}
    for cam in rig.names:
        target = data_paths[cam]
        cam_folder = target if target.is_dir() else target.parent
        lab_path = pick_label_file(label_files(target), cam) if target.is_dir() else target
        labels = sf.load_labels(lab_path)
        skel = sf.skeleton_of(labels, lab_path)
        if skeleton is None:
            skeleton = skel
        else:
            sf.check_same_skeleton(skeleton, skel, f"camera {cam!r} ({lab_path})")
        if len(labels.videos) > 1:
            raise ValueError(
                f"camera {cam!r}: {lab_path} refers to {len(labels.videos)} videos; a camera folder's labels "
                "file must hold exactly one camera's video"
            )
        video = labels.videos[0] if labels.videos else None
        records[cam] = sf.collect_view(labels, None, skeleton.nodes, source=lab_path)
        videos[cam] = (video, lab_path, cam_folder)

    assert skeleton is not None
    frame_indices, animals, arrays = sf.assemble_views(records, skeleton.n_nodes)
    n_needed = int(frame_indices.max()) + 1 if frame_indices.size else 0
    views = {}
    for cam in rig.names:
        video, lab_path, cam_folder = videos[cam]
        alt = _single_video_in(cam_folder)  # used when the labels name no video or one that is not found
        if video is not None:
            lazy = sf.make_lazy_video(video, lab_path, rig[cam], n_needed, fallback=alt)
        else:
            lazy = LazyVideo(alt, n_needed, rig[cam].size, 1, cam, stored_path=str(cam_folder / "<video>"))
        views[cam] = _make_view(cam, rig, lazy, arrays[cam], records[cam].source_path)

    points3d, source = _folder_points3d(folder, frame_indices, skeleton, len(animals))
    return Session(
        name=folder.name,
        path=folder,
        rig=rig,
        views=views,
        skeleton=skeleton,
        frame_indices=frame_indices,
        points3d=points3d,
        points3d_source=source,
        units=units_str,
        animal_names=animals,
    )


def _folder_points3d(folder: Path, frames: np.ndarray, skeleton: Skeleton, n_animals: int):
    """``points3d.h5`` (folder or one sub-folder down), else a single Anipose ``pose-3d/*.csv``."""
    h5s = [folder / "points3d.h5"] + sorted(folder.glob("*/points3d.h5"))
    h5 = next((p for p in h5s if p.is_file()), None)
    if h5 is not None:
        p3 = read_points3d_h5(h5)
        if p3.points.shape[1] != n_animals:
            warnings.warn(
                f"{h5} has {p3.points.shape[1]} tracks but the 2D labels have {n_animals} animals; tracks are "
                "matched to animals in order",
                UserWarning,
                stacklevel=3,
            )
        pts = align_points3d(p3.points, p3.frame_indices, None, frames, skeleton.nodes, n_animals, h5)
        return pts, "points3d.h5"
    csvs = sorted((folder / "pose-3d").glob("*.csv")) if (folder / "pose-3d").is_dir() else []
    if len(csvs) == 1:
        csv = read_pose3d_csv(csvs[0])
        pts = align_points3d(
            csv.points[:, None],
            csv.frame_indices,
            csv.bodyparts,
            frames,
            skeleton.nodes,
            min(n_animals, 1),
            csvs[0],
        )
        if n_animals > 1:
            pts = np.concatenate(
                [pts, np.full((pts.shape[0], n_animals - 1, *pts.shape[2:]), np.nan)], axis=1
            )
        return pts, "anipose csv"
    if len(csvs) > 1:
        warnings.warn(
            f"{folder / 'pose-3d'} holds {len(csvs)} trials {[c.name for c in csvs]}; not choosing one. Load the "
            "CSV with napari_smil_mv.sessions.read_pose3d_csv, or 3D points will be triangulated when needed.",
            UserWarning,
            stacklevel=3,
        )
    return None, None


# ------------------------------------------------------------------------------------ session in .slp
def load_slp_session(
    path: Path,
    camera_map: dict[str, str] | None = None,
    units: str | None = None,
    name: str | None = None,
) -> Session:
    """Load a ``RecordingSession`` stored in a ``.slp`` (legacy ``sessions_json`` or format 2.8).

    ``camera_map`` maps camera names to video files, overriding the videos stored in the file.
    """
    path = Path(path)
    labels = sf.load_labels(path)
    if not labels.sessions:
        raise ValueError(
            f"{path} holds no recording session (no calibration / camera-to-video map). For one .slp per camera, "
            "load the session folder that holds calibration.toml and the camera folders instead."
        )
    if len(labels.sessions) > 1:
        warnings.warn(
            f"{path} holds {len(labels.sessions)} recording sessions; loading the first",
            UserWarning,
            stacklevel=3,
        )
    rs = labels.sessions[0]
    folder = path.parent
    session_toml = read_session_toml(folder)
    units_str = resolve_units(units, session_toml)
    cams = [sf.camera_from_sleap_io(c) for c in rs.camera_group.cameras]
    declared = (rs.camera_group.metadata or {}).get("units")
    if units_str == "unknown" and isinstance(declared, str) and declared.strip():
        units_str = declared.strip()
    rig = CameraRig(cams, units=None if units_str == "unknown" else units_str)
    cmap = merged_camera_map(camera_map, session_toml)
    unknown = [k for k in cmap if k not in rig.names]
    if unknown:
        raise KeyError(f"camera_map names cameras {unknown} that are not in the session {rig.names}")
    skeleton = sf.skeleton_of(labels, path)
    group_keys, groups3d = sf.instance_group_identities(rs)

    by_cam = {str(c.name): c for c in rs.camera_group.cameras}
    records: dict[str, sf.ViewRecords] = {}
    sio_videos = {}
    for cam in rig.names:
        video = rs.get_video(by_cam[cam])
        sio_videos[cam] = video
        if video is None:
            warnings.warn(
                f"{path}: camera {cam!r} has no video in the session; its keypoints are empty",
                UserWarning,
                stacklevel=3,
            )
            records[cam] = sf.ViewRecords(source_path=path)
        else:
            records[cam] = sf.collect_view(labels, video, skeleton.nodes, group_keys, source=path)
    session_videos = {id(v) for v in sio_videos.values() if v is not None}
    orphans = [str(v.filename) for v in labels.videos if id(v) not in session_videos]
    if orphans:
        warnings.warn(
            f"{path}: videos {orphans} belong to no camera of the session; their labels are ignored",
            UserWarning,
            stacklevel=3,
        )

    frame_indices, animals, arrays = sf.assemble_views(records, skeleton.n_nodes)
    n_needed = int(frame_indices.max()) + 1 if frame_indices.size else 0
    views = {}
    for cam in rig.names:
        video = sio_videos[cam]
        if cam in cmap:
            target = Path(cmap[cam])
            target = target if target.is_absolute() else folder / target
            lazy = LazyVideo(
                target if target.is_file() else None,
                n_needed,
                rig[cam].size,
                sf.video_hints(video)[1] if video is not None else 1,
                cam,
                stored_path=str(target),
            )
        elif video is not None:
            lazy = sf.make_lazy_video(video, path, rig[cam], n_needed)
        else:
            lazy = None
        views[cam] = _make_view(cam, rig, lazy, arrays[cam], path)

    points3d, source = None, None
    if groups3d:
        points3d = np.full((len(frame_indices), len(animals), skeleton.n_nodes, 3), np.nan)
        row = {int(f): i for i, f in enumerate(frame_indices)}
        col = {k: i for i, k in enumerate(animals)}
        for (fidx, key), p in groups3d.items():
            if fidx in row and key in col and p.shape[0] == skeleton.n_nodes:
                points3d[row[fidx], col[key]] = p
        source = "slp"
    return Session(
        name=name or path.stem,
        path=path,
        rig=rig,
        views=views,
        skeleton=skeleton,
        frame_indices=frame_indices,
        points3d=points3d,
        points3d_source=source,
        units=units_str,
        animal_names=animals,
    )
