"""Inference straight from a recording session: crops are made on the fly, no dataset file is written.

Every frame goes through the same steps as preprocessing (:mod:`napari_smil_mv.dataset.crops`): the session's
keypoints are undistorted, the crop box follows the network's recorded crop mode, and one remap undistorts, crops
and resizes each view (with the same JPEG round trip as the stored images). Views follow the dataset's rule: a
camera takes part in a frame when, for bounding-box crops, it sees at least ``min_keypoints`` of the animal's
keypoints. Every camera predicted from must have a readable video: a missing or undecodable one is an error
naming the camera and file (exclude the camera to go on), never black crops. Cameras the caller excludes are left
out altogether (prediction, stored cameras and observations, refinement). Cameras the network was not trained on
are left out of the prediction only (they still get projections, count in the evaluation and take part in a
refinement); the ``load`` event's message names both kinds.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from napari_smil_mv.dataset.crops import ViewRenderer, crop_box_for, crop_matrix
from napari_smil_mv.dataset.frames import PrefetchReader
from napari_smil_mv.dataset.plan import visible_keypoints
from napari_smil_mv.dataset.schema import world_scale_for_units
from napari_smil_mv.inference.predict import InferEvent, Predictor, build_results, stack
from napari_smil_mv.utils.cancel import CancelFlag, is_cancelled


def _joint_map(session, predictor: Predictor, joint_map):
    """The joint map: given, the session folder's ``joint_lookup.csv``, the network's recorded one, or names."""
    from napari_smil_mv.sessions import JOINT_LOOKUP_CSV, JointMap

    names = predictor.spec.joint_names
    if isinstance(joint_map, JointMap):
        return joint_map, "given"
    if joint_map is not None:
        return JointMap.read(joint_map), str(joint_map)
    folder = Path(session.path) if Path(session.path).is_dir() else Path(session.path).parent
    for candidate in (folder / JOINT_LOOKUP_CSV, folder.parent / JOINT_LOOKUP_CSV):
        if candidate.is_file():
            jm = JointMap.read(candidate)
            if not jm.validate(session.skeleton.nodes, names):
                return jm, str(candidate)
    if predictor.spec.joint_map:
        jm = JointMap([tuple(p) for p in predictor.spec.joint_map])
        if not jm.validate(session.skeleton.nodes, names):
            return jm, "network checkpoint"
    nodes = set(session.skeleton.nodes)
    return JointMap([(n, n) for n in names if n in nodes]), "exact names"


def _session_units(session, predictor: Predictor, units: str | None) -> tuple[str, float]:
    """The session's length unit and its factor to the network's training units."""
    unit = units or session.units
    ws = world_scale_for_units(unit) if unit else None
    if ws is None:
        trained = predictor.spec.preprocessing.get("dataset_units", "unknown")
        if unit not in (None, "unknown") and unit != trained:
            raise ValueError(
                f"session {session.name!r} has length unit {unit!r}, which is not one napari-smil-mv knows; "
                f'declare its unit (units = "mm" in session.toml, or --units)'
            )
        return trained if unit in (None, "unknown") else unit, float(predictor.spec.world_scale)
    return unit, float(ws)


def _drop_cameras(session, predictor: Predictor, exclude: Sequence[str] | None):
    """``(session without the excluded cameras, excluded, cameras unknown to the network, note or "")``.

    ``exclude=None``: the cameras the network's training dataset left out (those this session has)."""
    why = ""
    if exclude is None:
        trained_without = predictor.spec.preprocessing.get("exclude_cameras") or []
        exclude = [c for c in trained_without if c in session.camera_names]
        why = " (as in the network's training dataset)"
    if isinstance(exclude, str):
        exclude = exclude.split(",")
    excluded = list(dict.fromkeys(str(c).strip() for c in exclude or () if str(c).strip()))
    missing = [c for c in excluded if c not in session.camera_names]
    if missing:
        raise ValueError(
            f"session {session.name!r} ({session.path}) has no camera {missing} to exclude; its cameras are "
            f"{session.camera_names}"
        )
    known = predictor.spec.camera_names
    untrained = [c for c in session.camera_names if c not in excluded and c not in known]
    if len(excluded) + len(untrained) == len(session.camera_names):
        raise ValueError(
            f"session {session.name!r} ({session.path}) has cameras {session.camera_names}; with {excluded} "
            f"excluded, none is left that the network knows (it was trained on cameras {known})"
        )
    notes = []
    if excluded:
        notes.append(f"cameras {excluded} excluded{why}")
        session = session.without_cameras(excluded)
    if untrained:
        notes.append(
            f"cameras {untrained} left out of the prediction: the network was trained on cameras {known} only "
            "(they are still projected into, evaluated and refined on; exclude them to drop them)"
        )
    return session, excluded, untrained, "; ".join(notes)


def _check_videos(session, cameras: list[str]) -> None:
    """Raise when a camera the network predicts from has no readable video; warn when one is too short."""
    from napari_smil_mv.sessions.video_checks import check_session_videos

    problems = check_session_videos(session, cameras)
    broken = [p for p in problems if p.kind in ("missing", "unreadable")]
    if broken:
        names = ",".join(p.camera for p in broken)
        raise ValueError(
            "; ".join(p.message for p in broken)
            + f". The network needs every camera's images: restore the video, or leave the camera out with "
            f"--exclude-cameras {names} (exclude_cameras=[...])"
        )
    for p in problems:
        warnings.warn(p.message, UserWarning, stacklevel=3)


def infer_session_iter(
    checkpoint: str | Path | Predictor,
    session,
    body_model=None,
    device: str | torch.device = "cpu",
    batch_size: int = 8,
    frames: np.ndarray | slice | None = None,
    animal: int | str = 0,
    joint_map=None,
    units: str | None = None,
    refine: bool = False,
    fit_config=None,
    cancel: CancelFlag = None,
    exclude_cameras: Sequence[str] | None = None,
) -> Iterator[InferEvent]:
    """Predict every frame of a session (one animal) without a preprocessed dataset.

    Parameters
    ----------
    checkpoint
        Checkpoint file or :class:`Predictor`.
    session
        A :class:`~napari_smil_mv.sessions.Session` or a path for :func:`~napari_smil_mv.sessions.load_session`.
    frames
        Rows of the session's frame axis (default: all).
    animal
        Animal index or name.
    joint_map
        Joint map (file or :class:`JointMap`); default: the session's ``joint_lookup.csv``, then the one the
        network was trained with.
    units
        Length unit of the session's calibration (overrides the session's).
    refine, fit_config
        Refine with the fitter afterwards.
    exclude_cameras
        Camera names to leave out (as ``PreprocessOptions.exclude_cameras`` does): they are neither predicted
        from, nor stored in the results, nor used by the refinement. None (default): the cameras the network's
        training dataset left out, where the session has them; ``()`` keeps every camera. Cameras the network
        was not trained on are left out of the prediction only, with a note naming them.

    Raises
    ------
    ValueError
        When ``exclude_cameras`` names a camera the session does not have, or no camera is left that the
        network knows, or a camera the network predicts from has a missing or undecodable video (the message
        names the camera and file; exclude the camera to go on). A video shorter than its labels is warned about.

    Yields
    ------
    InferEvent
        ``load``, ``predict`` (per batch of frames), optionally ``refine``, then ``done`` with one Results.
    """
    from napari_smil_mv.fitting import fit_data_from_session
    from napari_smil_mv.sessions import load_session

    pr = checkpoint if isinstance(checkpoint, Predictor) else Predictor(checkpoint, body_model, device)
    if not hasattr(session, "views"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            session = load_session(session, units=units)
    session, excluded, untrained, note = _drop_cameras(session, pr, exclude_cameras)
    jm, jm_source = _joint_map(session, pr, joint_map)
    unit, ws = _session_units(session, pr, units)
    data = fit_data_from_session(session, jm, pr.spec.joint_names, animal=animal, frames=frames)
    a = int(data.metadata["animal"])
    rows = (
        np.arange(session.n_frames) if frames is None else np.atleast_1d(np.arange(session.n_frames)[frames])
    )
    opt = pr.spec.preprocessing
    mode, S = str(opt.get("crop_mode", "default")), int(pr.spec.image_size)
    undistort = bool(opt.get("undistort", True))
    cams = [c for c in session.camera_names if c not in untrained]
    _check_videos(session, cams)
    yield InferEvent(
        "load",
        0,
        len(rows),
        f"network {pr.checkpoint} (epoch {pr.epoch}); session {session.name}: {len(rows)} frames, cameras {cams}, "
        f"crop {mode} {S} px, joint map {jm_source}" + (f"; {note}" if note else ""),
    )
    # Plan: which camera sees which frame, and its crop box (from undistorted keypoints, as preprocessing does).
    jobs: dict[str, dict[int, tuple]] = {c: {} for c in cams}
    min_score, min_kp = opt.get("min_score"), int(opt.get("min_keypoints", 1))
    mapped_nodes = [session.skeleton.nodes.index(d) for d, _m in jm.pairs if d in session.skeleton.nodes]
    for c in cams:
        view = session.views[c]
        vis = visible_keypoints(view, None if min_score is None else float(min_score))[rows, a]
        kp = np.where(vis[..., None], view.keypoints[rows, a], np.nan)
        if undistort and view.camera.has_distortion:
            kp = view.camera.undistort_points(kp)
        for i, r in enumerate(rows):
            n_seen = int(vis[i, mapped_nodes].sum()) if mapped_nodes else 0
            if mode == "bbox_crop" and n_seen < min_kp:
                continue
            box = crop_box_for(
                mode,
                view.camera.size,
                kp[i],
                float(opt.get("bbox_scale", 1.2)),
                float(opt.get("bbox_min_size", 32.0)),
            )
            jobs[c][int(session.frame_indices[r])] = box
    quality = int(opt.get("jpeg_quality", 95))

    def renderer(c: str):
        rend = ViewRenderer(session.views[c].camera, S, undistort)

        def render(frame_index: int, image):
            if image is None:
                return None
            crop = rend.render(image, jobs[c][frame_index])
            ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, quality])
            crop = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else crop
            return cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)

        return render

    sources = {c: (session.views[c].video, sorted(jobs[c])) for c in cams if jobs[c]}
    if not sources:
        raise ValueError(
            f"session {session.name!r}: no camera has a video and visible keypoints to crop around"
        )
    preds, kept = [], []
    batch: list[tuple[int, list]] = []
    current: dict[str, tuple[int, object]] = {}

    def flush():
        B, V = len(batch), max(len(v) for _, v in batch)
        images = torch.zeros(B, V, 3, S, S)
        mask = torch.zeros(B, V, dtype=torch.bool)
        idx = torch.full((B, V), -1, dtype=torch.int64)
        K = torch.eye(3).repeat(B, V, 1, 1)
        R = torch.eye(3).repeat(B, V, 1, 1)
        t = torch.zeros(B, V, 3)
        for b, (f, views) in enumerate(batch):
            for v, (c, img) in enumerate(views):
                cam = session.views[c].camera
                images[b, v] = torch.from_numpy(img).permute(2, 0, 1).float() / 255.0
                mask[b, v] = True
                idx[b, v] = pr.camera_index(c)
                K[b, v] = torch.from_numpy(crop_matrix(cam.matrix, jobs[c][f], S))
                R[b, v] = torch.from_numpy(cam.R)
                t[b, v] = torch.from_numpy(cam.tvec * ws)
        preds.append(pr.predict(images, mask, idx, K, R, t))
        kept.extend(f for f, _ in batch)
        batch.clear()

    with PrefetchReader(sources, depth=8, transforms={c: renderer(c) for c in sources}) as reader:
        for i, r in enumerate(rows):
            if is_cancelled(cancel):
                return
            f = int(session.frame_indices[r])
            views = []
            for c in sources:
                if f not in jobs[c]:
                    continue
                while c not in current or current[c][0] < f:
                    current[c] = reader.next_frame(c)
                if current[c][1] is not None:
                    views.append((c, current[c][1]))
            if views:
                batch.append((f, views))
            if len(batch) >= batch_size or (i == len(rows) - 1 and batch):
                flush()
                yield InferEvent("predict", i + 1, len(rows), f"predicted {len(kept)} of {len(rows)} frames")
    if not preds:
        raise ValueError(f"session {session.name!r}: no frame could be read for any camera")
    pred = stack(preds)
    keep_rows = [int(np.flatnonzero(data.frame_indices == f)[0]) for f in kept]
    sub = data.select_frames(np.asarray(keep_rows))
    prov = {
        "producer": "napari-smil-mv infer",
        "checkpoint": str(pr.checkpoint),
        "checkpoint_epoch": pr.epoch,
        "session": str(Path(session.path)),
        "session_name": session.name,
        "animal": a,
        "animal_name": session.animal_names[a],
        "joint_map": jm_source,
        "joint_map_pairs": [list(p) for p in jm.pairs],
        "crop_mode": mode,
        "frames_without_views": int(len(rows) - len(kept)),
        "excluded_cameras": excluded,
        "cameras_unknown_to_network": untrained,
    }
    res = build_results(
        pred,
        ws,
        sub.cameras,
        sub.frame_indices,
        pr.model_data,
        unit,
        sub.keypoints_2d,
        sub.weights,
        sub.data_names,
        sub.videos,
        sub.fps,
        prov,
    )
    if refine:
        from napari_smil_mv.inference.refine import refine_results

        yield InferEvent("refine", 0, 1, "refining the prediction with the fitter")
        res = refine_results(res, pr.model_data, fit_config, device=pr.device)
    yield InferEvent("done", len(rows), len(rows), f"{len(kept)} frames predicted", [res])
