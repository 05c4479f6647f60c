"""Time to open a real multi-camera session in napari: ``api.load_session`` now vs the per-layer baseline.

Usage (needs a display; headless: ``xvfb-run -a python benchmarks/bench_napari_open.py``)::

    python benchmarks/bench_napari_open.py [SESSION] [--repeats 3]

Each measurement runs in a fresh Python process (so the once-per-process costs napari pays for its first layer,
pint's unit registry and ``scipy.ndimage``, count every time, as they do for a user opening a session in a new
napari). It creates a hidden viewer (not timed), then times from the call until the first screenshot is drawn:

* ``baseline``: what ``api.load_session`` did before: read the session with sleap-io's own video probe (frame 0
  decoded twice, with a seek), build the layer data *with* the four world layers (hidden in the grid), start
  decoding the first shown frames (0 and napari's centre step), ``viewer.add_layer(Layer.create(...))`` per layer
  (napari centres the sliders: every video is also decoded at its middle frame), grid layout;
* ``current``: ``napari_smil_mv.api.load_session(viewer, path)``: one probe per video that also serves frame 0,
  only the per-camera layers (the world layers are created by the first switch to the world layout), added
  without a selection change each and starting at the first frame (:mod:`napari_smil_mv.napari.batch_add`);
* ``gc-on`` (only with ``--variants``): ``current`` with Python's garbage collector left running while the layers
  are built (``batch_add.gc_paused`` made a no-op), to measure what pausing it saves;
* ``text-drawn`` (only with ``--variants``): ``current`` with napari's empty text visuals of the Points layers
  drawn (``empty_text.skip_empty_text`` made a no-op), to measure what skipping them saves;
  ``gc-on+text-drawn`` is the open before both.

The variants alternate (baseline, current, baseline, ...) so machine load affects both alike; the medians of the wall
time and of the process CPU time (all threads; less sensitive to other processes) and their ratios are printed. Target: ``current`` under 3 s for the 4-camera sleap-anipose sample on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

DEFAULT = (
    Path(__file__).resolve().parents[1].parent / "shared" / "external" / "sleap-anipose" / "minimal_session"
)
TARGET_S = 3.0


def _measure(variant: str, path: str) -> dict:
    """One measurement in this process (called in a child process)."""
    import napari
    from napari_smil_mv import api

    viewer = napari.Viewer(show=False)
    viewer.window.resize(1400, 1000)
    viewer.window._qt_window.grab()  # hidden viewers need one grab before screenshots render
    t0, c0 = time.perf_counter(), time.process_time()
    if variant == "baseline":
        from napari.layers import Layer

        from napari_smil_mv.napari.layers.video_array import prefetch_first_frames
        from napari_smil_mv.sessions import load_session
        from napari_smil_mv.sessions.video import SequentialReader

        SequentialReader.probe = lambda self: None  # the old open: sleap-io's own probe, then our reader
        session = api.register_session(load_session(path))
        sid = session
        data = api.session_layer_data(api.get_session(sid), session_id=sid, layout="grid")
        prefetch_first_frames(data)
        layers = [viewer.add_layer(Layer.create(d, dict(k), t)) for d, k, t in data]
        api.set_layout(viewer, "grid")
    else:
        if "gc-on" in variant.split("+"):
            import contextlib

            from napari_smil_mv.napari import batch_add, scripting

            batch_add.gc_paused = scripting.gc_paused = contextlib.nullcontext
        if "text-drawn" in variant.split("+"):
            from napari_smil_mv.napari import batch_add, results_view

            batch_add.skip_empty_text = results_view.skip_empty_text = lambda viewer, layers: 0
        api.load_session(viewer, path)
        layers = list(viewer.layers)
    t_open = time.perf_counter() - t0
    viewer.screenshot(canvas_only=True)
    t_shot = time.perf_counter() - t0
    cpu = time.process_time() - c0  # all threads of this process: less sensitive to other processes' load
    out = {
        "variant": variant,
        "open_s": t_open,
        "open_and_draw_s": t_shot,
        "cpu_s": cpu,
        "n_layers": len(layers),
    }
    viewer.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "path", nargs="?", default=str(DEFAULT), help="session folder, calibration.toml or .slp"
    )
    parser.add_argument("--repeats", type=int, default=3, help="measurements per variant (default 3)")
    parser.add_argument(
        "--variants",
        default="baseline,current",
        help="comma-separated, from baseline, current, gc-on, text-drawn (default baseline,current)",
    )
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        import warnings

        warnings.simplefilter("ignore")
        print("RESULT " + json.dumps(_measure(args.child, args.path)))
        return 0
    if not Path(args.path).exists():
        print(f"session not found: {args.path} (the sample data is under ../shared)", file=sys.stderr)
        return 2
    if not os.environ.get("DISPLAY"):
        print("no display: run under xvfb-run -a", file=sys.stderr)
        return 2
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = {p for v in variants for p in v.split("+")} - {"baseline", "current", "gc-on", "text-drawn"}
    if unknown or "current" not in variants:
        print(f"--variants: unknown {sorted(unknown)} or 'current' missing", file=sys.stderr)
        return 2
    runs: dict[str, list[dict]] = {v: [] for v in variants}
    for _ in range(args.repeats):
        for variant in runs:
            proc = subprocess.run(
                [sys.executable, __file__, args.path, "--child", variant],
                capture_output=True,
                text=True,
                check=False,
            )
            line = next((s for s in proc.stdout.splitlines() if s.startswith("RESULT ")), None)
            if line is None:
                print(proc.stdout[-2000:], proc.stderr[-4000:], file=sys.stderr)
                return 1
            runs[variant].append(json.loads(line[7:]))
            r = runs[variant][-1]
            print(
                f"  {variant:<9} open {r['open_s']:.2f} s, with first draw {r['open_and_draw_s']:.2f} s "
                f"(CPU {r['cpu_s']:.2f} s)"
            )
    med = {v: statistics.median(r["open_and_draw_s"] for r in rs) for v, rs in runs.items()}
    cpu = {v: statistics.median(r["cpu_s"] for r in rs) for v, rs in runs.items()}
    labels = {
        "baseline": "baseline (per-layer add)",
        "current": "current (api.load_session)",
        "gc-on": "current, collector running",
        "text-drawn": "current, empty text drawn",
    }
    print(
        f"session {Path(args.path).name}: "
        + ", ".join(f"{rs[0]['n_layers']} layers ({v})" for v, rs in runs.items())
        + f"; {args.repeats} fresh processes per variant"
    )
    for v in runs:
        ratio = ""
        if v != "current":
            ratio = f"; current/{v} {med['current'] / med[v]:.2f} (CPU {cpu['current'] / cpu[v]:.2f})"
        print(
            f"{labels.get(v, 'current, ' + v):<28} median {med[v]:.2f} s (open + first draw), CPU {cpu[v]:.2f} s{ratio}"
        )
    print(
        f"target < {TARGET_S:.0f} s: "
        + ("met" if med["current"] < TARGET_S else "MISSED (check the machine load)")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
