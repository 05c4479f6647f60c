"""Preprocess sessions into the multi-view HDF5 dataset, as a generator of progress events.

Each video is decoded once, front to back, in one thread per camera; undistortion, crop/resize and JPEG encoding
run in the same thread right after each frame is decoded (while it is still in the CPU cache), so the cameras
are processed in parallel and only small JPEGs cross threads; samples are written in chunks into ``<output>.partial``
with a resume journal (see :mod:`napari_smil_mv.dataset.writer`). The CLI (``napari-smil-mv preprocess``) and the
napari widget consume the same generator.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from napari_smil_mv.dataset import schema
from napari_smil_mv.dataset.crops import ViewRenderer, crop_box_for, crop_matrix, crop_points
from napari_smil_mv.dataset.frames import PrefetchReader
from napari_smil_mv.dataset.inputs import check_videos, resolve_inputs
from napari_smil_mv.dataset.plan import (
    PreprocessOptions,
    SampleSpec,
    SessionPlan,
    filter_3d_outliers,
    fingerprint,
    plan_session,
)
from napari_smil_mv.dataset.schema import AUXILIARY, KEYPOINTS, PARAMETERS
from napari_smil_mv.dataset.writer import N_DIST, DatasetWriter, Layout
from napari_smil_mv.utils.atomic import check_can_write, check_writable_folder


@dataclass(frozen=True)
class PreprocessEvent:
    """One progress report.

    Attributes
    ----------
    stage
        ``"load"``, ``"plan"``, ``"resume"``, ``"progress"``, ``"done"`` or ``"cancelled"``.
    message
        Human-readable text.
    done, total
        Samples settled (written or dropped) so far and planned in all.
    stats
        Counters (views kept/dropped and why, ...); on ``"done"`` the final summary.
    output
        The dataset path (final on ``"done"``, the partial file on ``"cancelled"``).
    """

    stage: str
    message: str
    done: int = 0
    total: int = 0
    stats: dict = field(default_factory=dict)
    output: Path | None = None

    @property
    def progress(self) -> float:
        """Fraction done in 0..1."""
        return self.done / self.total if self.total else (1.0 if self.stage == "done" else 0.0)


def _encode(renderer: ViewRenderer, frame: np.ndarray, box, quality: int) -> bytes:
    img = renderer.render(frame, box)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError(f"camera {renderer.camera.name!r}: JPEG encoding failed")
    return buf.tobytes()


class _SampleBuilder:
    """Fills the per-sample arrays of one session's samples (everything except the JPEG bytes).

    Per-camera constants (rotation, translation, original intrinsics and distortion) and the cropped camera
    matrix of each crop box are computed once; a sample copies them into its view slots.
    """

    def __init__(self, plan: SessionPlan, layout: Layout, order: list[str], options, factor: float) -> None:
        self.plan, self.layout, self.options = plan, layout, options
        self.index = {c: i for i, c in enumerate(order)}
        s = plan.session
        self.points3d = None
        if options.load_3d:
            if s.points3d is None and options.triangulate_missing_3d:
                s.ensure_points3d()
            self.points3d = s.points3d
        self.mapped = np.flatnonzero(plan.node_map >= 0)
        self.nodes = plan.node_map[self.mapped]
        self.mapped_mask = plan.node_map >= 0
        self.template = layout.empty_record()
        self.static = {}
        for name, view in s.views.items():
            cam = view.camera
            dist = np.zeros(N_DIST)
            dist[: min(N_DIST, cam.dist.size)] = cam.dist[:N_DIST]
            self.static[name] = (cam, cam.R, cam.tvec * factor, dist)
        self._k_cache: dict[tuple, np.ndarray] = {}
        self.factor = factor

    def _k_crop(self, cam_name: str, box) -> np.ndarray:
        key = (cam_name, *box)
        k = self._k_cache.get(key)
        if k is None:
            if len(self._k_cache) > 256:
                self._k_cache.clear()
            k = self._k_cache[key] = crop_matrix(
                self.static[cam_name][0].matrix, box, self.options.image_size
            )
        return k

    def _points3d(self, spec: SampleSpec, stats: Counter) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        j = self.layout.n_joints
        kp3d = np.zeros((j, 3))
        valid = np.zeros(j, dtype=bool)
        outlier = np.zeros(j, dtype=bool)
        if self.points3d is None:
            return kp3d, valid, outlier
        raw = np.full((j, 3), np.nan)
        raw[self.mapped] = self.points3d[spec.row, spec.animal, self.nodes] * self.factor
        present = self.mapped_mask & np.all(np.isfinite(raw), axis=-1) & np.any(raw != 0, axis=-1)
        valid = filter_3d_outliers(raw, self.options.outlier_std) & self.mapped_mask
        outlier = present & ~valid
        n_out = int(outlier.sum())
        if n_out:
            stats["total_outlier_keypoints_filtered"] += n_out
            stats["samples_with_outliers_filtered"] += 1
        kp3d[valid] = raw[valid]
        return kp3d, valid, outlier

    def crop_box(self, spec: SampleSpec, cam_name: str) -> tuple[float, float, float, float]:
        """Crop box of ``spec`` in camera ``cam_name`` (from its undistorted keypoints)."""
        opt = self.options
        pts = self.plan.keypoints[cam_name][spec.row, spec.animal]  # (N, 2) undistorted px, NaN = not visible
        return crop_box_for(
            opt.crop_mode, self.static[cam_name][0].size, pts, opt.bbox_scale, opt.bbox_min_size
        )

    def build(self, spec: SampleSpec, cameras: list[str], stats: Counter) -> dict:
        """Record for ``spec`` restricted to ``cameras`` (JPEGs excluded)."""
        size, opt, plan = self.options.image_size, self.options, self.plan
        rec = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in self.template.items()}
        j = self.layout.n_joints
        kp3d, valid3d, outlier = self._points3d(spec, stats)
        k2, kv = rec[f"{KEYPOINTS}/keypoints_2d"], rec[f"{KEYPOINTS}/keypoint_visibility"]
        for v, cam_name in enumerate(cameras):
            cam, R, t, dist = self.static[cam_name]
            pts = plan.keypoints[cam_name][spec.row, spec.animal]
            box = self.crop_box(spec, cam_name)
            kp = np.full((j, 2), np.nan)
            kp[self.mapped] = crop_points(pts[self.nodes], box, size)
            vis = np.all(np.isfinite(kp), axis=-1)
            inside = vis & np.all((kp >= -0.5) & (kp <= size - 0.5), axis=-1)
            stats["keypoints_outside_crop"] += int((vis & ~inside).sum())
            vis = inside & ~outlier
            k2[v, vis] = kp[vis][:, ::-1] / size
            kv[v] = vis
            rec[f"{KEYPOINTS}/camera_indices"][v] = self.index[cam_name]
            rec[f"{KEYPOINTS}/camera_intrinsics"][v] = self._k_crop(cam_name, box)
            rec[f"{KEYPOINTS}/camera_extrinsics_R"][v] = R
            rec[f"{KEYPOINTS}/camera_extrinsics_t"][v] = t
            rec[f"{KEYPOINTS}/crop_box"][v] = box
            rec[f"{KEYPOINTS}/original_intrinsics"][v] = cam.matrix
            rec[f"{KEYPOINTS}/distortion_coefficients"][v] = dist
            rec[f"{KEYPOINTS}/fisheye"][v] = cam.fisheye
            rec[f"{KEYPOINTS}/original_image_sizes"][v] = cam.size
            if opt.undistort and cam.has_distortion:
                stats["views_undistorted"] += 1
        n = len(cameras)
        rec[f"{KEYPOINTS}/view_valid"][:n] = True
        rec[f"{schema.IMAGES}/view_mask"][:n] = True
        rec[f"{KEYPOINTS}/image_sizes"][:n] = size
        rec[f"{KEYPOINTS}/keypoints_3d"][:] = kp3d
        rec[f"{KEYPOINTS}/keypoints_3d_valid"][:] = valid3d
        if plan.betas is not None:
            rec[f"{PARAMETERS}/betas"][: len(plan.betas)] = plan.betas[: self.layout.n_betas]
        rec[f"{AUXILIARY}/session_name"] = spec.session
        rec[f"{AUXILIARY}/frame_idx"] = spec.frame
        rec[f"{AUXILIARY}/num_views"] = n
        rec[f"{AUXILIARY}/has_ground_truth_betas"] = plan.betas is not None
        rec[f"{AUXILIARY}/has_3d_data"] = bool(valid3d.any())
        rec[f"{AUXILIARY}/camera_names"] = ",".join(cameras)
        rec[f"{AUXILIARY}/animal"] = spec.animal_name
        stats["samples_with_3d_data"] += int(valid3d.any())
        return rec


def format_summary(stats: dict) -> str:
    """Readable multi-line summary of a run's counters (views kept/dropped and why)."""
    g = stats.get
    lines = [
        f"samples written: {g('processed_samples', 0)} of {g('total_multiview_samples', 0)} planned "
        f"(dropped, fewer than min_views readable views: {g('skipped_insufficient_views', 0)})",
        f"frames with labels: {g('frames_with_labels', 0)}; below min_views: {g('frames_below_min_views', 0)}; "
        f"left out by frame_skip: {g('frames_dropped_frame_skip', 0)}; by max_frames: "
        f"{g('frames_dropped_max_frames', 0)}",
        f"views: {g('total_views_included', 0)} stored of {g('total_potential_views', 0)} labelled; dropped: "
        f"too few mapped keypoints {g('views_missing_annotations', 0)}, no video "
        f"{g('views_excluded_no_video_capture', 0)}, frame unreadable {g('views_excluded_video_read_failed', 0)}",
        f"3D: samples with 3D {g('samples_with_3d_data', 0)}; outlier joints removed "
        f"{g('total_outlier_keypoints_filtered', 0)} in {g('samples_with_outliers_filtered', 0)} samples",
        f"keypoints outside their crop (made invisible): {g('keypoints_outside_crop', 0)}",
    ]
    return "\n".join(lines)


def iter_preprocess(
    sessions,
    output: str | Path,
    model=None,
    joint_map=None,
    shape_betas=None,
    options: PreprocessOptions | None = None,
    *,
    units: str | None = None,
    overwrite: bool = False,
    restart: bool = False,
    cancel: threading.Event | None = None,
    skip_unreadable_videos: bool = False,
) -> Iterator[PreprocessEvent]:
    """Preprocess sessions into a multi-view HDF5 dataset, yielding :class:`PreprocessEvent` s.

    Parameters
    ----------
    sessions
        Session path(s), directories of sessions, :class:`~napari_smil_mv.sessions.Session` or
        :class:`~napari_smil_mv.sessions.SessionSet` objects.
    output
        Dataset file to write (``.h5``; ``*.smilmv-dataset.h5`` is recognised by napari without sniffing).
    model, joint_map, shape_betas, units
        See :func:`~napari_smil_mv.dataset.inputs.resolve_inputs`.
    options
        :class:`PreprocessOptions` (defaults: 224 px, ``default`` crop, ``min_views=2``); its
        ``exclude_cameras`` are left out of every session before anything else (unknown names raise).
    overwrite
        Replace an existing ``output``.
    restart
        Discard an unfinished ``<output>.partial`` instead of resuming it.
    cancel
        Set it to stop after the current sample; the partial file is kept for a later resume.
    skip_unreadable_videos
        Leave out (with a warning, recorded in the dataset's ``warnings`` attribute) a camera whose video file
        exists but cannot be decoded; by default that is an error. Missing videos and videos shorter than their
        labels are warned about and recorded either way.

    Raises
    ------
    FileExistsError
        ``output`` exists and ``overwrite`` is False.
    IsADirectoryError, PermissionError, NotADirectoryError
        ``output`` is a folder, or its folder does not accept new files.
    napari_smil_mv.utils.atomic.DiskFullError
        Too little free space to start or to write the next chunk; the journalled samples stay resumable.
    ValueError, KeyError, FileNotFoundError
        Bad inputs (messages name the session, camera or file and the fix), including an undecodable video.
    """
    opt = (options or PreprocessOptions()).validate()
    output = check_can_write(output, overwrite=overwrite)
    check_writable_folder(output)  # a read-only folder is named before any work
    yield PreprocessEvent("load", "loading sessions and the body model")
    run = resolve_inputs(sessions, model, joint_map, shape_betas, units, options=opt)
    video_warnings = check_videos(run.sessions, skip_unreadable_videos)
    joint_names = list(run.model.joint_names)
    order = sorted({c for s in run.sessions for c in s.camera_names})
    plan_stats: Counter = Counter()
    plans = [
        plan_session(s, run.joint_map, joint_names, opt, run.betas[s.name], plan_stats) for s in run.sessions
    ]
    total = sum(len(p.samples) for p in plans)
    plan_stats["total_multiview_samples"] = total
    if total == 0:
        raise ValueError(
            f"no sample is seen by at least min_views={opt.min_views} cameras with keypoints and a video "
            f"({format_summary(plan_stats)}); lower min_views or check the joint map and videos"
        )
    layout = Layout(
        max(len(sp.cameras) for p in plans for sp in p.samples), len(joint_names), int(run.model.n_betas)
    )
    fp = fingerprint(opt, plans, joint_names, getattr(run.model, "sha256", ""), run.joint_map)
    writer = DatasetWriter(
        output, layout, fp, overwrite=overwrite, restart=restart, chunk_rows=max(8, opt.chunk_size)
    )
    stats: Counter = Counter(writer.stats_snapshot)
    yield PreprocessEvent(
        "plan",
        f"{len(plans)} session(s), cameras {order}"
        + (f" (excluded: {list(opt.exclude_cameras)})" if opt.exclude_cameras else "")
        + f", {total} samples planned "
        f"({layout.max_views} view slots, {layout.n_joints} joints, joint map: {run.joint_map_source})",
        0,
        total,
        dict(plan_stats),
    )
    if writer.resumed:
        yield PreprocessEvent(
            "resume",
            f"resuming {writer.partial.name}: {len(writer.done_keys)} samples done",
            len(writer.done_keys),
            total,
        )
    done = len(writer.done_keys)
    finished = False
    t_last = 0.0
    try:
        for plan in plans:
            todo = [sp for sp in plan.samples if sp.key not in writer.done_keys]
            if not todo:
                continue
            builder = _SampleBuilder(plan, layout, order, opt, run.unit_factor[plan.session.name])
            views = plan.session.views
            jobs: dict[str, dict[int, list]] = {c: {} for c in views}
            for sp in todo:
                for c in sp.cameras:
                    jobs[c].setdefault(sp.frame, []).append((sp.key, builder.crop_box(sp, c)))
            sources = {c: (views[c].video, sorted(jobs[c])) for c in views if jobs[c]}
            transforms = {
                c: _view_encoder(ViewRenderer(views[c].camera, opt.image_size, opt.undistort), jobs[c], opt)
                for c in sources
            }
            current: dict[str, tuple[int, dict | None]] = {}
            with PrefetchReader(sources, depth=16, transforms=transforms) as reader:
                for spec in todo:
                    if cancel is not None and cancel.is_set():
                        raise _Cancelled
                    jpegs = {}
                    for c in spec.cameras:
                        while c not in current or current[c][0] < spec.frame:
                            current[c] = reader.next_frame(c)
                        encoded = current[c][1]
                        jpegs[c] = None if encoded is None else encoded.get(spec.key)
                    ok = [c for c in spec.cameras if jpegs[c] is not None]
                    stats["views_excluded_video_read_failed"] += len(spec.cameras) - len(ok)
                    if len(ok) < opt.min_views:
                        stats["skipped_insufficient_views"] += 1
                        writer.skip(spec.key, "insufficient_views")
                    else:
                        rec = builder.build(spec, ok, stats)
                        rec["jpeg"] = [jpegs[c] for c in ok] + [b""] * (layout.max_views - len(ok))
                        writer.add(spec.key, rec)
                        stats["processed_samples"] += 1
                        stats["total_views_included"] += len(ok)
                        stats["max_views_written"] = max(stats["max_views_written"], len(ok))
                    if writer.n_pending >= opt.chunk_size:
                        writer.commit(dict(stats))
                    done += 1
                    now = time.monotonic()
                    if now - t_last > 0.1 or done == total:
                        t_last = now
                        yield PreprocessEvent("progress", f"{spec.session} frame {spec.frame}", done, total)
            writer.commit(dict(stats))
        summary = dict(plan_stats) | dict(stats)
        attrs = _metadata(opt, run, order, layout, summary, joint_names)
        attrs["warnings"] = video_warnings
        path = writer.finalize(attrs, used_views=stats["max_views_written"])
        finished = True
        yield PreprocessEvent("done", f"wrote {path}\n{format_summary(summary)}", total, total, summary, path)
    except _Cancelled:
        _commit_quietly(writer, stats)
        finished = True
        yield PreprocessEvent(
            "cancelled",
            f"cancelled after {len(writer.done_keys)} of {total} samples; run again to resume",
            len(writer.done_keys),
            total,
            dict(stats),
            writer.partial,
        )
    finally:
        if not finished:
            _commit_quietly(writer, stats)
        writer.close()


class _Cancelled(Exception):
    pass


def _view_encoder(renderer: ViewRenderer, jobs: dict[int, list], opt: PreprocessOptions):
    """Transform run in a camera's decoder thread: frame -> {sample key: JPEG bytes} (None if unreadable)."""

    def encode(frame_index: int, image: np.ndarray | None) -> dict | None:
        if image is None:
            return None
        return {
            key: _encode(renderer, image, box, opt.jpeg_quality) for key, box in jobs.get(frame_index, [])
        }

    return encode


def _commit_quietly(writer: DatasetWriter, stats: Counter) -> None:
    """Journal the complete samples still pending, so a resumed run starts after them; never raises."""
    try:
        writer.commit(dict(stats))
    except Exception:
        pass


def _metadata(opt: PreprocessOptions, run, order, layout: Layout, summary: dict, joint_names) -> dict:
    from napari_smil_mv import __version__

    model = run.model
    attrs = {
        # the reference tool's attributes
        "dataset_type": "sleap_multiview",
        "is_multiview": True,
        "num_samples": int(summary.get("processed_samples", 0)),
        "max_views": int(layout.max_views),
        "n_joints": int(layout.n_joints),
        "n_pose": int(layout.n_joints - 1),
        "n_betas": int(layout.n_betas),
        "target_resolution": int(opt.image_size),
        "backbone_name": "none",
        "jpeg_quality": int(opt.jpeg_quality),
        "crop_mode": opt.crop_mode,
        "min_views_per_sample": int(opt.min_views),
        "frame_skip": int(opt.frame_skip),
        "max_frames_per_session": -1
        if opt.max_frames_per_session is None
        else int(opt.max_frames_per_session),
        "canonical_camera_order": list(order),
        "exclude_cameras": list(opt.exclude_cameras),
        "has_camera_parameters": True,
        "has_3d_keypoints": bool(summary.get("samples_with_3d_data", 0) > 0),
        "load_3d_data": bool(opt.load_3d),
        "undistort_images": bool(opt.undistort),
        "used_reprojections": False,
        "keypoints_3d_joint_order": "smal",
        "total_sessions": len(run.sessions),
        "sessions_processed": len(run.sessions),
        # ours: what the reference tool leaves implicit
        schema.SCHEMA_ATTR: schema.SCHEMA_VERSION,
        "writer": f"napari-smil-mv {__version__}",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "keypoint_convention": schema.KEYPOINT_CONVENTION,
        "pixel_convention": schema.PIXEL_CONVENTION,
        "camera_convention": schema.CAMERA_CONVENTION,
        "camera_extrinsics_convention": "opencv",
        "crop_convention": schema.CROP_CONVENTION,
        "distortion_handling": schema.DISTORTION_HANDLING
        if opt.undistort
        else "kept: images and keypoints still distorted; project with original distortion_coefficients",
        "keypoints_3d_missing": schema.KEYPOINTS_3D_MISSING,
        "world_units": run.world_units,
        "world_scale": float(run.world_scale),
        "world_scale_source": run.world_scale_source,
        "body_model_source": str(getattr(model, "source", "")),
        "body_model_sha256": str(getattr(model, "sha256", "")),
        "joint_names": list(joint_names),
        "joint_map": [list(p) for p in run.joint_map.pairs],
        "joint_map_source": run.joint_map_source,
        "sessions": [
            {"name": s.name, "path": str(s.path), "units": s.units, "cameras": s.camera_names}
            for s in run.sessions
        ],
        "options": opt.fingerprint_dict(),
        "summary": {k: int(v) for k, v in summary.items()},
    }
    attrs.update({k: int(v) for k, v in summary.items() if k not in attrs})
    return attrs


def preprocess(sessions, output: str | Path, *args, **kwargs) -> dict:
    """Run :func:`iter_preprocess` to the end; returns the final summary counters (``output`` key: the path)."""
    last = None
    for event in iter_preprocess(sessions, output, *args, **kwargs):
        last = event
    if last is None or last.stage != "done":
        raise RuntimeError("preprocessing did not finish")
    return {**last.stats, "output": str(last.output)}
