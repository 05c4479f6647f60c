"""The network part of the ``demo``: preprocess the synthetic session, train the small network, predict, refine.

:func:`iter_network_demo` works on the demo folder's ``session/`` (written by the fitting part, or written here
when missing) and writes::

    network/dataset.smilmv-dataset.h5     the session preprocessed (bounding-box crops, 64 px)
    network/run/                          training run: config.json, history.json, best.pt, last.pt
    network.smilmv.h5                     the network's prediction for every frame of the session (no dataset
                                          needed: crops made on the fly)
    network_refined.smilmv.h5             the prediction refined by the fitter
    network_evaluation.json               both against the ground truth (= napari-smil-mv evaluate --ground-truth)
    network_preview_<camera>.png          the predicted mesh over each camera's middle frame
    network_refined_preview_<camera>.png  the same after refinement by the fitter (when refined)

It is a generator of :class:`~napari_smil_mv.demo.DemoEvent` (the ``demo`` command and widgets share it); the
summary dict is its return value. No Qt.
"""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Generator
from pathlib import Path
from typing import Any

from napari_smil_mv.demo.fit_step import write_previews
from napari_smil_mv.demo.pipeline import DemoEvent, _write_text
from napari_smil_mv.results import json_safe

#: Files and folders written by :func:`iter_network_demo` (relative to the demo folder).
DEMO_NETWORK_FILES: dict[str, str] = {
    "network/dataset.smilmv-dataset.h5": "session/ preprocessed for training (bounding-box crops, 64 px)",
    "network/run/": "the training run: config.json, history.json (losses and validation metrics per epoch), "
    "best.pt and last.pt checkpoints",
    "network.smilmv.h5": "the trained network's prediction for every frame of session/ (crops made on the fly)",
    "network_refined.smilmv.h5": "the prediction refined by the fitter (fit started from the prediction)",
    "network_evaluation.json": "prediction and refined prediction against the ground truth (3D joint error, "
    "reprojection error, PCK), as napari-smil-mv evaluate --ground-truth --json",
    "network_preview_<camera>.png": "the predicted mesh (blue) over the middle frame of each camera",
    "network_refined_preview_<camera>.png": "the refined prediction (blue mesh) over the middle frame of each camera",
}


def network_demo_config(dataset: Path, run_dir: Path, n_frames: int, epochs: int, time_limit_s: float | None):
    """The demo's training config: small CNN, 64 px, time-block split (one block in ten for validation)."""
    from napari_smil_mv.training import TrainConfig

    return TrainConfig.from_dict(
        {
            "output_dir": str(run_dir),
            "epochs": int(epochs),
            "time_limit_s": time_limit_s,
            "log_every": 10,
            "n_samples": 2,
            "sample_every": max(1, int(epochs) // 10),
            "data": {
                "dataset": str(dataset),
                "split_by": "time_block",
                "block_frames": max(2, int(n_frames) // 10),
                "val_fraction": 0.1,
                "batch_size": 8,
                "augment": True,
            },
            "model": {"backbone": "small_cnn"},
            "optim": {"lr": 1e-3, "backbone_lr": 5e-4, "schedule": "cosine", "warmup_steps": 20},
        }
    )


def iter_network_demo(
    outdir: Path,
    epochs: int = 40,
    time_limit_s: float | None = 300.0,
    image_size: int = 64,
    refine: bool = True,
    device: str = "cpu",
    progress: tuple[float, float] = (0.0, 1.0),
    cancel: threading.Event | None = None,
    session_kwargs: dict[str, Any] | None = None,
) -> Generator[DemoEvent, None, dict]:
    """Preprocess, train, predict, refine, evaluate and preview (see the module docstring).

    Parameters
    ----------
    outdir
        The demo folder; ``outdir/session`` is used when it exists, else written with ``session_kwargs``
        (arguments of :func:`~napari_smil_mv.demo.synthetic_session.write_synthetic_session`).
    epochs, time_limit_s
        Training length (the run stops at whichever comes first).
    image_size
        Side of the stored crops, px.
    refine
        Also refine the prediction with the fitter.
    device
        Torch device for training and inference.
    progress
        Range of :attr:`DemoEvent.progress` the events cover.
    cancel
        Stops training early (the run then continues with the last checkpoint).

    Returns
    -------
    dict
        Summary (generator return value): files, training seconds and epochs, final validation metrics, and the
        ground-truth metrics of the prediction and of the refined prediction.
    """
    from napari_smil_mv.dataset import PreprocessOptions, iter_preprocess
    from napari_smil_mv.inference import Predictor, infer_session_iter, refine_results
    from napari_smil_mv.results import evaluate, write_results
    from napari_smil_mv.sessions import load_session
    from napari_smil_mv.training import train_iter

    lo, hi = progress

    def at(fraction: float) -> float:
        return lo + (hi - lo) * min(1.0, max(0.0, fraction))

    outdir = Path(outdir)
    session_dir = outdir / "session"
    if not (session_dir / "ground_truth.npz").is_file():
        from napari_smil_mv.demo.synthetic_session import iter_write_synthetic_session

        for ev in iter_write_synthetic_session(
            session_dir, **(session_kwargs or {}), overwrite=session_dir.exists()
        ):
            yield DemoEvent("session", ev.message, at(0.1 * ev.progress))
    net_dir = outdir / "network"
    net_dir.mkdir(parents=True, exist_ok=True)
    dataset = net_dir / "dataset.smilmv-dataset.h5"
    opts = PreprocessOptions(image_size=int(image_size), crop_mode="bbox_crop", min_views=2)
    for ev in iter_preprocess([session_dir], dataset, options=opts, overwrite=True, restart=True):
        if ev.stage in ("plan", "done") or (ev.total and ev.done == ev.total):
            yield DemoEvent("preprocess", ev.message, at(0.1 + 0.1 * ev.progress))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        session = load_session(session_dir)
    cfg = network_demo_config(dataset, net_dir / "run", session.n_frames, epochs, time_limit_s)
    cfg.device = device
    last = None
    for ev in train_iter(cfg, cancel=cancel):
        last = ev
        if ev.kind in ("start", "epoch", "done", "stopped"):
            yield DemoEvent("train", ev.message, at(0.2 + 0.6 * ev.progress))
    assert last is not None
    metrics_val = last.history[-1]["metrics"] if last.history else {}
    pr = Predictor(net_dir / "run" / "best.pt", device=device)
    results = None
    for ev in infer_session_iter(pr, session):
        results = ev.results
    res = results[0]
    write_results(res, outdir / "network.smilmv.h5", overwrite=True)
    gt = evaluate(res, session_dir)
    yield DemoEvent(
        "infer",
        f"network: 3D joint error {gt['joint_error_3d_median']:.2f} {res.units} median "
        f"({100 * gt['joint_error_3d_relative']:.1f} % of the body length), reprojection "
        f"{gt['reprojection_px_median']:.2f} px, PCK@5 {gt['pck_5px']:.2f} -> network.smilmv.h5",
        at(0.85),
    )
    summary: dict[str, Any] = {
        "training_epochs": len(last.history),
        "training_s": last.elapsed_s,
        "validation": {k: v for k, v in metrics_val.items() if k != "px_per_camera"},
        "network": {"results": "network.smilmv.h5", "ground_truth": gt, "stored": evaluate(res)},
    }
    if refine:
        refined = refine_results(res, pr.model_data, device=device)
        write_results(refined, outdir / "network_refined.smilmv.h5", overwrite=True)
        gt_r = evaluate(refined, session_dir)
        summary["refined"] = {"results": "network_refined.smilmv.h5", "ground_truth": gt_r}
        yield DemoEvent(
            "refine",
            f"refined: 3D joint error {gt_r['joint_error_3d_median']:.2f} {refined.units} median, reprojection "
            f"{gt_r['reprojection_px_median']:.2f} px -> network_refined.smilmv.h5",
            at(0.92),
        )
    _write_text(
        outdir / "network_evaluation.json", json.dumps(json_safe(summary), indent=2, default=str) + "\n"
    )
    summary["previews"] = [
        name for _, name in write_previews(outdir, res, pr.model_data, session, "network_preview")
    ]
    if refine:
        summary["previews"] += [
            name
            for _, name in write_previews(outdir, refined, pr.model_data, session, "network_refined_preview")
        ]
    yield DemoEvent("preview", f"previews {summary['previews']}", at(1.0))
    return summary
