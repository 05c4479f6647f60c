"""In-memory model of one synchronised multi-camera recording session.

Conventions: 2D keypoints are ``(x, y)`` pixels in the OpenCV/SLEAP convention (pixel centres at integer
coordinates), NaN where missing; 3D points are in the calibration's world frame and units; frames are video frame
indices shared by all cameras (the cameras are synchronised, frame ``t`` of every video shows the same instant).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from napari_smil_mv.cameras import Camera, CameraRig
from napari_smil_mv.sessions.video import LazyVideo

#: Allowed values of :attr:`Session.points3d_source`.
POINTS3D_SOURCES = ("points3d.h5", "anipose csv", "slp", "triangulated", None)


@dataclass
class Skeleton:
    """Keypoint names and the edges between them.

    Parameters
    ----------
    nodes
        Node (keypoint) names, in the order of the keypoint axis of every array in the session.
    edges
        Pairs of node indices ``(i, j)``.
    """

    nodes: list[str]
    edges: list[tuple[int, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.nodes = [str(n) for n in self.nodes]
        self.edges = [(int(a), int(b)) for a, b in self.edges]
        if len(set(self.nodes)) != len(self.nodes):
            dupes = sorted({n for n in self.nodes if self.nodes.count(n) > 1})
            raise ValueError(f"skeleton has duplicate node names {dupes}; node names must be unique")
        for a, b in self.edges:
            if not (0 <= a < len(self.nodes) and 0 <= b < len(self.nodes)):
                raise ValueError(
                    f"skeleton edge ({a}, {b}) refers to a node index outside 0..{len(self.nodes) - 1}"
                )

    @property
    def n_nodes(self) -> int:
        return len(self.nodes)

    def index(self, name: str) -> int:
        """Index of node ``name``; KeyError listing the nodes when absent."""
        try:
            return self.nodes.index(name)
        except ValueError:
            raise KeyError(f"no node named {name!r}; the skeleton has {self.nodes}") from None


@dataclass
class CameraView:
    """Everything one camera contributes to a session.

    Attributes
    ----------
    name
        Camera name (as in the calibration).
    camera
        Calibrated camera (OpenCV/Anipose convention).
    video
        Lazy video accessor, or None when the session names no video for this camera.
    keypoints
        ``(T, A, N, 2)`` float64 ``(x, y)`` px; NaN where the node is missing or invisible.
    scores
        ``(T, A, N)`` float64 per-node scores of predicted instances. They come from the network and are *not*
        probabilities (values above 1 occur). NaN for user-labelled instances (no score) and missing nodes.
    visible
        ``(T, A, N)`` bool; True where the node was labelled/predicted as visible (then ``keypoints`` is finite).
    is_user
        ``(T, A)`` bool; True where the instance is a user (hand-labelled) instance rather than a prediction.
    source_path
        File the keypoints were read from.
    """

    name: str
    camera: Camera
    video: LazyVideo | None
    keypoints: np.ndarray
    scores: np.ndarray
    visible: np.ndarray
    is_user: np.ndarray
    source_path: Path | None = None

    def __post_init__(self) -> None:
        kp = np.asarray(self.keypoints, dtype=np.float64)
        if kp.ndim != 4 or kp.shape[-1] != 2:
            raise ValueError(f"camera {self.name!r}: keypoints must be (T, A, N, 2), got {kp.shape}")
        self.keypoints = kp
        self.scores = np.asarray(self.scores, dtype=np.float64)
        self.visible = np.asarray(self.visible, dtype=bool)
        self.is_user = np.asarray(self.is_user, dtype=bool)
        if self.scores.shape != kp.shape[:3] or self.visible.shape != kp.shape[:3]:
            raise ValueError(
                f"camera {self.name!r}: scores {self.scores.shape} and visible {self.visible.shape} must be "
                f"(T, A, N) = {kp.shape[:3]}"
            )
        if self.is_user.shape != kp.shape[:2]:
            raise ValueError(
                f"camera {self.name!r}: is_user {self.is_user.shape} must be (T, A) = {kp.shape[:2]}"
            )


@dataclass
class Session:
    """A calibrated multi-camera recording with 2D keypoints per camera and optional 3D points.

    Attributes
    ----------
    name
        Session name (folder name, or the ``.slp`` file stem for a session stored in one ``.slp``).
    path
        Folder or file the session was loaded from.
    rig
        Calibrated cameras; their order is the camera order of every per-camera array.
    views
        Camera name -> :class:`CameraView`, in rig order.
    skeleton
        Node names and edges shared by all cameras.
    frame_indices
        ``(T,)`` int64 video frame index of each row of the keypoint arrays (sorted, unique).
    points3d
        ``(T, A, N, 3)`` float64 in world units, NaN where missing; None until loaded or triangulated.
    points3d_source
        Where ``points3d`` came from: ``"points3d.h5"``, ``"anipose csv"``, ``"slp"`` (3D points stored in the
        ``.slp`` InstanceGroups), ``"triangulated"`` or None.
    units
        Length unit of the calibration and 3D points (``"mm"``, ...). ``"unknown"`` unless declared by the user or
        a ``session.toml``: Anipose calibrations do not store it.
    animal_names
        Identity of each animal slot ``A`` (track or instance-group names), consistent across cameras.
    """

    name: str
    path: Path
    rig: CameraRig
    views: dict[str, CameraView]
    skeleton: Skeleton
    frame_indices: np.ndarray
    points3d: np.ndarray | None = None
    points3d_source: str | None = None
    units: str = "unknown"
    animal_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self.frame_indices = np.asarray(self.frame_indices, dtype=np.int64).reshape(-1)
        if list(self.views) != list(self.rig.names):
            raise ValueError(f"session views {list(self.views)} must be in rig order {list(self.rig.names)}")
        expected = (len(self.frame_indices), len(self.animal_names), self.skeleton.n_nodes)
        for view in self.views.values():
            if view.keypoints.shape[:3] != expected:
                raise ValueError(
                    f"camera {view.name!r}: keypoints {view.keypoints.shape[:3]} do not match "
                    f"(frames, animals, nodes) = {expected}"
                )
        if self.points3d is not None:
            self.points3d = np.asarray(self.points3d, dtype=np.float64)
            if self.points3d.shape != (*expected, 3):
                raise ValueError(f"points3d {self.points3d.shape} must be (T, A, N, 3) = {(*expected, 3)}")
        if self.points3d_source not in POINTS3D_SOURCES:
            raise ValueError(
                f"points3d_source must be one of {POINTS3D_SOURCES}, got {self.points3d_source!r}"
            )

    # -- sizes ---------------------------------------------------------------------------------------------
    @property
    def camera_names(self) -> list[str]:
        """Camera names in rig order."""
        return list(self.views)

    @property
    def n_frames(self) -> int:
        """Number of frames ``T`` with keypoints in at least one camera."""
        return len(self.frame_indices)

    @property
    def n_animals(self) -> int:
        """Number of animal identities ``A``."""
        return len(self.animal_names)

    @property
    def n_nodes(self) -> int:
        return self.skeleton.n_nodes

    @property
    def fps(self) -> float | None:
        """Frame rate (Hz) of the recording, from the cameras' video headers; None when no video states one.

        The cameras are synchronised, so their rates should agree; when they differ by more than 1 % the median is
        returned with a :class:`UserWarning` naming each camera's rate.
        """
        rates = {}
        for name, view in self.views.items():
            rate = view.video.fps if view.video is not None else None
            if rate:
                rates[name] = float(rate)
        if not rates:
            return None
        values = np.array(list(rates.values()))
        median = float(np.median(values))
        if np.any(np.abs(values - median) > 0.01 * median):
            warnings.warn(
                f"session {self.name!r}: the cameras' videos state different frame rates "
                f"({', '.join(f'{n} {r:g}' for n, r in rates.items())} fps); using {median:g} fps",
                UserWarning,
                stacklevel=2,
            )
        return median

    @property
    def frame_range(self) -> tuple[int, int] | None:
        """``(first, last)`` video frame index (inclusive), or None for an empty session."""
        if self.n_frames == 0:
            return None
        return int(self.frame_indices[0]), int(self.frame_indices[-1])

    # -- arrays --------------------------------------------------------------------------------------------
    def keypoints_2d(self) -> np.ndarray:
        """All cameras' keypoints stacked: ``(C, T, A, N, 2)`` float64 px, NaN missing, rig order."""
        if not self.views:
            return np.zeros((0, self.n_frames, self.n_animals, self.n_nodes, 2))
        return np.stack([v.keypoints for v in self.views.values()])

    def scores_2d(self) -> np.ndarray:
        """All cameras' per-node scores stacked: ``(C, T, A, N)`` (NaN for user labels and missing nodes)."""
        return np.stack([v.scores for v in self.views.values()])

    def frame_row(self, frame_index: int) -> int:
        """Row ``t`` of the keypoint arrays holding video frame ``frame_index``; KeyError when not labelled."""
        rows = np.flatnonzero(self.frame_indices == int(frame_index))
        if rows.size == 0:
            raise KeyError(f"frame {frame_index} has no keypoints in session {self.name!r}")
        return int(rows[0])

    def triangulate(self, ransac: bool = False, cameras: list[str] | None = None) -> np.ndarray:
        """Triangulate 3D points from the 2D keypoints (DLT after undistortion; optional RANSAC).

        Parameters
        ----------
        ransac
            Use aniposelib's RANSAC triangulation (robust to one bad view per point).
        cameras
            Names of the cameras to use (default: all).

        Returns
        -------
        numpy.ndarray
            ``(T, A, N, 3)`` world points; NaN where fewer than two cameras see the node.
        """
        from napari_smil_mv.cameras import triangulate

        names = list(cameras) if cameras is not None else self.camera_names
        unknown = [n for n in names if n not in self.views]
        if unknown:
            raise KeyError(f"unknown cameras {unknown}; the session has {self.camera_names}")
        rig = self.rig.subset(names)
        shape = (self.n_frames, self.n_animals, self.n_nodes)
        count = int(np.prod(shape))
        if len(names) < 2 or count == 0:
            return np.full((*shape, 3), np.nan)
        pts = np.stack([self.views[n].keypoints.reshape(count, 2) for n in names])
        out = np.full((count, 3), np.nan)
        seen = np.sum(np.all(np.isfinite(pts), axis=-1), axis=0) >= 2  # only points seen by two cameras
        if np.any(seen):
            out[seen] = np.asarray(triangulate(pts[:, seen], rig, ransac=ransac), dtype=np.float64)
        return out.reshape(*shape, 3)

    def ensure_points3d(self, ransac: bool = False, cameras: list[str] | None = None) -> np.ndarray:
        """Return ``points3d``, triangulating (and storing, source ``"triangulated"``) when missing.

        Parameters
        ----------
        ransac
            Use RANSAC triangulation (slow: a Python loop per point).
        cameras
            Cameras to triangulate from (default all), e.g. ``calibration_qc(session).consensus_cameras`` to
            leave out a camera with a bad calibration.

        Returns
        -------
        numpy.ndarray
            ``(T, A, N, 3)`` world points in ``units``.
        """
        if self.points3d is None:
            self.points3d = self.triangulate(ransac=ransac, cameras=cameras)
            self.points3d_source = "triangulated"
        return self.points3d

    def without_cameras(self, names: Iterable[str]) -> Session:
        """A copy of the session without the named cameras (views and calibration), e.g. a badly calibrated one.

        Parameters
        ----------
        names
            Camera names to leave out; each must be one of :attr:`camera_names`.

        Returns
        -------
        Session
            A new session sharing the kept views (their arrays are not copied) with a rig of copies of the kept
            cameras in the original order; ``points3d`` is kept as is (3D points do not depend on a camera once
            made).

        Raises
        ------
        ValueError
            When a name is not a camera of this session (the message lists the session's cameras).
        """
        drop = [str(n) for n in dict.fromkeys(names)]
        unknown = [n for n in drop if n not in self.views]
        if unknown:
            raise ValueError(
                f"session {self.name!r} ({self.path}) has no camera {unknown}; its cameras are {self.camera_names}"
            )
        kept = [c for c in self.camera_names if c not in drop]
        return replace(
            self,
            rig=self.rig.subset(kept),
            views={c: self.views[c] for c in kept},
            animal_names=list(self.animal_names),
        )

    def __repr__(self) -> str:
        return (
            f"Session(name={self.name!r}, cameras={self.camera_names}, frames={self.n_frames}, "
            f"animals={self.animal_names}, nodes={self.n_nodes}, points3d={self.points3d_source}, units={self.units!r})"
        )
