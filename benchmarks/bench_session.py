"""Benchmark opening a real multi-camera session in napari and stepping through its frames.

Usage (needs a display; on a headless machine run it under Xvfb)::

    xvfb-run -a python benchmarks/bench_session.py                       # ../shared sleap-anipose session
    xvfb-run -a python benchmarks/bench_session.py PATH --frames 120 --save-png /tmp/grid.png

Measured, in one process, after creating a hidden viewer (reported separately):

* **open**: the steps of ``napari_smil_mv.api.load_session(viewer, path)`` (read the session, build the camera
  layers' data, add the layers to the viewer, grid layout), each timed, plus the first screenshot, i.e. the first
  frame of every camera decoded and drawn. (The world layers come with the first switch to the world layout.)
  Target: under 3 s for the 4-camera, 120-frame sleap-anipose sample.
* **step**: set ``viewer.dims.current_step`` to each of the first ``--frames`` frames in turn (napari slices every
  visible layer synchronously, which decodes one frame per camera), per frame: median and max. A few frames are
  also drawn (screenshot) to time decode + render together.
* **lazy**: the number of decoded frames per camera after the run (one per visited frame; the videos are never
  decoded as a whole).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

DEFAULT = (
    Path(__file__).resolve().parents[1].parent / "shared" / "external" / "sleap-anipose" / "minimal_session"
)
OPEN_TARGET_S = 3.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "path", nargs="?", default=str(DEFAULT), help="session folder, calibration.toml or .slp"
    )
    parser.add_argument("--frames", type=int, default=120, help="frames to step through (default 120)")
    parser.add_argument("--render-frames", type=int, default=10, help="frames also drawn with a screenshot")
    parser.add_argument("--save-png", default=None, help="save the first screenshot (grid view) here")
    args = parser.parse_args(argv)
    if not Path(args.path).exists():
        print(f"session not found: {args.path}", file=sys.stderr)
        return 2

    t0 = time.perf_counter()
    import napari
    from napari_smil_mv import api

    t_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    viewer = napari.Viewer(show=False)
    viewer.window.resize(1400, 1000)
    viewer.window._qt_window.grab()  # hidden viewers need one grab before screenshots render
    t_viewer = time.perf_counter() - t0

    # the steps of api.load_session(viewer, path), timed one by one
    from napari_smil_mv.napari.batch_add import add_layers, gc_paused
    from napari_smil_mv.napari.layers.video_array import prefetch_first_frames
    from napari_smil_mv.sessions import load_session

    stages = {}
    t0 = t = time.perf_counter()
    session = load_session(args.path)
    stages["read session"], t = time.perf_counter() - t, time.perf_counter()
    sid = api.register_session(session)
    data = api.session_layer_data(session, session_id=sid, layout="grid", world=False)  # as show_session
    prefetch_first_frames(data, 0)  # as show_session does for an empty viewer
    stages["build layer data"], t = time.perf_counter() - t, time.perf_counter()
    with gc_paused():  # as show_session
        add_layers(viewer, data, first_step=True)
        stages["add layers"], t = time.perf_counter() - t, time.perf_counter()
        api.set_layout(viewer, "grid")
        stages["grid layout"], t = time.perf_counter() - t, time.perf_counter()
    img = viewer.screenshot(canvas_only=True)
    stages["first screenshot"] = time.perf_counter() - t
    t_open = time.perf_counter() - t0
    if args.save_png:
        import imageio.v2 as iio

        img = viewer.screenshot(canvas_only=True)  # the first one may use the pre-layout canvas size
        iio.imwrite(args.save_png, img)

    videos = api.session_layers(viewer, role="video")
    n_frames = min(args.frames, max(int(v.data.shape[0]) for v in videos))
    decoded_before = [v.data.n_decoded for v in videos]
    step_times = []
    for f in range(n_frames):
        t = time.perf_counter()
        api.set_frame(viewer, f)
        step_times.append(time.perf_counter() - t)
    render_times = []
    for f in range(min(args.render_frames, n_frames)):
        t = time.perf_counter()
        api.set_frame(viewer, (f * 7 + 3) % n_frames)
        viewer.screenshot(canvas_only=True)
        render_times.append(time.perf_counter() - t)
    decoded = [v.data.n_decoded - d for v, d in zip(videos, decoded_before, strict=True)]

    cams = len(session.camera_names)
    print(
        f"session            {session.name}: {cams} cameras, {session.n_frames} labelled frames, {len(viewer.layers)} layers"
    )
    print(f"import napari+api  {t_import:6.2f} s")
    print(f"create viewer      {t_viewer:6.2f} s   (not part of 'open')")
    for name, value in stages.items():
        print(f"  {name:<17}{value:6.2f} s")
    print(
        f"open (+1st shot)   {t_open:6.2f} s   target < {OPEN_TARGET_S:.0f} s: {'OK' if t_open < OPEN_TARGET_S else 'MISSED'}"
    )
    print(
        f"step {n_frames} frames     total {sum(step_times):6.2f} s, per frame median "
        f"{1000 * statistics.median(step_times):6.1f} ms, max {1000 * max(step_times):6.1f} ms "
        f"({cams} videos decoded per step)"
    )
    if render_times:
        print(
            f"step + draw        per frame median {1000 * statistics.median(render_times):6.1f} ms "
            f"over {len(render_times)} frames (screenshot read-back included)"
        )
    print(f"decoded frames     {decoded} per camera for {n_frames + len(render_times)} frame changes")
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
