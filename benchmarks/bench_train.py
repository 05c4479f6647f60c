"""Training throughput: the whole training step vs the backbone alone, in the same run.

For each backbone, two loops run on the same random batch (``B`` samples x ``V`` views of ``S x S`` images):

* backbone only: forward of the ``B·V`` images, a sum of the features as loss, backward, AdamW step;
* whole step: the network (backbone, fusion, body and camera heads), the SMIL body model, projection into every
  view, all loss terms, backward, gradient clipping and AdamW (what :mod:`napari_smil_mv.training.trainer` does
  per step, without data loading).

The two alternate step by step and the medians are reported (the machine may be shared). Reports
samples/s (multi-view samples) of both and their ratio (target >= 0.8 at realistic batch sizes). With
``--dataset`` it also times the data loader alone (samples/s). Device-agnostic: ``--device cuda --amp bf16``.

Example::

    python benchmarks/bench_train.py --backbone small_cnn --size 64 --batch 8 --views 4
    python benchmarks/bench_train.py --backbone small_cnn small_cnn resnet50 --size 64 128 128 --batch 32 32 8
    python benchmarks/bench_train.py --backbone resnet50 --size 128 --batch 4 --views 4 --iters 3
    python benchmarks/bench_train.py --backbone resnet50 --size 224 --batch 32 --device cuda --amp bf16
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch

from napari_smil_mv.body import SMILModel, load_smil_model
from napari_smil_mv.network import MultiViewRegressor, NetworkSpec
from napari_smil_mv.training.config import OptimConfig, default_loss_weights
from napari_smil_mv.training.losses import compute_losses
from napari_smil_mv.training.setup import clip_grad_norm, make_optimizer


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _batch(B: int, V: int, S: int, J: int, device: torch.device) -> dict:
    g = torch.Generator().manual_seed(0)
    K = (
        torch.tensor([[1.2 * S, 0, (S - 1) / 2], [0, 1.2 * S, (S - 1) / 2], [0, 0, 1]])
        .expand(B, V, 3, 3)
        .clone()
    )
    R = torch.zeros(B, V, 3, 3)
    for v in range(V):
        a = 2 * math.pi * v / V
        R[:, v] = torch.tensor([[math.cos(a), 0, -math.sin(a)], [0, 1, 0], [math.sin(a), 0, math.cos(a)]])
    t = torch.tensor([0.0, 0.0, 0.5]).expand(B, V, 3).clone()
    b = {
        "images": torch.rand(B, V, 3, S, S, generator=g),
        "view_mask": torch.ones(B, V, dtype=torch.bool),
        "camera_indices": torch.arange(V).expand(B, V).clone(),
        "K": K,
        "R": R,
        "t": t,
        "kp2d": torch.rand(B, V, J, 2, generator=g) * S,
        "vis": (torch.rand(B, V, J, generator=g) > 0.3).float(),
        "kp3d": torch.randn(B, J, 3, generator=g) * 0.02,
        "kp3d_valid": torch.rand(B, J, generator=g) > 0.3,
        "betas": torch.zeros(B, 4),
        "has_betas": torch.zeros(B, dtype=torch.bool),
        "pose": torch.zeros(B, J, 6),
        "has_pose": torch.zeros(B, dtype=torch.bool),
        "dist": None,
    }
    return {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in b.items()}


def _time_pair(fn_a, fn_b, iters: int, warmup: int, device: torch.device) -> tuple[float, float]:
    """Median seconds per call of two step functions, run alternately (so load changes hit both alike)."""
    for _ in range(warmup):
        fn_a()
        fn_b()
    ta, tb = [], []
    for _ in range(iters):
        for fn, acc in ((fn_a, ta), (fn_b, tb)):
            _sync(device)
            t0 = time.perf_counter()
            fn()
            _sync(device)
            acc.append(time.perf_counter() - t0)
    return float(np.median(ta)), float(np.median(tb))


def bench(
    backbone: str, size: int, batch: int, views: int, iters: int, warmup: int, device: str, amp: str
) -> dict:
    """Seconds per step and samples/s of the backbone alone and of the whole training step."""
    dev = torch.device(device)
    data = load_smil_model(None)
    spec = NetworkSpec(
        backbone=backbone,
        camera_names=[f"cam{i}" for i in range(views)],
        image_size=size,
        joint_names=list(data.joint_names),
        n_betas=data.n_betas,
        camera_mode="calibrated",
        mesh_scale_value=0.06,
        body_length=0.1,
    )
    torch.manual_seed(0)
    net = MultiViewRegressor(spec).to(dev).train()
    smil = SMILModel(data).to(dev)
    b = _batch(batch, views, size, data.n_joints, dev)
    dtype = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)

    def autocast():
        return torch.autocast(dev.type, dtype=dtype or torch.float32, enabled=dtype is not None)

    opt_bb = torch.optim.AdamW(net.backbone.parameters(), lr=1e-4, fused=True)
    flat = b["images"].reshape(batch * views, 3, size, size)

    def backbone_step():
        with autocast():
            out = net.backbone(flat)
            loss = out.global_features.float().sum() * 1e-3 + out.tokens.float().sum() * 1e-6
        opt_bb.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt_bb)
        scaler.update()

    opt = make_optimizer(net, OptimConfig())  # the trainer's optimiser (fused AdamW, two learning rates)
    weights = default_loss_weights()
    joint_w = torch.ones(data.n_joints, device=dev)

    def full_step():
        with autocast():
            out = net(b["images"], b["view_mask"], b["camera_indices"], b["K"], b["R"], b["t"])
        total, terms, _ = compute_losses(out, b, smil, weights, joint_w, size, spec.body_length)
        opt.zero_grad(set_to_none=True)
        scaler.scale(total).backward()
        scaler.unscale_(opt)
        clip_grad_norm(net.parameters(), OptimConfig().grad_clip)  # the trainer's clipping
        scaler.step(opt)
        scaler.update()
        return torch.stack([*terms.values(), total]).detach()  # the loss values the trainer keeps per step

    t_bb, t_full = _time_pair(backbone_step, full_step, iters, warmup, dev)
    params = sum(p.numel() for p in net.parameters())
    return {
        "backbone": backbone,
        "size": size,
        "batch": batch,
        "views": views,
        "device": str(dev),
        "amp": amp,
        "threads": torch.get_num_threads(),
        "params_total_M": params / 1e6,
        "params_backbone_M": sum(p.numel() for p in net.backbone.parameters()) / 1e6,
        "backbone_s_per_step": t_bb,
        "step_s_per_step": t_full,
        "backbone_samples_per_s": batch / t_bb,
        "step_samples_per_s": batch / t_full,
        "ratio": t_bb / t_full,
    }


def bench_loader(dataset: str, batch: int, workers: int, n_batches: int) -> float:
    """Samples/s of the training data loader alone (decode, augmentation, collate)."""
    from napari_smil_mv.dataset import MultiViewDataset
    from napari_smil_mv.training.data import EpochBatches, SeededSamples, collate

    ds = SeededSamples(MultiViewDataset(dataset, augment=True), 0)
    sampler = EpochBatches(len(ds), batch, 0, 0, max_batches=n_batches)
    loader = torch.utils.data.DataLoader(ds, batch_sampler=sampler, collate_fn=collate, num_workers=workers)
    t0 = time.perf_counter()
    n = sum(int(x["images"].shape[0]) for x, _ in loader)
    return n / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backbone", nargs="+", default=["small_cnn", "resnet50"])
    p.add_argument(
        "--size", type=int, nargs="+", default=None, help="image side per backbone (default 64, 128)"
    )
    p.add_argument("--batch", type=int, nargs="+", default=[8], help="samples per step, per backbone")
    p.add_argument("--views", type=int, default=4)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--amp", default="off", choices=("off", "bf16", "fp16"))
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--dataset", default=None, help="also time the data loader on this dataset")
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = args.size or [64 if b == "small_cnn" else 128 for b in args.backbone]
    if len(sizes) == 1:
        sizes = sizes * len(args.backbone)
    batches = args.batch * len(args.backbone) if len(args.batch) == 1 else args.batch
    rows = []
    for backbone, size, batch in zip(args.backbone, sizes, batches, strict=True):
        r = bench(backbone, size, batch, args.views, args.iters, args.warmup, args.device, args.amp)
        rows.append(r)
        if not args.json:
            print(
                f"{backbone:>10} {size:4d}px B={r['batch']} V={r['views']} {r['device']} amp={r['amp']} "
                f"threads={r['threads']}: backbone only {r['backbone_samples_per_s']:7.2f} samples/s "
                f"({r['backbone_s_per_step'] * 1e3:7.1f} ms/step), whole step {r['step_samples_per_s']:7.2f} "
                f"samples/s ({r['step_s_per_step'] * 1e3:7.1f} ms/step), ratio {r['ratio']:.2f}",
                flush=True,
            )
    if args.dataset:
        rate = bench_loader(args.dataset, batches[0], args.workers, 10)
        rows.append({"loader_samples_per_s": rate, "workers": args.workers})
        if not args.json:
            print(f"data loader ({args.workers} workers): {rate:.1f} samples/s")
    if args.json:
        print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
