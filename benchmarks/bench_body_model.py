"""Benchmark the SMIL body model: forward + backward time and samples/s, against a naive dense baseline.

Usage::

    python benchmarks/bench_body_model.py                      # CPU, 2 threads, batches 1 32 256
    python benchmarks/bench_body_model.py --threads 1 --batch-sizes 1 32
    python benchmarks/bench_body_model.py --device cuda        # batches 1 32 256 1024
    python benchmarks/bench_body_model.py --models my_model.pkl --no-naive

Each measurement evaluates the model with every input requiring gradients (pose, betas, per-joint log-scales and
offsets, translation, mesh scale) and back-propagates a squared-norm loss on the placed vertices and keypoints.
After warm-up runs, the median over repeats is reported (CUDA is synchronised around each repeat). The naive
baseline (``napari_smil_mv.body.smil_reference.NaiveSMIL``: dense ``(V, J)`` blend of 4×4 transforms, a Python
loop over the joints, dense regressor) is measured in the same run.

Default models: ``../shared/models/SMILy_STICK.pkl`` and ``SMILy_Mouse_static_joints.pkl`` next to the repository
(the embedded demo model when they are absent).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from napari_smil_mv.body import SMILModel, load_smil_model
from napari_smil_mv.body.smil_reference import NaiveSMIL

SHARED_MODELS = Path(__file__).resolve().parents[1].parent / "shared" / "models"
DEFAULT_MODELS = [SHARED_MODELS / "SMILy_STICK.pkl", SHARED_MODELS / "SMILy_Mouse_static_joints.pkl"]

#: Targets from the project brief (samples/s or ms), checked for the model named SMILy_STICK.
CPU_TARGETS = {"batch1_ms": 5.0, "batch32_sps": 1500.0}
CUDA_TARGETS = {"batch1_ms": 3.0, "batch1024_sps": 24000.0}


def _inputs(n_joints: int, n_betas: int, batch: int, device: torch.device, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape, scale=1.0):
        return (scale * torch.randn(*shape, generator=g)).to(device).requires_grad_(True)

    return {
        "pose": rnd(batch, n_joints, 3, scale=0.3),
        "betas": rnd(batch, n_betas, scale=0.5),
        "log_beta_scales": rnd(batch, n_joints, 3, scale=0.05),
        "betas_trans": rnd(batch, n_joints, 3, scale=0.01),
        "trans": rnd(batch, 3),
        "mesh_scale": (torch.rand(batch, generator=g) + 0.5).to(device).requires_grad_(True),
    }


def _step(model, inputs: dict) -> None:
    out = model(**inputs)
    if isinstance(out, tuple):  # NaiveSMIL returns (vertices, joints, ...)
        vertices, joints = out[0], out[1]
    else:
        vertices, joints = out.vertices, out.joints
    loss = vertices.square().sum() + joints.square().sum()
    loss.backward()


def time_fwd_bwd(
    model, inputs: dict, device: torch.device, warmup: int, repeats: int, budget_s: float
) -> float:
    """Median wall time (ms) of one forward + backward pass (at least 3 repeats, then until ``budget_s``)."""

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        _step(model, inputs)
    sync()
    times = []
    start_all = time.perf_counter()
    while len(times) < repeats:
        for value in inputs.values():
            value.grad = None
        sync()
        t0 = time.perf_counter()
        _step(model, inputs)
        sync()
        times.append(time.perf_counter() - t0)
        if len(times) >= 3 and time.perf_counter() - start_all > budget_s:
            break
    return 1e3 * statistics.median(times), 1e3 * min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--models", nargs="*", default=None, help="model .pkl files (default: the shared models)"
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument(
        "--batch-sizes",
        type=int,
        nargs="+",
        default=None,
        help="batch sizes (default 1 32 256 on CPU, 1 32 256 1024 on CUDA)",
    )
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument(
        "--budget", type=float, default=4.0, help="seconds of repeats per measurement (default 4)"
    )
    parser.add_argument("--no-naive", action="store_true", help="skip the naive dense baseline")
    parser.add_argument(
        "--naive-max-batch", type=int, default=256, help="largest batch for the naive baseline"
    )
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("CUDA is not available in this torch build / machine", file=sys.stderr)
        return 2
    dtype = torch.float64 if args.dtype == "float64" else torch.float32
    batches = args.batch_sizes or ([1, 32, 256, 1024] if device.type == "cuda" else [1, 32, 256])
    paths = [Path(p) for p in args.models] if args.models else [p for p in DEFAULT_MODELS if p.is_file()]
    sources = paths or [None]

    print(
        f"torch {torch.__version__}, device {device}"
        + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")
        + f", torch threads {torch.get_num_threads()}, dtype {args.dtype}"
    )
    print("times: median (and best) of repeats after warm-up, forward + backward of all inputs.")
    print("On a loaded machine several torch threads can stall each other: compare with --threads 1.")
    header = f"{'model':<28} {'impl':<6} {'batch':>6} {'fwd+bwd ms':>11} {'samples/s':>11} {'(best ms)':>10}"
    print(header)
    print("-" * len(header))
    results: dict[tuple[str, str, int], float] = {}
    for source in sources:
        data = load_smil_model(source)
        name = Path(source).stem if source is not None else "demo"
        impls = [("fast", SMILModel(data, dtype=dtype, device=device))]
        if not args.no_naive:
            impls.append(("naive", NaiveSMIL(data, dtype=dtype, device=device)))
        for batch in batches:
            inputs = _inputs(data.n_joints, data.n_betas, batch, device)
            inputs = {k: v.detach().to(dtype).requires_grad_(True) for k, v in inputs.items()}
            for impl, model in impls:
                if impl == "naive" and batch > args.naive_max_batch:
                    continue
                ms, best = time_fwd_bwd(model, inputs, device, args.warmup, args.repeats, args.budget)
                results[(name, impl, batch)] = ms
                print(
                    f"{name:<28} {impl:<6} {batch:>6} {ms:>11.2f} {batch / ms * 1e3:>11.0f} {best:>10.2f}",
                    flush=True,
                )
            if (name, "naive", batch) in results:
                speedup = results[(name, "naive", batch)] / results[(name, "fast", batch)]
                print(f"{'':<28} {'':<6} {'':>6} speed-up over naive: {speedup:.1f}x")

    targets = CUDA_TARGETS if device.type == "cuda" else CPU_TARGETS
    stick = [k for k in results if k[0] == "SMILy_STICK" and k[1] == "fast"]
    if stick:
        print("targets (SMILy_STICK, fast):")
        for key, goal in targets.items():
            batch = int(key.split("_")[0].removeprefix("batch"))
            if ("SMILy_STICK", "fast", batch) not in results:
                continue
            ms = results[("SMILy_STICK", "fast", batch)]
            if key.endswith("_ms"):
                print(
                    f"  batch {batch}: {ms:.2f} ms (target <= {goal} ms) {'OK' if ms <= goal else 'MISSED'}"
                )
            else:
                sps = batch / ms * 1e3
                print(
                    f"  batch {batch}: {sps:.0f} samples/s (target >= {goal:.0f}) {'OK' if sps >= goal else 'MISSED'}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
