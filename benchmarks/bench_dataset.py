"""Benchmark reading the multi-view dataset: samples/s with 0 and 2 DataLoader workers (4 views, 224 px).

Usage::

    python benchmarks/bench_dataset.py                       # preprocesses the real 4-camera session first
    python benchmarks/bench_dataset.py --dataset my.h5 --batch-size 8 --epochs 2
    python benchmarks/bench_dataset.py --augment             # with photometric augmentation

Measured in one run: ``MultiViewDataset`` through a ``DataLoader`` (batch 8, ``multiview_collate``, 4 views) with
``num_workers`` 0 and 2, with and without augmentation, and as a baseline the raw cost of the work every sample
needs anyway (reading the 4 JPEG blobs from HDF5 and decoding them with OpenCV). Target from the issue: faster than
a CPU training step consumes (a small CNN step on 8 samples x 4 views at 224 px takes about 0.86 s, i.e. at least
about 10 samples/s).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SESSION = SHARED / "external" / "sleap-anipose" / "minimal_session"
MODEL = SHARED / "models" / "SMILy_Mouse_static_joints.pkl"
JOINT_MAP = REPO / "examples" / "minimal_session_mouse_joint_lookup.csv"
NEEDED_SPS = 8 / 0.86


def _make_dataset(out: Path, size: int) -> Path:
    from napari_smil_mv.dataset import PreprocessOptions, preprocess
    from napari_smil_mv.demo.synthetic_session import write_synthetic_session

    warnings.simplefilter("ignore")
    if SESSION.exists():
        jm = str(JOINT_MAP) if JOINT_MAP.is_file() else "auto"
        model = MODEL if MODEL.is_file() else None
        preprocess(SESSION, out, model, jm, units="mm", options=PreprocessOptions(image_size=size))
    else:  # no shared data: a synthetic 4-camera session
        session = write_synthetic_session(out.parent / "synthetic", n_cameras=4, n_frames=120)
        preprocess(session, out, options=PreprocessOptions(image_size=size))
    return out


def time_loader(path: Path, workers: int, batch_size: int, epochs: int, augment: bool) -> float:
    import torch

    from napari_smil_mv.dataset import MultiViewDataset, multiview_collate

    ds = MultiViewDataset(path, num_views_to_use=4, augment=augment, seed=0)
    loader = torch.utils.data.DataLoader(
        ds,
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
        collate_fn=multiview_collate,
        persistent_workers=workers > 0,
    )
    for _ in loader:  # warm-up epoch (worker start, file cache)
        pass
    n = 0
    t0 = time.perf_counter()
    for _ in range(epochs):
        for x, _y in loader:
            n += x["images"].shape[0]
    return n / (time.perf_counter() - t0)


def time_raw_decode(path: Path) -> float:
    import cv2
    import h5py
    import numpy as np

    with h5py.File(path, "r") as h5:
        n = h5["multiview_keypoints/keypoints_2d"].shape[0]
        views = [h5[f"multiview_images/image_jpeg_view_{v}"] for v in range(4)]
        t0 = time.perf_counter()
        for i in range(n):
            for ds in views:
                cv2.imdecode(np.asarray(ds[i]), cv2.IMREAD_COLOR)
        return n / (time.perf_counter() - t0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", type=Path, default=None, help="existing dataset (default: build one)")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=2)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.dataset or _make_dataset(Path(tmp) / "bench.smilmv-dataset.h5", args.size)
        from napari_smil_mv.dataset import read_dataset_info

        info = read_dataset_info(path)
        print(f"dataset {path.name}: {info.n_samples} samples, {info.max_views} views, {info.image_size} px")
        raw = time_raw_decode(path)
        print(f"{'baseline: h5 read + JPEG decode only':>42}: {raw:8.1f} samples/s")
        for augment in (False, True):
            for workers in (0, 2):
                sps = time_loader(path, workers, args.batch_size, args.epochs, augment)
                label = f"MultiViewDataset workers={workers} augment={augment}"
                print(
                    f"{label:>42}: {sps:8.1f} samples/s  ({sps / NEEDED_SPS:.0f}x the ~{NEEDED_SPS:.0f}/s needed)"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
