"""Checks of a session's videos before their images are used: missing, undecodable, or shorter than the labels.

Loading a session never fails on a video (a missing or undecodable file shows blank frames, so keypoints can still
be viewed and fitted). Commands that *use the images* (``preprocess``, ``infer --session``) call
:func:`check_session_videos` first, so that a broken file is named instead of turning into black crops.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from napari_smil_mv.sessions.video import VideoMissingWarning, open_videos

__all__ = ["VideoProblem", "check_session_videos"]

#: Kinds of :class:`VideoProblem`.
PROBLEM_KINDS = ("missing", "unreadable", "short")


@dataclass(frozen=True)
class VideoProblem:
    """One camera's video problem.

    Attributes
    ----------
    session, camera
        Session and camera names.
    kind
        ``"missing"`` (no file), ``"unreadable"`` (a file that cannot be decoded) or ``"short"`` (fewer frames
        than the labels reach).
    path
        The video file (the stored path when it was not found), or None when the session names none.
    message
        One line naming the camera, the file and the problem.
    video_frames, label_frames
        For ``"short"``: frames in the video, and the last labelled frame index + 1.
    """

    session: str
    camera: str
    kind: str
    path: str | None
    message: str
    video_frames: int | None = None
    label_frames: int | None = None


def _labelled_end(view, frame_indices: np.ndarray) -> int:
    """Last video frame index with a visible keypoint in ``view``, + 1 (0 when none)."""
    seen = np.any(view.visible & np.all(np.isfinite(view.keypoints), axis=-1), axis=(1, 2))
    rows = np.flatnonzero(seen)
    return int(frame_indices[rows].max()) + 1 if rows.size else 0


def check_session_videos(session, cameras: Iterable[str] | None = None) -> list[VideoProblem]:
    """Open the videos of ``cameras`` (default: all) of ``session`` and report their problems.

    Parameters
    ----------
    session
        A :class:`~napari_smil_mv.sessions.Session`.
    cameras
        Camera names to check (default: every camera of the session).

    Returns
    -------
    list of VideoProblem
        In camera order; empty when every video opens and covers every labelled frame. Opening reads only the
        headers (a few tens of ms per video); the :class:`VideoMissingWarning` s of opening are suppressed (the
        problems carry the same text).
    """
    names = list(session.camera_names) if cameras is None else [c for c in cameras if c in session.views]
    videos = [session.views[c].video for c in names]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VideoMissingWarning)
        open_videos(videos)
    problems: list[VideoProblem] = []
    for name, video in zip(names, videos, strict=True):
        where = f"session {session.name!r} camera {name!r}"
        if video is None:
            problems.append(
                VideoProblem(session.name, name, "missing", None, f"{where}: the session names no video")
            )
            continue
        if not video.exists:
            reason = video.missing_reason or "video unavailable"
            on_disk = video.path is not None and video.path.is_file()
            kind = "unreadable" if on_disk else "missing"
            path = str(video.path) if on_disk else video.stored_path
            problems.append(VideoProblem(session.name, name, kind, path, f"{where}: {reason}"))
            continue
        n_video = int(video.shape[0])
        n_labels = _labelled_end(session.views[name], session.frame_indices)
        if n_video < n_labels:
            problems.append(
                VideoProblem(
                    session.name,
                    name,
                    "short",
                    str(video.path),
                    f"{where}: video {video.path} has {n_video} frames but the labels reach frame "
                    f"{n_labels - 1} ({n_labels} frames); labelled frames past the end of the video have no image",
                    n_video,
                    n_labels,
                )
            )
    return problems
