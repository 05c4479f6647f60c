"""Benchmark preprocessing against decoding the same video frames, measured in the same run.

Usage::

    python benchmarks/bench_preprocess.py                         # real 4-camera sleap-anipose session, 224 px
    python benchmarks/bench_preprocess.py --crop-mode bbox_crop --size 128 --repeats 3
    python benchmarks/bench_preprocess.py --session path/to/session --model model.pkl --joint-map lookup.csv

Measured, alternating, ``--repeats`` times (median reported):

* ``decode``: the same frames of every camera decoded with the preprocessing run's own frame reader, all cameras
  in parallel (one thread per camera, as the run does; sequential, skipped frames grabbed), frames discarded;
* ``decode_1thread``: the same frames decoded camera after camera in one thread (plain ``cv2.VideoCapture.read``);
* ``preprocess``: ``iter_preprocess`` from the first event to the renamed output (session loading included), and
  ``preprocess_pipeline``: the same run from the ``plan`` event on (decoding, undistortion, crops, JPEG, HDF5);
* the process CPU time (all threads) of ``decode`` and ``preprocess``: on a machine shared with other jobs, wall
  times swing with their load, CPU time does not.

Target (issue): ``preprocess / decode <= 1.5``; each repeat's preprocessing time is divided by the decode time
measured just before it, and the median of these paired ratios is reported (robust to load from other jobs). Defaults: ``../shared/external/sleap-anipose/minimal_session``,
the mouse model ``../shared/models/SMILy_Mouse_static_joints.pkl``, joint map
``examples/minimal_session_mouse_joint_lookup.csv`` when present, else ``auto`` (name matching).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DEFAULT_SESSION = SHARED / "external" / "sleap-anipose" / "minimal_session"
DEFAULT_MODEL = SHARED / "models" / "SMILy_Mouse_static_joints.pkl"
DEFAULT_JOINT_MAP = REPO / "examples" / "minimal_session_mouse_joint_lookup.csv"
TARGET_RATIO = 1.5


def _frames_needed(session, joint_map, model, options):
    """Camera -> (video, frames) exactly as the preprocessing run will read them."""
    from collections import Counter

    from napari_smil_mv.dataset.plan import plan_session

    plan = plan_session(session, joint_map, list(model.joint_names), options, None, Counter())
    needed = {c: sorted({sp.frame for sp in plan.samples if c in sp.cameras}) for c in session.views}
    return {c: (session.views[c].video, fr) for c, fr in needed.items() if fr}


def time_decode(sources) -> float:
    """All cameras decoded in parallel (one thread each, the run's own frame reader), frames discarded."""
    import threading

    from napari_smil_mv.dataset.frames import iter_frames

    def drain(video, frames):
        for _ in iter_frames(video, frames):
            pass

    t0, c0 = time.perf_counter(), time.process_time()
    threads = [threading.Thread(target=drain, args=src) for src in sources.values()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, time.process_time() - c0


def time_decode_single_thread(sources) -> float:
    import cv2

    t0 = time.perf_counter()
    for video, frames in sources.values():
        cap = cv2.VideoCapture(str(video.path))
        pos = 0
        for f in frames:
            while pos < f:
                cap.grab()
                pos += 1
            cap.read()
            pos += 1
        cap.release()
    return time.perf_counter() - t0


def time_preprocess(
    session_path, out: Path, model, joint_map, options
) -> tuple[float, float, float, float, int]:
    """Wall time (all, from the plan event on), process CPU time (all threads; all, from the plan event on),
    samples written."""
    from napari_smil_mv.dataset import iter_preprocess

    t0, c0 = time.perf_counter(), time.process_time()
    t_plan, c_plan = t0, c0
    n = 0
    for ev in iter_preprocess(
        session_path, out, model, joint_map, options=options, overwrite=True, restart=True
    ):
        if ev.stage == "plan":
            t_plan, c_plan = time.perf_counter(), time.process_time()
        if ev.stage == "done":
            n = int(ev.stats.get("processed_samples", 0))
    t1, c1 = time.perf_counter(), time.process_time()
    return t1 - t0, t1 - t_plan, c1 - c0, c1 - c_plan, n


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--session", type=Path, default=DEFAULT_SESSION)
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument(
        "--joint-map", default=None, help="joint_lookup.csv, or 'auto' (default: example CSV or auto)"
    )
    ap.add_argument("--units", default="mm")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--crop-mode", default="default", choices=["default", "centred", "bbox_crop"])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    if not args.session.exists():
        print(f"session not found: {args.session} (the real sample data lives in ../shared)", file=sys.stderr)
        return 2
    import cv2

    from napari_smil_mv.body import load_smil_model
    from napari_smil_mv.dataset import PreprocessOptions
    from napari_smil_mv.dataset.inputs import resolve_inputs

    warnings.simplefilter("ignore")
    jm = args.joint_map or (str(DEFAULT_JOINT_MAP) if DEFAULT_JOINT_MAP.is_file() else "auto")
    model = load_smil_model(args.model) if args.model.is_file() else load_smil_model(None)
    opt = PreprocessOptions(image_size=args.size, crop_mode=args.crop_mode)
    run = resolve_inputs(args.session, model, jm, None, args.units)
    sources = _frames_needed(run.sessions[0], run.joint_map, model, opt)
    n_frames = sum(len(f) for _, f in sources.values())
    print(
        f"session {args.session.name}: {len(sources)} cameras, {n_frames} frames to decode; "
        f"{args.size} px, crop {args.crop_mode}, joint map {run.joint_map_source}, "
        f"cv2 threads {cv2.getNumThreads()}"
    )
    rows = {"decode": [], "decode_1thread": [], "preprocess": [], "preprocess_pipeline": []}
    cpu = {"decode": [], "preprocess": [], "pipeline": []}
    n_samples = 0
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.smilmv-dataset.h5"
        time_decode(sources)  # warm the file cache and the decoder libraries
        for _ in range(args.repeats):
            wall, cpu_s = time_decode(sources)
            rows["decode"].append(wall)
            cpu["decode"].append(cpu_s)
            rows["decode_1thread"].append(time_decode_single_thread(sources))
            total, pipeline, cpu_s, cpu_pipe, n_samples = time_preprocess(args.session, out, model, jm, opt)
            rows["preprocess"].append(total)
            rows["preprocess_pipeline"].append(pipeline)
            cpu["preprocess"].append(cpu_s)
            cpu["pipeline"].append(cpu_pipe)
        size_mb = out.stat().st_size / 1e6
    med = {k: statistics.median(v) for k, v in rows.items()}
    for k, v in rows.items():
        print(
            f"{k:>20}: median {med[k]:.3f} s   ({', '.join(f'{x:.3f}' for x in v)})  "
            f"{n_frames / med[k]:.0f} frames/s"
        )
    # the machine may be shared: compare each repeat with the decode measured right before it
    r_total = statistics.median(p / d for p, d in zip(rows["preprocess"], rows["decode"], strict=True))
    r_pipe = statistics.median(
        p / d for p, d in zip(rows["preprocess_pipeline"], rows["decode"], strict=True)
    )
    r_cpu = statistics.median(p / d for p, d in zip(cpu["preprocess"], cpu["decode"], strict=True))
    r_cpu_pipe = statistics.median(p / d for p, d in zip(cpu["pipeline"], cpu["decode"], strict=True))
    print(
        f"{'process CPU time':>20}: decode median {statistics.median(cpu['decode']):.3f} s, preprocess "
        f"{statistics.median(cpu['preprocess']):.3f} s (all threads; unaffected by other jobs' load)"
    )
    print(f"samples written: {n_samples}, file {size_mb:.1f} MB")
    print(
        f"ratio preprocess / decode (median over repeats of the paired ratio): {r_total:.2f} (session loading "
        f"included), {r_pipe:.2f} (pipeline only); target <= {TARGET_RATIO}"
    )
    print(
        f"CPU-time ratio preprocess / decode: {r_cpu:.2f} (session loading included), {r_cpu_pipe:.2f} "
        "(pipeline only)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
