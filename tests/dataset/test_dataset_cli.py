"""``napari-smil-mv preprocess``: writes the dataset, prints the summary, refuses to overwrite, resumes."""

from __future__ import annotations

from napari_smil_mv.cli import main
from napari_smil_mv.dataset import read_dataset_info


def test_cli_preprocess(fresh_dir, synthetic_session, capsys):
    session = synthetic_session()
    out = fresh_dir("cli") / "train.smilmv-dataset.h5"
    args = [
        "preprocess",
        str(session),
        "-o",
        str(out),
        "--size",
        "32",
        "--crop-mode",
        "bbox_crop",
        "--max-frames",
        "5",
    ]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "samples written: 5 of 5" in captured.out and "views:" in captured.out
    assert "demo body model" in captured.err
    info = read_dataset_info(out)
    assert info.n_samples == 5 and info.attrs["crop_mode"] == "bbox_crop" and info.image_size == 32
    # existing output: exit code 2, one-line error naming the flag, file untouched
    before = out.stat().st_mtime_ns
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert out.stat().st_mtime_ns == before
    assert main(args + ["--overwrite", "--min-views", "3", "--quiet"]) == 0
    assert read_dataset_info(out).attrs["min_views_per_sample"] == 3


def test_cli_bad_input_is_one_line(fresh_dir, synthetic_session, capsys):
    out = fresh_dir("cli_bad") / "d.h5"
    rc = main(
        ["preprocess", str(synthetic_session()), "-o", str(out), "--joint-map", str(out.parent / "none.csv")]
    )
    assert rc == 2
    err = capsys.readouterr().err
    assert "joint lookup table not found" in err and "Traceback" not in err
    assert not out.exists()
