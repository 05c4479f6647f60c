"""Build :class:`FitData` from a loaded recording session and a joint map."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from napari_smil_mv.fitting.data import FitData
from napari_smil_mv.sessions.joint_map import check_joint_map


def keypoint_weights(scores: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """Per-keypoint weights from SLEAP scores and visibility.

    SLEAP scores are not probabilities (values above 1 occur), so they are clipped to [0, 1]; user-labelled points
    (score NaN) get weight 1; invisible or missing points get 0.
    """
    s = np.where(np.isfinite(scores), np.clip(scores, 0.0, 1.0), 1.0)
    return np.where(visible, s, 0.0)


def fit_data_from_session(
    session,
    joint_map,
    model_joint_names: Sequence[str],
    animal: int | str = 0,
    frames: slice | Sequence[int] | np.ndarray | None = None,
    use_scores: bool = True,
    use_points3d: bool = True,
) -> FitData:
    """Observations of one animal of a :class:`napari_smil_mv.sessions.Session`, in model-joint order.

    Parameters
    ----------
    session
        The loaded session (cameras, per-camera 2D keypoints, optional 3D points).
    joint_map
        :class:`napari_smil_mv.sessions.JointMap` (data node → model joint).
    model_joint_names
        The model's J joint names (the order of the output arrays).
    animal
        Animal slot index or name (``session.animal_names``).
    frames
        Rows of the session's frame axis to use (slice or indices into ``session.frame_indices``); None = all.
    use_scores
        Weight keypoints by their (clipped) SLEAP score; otherwise every visible keypoint weighs 1.
    use_points3d
        Include the session's 3D points (``points3d.h5`` etc.) when present; they are never triangulated here.

    Returns
    -------
    FitData

    Raises
    ------
    ValueError, KeyError
        When the animal does not exist, or the joint map names nodes/joints that are missing (the message lists
        them), or maps nothing.
    """
    names = list(session.animal_names)
    if isinstance(animal, str):
        if animal not in names:
            raise KeyError(f"session {session.name!r} has no animal {animal!r}; animals are {names}")
        a = names.index(animal)
    else:
        a = int(animal)
        if not 0 <= a < len(names):
            raise ValueError(
                f"session {session.name!r}: animal index {a} out of range; it has {len(names)} "
                f"animal(s) {names}"
            )
    nodes = list(session.skeleton.nodes)
    joints = list(model_joint_names)
    check_joint_map(joint_map, session, joints)
    d_idx, m_idx = joint_map.index_pairs(nodes, joints)
    if d_idx.size == 0:
        raise ValueError(
            f"joint map maps no data node of session {session.name!r} onto a model joint; data nodes "
            f"are {nodes}"
        )
    rows = np.arange(session.n_frames) if frames is None else np.arange(session.n_frames)[frames]
    rows = np.atleast_1d(rows)
    if rows.size == 0:
        raise ValueError(
            f"frame selection {frames!r} selects no frame of session {session.name!r} "
            f"({session.n_frames} frames)"
        )
    C, T, J = len(session.rig), rows.size, len(joints)
    kp = np.full((C, T, J, 2), np.nan)
    w = np.zeros((C, T, J))
    for c, view in enumerate(session.views.values()):
        src = view.keypoints[rows, a]  # (T, N, 2)
        kp[c][:, m_idx] = src[:, d_idx]
        if use_scores:
            weights = keypoint_weights(view.scores[rows, a], view.visible[rows, a])
        else:
            weights = view.visible[rows, a].astype(np.float64)
        w[c][:, m_idx] = weights[:, d_idx]
    points = None
    if use_points3d and session.points3d is not None:
        points = np.full((T, J, 3), np.nan)
        points[:, m_idx] = session.points3d[rows, a][:, d_idx]
    data_names = [""] * J
    for d, m in zip(d_idx, m_idx, strict=True):
        data_names[m] = nodes[d]
    videos = []
    for view in session.views.values():
        video = getattr(view, "video", None)
        path = getattr(video, "path", None) if video is not None else None
        videos.append(None if path is None else str(path))
    return FitData(
        keypoints_2d=kp,
        weights=w,
        cameras=session.rig,
        points_3d=points,
        units=session.units or "unknown",
        frame_indices=session.frame_indices[rows],
        joint_names=joints,
        data_names=data_names,
        videos=videos,
        fps=session.fps,
        metadata={
            "session": str(Path(session.path)),
            "session_name": session.name,
            "animal": a,
            "animal_name": names[a],
            "points3d_source": session.points3d_source if points is not None else None,
        },
    )
