"""The network part of the demo (preprocess, train, predict on the session, refine, evaluate, previews)."""

from __future__ import annotations

import json

from napari_smil_mv.demo.network_step import DEMO_NETWORK_FILES, iter_network_demo


def test_network_demo_writes_everything_and_refinement_helps(fresh_dir):
    out = fresh_dir("demo_net")
    gen = iter_network_demo(
        out, epochs=2, session_kwargs=dict(n_cameras=3, n_frames=20, image_size=(160, 120))
    )
    events = []
    try:
        while True:
            events.append(next(gen))
    except StopIteration as stop:
        summary = stop.value
    stages = [e.stage for e in events]
    for stage in ("session", "preprocess", "train", "infer", "refine", "preview"):
        assert stage in stages
    assert all(0.0 <= e.progress <= 1.0 for e in events) and events[-1].progress == 1.0
    for name in DEMO_NETWORK_FILES:
        if "<camera>" in name:
            assert (out / name.replace("<camera>", "cam1")).is_file()
        else:
            assert (out / name.rstrip("/")).exists(), name
    saved = json.loads((out / "network_evaluation.json").read_text())
    net = saved["network"]["ground_truth"]["joint_error_3d_median"]
    ref = saved["refined"]["ground_truth"]["joint_error_3d_median"]
    assert ref < net and summary["training_epochs"] == 2
