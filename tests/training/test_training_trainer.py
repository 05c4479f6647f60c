"""The training loop: events and files, learning, exact resume (also mid-epoch), bf16 autocast, DDP with torchrun
(2 CPU processes, gloo) and clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from napari_smil_mv.training import read_checkpoint, train, train_iter


def test_run_yields_events_and_writes_checkpoints(fresh_dir, tiny_config):
    out = fresh_dir("run")
    events = list(train_iter(tiny_config(out)))
    kinds = [e.kind for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done"
    for kind in ("step", "epoch", "samples", "checkpoint"):
        assert kind in kinds
    epochs = [e for e in events if e.kind == "epoch"]
    assert len(epochs) == 2 and epochs[-1].progress == 1.0
    m = epochs[-1].metrics
    assert m["pixel_frame"] == "original" and np.isfinite(m["px_median"]) and 0 <= m["pck_5px"] <= 1
    assert np.isfinite(m["joint_error_3d_median"]) and set(epochs[-1].val_losses) >= {"keypoint_2d", "total"}
    sample = next(e for e in events if e.kind == "samples").samples[0]
    V = sample["images"].shape[0]
    assert sample["images"].dtype == np.uint8 and sample["images"].shape[1:] == (64, 64, 3)
    assert sample["predicted"].shape == sample["keypoints"].shape == (V, 42, 2)
    for name in ("config.json", "history.json", "last.pt", "best.pt"):
        assert (out / name).is_file(), name
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    blob = read_checkpoint(out / "last.pt")
    assert blob["epoch"] == 2 and blob["step_in_epoch"] == 0
    spec = blob["spec"]
    assert spec["camera_names"] == ["cam1", "cam2", "cam3"] and spec["image_size"] == 64
    assert spec["body_model_source"] == "<demo model>" and len(spec["body_model_sha256"]) == 64
    assert spec["camera_mode"] == "calibrated" and spec["preprocessing"]["crop_mode"] == "bbox_crop"
    assert (
        0.03 < spec["mesh_scale_value"] < 0.2
    )  # ~60 mm per model unit in metres, estimated from the 3D points


def test_training_fits_a_few_samples(fresh_dir, tiny_config):
    out = fresh_dir("overfit")
    cfg = tiny_config(
        out,
        epochs=25,
        log_every=100,
        n_samples=0,
        data={"max_train_samples": 2, "val_fraction": 0.0},
        optim={"lr": 2e-3, "backbone_lr": 1e-3, "schedule": "constant"},
    )
    last = train(cfg)
    first, final = last.history[0]["train"]["total"], last.history[-1]["train"]["total"]
    assert final < 0.3 * first, (first, final)


def _states_equal(a: dict, b: dict) -> bool:
    return set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_is_exact_also_in_the_middle_of_an_epoch(fresh_dir, tiny_config):
    overrides = dict(
        epochs=2,
        n_samples=0,
        log_every=100,
        data={"max_train_samples": 6, "augment": True, "permute_views": True},
        model={"dropout": 0.2},
    )
    a = fresh_dir("straight")
    train(tiny_config(a, **overrides))
    b = fresh_dir("resumed")
    calls = {"n": 0}

    def cancel() -> bool:  # asked once per step: stop after 4 of the 6 steps (epoch 2, step 1)
        calls["n"] += 1
        return calls["n"] == 4

    stopped = train(tiny_config(b, **overrides), cancel=cancel)
    assert stopped.kind == "stopped" and stopped.epoch == 1 and stopped.step_in_epoch == 1
    blob = read_checkpoint(b / "last.pt")
    assert (blob["epoch"], blob["step_in_epoch"]) == (1, 1)
    done = train(tiny_config(b, **overrides), resume=True)
    assert done.kind == "done"
    sa, sb = read_checkpoint(a / "last.pt"), read_checkpoint(b / "last.pt")
    assert _states_equal(sa["model_state"], sb["model_state"])
    assert sa["global_step"] == sb["global_step"] == 6
    assert sa["history"][-1]["metrics"]["px_median"] == sb["history"][-1]["metrics"]["px_median"]


def test_bf16_autocast_step_on_cpu(fresh_dir, tiny_config):
    out = fresh_dir("bf16")
    last = train(tiny_config(out, epochs=1, amp="bf16", max_steps_per_epoch=1, n_samples=0))
    assert last.kind == "done" and np.isfinite(last.history[0]["train"]["total"])


def test_ddp_two_cpu_processes_with_torchrun(fresh_dir, tiny_config):
    out = fresh_dir("ddp")
    cfg = tiny_config(out, epochs=1, max_steps_per_epoch=2, n_samples=0, log_every=1)
    (out / "cfg.json").write_text(json.dumps(cfg))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "napari_smil_mv.cli",
        "train",
        str(out / "cfg.json"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "2 process(es)" in proc.stdout and proc.stdout.count("training on") == 1  # rank 0 prints
    blob = read_checkpoint(out / "last.pt")
    assert blob["global_step"] == 2 and blob["epoch"] == 1
    history = json.loads((out / "history.json").read_text())
    assert history[0]["metrics"]["n_samples"] == 2  # validation gathered from both processes


def test_clear_errors(fresh_dir, tiny_config):
    out = fresh_dir("errors")
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        train(tiny_config(out, data={"dataset": str(out / "nope.h5")}))
    with pytest.raises(KeyError, match="tail"):
        train(tiny_config(out, loss={"ignored_joints": ["tail"]}))
    with pytest.raises(ValueError, match="camera_mode"):
        train(tiny_config(out, model={"camera_mode": "sideways"}))
