"""Reading SLEAP files (``.slp``, analysis ``.h5``) into per-camera keypoint arrays with sleap-io.

Identity rules (documented in docs/sessions.md):

* An instance that belongs to an ``InstanceGroup`` (multi-view ``.slp`` sessions) takes the group's identity:
  the group's ``identity`` name, else the majority track name of its member instances, else the group's stored
  name, else ``group_<k>`` by position in its frame group.
* Other instances take their track name. Untracked instances are numbered ``animal_0, animal_1, ...`` per frame
  (a warning says that identities are then not linked across cameras when a frame holds more than one).
* Per camera, frame and identity one instance is kept: an InstanceGroup member first, then a user instance, then
  the prediction with the highest instance score.

Frame indices are the *video* frame indices of the labelled frames (sleap-io maps ``instances.frame_id`` through
the ``frames`` table for us).
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath

import numpy as np

from napari_smil_mv.cameras import Camera
from napari_smil_mv.sessions.model import Skeleton
from napari_smil_mv.sessions.video import LazyVideo

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".mpg", ".mpeg", ".m4v", ".h5", ".tif", ".tiff")


@dataclass
class InstanceRecord:
    """One animal in one camera frame: ``xy (N, 2)`` px, ``scores (N,)``, ``visible (N,)``."""

    xy: np.ndarray
    scores: np.ndarray
    visible: np.ndarray
    is_user: bool
    priority: int  # 2 InstanceGroup member, 1 user, 0 prediction
    score: float  # instance score, for choosing between predictions


@dataclass
class ViewRecords:
    """All instances of one camera: ``records[(frame_idx, identity)]`` plus where they came from."""

    records: dict[tuple[int, str], InstanceRecord] = field(default_factory=dict)
    identities: list[str] = field(default_factory=list)  # in order of first appearance
    source_path: Path | None = None

    def add(self, frame_idx: int, key: str, rec: InstanceRecord) -> None:
        old = self.records.get((frame_idx, key))
        if old is None or (rec.priority, rec.score) > (old.priority, old.score):
            self.records[(frame_idx, key)] = rec
        if key not in self.identities:
            self.identities.append(key)


# ------------------------------------------------------------------------------------------------- files
def load_labels(path: str | Path):
    """Load a ``.slp`` or SLEAP analysis ``.h5`` with sleap-io, without opening any video.

    Raises
    ------
    FileNotFoundError, ValueError
        Naming the file when it is missing or not a SLEAP file.
    """
    import sleap_io as sio

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"SLEAP file not found: {path}")
    try:
        if path.suffix.lower() == ".slp":
            return sio.load_slp(str(path), open_videos=False)
        return sio.load_analysis_h5(str(path))
    except Exception as exc:
        raise ValueError(
            f"{path} could not be read as a SLEAP {'.slp' if path.suffix.lower() == '.slp' else 'analysis .h5'} "
            f"file ({type(exc).__name__}: {exc})"
        ) from exc


def basename_of(stored: str) -> str:
    """File name of a stored video path, for POSIX and Windows paths alike (``D:\\x\\a.mp4`` -> ``a.mp4``)."""
    return PureWindowsPath(str(stored)).name


def resolve_video_path(stored: str, labels_path: Path, max_up: int = 3, camera: str = "") -> Path | None:
    """Find a video whose stored path may be absolute, foreign (Windows) or moved.

    Search order: a relative stored path, taken relative to the labels file; then by basename in the labels
    file's folder and its sub-folders (so a *copied* session reads its own videos, not the original's); then the
    stored absolute path itself, with a :class:`~napari_smil_mv.sessions.video.VideoPathWarning` when it lies
    outside the session (the labels file's folder and its parent); then by basename in ``<ancestor>`` and
    ``<ancestor>/videos`` for up to ``max_up`` parent folders.

    Parameters
    ----------
    stored
        The video path written in the labels file.
    labels_path
        The labels file (``.slp`` / analysis ``.h5``).
    max_up
        Parent folders searched by basename at the end.
    camera
        Camera name, for the warning.

    Returns
    -------
    pathlib.Path or None
        The first existing file, or None when none is found.
    """
    if not stored:
        return None
    folder = Path(labels_path).resolve().parent
    name = basename_of(stored)
    direct = None
    try:
        path = Path(stored)
        if path.is_absolute():
            direct = path
        elif (folder / path).is_file():
            return folder / path
    except OSError:
        pass
    near = [folder / name]
    near += [sub / name for sub in sorted(folder.iterdir()) if sub.is_dir()] if folder.is_dir() else []
    for cand in near:
        if cand.is_file():
            return cand
    try:
        if direct is not None and direct.is_file():
            _warn_outside(direct, folder, name, Path(labels_path).name, camera)
            return direct
    except OSError:
        pass
    candidates = []
    anc = folder
    for _ in range(max_up + 1):
        candidates += [anc / "videos" / name, anc / name]
        if anc.parent == anc:
            break
        anc = anc.parent
    for cand in candidates:
        if cand.is_file():
            return cand
    return None


def _warn_outside(video: Path, folder: Path, name: str, labels_name: str, camera: str) -> None:
    """Warn that ``video`` (a stored absolute path) is read although it lies outside the session folder."""
    from napari_smil_mv.sessions.video import VideoPathWarning

    root = folder.parent
    try:
        inside = os.path.commonpath([str(video.resolve()), str(root)]) == str(root)
    except ValueError:  # different drives
        inside = False
    if inside:
        return
    cam = f"camera {camera!r}: " if camera else ""
    warnings.warn(
        f"{cam}no video named {name} next to {labels_name} ({folder}); reading the path stored in it, {video}, "
        f"outside the session folder {root}. If the session was copied, put its video next to the labels file "
        "to read that copy instead.",
        VideoPathWarning,
        stacklevel=4,
    )


def video_hints(video) -> tuple[int | None, int]:
    """``(n_frames or None, channels)`` from a sleap-io Video's stored metadata, without opening the file."""
    meta = getattr(video, "backend_metadata", None) or {}
    shape = meta.get("shape")
    if shape is not None and len(shape) == 4:
        return int(shape[0]), int(shape[3])
    gray = meta.get("grayscale")
    return None, (3 if gray is False else 1)


def make_lazy_video(
    video, labels_path: Path, camera: Camera, n_frames_needed: int, fallback: Path | None = None
) -> LazyVideo:
    """Build a :class:`LazyVideo` for a sleap-io Video, resolving moved files (see :func:`resolve_video_path`).

    ``fallback`` (e.g. the only video in a camera folder) is used when the stored path resolves to no file.
    """
    stored = str(video.filename) if not isinstance(video.filename, list) else str(video.filename[0])
    path = resolve_video_path(stored, labels_path, camera=camera.name) or fallback
    n_hint, channels = video_hints(video)
    n = max(n_hint or 0, n_frames_needed)
    searched = f"also searched by name next to {labels_path.name} and in nearby 'videos/' folders"
    return LazyVideo(
        path,
        n_frames=n,
        size=camera.size,
        channels=channels,
        name=camera.name,
        stored_path=stored,
        searched=searched,
    )


# -------------------------------------------------------------------------------------------- skeletons
def skeleton_of(labels, source: Path) -> Skeleton:
    """The single skeleton of a Labels object (several skeletons must share node names)."""
    skels = list(labels.skeletons)
    if not skels:
        raise ValueError(f"{source} has no skeleton; re-export it from SLEAP with the skeleton included")
    first = skels[0]
    for other in skels[1:]:
        if list(other.node_names) != list(first.node_names):
            raise ValueError(
                f"{source} holds several skeletons with different nodes ({first.node_names} vs "
                f"{other.node_names}); keep one skeleton per session"
            )
    return Skeleton(nodes=list(first.node_names), edges=[tuple(e) for e in first.edge_inds])


def check_same_skeleton(reference: Skeleton, other: Skeleton, where: str) -> None:
    """Raise a ValueError when two cameras' skeletons have different node sets."""
    if set(reference.nodes) != set(other.nodes):
        missing = sorted(set(reference.nodes) - set(other.nodes))
        extra = sorted(set(other.nodes) - set(reference.nodes))
        raise ValueError(
            f"{where}: skeleton nodes differ from the other cameras (missing {missing}, extra {extra}); all cameras "
            "of a session must use the same skeleton"
        )


def _node_permutation(inst_skeleton, nodes: list[str], cache: dict) -> np.ndarray:
    key = id(inst_skeleton)
    if key not in cache:
        names = list(inst_skeleton.node_names)
        cache[key] = np.array([names.index(n) if n in names else -1 for n in nodes])
    return cache[key]


def instance_record(inst, nodes: list[str], cache: dict, priority: int | None = None) -> InstanceRecord:
    """Convert one sleap-io instance to an :class:`InstanceRecord` in the order of ``nodes``."""
    import sleap_io as sio

    pts = inst.points
    xy_raw = np.asarray(pts["xy"], dtype=np.float64)
    vis_raw = np.asarray(pts["visible"], dtype=bool) & np.all(np.isfinite(xy_raw), axis=1)
    is_pred = isinstance(inst, sio.PredictedInstance)
    if is_pred and "score" in pts.dtype.names:
        sc_raw = np.asarray(pts["score"], dtype=np.float64)
    else:
        sc_raw = np.full(len(xy_raw), np.nan)
    perm = _node_permutation(inst.skeleton, nodes, cache)
    ok = perm >= 0
    n = len(nodes)
    xy = np.full((n, 2), np.nan)
    scores = np.full(n, np.nan)
    visible = np.zeros(n, dtype=bool)
    visible[ok] = vis_raw[perm[ok]]
    xy[ok] = xy_raw[perm[ok]]
    scores[ok] = sc_raw[perm[ok]]
    xy[~visible] = np.nan
    scores[~visible] = np.nan
    if priority is None:
        priority = 0 if is_pred else 1
    score = float(getattr(inst, "score", np.nan)) if is_pred else 0.0
    return InstanceRecord(
        xy, scores, visible, not is_pred, priority, score if np.isfinite(score) else -np.inf
    )


def collect_view(
    labels,
    video,
    nodes: list[str],
    group_keys: dict[int, str] | None = None,
    source: Path | None = None,
) -> ViewRecords:
    """Collect the instances of one video (one camera) by frame and identity.

    Parameters
    ----------
    labels
        sleap-io Labels.
    video
        The sleap-io Video of this camera (None: the only video of ``labels``).
    nodes
        Session node order.
    group_keys
        ``id(instance) -> identity`` for InstanceGroup members (multi-view sessions).
    source
        File name for messages.
    """
    group_keys = group_keys or {}
    out = ViewRecords(source_path=source)
    cache: dict = {}
    multi_untracked = False
    for lf in labels.labeled_frames:
        if video is not None and lf.video is not video:
            continue
        fidx = int(lf.frame_idx)
        untracked = []
        for inst in lf.instances:
            gkey = group_keys.get(id(inst))
            if gkey is not None:
                out.add(fidx, gkey, instance_record(inst, nodes, cache, priority=2))
            elif inst.track is not None:
                out.add(fidx, str(inst.track.name), instance_record(inst, nodes, cache))
            else:
                untracked.append(inst)
        if untracked:
            recs = [instance_record(i, nodes, cache) for i in untracked]
            if any(r.is_user for r in recs):
                recs = [r for r in recs if r.is_user]
            recs.sort(key=lambda r: (-r.priority, -r.score))
            multi_untracked |= len(recs) > 1
            for k, rec in enumerate(recs):
                out.add(fidx, f"animal_{k}", rec)
    if multi_untracked:
        warnings.warn(
            f"{source}: several untracked instances per frame; they are numbered animal_0, animal_1, ... by score, "
            "so identities are NOT linked across frames or cameras. Track the animals in SLEAP (or group them "
            "into InstanceGroups) to keep identities.",
            UserWarning,
            stacklevel=2,
        )
    return out


def assemble_views(
    view_records: dict[str, ViewRecords], n_nodes: int
) -> tuple[np.ndarray, list[str], dict[str, dict[str, np.ndarray]]]:
    """Turn per-camera records into dense arrays on a shared frame and identity axis.

    Returns
    -------
    frame_indices
        ``(T,)`` int64 sorted union of labelled video frame indices over all cameras.
    animal_names
        Identities in order of first appearance (cameras in the given order).
    arrays
        Camera -> ``{"keypoints": (T, A, N, 2), "scores": (T, A, N), "visible": (T, A, N), "is_user": (T, A)}``.
    """
    frames = sorted({f for vr in view_records.values() for (f, _k) in vr.records})
    animals: list[str] = []
    for vr in view_records.values():
        for key in vr.identities:
            if key not in animals:
                animals.append(key)
    frame_indices = np.asarray(frames, dtype=np.int64)
    row = {f: i for i, f in enumerate(frames)}
    col = {k: i for i, k in enumerate(animals)}
    t, a = len(frames), len(animals)
    arrays = {}
    for cam, vr in view_records.items():
        kp = np.full((t, a, n_nodes, 2), np.nan)
        sc = np.full((t, a, n_nodes), np.nan)
        vis = np.zeros((t, a, n_nodes), dtype=bool)
        user = np.zeros((t, a), dtype=bool)
        for (f, key), rec in vr.records.items():
            i, j = row[f], col[key]
            kp[i, j], sc[i, j], vis[i, j], user[i, j] = rec.xy, rec.scores, rec.visible, rec.is_user
        arrays[cam] = {"keypoints": kp, "scores": sc, "visible": vis, "is_user": user}
    return frame_indices, animals, arrays


# ------------------------------------------------------------------------------- sessions inside a .slp
def camera_from_sleap_io(cam) -> Camera:
    """Convert a ``sleap_io.Camera`` to our :class:`~napari_smil_mv.cameras.Camera`."""
    if cam.size is None:
        raise ValueError(f"camera {cam.name!r} in the .slp session has no image size; add 'size = [W, H]'")
    fisheye = bool((cam.metadata or {}).get("fisheye", False))
    return Camera(
        name=str(cam.name),
        matrix=np.asarray(cam.matrix, dtype=np.float64),
        dist=np.asarray(cam.dist, dtype=np.float64),
        rvec=np.asarray(cam.rvec, dtype=np.float64),
        tvec=np.asarray(cam.tvec, dtype=np.float64),
        size=(int(cam.size[0]), int(cam.size[1])),
        fisheye=fisheye,
    )


def instance_group_identities(session) -> tuple[dict[int, str], dict[tuple[int, str], np.ndarray]]:
    """Identities of InstanceGroup members and the groups' 3D points.

    Returns
    -------
    group_keys
        ``id(instance) -> identity`` (see the module docstring for the rule).
    points3d
        ``(frame_idx, identity) -> (N, 3)`` world points in the group's skeleton order, for groups with 3D points.
    """
    group_keys: dict[int, str] = {}
    points3d: dict[tuple[int, str], np.ndarray] = {}
    ambiguous = False
    for fidx, fg in session.frame_groups.items():
        groups = list(fg.instance_groups)
        for k, ig in enumerate(groups):
            members = [ig.get_instance(c) for c in ig.cameras]
            members = [m for m in members if m is not None]
            key = None
            ident = getattr(ig, "identity", None)
            if ident is not None and getattr(ident, "name", None):
                key = str(ident.name)
            if key is None:
                tracks = Counter(str(m.track.name) for m in members if m.track is not None)
                if tracks:
                    key = tracks.most_common(1)[0][0]
            if key is None:
                key = str((ig.metadata or {}).get("name") or f"group_{k}")
                ambiguous |= len(groups) > 1
            for m in members:
                group_keys[id(m)] = key
            inst3d = getattr(ig, "instance_3d", None)
            if inst3d is not None and getattr(inst3d, "points", None) is not None:
                p = np.asarray(inst3d.points, dtype=np.float64)
                if p.ndim == 2 and p.shape[1] >= 3:
                    points3d[(int(fg.frame_idx if fg.frame_idx is not None else fidx), key)] = p[:, :3]
    if ambiguous:
        warnings.warn(
            "InstanceGroups without identity or tracks are linked across frames by their position in the frame "
            "group; set identities or tracks in SLEAP to be sure the animals are not swapped.",
            UserWarning,
            stacklevel=2,
        )
    return group_keys, points3d


def slp_session_summary(path: str | Path) -> dict:
    """Cheap look at a ``.slp`` file (h5py only): format id and number of stored recording sessions."""
    import h5py

    with h5py.File(path, "r") as h5:
        fmt = float(h5["metadata"].attrs.get("format_id", 0)) if "metadata" in h5 else 0.0
        n = len(h5["sessions_json"]) if "sessions_json" in h5 else 0
    return {"format_id": fmt, "n_sessions": n}
