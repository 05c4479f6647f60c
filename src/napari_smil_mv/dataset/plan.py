"""Preprocessing options and the sample plan: which (session, frame, animal) instants, seen by which cameras.

A *sample* is one synchronised instant of one animal seen by several cameras. A camera *sees* a sample when its
video exists and at least ``min_keypoints`` keypoints mapped to model joints are visible. Frames are kept when
some animal is seen by at least ``min_views`` cameras; then every ``frame_skip``-th kept frame is used, at most
``max_frames_per_session`` of them. Views are ordered by the canonical camera order (sorted camera names over all
sessions) and stored in the first slots of each sample.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import asdict, dataclass, field

import numpy as np

from napari_smil_mv.dataset.crops import CROP_MODES
from napari_smil_mv.sessions import JointMap, Session


@dataclass
class PreprocessOptions:
    """Options of a preprocessing run (all but ``chunk_size`` are part of the resume fingerprint).

    Attributes
    ----------
    image_size
        Side ``S`` of the stored square images, px.
    crop_mode
        ``"default"`` (whole frame resized to ``S x S``), ``"centred"`` (central square) or ``"bbox_crop"``
        (square around the animal's keypoints); see :func:`~napari_smil_mv.dataset.crops.crop_box_for`.
    min_views
        Minimum number of cameras that must see a sample.
    frame_skip
        Use every ``frame_skip``-th kept frame of a session.
    max_frames_per_session
        Cap on frames per session (after ``frame_skip``); None = no cap.
    jpeg_quality
        JPEG quality of the stored images (0-100).
    undistort
        Remove lens distortion from images and keypoints (the stored cameras are then ideal pinhole cameras).
    min_keypoints
        Visible mapped keypoints a camera needs to count as seeing the sample.
    min_score
        Drop predicted keypoints whose score is below this (scores are not probabilities); None keeps all.
    bbox_scale, bbox_min_size
        ``bbox_crop`` margin factor and minimum side in source px.
    load_3d
        Store 3D keypoints when the session has them.
    triangulate_missing_3d
        Triangulate 3D keypoints (DLT) for sessions that have none.
    outlier_std
        3D outlier rule: a joint is dropped when its distance from the median joint exceeds
        ``median(d) + outlier_std * std(d)``; its 2D visibility is set to 0 in every view.
    animals
        Animal identities to use (None = every identity, one sample per animal and frame).
    exclude_cameras
        Camera names to leave out of the dataset altogether (views, canonical camera order, stored calibration,
        triangulation), e.g. a camera whose calibration disagrees with the others (see
        :func:`~napari_smil_mv.sessions.calibration_qc`). Each name must be a camera of at least one session;
        stored sorted and without duplicates. A comma-separated string is accepted too.
    chunk_size
        Samples buffered before one HDF5 write.
    """

    image_size: int = 224
    crop_mode: str = "default"
    min_views: int = 2
    frame_skip: int = 1
    max_frames_per_session: int | None = None
    jpeg_quality: int = 95
    undistort: bool = True
    min_keypoints: int = 1
    min_score: float | None = None
    bbox_scale: float = 1.2
    bbox_min_size: float = 32.0
    load_3d: bool = True
    triangulate_missing_3d: bool = False
    outlier_std: float = 4.0
    animals: tuple[str, ...] | None = None
    exclude_cameras: tuple[str, ...] = ()
    chunk_size: int = 32

    _RUNTIME_ONLY = ("chunk_size",)

    def validate(self) -> PreprocessOptions:
        """Check the values; returns self. ValueError names the option and the allowed range."""
        if self.crop_mode not in CROP_MODES:
            raise ValueError(f"crop_mode must be one of {CROP_MODES}, got {self.crop_mode!r}")
        checks = [
            ("image_size", self.image_size >= 8, "an integer >= 8 (px)"),
            ("min_views", self.min_views >= 1, "an integer >= 1"),
            ("frame_skip", self.frame_skip >= 1, "an integer >= 1"),
            (
                "max_frames_per_session",
                self.max_frames_per_session is None or self.max_frames_per_session >= 1,
                "None or >= 1",
            ),
            ("jpeg_quality", 0 <= self.jpeg_quality <= 100, "in 0..100"),
            ("min_keypoints", self.min_keypoints >= 1, "an integer >= 1"),
            ("bbox_scale", self.bbox_scale > 0, "> 0"),
            ("outlier_std", self.outlier_std > 0, "> 0"),
            ("chunk_size", self.chunk_size >= 1, ">= 1"),
        ]
        for name, ok, what in checks:
            if not ok:
                raise ValueError(f"option {name} must be {what}, got {getattr(self, name)!r}")
        if self.animals is not None:
            self.animals = tuple(str(a) for a in self.animals)
        names = self.exclude_cameras
        if isinstance(names, str):
            names = names.split(",")
        names = [str(n).strip() for n in (names or ())]
        if any(not n for n in names):
            raise ValueError(f"option exclude_cameras must hold camera names, got {self.exclude_cameras!r}")
        self.exclude_cameras = tuple(sorted(set(names)))
        return self

    def fingerprint_dict(self) -> dict:
        """The options that change the output (for the resume check)."""
        d = asdict(self)
        for k in self._RUNTIME_ONLY:
            d.pop(k)
        d["animals"] = list(self.animals) if self.animals is not None else None
        d["exclude_cameras"] = sorted(self.exclude_cameras)
        return d


@dataclass(frozen=True)
class SampleSpec:
    """One planned sample: session, video frame, animal slot and the cameras that see it (canonical order)."""

    session: str
    frame: int
    row: int
    animal: int
    animal_name: str
    cameras: tuple[str, ...]

    @property
    def key(self) -> str:
        """Unique id used by the resume journal."""
        return f"{self.session}\t{self.frame}\t{self.animal_name}"


@dataclass
class SessionPlan:
    """A session prepared for preprocessing.

    Attributes
    ----------
    session
        The loaded session.
    node_map
        ``(J,)`` data node index observed at each model joint, -1 where unmapped.
    keypoints
        Camera -> ``(T, A, N, 2)`` keypoints in px, undistorted when the run undistorts, NaN where not visible.
    betas
        Ground-truth shape coefficients ``(n_betas,)`` or None.
    samples
        The planned samples, in frame order.
    """

    session: Session
    node_map: np.ndarray
    keypoints: dict[str, np.ndarray]
    betas: np.ndarray | None
    samples: list[SampleSpec] = field(default_factory=list)


def exclude_session_cameras(sessions: list[Session], options: PreprocessOptions) -> list[Session]:
    """The sessions without the cameras named in ``options.exclude_cameras`` (unchanged when it is empty).

    Raises
    ------
    ValueError
        When a name is a camera of no session (the message lists each session's path and cameras), or when the
        exclusion leaves a session fewer than ``options.min_views`` cameras.
    """
    names = tuple(options.exclude_cameras)
    if not names:
        return list(sessions)
    known = {c for s in sessions for c in s.camera_names}
    unknown = [c for c in names if c not in known]
    if unknown:
        where = "; ".join(f"session {s.name!r} ({s.path}): {s.camera_names}" for s in sessions)
        raise ValueError(
            f"exclude_cameras names camera(s) {unknown} that no session has; the cameras are: {where}"
        )
    out = []
    for s in sessions:
        drop = [c for c in s.camera_names if c in names]
        kept = [c for c in s.camera_names if c not in names]
        if drop and len(kept) < options.min_views:
            raise ValueError(
                f"session {s.name!r} ({s.path}): excluding cameras {drop} leaves {len(kept)} camera(s) {kept}, "
                f"fewer than min_views={options.min_views}; exclude fewer cameras or lower min_views"
            )
        out.append(s.without_cameras(drop) if drop else s)
    return out


def visible_keypoints(view, min_score: float | None) -> np.ndarray:
    """``(T, A, N)`` bool: keypoints of a camera view that preprocessing counts as seen (visible, finite, and scored
    at least ``min_score`` where SLEAP gave a score; user labels have none and are kept)."""
    vis = view.visible & np.all(np.isfinite(view.keypoints), axis=-1)
    if min_score is not None:
        vis &= ~(np.isfinite(view.scores) & (view.scores < min_score))  # user labels (NaN score) are kept
    return vis


def resolve_node_map(session: Session, joint_map: JointMap, joint_names: list[str]) -> np.ndarray:
    """``(J,)`` data node index per model joint for ``session``; ValueError when nothing maps."""
    node_map = joint_map.model_index_map(session.skeleton.nodes, joint_names)
    if not np.any(node_map >= 0):
        problems = (
            "; ".join(joint_map.validate(session.skeleton.nodes, joint_names)) or "the joint map is empty"
        )
        raise ValueError(
            f"session {session.name!r}: no skeleton node maps to a model joint ({problems}). Give a joint map "
            "(joint_lookup.csv with columns model,data) that names this session's nodes "
            f"{list(session.skeleton.nodes)}"
        )
    return node_map


def plan_session(
    session: Session,
    joint_map: JointMap,
    joint_names: list[str],
    options: PreprocessOptions,
    betas: np.ndarray | None,
    stats: Counter,
) -> SessionPlan:
    """Choose the samples of one session and undistort its keypoints (see the module docstring).

    ``stats`` is updated in place: ``frames_with_labels``, ``frames_below_min_views``, ``frames_dropped_frame_skip``,
    ``frames_dropped_max_frames``, ``total_potential_views``, ``views_missing_annotations``,
    ``views_excluded_no_video_capture``.
    """
    node_map = resolve_node_map(session, joint_map, joint_names)
    mapped = np.flatnonzero(node_map >= 0)
    nodes = node_map[mapped]
    if options.animals is None:
        animals = list(range(session.n_animals))
    else:
        animals = [i for i, a in enumerate(session.animal_names) if a in options.animals]
    keypoints: dict[str, np.ndarray] = {}
    seen = {}  # camera -> (T, A) bool
    labelled_any = np.zeros((session.n_frames, session.n_animals), dtype=bool)
    for name, view in session.views.items():
        vis = visible_keypoints(view, options.min_score)
        kp = np.where(vis[..., None], view.keypoints, np.nan)
        if options.undistort and view.camera.has_distortion:
            kp = view.camera.undistort_points(kp)
        keypoints[name] = kp
        n_vis = vis[:, :, nodes].sum(axis=-1)
        labelled = n_vis >= options.min_keypoints
        has_any = np.any(vis, axis=-1)
        labelled_any |= has_any
        stats["total_potential_views"] += int(has_any[:, animals].sum())
        stats["views_missing_annotations"] += int((has_any & ~labelled)[:, animals].sum())
        if view.video is None or not view.video.exists:
            stats["views_excluded_no_video_capture"] += int(labelled[:, animals].sum())
            labelled = np.zeros_like(labelled)
        seen[name] = labelled
    cams = sorted(session.camera_names)
    n_views = np.sum([seen[c] for c in cams], axis=0) if cams else np.zeros_like(labelled_any, dtype=int)
    frame_ok = np.zeros(session.n_frames, dtype=bool)
    for a in animals:
        frame_ok |= n_views[:, a] >= options.min_views
    frames_labelled = np.any(labelled_any[:, animals], axis=1)
    stats["frames_with_labels"] += int(frames_labelled.sum())
    stats["frames_below_min_views"] += int((frames_labelled & ~frame_ok).sum())
    rows = np.flatnonzero(frame_ok)
    kept = rows[:: options.frame_skip]
    stats["frames_dropped_frame_skip"] += len(rows) - len(kept)
    if options.max_frames_per_session is not None and len(kept) > options.max_frames_per_session:
        stats["frames_dropped_max_frames"] += len(kept) - options.max_frames_per_session
        kept = kept[: options.max_frames_per_session]
    plan = SessionPlan(session, node_map, keypoints, betas)
    for t in kept:
        for a in animals:
            views = tuple(c for c in cams if seen[c][t, a])
            if len(views) >= options.min_views:
                plan.samples.append(
                    SampleSpec(
                        session.name, int(session.frame_indices[t]), int(t), a, session.animal_names[a], views
                    )
                )
    return plan


def filter_3d_outliers(points: np.ndarray, n_std: float = 4.0) -> np.ndarray:
    """Valid mask ``(J,)`` of 3D joints ``(J, 3)`` after SMILify's outlier rule.

    Valid = finite and not exactly ``(0, 0, 0)``; with ``d_j = ||X_j - median(X)||`` (median over valid joints),
    a joint is an outlier when ``d_j > median(d) + n_std * std(d)`` (needs at least 2 valid joints and
    ``std(d) >= 1e-6``).
    """
    p = np.asarray(points, dtype=np.float64)
    valid = np.all(np.isfinite(p), axis=-1) & np.any(p != 0, axis=-1)
    if valid.sum() < 2:
        return valid
    centre = np.median(p[valid], axis=0)
    d = np.linalg.norm(p - centre, axis=-1)
    dv = d[valid]
    sd = float(np.std(dv))
    if sd < 1e-6:
        return valid
    return valid & ~(d > np.median(dv) + n_std * sd)


def fingerprint(
    options: PreprocessOptions,
    plans: list[SessionPlan],
    joint_names: list[str],
    model_sha256: str,
    joint_map: JointMap,
) -> str:
    """SHA-256 over everything that determines the output (options, inputs, model, joint map, sample list)."""
    inputs = []
    for p in plans:
        s = p.session
        files = []
        for v in s.views.values():
            for f in (v.source_path, getattr(v.video, "path", None)):
                if f is not None and f.exists():
                    st = f.stat()
                    files.append([str(f), st.st_size, int(st.st_mtime)])
        inputs.append(
            {
                "name": s.name,
                "path": str(s.path.resolve()),
                "cameras": s.camera_names,
                "files": files,
                "betas": None if p.betas is None else np.asarray(p.betas).round(8).tolist(),
                "samples": [spec.key + "\t" + ",".join(spec.cameras) for spec in p.samples],
            }
        )
    opts = options.fingerprint_dict()
    if not opts["exclude_cameras"]:
        del opts["exclude_cameras"]  # runs without exclusions keep the fingerprint they had before the option
    blob = json.dumps(
        {
            "options": opts,
            "inputs": inputs,
            "joint_names": joint_names,
            "model_sha256": model_sha256,
            "joint_map": sorted(joint_map.pairs),
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()
