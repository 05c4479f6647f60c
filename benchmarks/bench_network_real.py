"""End to end on a real session: preprocess, train the default network, predict held-out frames, refine, evaluate.

Default data: the sleap-anipose ``minimal_session`` (a real mouse, 4 cameras of 1280 x 1024 px, 120 frames,
SLEAP keypoints in every camera, Anipose ``points3d.h5``, calibration in mm) with the real
``SMILy_Mouse_static_joints`` body model and the repository's joint map for it. Steps:

1. calibration QC of the session (:func:`~napari_smil_mv.sessions.calibration_qc`); on this session it flags
   ``side``, whose calibration is a copy of ``top``'s;
2. preprocessing to bounding-box crops of ``--size`` px with every camera but those given to
   ``--exclude-cameras`` (default: none, so ``side`` is in the dataset and the network trains on its views,
   whose 2D targets contradict its calibration; ``--exclude-cameras side`` leaves it out of the dataset, hence
   of training, prediction and refinement); the fitter leaves QC-inconsistent cameras out by itself
   (``exclude_inconsistent_cameras``);
3. training of the default small CNN for at most ``--minutes`` on the CPU, time-block split (whole blocks of
   ``--block-frames`` consecutive frames held out for validation);
4. prediction of the validation frames from the best checkpoint, and its refinement by the fitter (2D keypoints
   only, so the 3D comparison stays independent);
5. evaluation of both against the session: 2D error in pixels of the original images vs the SLEAP keypoints
   (per camera, and pooled over all cameras used and over the used cameras QC did not flag), PCK@5/10 px, and 3D
   error of the mapped joints vs ``points3d.h5`` in the session's units;
6. reference figures from the session alone (``baselines``: ``points3d.h5`` reprojected, and the training frames'
   mean pose as a constant prediction) and the body model's floor (``refined_with_points3d``: the prediction
   refined with the 3D points added to the fit).

Usage: ``python benchmarks/bench_network_real.py OUTDIR [--minutes 8] [--threads 1] [--exclude-cameras side]``;
prints the cameras used, a JSON summary, and
writes ``OUTDIR/summary.json`` (plus the dataset, the training run and both results files under ``OUTDIR``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def per_camera_metrics(results, session, cameras: list[str]) -> dict:
    """2D metrics of ``results`` vs ``session`` pooled over ``cameras`` (a subset of the results' cameras)."""
    from napari_smil_mv.results import evaluate

    used = np.array([c in cameras for c in results.camera_names])
    m = evaluate(dataclasses.replace(results, camera_used=used), session)
    keys = ("reprojection_px_median", "reprojection_px_mean", "pck_5px", "pck_10px", "n_keypoints")
    return {k: m[k] for k in keys}


def report(results, session, good: list[str]) -> dict:
    """Metrics vs the session: overall (cameras the results used), per camera, over the unflagged cameras, 3D."""
    from napari_smil_mv.results import evaluate

    m = evaluate(results, session)
    out = {
        "cameras_used": m["cameras_used"],
        "used_cameras": {
            k: m[k] for k in ("reprojection_px_median", "reprojection_px_mean", "pck_5px", "pck_10px")
        },
        "all_cameras": per_camera_metrics(results, session, list(results.camera_names)),
        "unflagged_cameras": per_camera_metrics(results, session, good),
        "per_camera": {c: per_camera_metrics(results, session, [c]) for c in results.camera_names},
    }
    for k in ("joint_error_3d_median", "joint_error_3d_mean", "joints_compared"):
        if k in m:
            out[k] = m[k]
    return out


def _stats(errors: np.ndarray) -> dict:
    """Median/mean reprojection error, PCK@5/10 and count of the finite ``errors`` (as ``evaluate`` reports)."""
    from napari_smil_mv.results.metrics import reprojection_summary

    summary = reprojection_summary(np.asarray(errors, dtype=np.float64).reshape(1, -1), ["all"])
    keys = ("reprojection_px_median", "reprojection_px_mean", "pck_5px", "pck_10px", "n_keypoints")
    return {k: summary[k] for k in keys}


def baselines(
    session, train_frames: np.ndarray, val_frames: np.ndarray, good: list[str], cameras: list[str]
) -> dict:
    """Reference figures on the validation frames, from the session alone (animal 0, every node, ``cameras``).

    ``points3d_reprojected``: the session's own 3D points projected into each camera vs its SLEAP keypoints, the
    2D error of a body that matches ``points3d.h5`` exactly. ``mean_training_pose``: one constant 3D pose, the
    per-node mean of ``points3d.h5`` over the training frames, as the prediction for every validation frame;
    the error a network reaches without looking at the images.
    """
    rows_tr = [session.frame_row(int(f)) for f in train_frames]
    rows_va = [session.frame_row(int(f)) for f in val_frames]
    pts = session.points3d[:, 0]  # (T, N, 3)
    ref = pts[rows_va]
    mean_pose = np.nanmean(pts[rows_tr], axis=0)  # (N, 3)
    out: dict = {}
    for name, pred in (
        ("points3d_reprojected", ref),
        ("mean_training_pose", np.broadcast_to(mean_pose, ref.shape)),
    ):
        per_cam = {}
        for c in cameras:
            obs = session.views[c].keypoints[rows_va, 0]  # (Tv, N, 2)
            per_cam[c] = np.linalg.norm(session.views[c].camera.project(pred) - obs, axis=-1)
        entry = {
            "all_cameras": _stats(np.concatenate([e.ravel() for e in per_cam.values()])),
            "unflagged_cameras": _stats(np.concatenate([per_cam[c].ravel() for c in good])),
            "per_camera": {c: _stats(e) for c, e in per_cam.items()},
        }
        if name == "mean_training_pose":
            err3d = np.linalg.norm(pred - ref, axis=-1)
            err3d = err3d[np.isfinite(err3d)]
            entry["joint_error_3d_median"] = float(np.median(err3d))
            entry["joint_error_3d_mean"] = float(np.mean(err3d))
        out[name] = entry
    return out


def model_floor(results, session, model_data, good: list[str]) -> dict:
    """The body model's own limit: the prediction refined with ``points3d.h5`` added to the fit (2D + 3D).

    The model's joints are not the SLEAP keypoints (a humerus joint is not the shoulder keypoint), so even a fit
    that sees the reference 3D points keeps a 3D error: an estimate (with the default fitter weights) of the floor
    that any prediction of this body model has against ``points3d.h5``.
    """
    from napari_smil_mv.inference import refine_results

    rows = [session.frame_row(int(f)) for f in results.frame_indices]
    nodes = list(session.skeleton.nodes)
    pts = np.full(results.joints_3d.shape, np.nan)
    for j, name in enumerate(results.data_names or []):
        if name in nodes:
            pts[:, j] = session.points3d[rows, 0, nodes.index(name)]
    return report(refine_results(results, model_data, points_3d=pts), session, good)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("outdir", type=Path)
    p.add_argument("--session", type=Path, default=SHARED / "external" / "sleap-anipose" / "minimal_session")
    p.add_argument("--model", type=Path, default=SHARED / "models" / "SMILy_Mouse_static_joints.pkl")
    p.add_argument(
        "--joint-map", type=Path, default=REPO / "examples" / "minimal_session_mouse_joint_lookup.csv"
    )
    p.add_argument("--units", default="mm", help="length unit of the calibration (Anipose does not store it)")
    p.add_argument("--minutes", type=float, default=8.0, help="training time limit")
    p.add_argument(
        "--epochs", type=int, default=300, help="cosine schedule length (the time limit may stop first)"
    )
    p.add_argument("--size", type=int, default=64, help="side of the bounding-box crops, px")
    p.add_argument("--block-frames", type=int, default=12, help="time-block length of the split, frames")
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument(
        "--exclude-cameras",
        nargs="+",
        default=[],
        metavar="CAMERA",
        help="cameras to leave out of the dataset, hence of training, prediction and refinement (default: none)",
    )
    args = p.parse_args()
    warnings.simplefilter("ignore")

    import torch

    from napari_smil_mv.dataset import (
        PreprocessOptions,
        format_summary,
        preprocess,
        read_dataset_info,
        reprojection_report,
    )
    from napari_smil_mv.inference import Predictor, infer_dataset_iter, refine_results
    from napari_smil_mv.results import body_length, write_results
    from napari_smil_mv.sessions import calibration_qc, load_session
    from napari_smil_mv.training import TrainConfig, train_iter
    from napari_smil_mv.training.data import split_indices

    if args.threads:
        torch.set_num_threads(args.threads)
    out = args.outdir
    out.mkdir(parents=True, exist_ok=True)
    stages: dict[str, float] = {}

    t = time.perf_counter()
    session = load_session(args.session, units=args.units)
    qc = calibration_qc(session)
    excluded = sorted({n.strip() for v in args.exclude_cameras for n in v.split(",") if n.strip()})
    stages["load_and_qc_s"] = time.perf_counter() - t
    print(f"session {session}; QC flagged {qc.flagged}: {qc.reasons}", flush=True)

    t = time.perf_counter()
    dataset = out / "dataset.smilmv-dataset.h5"
    stats = preprocess(
        [args.session],
        dataset,
        model=args.model,
        joint_map=args.joint_map,
        units=args.units,
        options=PreprocessOptions(
            image_size=args.size, crop_mode="bbox_crop", exclude_cameras=tuple(excluded)
        ),
        overwrite=True,
    )
    stages["preprocess_s"] = time.perf_counter() - t
    print(format_summary(stats), flush=True)
    # The dataset holds only the cameras used; dataset inference and refinement below inherit the exclusion.
    used = list(read_dataset_info(dataset).canonical_camera_order)
    good = [c for c in used if c not in qc.flagged]
    print(
        f"cameras used: {used}; excluded: {excluded or 'none'}; used and not flagged by QC: {good}",
        flush=True,
    )
    stored = {c: v["median"] for c, v in reprojection_report(dataset).per_camera().items()}

    cfg = TrainConfig.from_dict(
        {
            "output_dir": str(out / "run"),
            "epochs": args.epochs,
            "time_limit_s": 60.0 * args.minutes,
            "device": "cpu",
            "threads": args.threads,
            "log_every": 1000,
            "n_samples": 0,
            "data": {
                "dataset": str(dataset),
                "split_by": "time_block",
                "block_frames": args.block_frames,
                "val_fraction": args.val_fraction,
                "batch_size": 8,
                "augment": True,
            },
            "model": {"backbone": "small_cnn"},
            "optim": {"lr": 1e-3, "backbone_lr": 5e-4, "schedule": "cosine", "warmup_steps": 20},
        }
    )
    last = None
    for ev in train_iter(cfg):
        last = ev
        if ev.kind in ("start", "done", "stopped") or (ev.kind == "epoch" and (ev.epoch + 1) % 10 == 0):
            print(f"[{ev.elapsed_s:6.0f} s] {ev.message}", flush=True)
    assert last is not None
    hist = last.history
    stages["training_s"] = last.elapsed_s

    from napari_smil_mv.dataset import MultiViewDataset

    ds = MultiViewDataset(dataset)
    train_idx, val = split_indices(cfg.data, ds)
    frames = ds.sample_keys()[1]
    ds.close()
    t = time.perf_counter()
    pr = Predictor(out / "run" / "best.pt")
    (res,) = list(infer_dataset_iter(pr, dataset, indices=val))[-1].results
    stages["predict_s"] = time.perf_counter() - t
    write_results(res, out / "network_val.smilmv.h5", overwrite=True)
    t = time.perf_counter()
    refined = refine_results(res, pr.model_data)
    stages["refine_s"] = time.perf_counter() - t
    write_results(refined, out / "network_val_refined.smilmv.h5", overwrite=True)

    t = time.perf_counter()
    network = report(res, session, good)
    after = report(refined, session, good)
    stages["evaluate_s"] = time.perf_counter() - t
    floor = model_floor(res, session, pr.model_data, good) if session.points3d is not None else None
    pts = session.points3d[:, 0] if session.points3d is not None else None
    length = body_length(pts, session.skeleton.nodes) if pts is not None else float("nan")

    summary = {
        "session": str(args.session),
        "model": str(args.model),
        "joint_map": str(args.joint_map),
        "units": res.units,
        "cameras": session.camera_names,
        "excluded_cameras": excluded,
        "cameras_used": used,
        "qc_flagged": qc.flagged,
        "qc_median_px": qc.median_px,
        "flagged_cameras_note": (
            "a flagged camera that is not excluded is in the dataset and in training; the fitter leaves "
            "QC-inconsistent cameras out of the refinement by itself"
        ),
        "dataset_reprojection_stored_px_median": stored,
        "crop": f"bbox_crop {args.size} px",
        "device": "cpu",
        "threads": torch.get_num_threads(),
        "train_frames": int(len(train_idx)),
        "val_frames": int(len(val)),
        "val_frame_ranges": _ranges(np.sort(frames[val])),
        "epochs": len(hist),
        "epochs_planned": args.epochs,
        "steps": last.global_step,
        "best_checkpoint_epoch": pr.epoch,
        "validation_last_epoch": dict(hist[-1]["metrics"]),
        "stages_s": stages,
        "body_length": length,
        "body_length_note": "nose to tail tip (largest distance between axial points3d nodes), median over frames",
        "baselines": (
            baselines(session, frames[train_idx], frames[val], good, used)
            if session.points3d is not None
            else None
        ),
        "network": network,
        "refined": after,
        "refined_with_points3d": floor,
        "refined_cameras_used": list(np.array(refined.camera_names)[refined.camera_used]),
    }
    text = json.dumps(summary, indent=1, default=float)
    (out / "summary.json").write_text(text + "\n")
    print(text)


def _ranges(frames: np.ndarray) -> list[list[int]]:
    """Consecutive runs ``[first, last]`` of sorted frame numbers."""
    runs: list[list[int]] = []
    for f in frames.tolist():
        if runs and f == runs[-1][1] + 1:
            runs[-1][1] = f
        else:
            runs.append([f, f])
    return runs


if __name__ == "__main__":
    main()
