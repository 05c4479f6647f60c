"""Overlay videos of a results file: the fitted mesh and keypoints painted over each camera's video frames.

For every selected camera one ``<camera>_overlay.mp4`` (h264, through imageio-ffmpeg) is written with one frame per
selected results row: the camera's video frame (black when the video is missing), the posed body mesh rendered
with the numpy/OpenCV painter of :mod:`napari_smil_mv.rendering` and blended at :data:`MESH_ALPHA`, the model
keypoints projected into the camera (red discs joined by the skeleton) over the observed data keypoints
(yellow crosses).

:func:`iter_overlay` is a generator (progress events, cancellable) used by the CLI ``overlay`` command and the
napari *Export results* widget; :func:`export_overlays` runs it to the end. No Qt/napari imports.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from napari_smil_mv.results.results import Results
from napari_smil_mv.utils.atomic import atomic_path, check_can_write
from napari_smil_mv.utils.cancel import CancelFlag, is_cancelled
from napari_smil_mv.utils.mp4_writer import Mp4Writer

MESH_RGB = (70, 160, 230)
MESH_ALPHA = 0.55
MODEL_RGB = (255, 80, 60)
DATA_RGB = (255, 230, 60)
#: Output file name of a camera's overlay video.
OVERLAY_NAME = "{camera}_overlay.mp4"


@dataclass
class OverlayEvent:
    """Progress of :func:`iter_overlay`: ``done`` of ``total`` frames (all cameras), and a message."""

    done: int
    total: int
    message: str = ""

    @property
    def progress(self) -> float:
        return self.done / self.total if self.total else 1.0


def model_of(results: Results, model: Any = None) -> Any:
    """The body model (SMILModelData) of ``results``: ``model`` (a SMILModelData or ``.pkl``; checked), else the
    demo model or the ``.pkl`` recorded at fit time. ValueError with the fix when it cannot be found."""
    from napari_smil_mv.body import load_smil_model
    from napari_smil_mv.body.model_file import DEMO_SOURCE
    from napari_smil_mv.results.exports import check_model

    if model is None:
        src = results.model_source
        if src == DEMO_SOURCE:
            model = load_smil_model(None)
        elif src and Path(src).is_file():
            model = load_smil_model(src)
        else:
            raise ValueError(
                f"the body model of the results ({src or 'not recorded'}) was not found; give it with --model "
                "MODEL.pkl, or draw keypoints only (--no-mesh)"
            )
    elif isinstance(model, str | os.PathLike):
        model = load_smil_model(model)
    check_model(results, model)
    return model


def _vertices(results: Results, model: Any, rows: np.ndarray, chunk: int = 32) -> Generator[np.ndarray]:
    """Posed vertices ``(V, 3)`` world units of each row, evaluated ``chunk`` rows at a time."""
    import torch

    from napari_smil_mv.body import SMILModel
    from napari_smil_mv.body.animation import evaluate_animation

    smil = SMILModel(model, dtype=torch.float32)
    anim = results.to_animation()
    for s in range(0, len(rows), chunk):
        part = anim.take(rows[s : s + chunk])
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*not writable.*")
            yield from evaluate_animation(smil, part).vertices


def _edges(results: Results, joints: np.ndarray) -> list[tuple[int, int]]:
    """Skeleton edges among the drawn joints (each to its nearest drawn ancestor), as positions in ``joints``."""
    from napari_smil_mv.body.kinematics import subset_edges  # lazy: torch only when needed

    return subset_edges(results.parents, joints)


def paint_frame(
    frame: np.ndarray,
    camera: Any,
    vertices: np.ndarray | None,
    faces: np.ndarray | None,
    model_points: np.ndarray | None,
    observed: np.ndarray | None = None,
    edges: Sequence[tuple[int, int]] = (),
) -> np.ndarray:
    """One overlay image: mesh (blended), model keypoints with skeleton, observed keypoints as crosses.

    Parameters
    ----------
    frame
        ``(H, W, C)`` uint8 video frame, C = 1 (grey) or 3 (RGB), of the camera size.
    camera
        The :class:`~napari_smil_mv.cameras.Camera`.
    vertices, faces
        ``(V, 3)`` world vertices and ``(F, 3)`` triangles, or None for no mesh.
    model_points, observed
        ``(N, 2)`` px ``(x, y)`` model keypoints and data keypoints (NaN rows skipped), or None.
    edges
        Index pairs into ``model_points`` drawn as lines.

    Returns
    -------
    np.ndarray
        ``(H, W, 3)`` uint8 RGB.
    """
    from napari_smil_mv.rendering import blend_mesh, draw_crosses, draw_keypoints

    img = np.asarray(frame, dtype=np.uint8)
    img = np.repeat(img[..., :1], 3, axis=2) if img.ndim == 2 or img.shape[2] == 1 else img[..., :3]
    img = np.ascontiguousarray(img.reshape(img.shape[0], img.shape[1], 3))
    if vertices is not None and faces is not None:
        out = blend_mesh(img, vertices, faces, camera, MESH_RGB, MESH_ALPHA)
    else:
        out = img.copy()  # never draw into the caller's frame
    scale = max(img.shape[:2])
    if observed is not None:  # crosses under the discs: both stay visible where they agree
        draw_crosses(out, observed, DATA_RGB, max(8, int(0.014 * scale)))
    if model_points is not None and len(model_points):
        out = draw_keypoints(out, model_points, MODEL_RGB, edges=edges, radius=max(2.0, 0.004 * scale))
    return out


def _videos(results: Results, session: Any, names: list[str]) -> dict[str, Any]:
    """LazyVideo per camera: the session's views, else the videos recorded in the results (black if missing)."""
    from napari_smil_mv.sessions import LazyVideo

    out = {}
    for name in names:
        cam = results.cameras[name]
        if session is not None:
            if name not in session.views:
                raise ValueError(
                    f"camera {name!r} of the results is not in session {session.name!r} "
                    f"(cameras {session.camera_names}); give the session the results were fitted on"
                )
            video = session.views[name].video
        else:
            path = results.videos[results.camera_names.index(name)] if results.videos else None
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                video = LazyVideo(path, int(results.frame_indices.max()) + 1, cam.size, 3, name)
        out[name] = video
    return out


def _frame(video: Any, index: int, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    if video is None:
        return np.zeros((h, w, 3), np.uint8)
    try:
        img = np.asarray(video[int(index)])
    except (IndexError, OSError, ValueError):
        return np.zeros((h, w, 3), np.uint8)
    if img.shape[:2] != (h, w):
        raise ValueError(
            f"video frame {index} of camera {getattr(video, 'name', '?')} is {img.shape[1]}x{img.shape[0]} px "
            f"but the calibration says {w}x{h}; check the session's calibration.toml"
        )
    return img


def _overlay_writer(path: Path, size: tuple[int, int], fps: float) -> Mp4Writer:
    """Overlay videos: h264 (crf 20), yuv420p so that every player opens them."""
    return Mp4Writer(path, size, fps, ("-crf", "20", "-preset", "veryfast", "-pix_fmt", "yuv420p"))


class _Cancelled(Exception):
    """Raised inside a camera's write to discard its partial file."""


def _observed(results: Results, c: int, r: int, joints: np.ndarray) -> np.ndarray | None:
    """Data keypoints ``(N, 2)`` of camera ``c`` at row ``r`` (NaN where missing or weight 0), or None."""
    if results.observed_2d is None:
        return None
    obs = results.observed_2d[c, r, joints]
    if results.observed_weights is None:
        return obs
    return np.where((results.observed_weights[c, r, joints] > 0)[:, None], obs, np.nan)


def overlay_plan(
    results: Results, cameras: Sequence[str] | None = None, rows: np.ndarray | None = None
) -> tuple[list[str], np.ndarray]:
    """Camera names and results rows to render (ValueError naming an unknown camera)."""
    names = list(results.camera_names) if not cameras else [str(c) for c in cameras]
    unknown = [n for n in names if n not in results.camera_names]
    if unknown:
        raise ValueError(f"unknown camera(s) {unknown}; the results have {results.camera_names}")
    r = np.arange(results.n_frames) if rows is None else np.asarray(rows, dtype=np.int64)
    if r.size == 0:
        raise ValueError("no frames selected")
    return names, r


def iter_overlay(
    results: Results,
    out_dir: str | os.PathLike,
    session: Any = None,
    model: Any = None,
    cameras: Sequence[str] | None = None,
    rows: np.ndarray | None = None,
    mesh: bool = True,
    all_joints: bool = False,
    fps: float | None = None,
    overwrite: bool = False,
    cancel: CancelFlag = None,
) -> Generator[OverlayEvent, None, list[Path]]:
    """Write one overlay video per camera; yields progress, returns the written files (cancelled: those done).

    Parameters
    ----------
    results
        The results.
    out_dir
        Output folder (created); files ``<camera>_overlay.mp4``.
    session
        A loaded :class:`~napari_smil_mv.sessions.Session` (or its path) whose videos are painted over; None:
        the videos recorded in the results (black frames where missing).
    model
        Body model (SMILModelData or ``.pkl``), None: the results' own (:func:`model_of`). Unused without mesh.
    cameras
        Camera names (default all).
    rows
        Results rows to render (default all), e.g. from :func:`napari_smil_mv.commands._args.parse_frames`.
    mesh
        Paint the mesh (needs the model); False: keypoints only.
    all_joints
        Draw every model joint (default: the joints mapped to a data keypoint).
    fps
        Frame rate of the output (default the results', else 30).
    overwrite
        Replace existing overlay files (otherwise FileExistsError before anything is written).
    cancel
        Stop flag, checked every frame; a cancelled camera's partial file is removed.
    """
    names, rows = overlay_plan(results, cameras, rows)
    out_dir = Path(out_dir)
    targets = {n: out_dir / OVERLAY_NAME.format(camera=n) for n in names}
    for path in targets.values():
        check_can_write(path, overwrite)
    if isinstance(session, str | os.PathLike):
        from napari_smil_mv.sessions import load_session

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            session = load_session(session, units=None if results.units == "unknown" else results.units)
    body = model_of(results, model) if mesh else None
    faces = np.asarray(body.faces) if body is not None else None
    joints = np.arange(results.n_joints) if all_joints else np.flatnonzero(results.mapped)
    edges = _edges(results, joints)
    videos = _videos(results, session, names)
    rate = float(fps or results.fps or 30.0)
    total = len(names) * len(rows)
    yield OverlayEvent(0, total, f"rendering {len(rows)} frames for {len(names)} camera(s)")
    verts = list(_vertices(results, body, rows)) if body is not None else None
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    done = 0
    for name in names:
        c = results.camera_names.index(name)
        cam = results.cameras[c]
        try:
            with atomic_path(targets[name], overwrite=overwrite) as tmp:
                writer = _overlay_writer(tmp, cam.size, rate)
                try:
                    for k, r in enumerate(rows):
                        if is_cancelled(cancel):
                            raise _Cancelled  # through atomic_path: the partial file is removed
                        frame = _frame(videos[name], results.frame_indices[r], cam.size)
                        img = paint_frame(
                            frame,
                            cam,
                            verts[k] if verts is not None else None,
                            faces,
                            results.projections_2d[c, r, joints],
                            _observed(results, c, r, joints),
                            edges,
                        )
                        writer.write(img)
                        done += 1
                        if done % 10 == 0 or k == len(rows) - 1:
                            yield OverlayEvent(done, total, f"{name}: frame {k + 1}/{len(rows)}")
                finally:
                    writer.close()
        except _Cancelled:
            yield OverlayEvent(done, total, f"cancelled at camera {name}; {len(written)} video(s) written")
            return written
        written.append(targets[name])
    yield OverlayEvent(total, total, f"wrote {len(written)} overlay video(s) to {out_dir}")
    return written


def export_overlays(
    results: Results,
    out_dir: str | os.PathLike,
    progress: Callable[[OverlayEvent], None] | None = None,
    **options: Any,
) -> list[Path]:
    """Run :func:`iter_overlay` to the end (``progress`` receives each event); returns the written files."""
    gen = iter_overlay(results, out_dir, **options)
    while True:
        try:
            event = next(gen)
        except StopIteration as stop:
            return list(stop.value or [])
        if progress is not None:
            progress(event)
