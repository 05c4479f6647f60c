"""Accuracy of the default network on the synthetic demo session after a fixed CPU training budget.

Writes a synthetic session (demo insect, 4 cameras, 640 x 480 px, keypoint noise 0.7 px), preprocesses it
(bounding-box crops, 64 px), trains the default small CNN for at most ``--minutes`` on the CPU with the demo's
training config (time-block split: whole blocks of frames are held out for validation), then reports on the
validation frames:

* the trainer's last validation metrics (2D error in pixels of the original images, PCK@5/10 px, 3D error of the
  annotated joints, mm);
* the same frames predicted from the best checkpoint and evaluated with ``evaluate`` against the ground truth
  (3D error over every model joint);
* after refinement of that prediction by the fitter (2D observations only).

Usage: ``python benchmarks/bench_network_demo.py OUTDIR [--frames 240] [--minutes 10]``; prints a JSON summary and
writes ``OUTDIR/summary.json``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("outdir", type=Path)
    p.add_argument("--frames", type=int, default=240)
    p.add_argument("--cameras", type=int, default=4)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument(
        "--epochs", type=int, default=200, help="cosine schedule length (the time limit may stop first)"
    )
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = p.parse_args()
    warnings.simplefilter("ignore")

    import torch

    from napari_smil_mv.dataset import MultiViewDataset, PreprocessOptions, preprocess
    from napari_smil_mv.demo.network_step import network_demo_config
    from napari_smil_mv.demo.synthetic_session import write_synthetic_session
    from napari_smil_mv.inference import Predictor, infer_dataset_iter, refine_results
    from napari_smil_mv.results import evaluate, write_results
    from napari_smil_mv.training import train_iter
    from napari_smil_mv.training.data import split_indices

    out = args.outdir
    out.mkdir(parents=True, exist_ok=True)
    session = out / "session"
    t0 = time.perf_counter()
    if not (session / "ground_truth.npz").is_file():
        write_synthetic_session(session, n_cameras=args.cameras, n_frames=args.frames, seed=args.seed)
    dataset = out / "dataset.smilmv-dataset.h5"
    if not dataset.is_file():
        preprocess([session], dataset, options=PreprocessOptions(image_size=args.size, crop_mode="bbox_crop"))
    prep_s = time.perf_counter() - t0
    cfg = network_demo_config(dataset, out / "run", args.frames, args.epochs, 60.0 * args.minutes)
    cfg.data.val_fraction = 0.15
    cfg.log_every = 1000
    cfg.n_samples = 0
    cfg.threads = args.threads
    last = None
    for ev in train_iter(cfg):
        last = ev
        if ev.kind in ("start", "done") or (ev.kind == "epoch" and (ev.epoch + 1) % 10 == 0):
            print(f"[{ev.elapsed_s:6.0f} s] {ev.message}", flush=True)
    assert last is not None
    hist = last.history
    train_samples = last.global_step * cfg.data.batch_size  # approximate: the last batch may be smaller
    ds = MultiViewDataset(dataset)
    _, val = split_indices(cfg.data, ds)
    ds.close()
    pr = Predictor(out / "run" / "best.pt")
    (res,) = [e for e in infer_dataset_iter(pr, dataset, indices=val)][-1].results
    write_results(res, out / "network_val.smilmv.h5", overwrite=True)
    t1 = time.perf_counter()
    refined = refine_results(res, pr.model_data)
    refine_s = time.perf_counter() - t1
    write_results(refined, out / "network_val_refined.smilmv.h5", overwrite=True)

    def pick(m: dict) -> dict:
        keys = (
            "reprojection_px_median",
            "reprojection_px_mean",
            "pck_5px",
            "pck_10px",
            "joint_error_3d_median",
            "joint_error_3d_mean",
            "joint_error_3d_relative",
            "body_length",
            "n_keypoints",
        )
        return {k: m[k] for k in keys if k in m}

    summary = {
        "session": {
            "frames": args.frames,
            "cameras": args.cameras,
            "image_size": [640, 480],
            "noise_px": 0.7,
        },
        "crop_px": args.size,
        "device": "cpu",
        "threads": torch.get_num_threads(),
        "preprocess_s": prep_s,
        "training_s": last.elapsed_s,
        "epochs": len(hist),
        "steps": last.global_step,
        "train_samples_per_s_incl_validation": train_samples / max(1e-9, last.elapsed_s),
        "val_frames": int(len(val)),
        "validation_last_epoch": {k: v for k, v in hist[-1]["metrics"].items()},
        "best_epoch_px_median": float(np.nanmin([h["metrics"].get("px_median", np.nan) for h in hist])),
        "network_vs_ground_truth": pick(evaluate(res, session)),
        "refined_vs_ground_truth": pick(evaluate(refined, session)),
        "refine_s": refine_s,
        "units": res.units,
    }
    text = json.dumps(summary, indent=1, default=float)
    (out / "summary.json").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
