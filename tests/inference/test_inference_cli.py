"""``napari-smil-mv train`` and ``napari-smil-mv infer`` from the command line (in process)."""

from __future__ import annotations

import json

import numpy as np

from fixtures.training import TINY_MODEL
from napari_smil_mv.cli import main
from napari_smil_mv.results import read_results


def test_train_command_with_overrides_print_config_and_resume(fresh_dir, synthetic_dataset, capsys, tmp_path):
    out = fresh_dir("cli_train")
    sets = [f"--set=model.{k}={json.dumps(v)}" for k, v in TINY_MODEL.items()]
    args = [
        "train",
        "--dataset",
        str(synthetic_dataset()),
        "--output-dir",
        str(out),
        "--epochs",
        "1",
        "--set=data.batch_size=4",
        "--set=data.block_frames=2",
        "--set=n_samples=0",
        *sets,
    ]
    assert main([*args, "--print-config"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["data"]["batch_size"] == 4 and printed["model"]["hidden_dim"] == 32
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "epoch 1/1" in text and "val original px median" in text and (out / "last.pt").is_file()
    assert main([*args[:6], "2", *args[7:], "--resume"]) == 0  # one more epoch from last.pt
    assert "epoch 2/2" in capsys.readouterr().out
    (tmp_path / "cfg.toml").write_text('[data]\ndataset = "missing.h5"\n')
    assert main(["train", str(tmp_path / "cfg.toml")]) == 2
    assert "missing.h5" in capsys.readouterr().err
    assert main(["train", "--dataset", "x.h5", "--set", "optim.lr"]) == 2


def test_infer_command_on_dataset_and_session_with_exports(
    synthetic_dataset, synthetic_session, trained_checkpoint, capsys, tmp_path
):
    ckpt = str(trained_checkpoint())
    out = tmp_path / "pred.smilmv.h5"
    assert main(["infer", "--checkpoint", ckpt, "--dataset", str(synthetic_dataset()), "-o", str(out)]) == 0
    assert "reprojection median" in capsys.readouterr().out
    res = read_results(out)
    assert res.n_frames == 8 and res.provenance["command"] == "napari-smil-mv infer"
    session_out = tmp_path / "session.smilmv.h5"
    args = [
        "infer",
        "--checkpoint",
        ckpt,
        "--session",
        str(synthetic_session()),
        "-o",
        str(session_out),
        "--frames",
        "0:4",
        "--refine",
        "--iterations",
        "10",
        "--export-animation",
        str(tmp_path / "anim.npz"),
        "--export-csv",
        str(tmp_path / "joints.csv"),
        "--export-slp",
        str(tmp_path / "slp"),
        "--quiet",
    ]
    assert main(args) == 0
    refined = read_results(session_out)
    assert refined.n_frames == 4 and refined.provenance["refined"] is True
    assert (tmp_path / "anim.npz").is_file() and (tmp_path / "joints.csv").is_file()
    assert sorted(p.name for p in (tmp_path / "slp").iterdir()) == ["cam1.slp", "cam2.slp", "cam3.slp"]
    assert np.isfinite(refined.joints_3d).all()
    # refuses to overwrite, names the file
    assert main(["infer", "--checkpoint", ckpt, "--dataset", str(synthetic_dataset()), "-o", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    new = str(tmp_path / "new.smilmv.h5")
    assert main(["infer", "--checkpoint", str(tmp_path / "no.pt"), "--dataset", "x.h5", "-o", new]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
