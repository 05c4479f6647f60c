"""A new training run never silently replaces an earlier run's files (``--overwrite`` / the widget asks)."""

from __future__ import annotations

import json

import pytest

from fixtures.training import TINY_MODEL
from napari_smil_mv.cli import main
from napari_smil_mv.training import train, train_iter
from napari_smil_mv.training.checkpoint import RUN_FILES, read_checkpoint

QUICK = {"epochs": 1, "max_steps_per_epoch": 1, "n_samples": 0}


def _earlier_run(fresh_dir, name: str):
    out = fresh_dir(name)
    for file in (*RUN_FILES, "epoch_0001.pt"):
        (out / file).write_text("earlier run")
    return out


def _untouched(out) -> bool:
    return all((out / f).read_text() == "earlier run" for f in (*RUN_FILES, "epoch_0001.pt"))


def test_train_refuses_an_earlier_run_unless_overwrite(fresh_dir, tiny_config):
    out = _earlier_run(fresh_dir, "keep")
    with pytest.raises(FileExistsError, match="already holds a training run.*--overwrite"):
        train_iter(tiny_config(out, **QUICK))  # at once, before any setup
    assert _untouched(out)
    last = train(tiny_config(out, **QUICK), overwrite=True)
    assert last.kind == "done" and read_checkpoint(out / "last.pt")["epoch"] == 1
    assert json.loads((out / "history.json").read_text())[0]["epoch"] == 1
    assert not (out / "epoch_0001.pt").exists()  # nothing of the earlier run is mixed into the new one
    train(tiny_config(out, **{**QUICK, "epochs": 2}), resume=True)  # resume stays explicit and allowed


def _cli_args(dataset, out) -> list[str]:
    sets = [f"--set=model.{k}={json.dumps(v)}" for k, v in TINY_MODEL.items()]
    return [
        "train",
        "--dataset",
        str(dataset),
        "--output-dir",
        str(out),
        "--epochs",
        "1",
        "--set=n_samples=0",
        "--set=max_steps_per_epoch=1",
        "--set=data.batch_size=2",
        "--set=data.block_frames=2",
        *sets,
    ]


def test_train_command_refuses_without_overwrite(capsys, fresh_dir, synthetic_dataset):
    dataset = synthetic_dataset()
    out = _earlier_run(fresh_dir, "cli_keep")
    assert main(_cli_args(dataset, out)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(out) in err and "--overwrite" in err and "--resume" in err
    assert _untouched(out)
    assert main([*_cli_args(dataset, out), "--resume", "--overwrite"]) == 2
    assert "give one" in capsys.readouterr().err and _untouched(out)
    assert main([*_cli_args(dataset, out), "--overwrite"]) == 0
    assert read_checkpoint(out / "last.pt")["epoch"] == 1


@pytest.fixture(scope="module")
def viewer(qapp):
    from fixtures.viewer import hidden_viewer

    with hidden_viewer() as v:
        yield v


@pytest.mark.gui
def test_train_widget_asks_before_replacing(viewer, qtbot, monkeypatch, fresh_dir, tiny_config):
    pytest.importorskip("napari")
    from napari_smil_mv.napari.widgets import train_widget
    from napari_smil_mv.napari.widgets.train_widget import TrainWidget

    out = _earlier_run(fresh_dir, "widget_keep")
    widget = TrainWidget(viewer)
    cfg = tiny_config(out, **QUICK)
    from napari_smil_mv.training import TrainConfig

    cfg["epochs"], cfg["device"] = 1, "cpu"
    cfg["data"] = {**cfg["data"], "batch_size": 2, "augment": False}
    widget.form.set_value(TrainConfig.from_dict(cfg))
    asked: list[str] = []
    monkeypatch.setattr(train_widget, "ask_yes_no", lambda parent, title, text: asked.append(text) or False)
    assert widget.start() is None
    assert asked and str(out) in asked[0] and "Not started" in widget.status.text() and _untouched(out)
    monkeypatch.setattr(train_widget, "ask_yes_no", lambda parent, title, text: True)
    assert widget.start() is not None
    qtbot.waitUntil(lambda: widget.worker is None, timeout=120000)
    assert read_checkpoint(out / "last.pt")["epoch"] == 1 and not (out / "epoch_0001.pt").exists()
