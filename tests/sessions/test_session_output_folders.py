"""Output folders next to a session (a demo's network/, results files) are not cameras or sessions."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

from napari_smil_mv.cli import main
from napari_smil_mv.sessions import find_sessions, load_session
from napari_smil_mv.sessions.layouts import label_files


@pytest.fixture(scope="module")
def demo_like(tmp_path_factory):
    """A folder laid out like ``napari-smil-mv demo``'s output: calibration.toml, session/, network/, results."""
    from napari_smil_mv.demo.synthetic_session import write_synthetic_session

    root = tmp_path_factory.mktemp("demo_out")
    session = write_synthetic_session(root / "session", n_cameras=2, n_frames=4, image_size=(96, 72), seed=2)
    shutil.copy(session / "calibration.toml", root / "calibration.toml")
    (root / "network" / "run").mkdir(parents=True)
    with h5py.File(root / "network" / "dataset.smilmv-dataset.h5", "w") as f:
        f.create_dataset("images", data=np.zeros((2, 4, 4), np.uint8))
    with h5py.File(root / "fit.smilmv.h5", "w") as f:
        f.attrs["format"] = "napari-smil-mv results"
    return root


def test_hdf5_outputs_are_not_label_files(tmp_path):
    with h5py.File(tmp_path / "dataset.smilmv-dataset.h5", "w") as f:
        f.create_dataset("tracks", data=np.zeros(1))  # even with a 'tracks' dataset: our own output
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.create_dataset("images", data=np.zeros(1))
    (tmp_path / "broken.h5").write_bytes(b"not hdf5")
    assert label_files(tmp_path) == []
    with h5py.File(tmp_path / "cam.analysis.h5", "w") as f:
        f.create_dataset("tracks", data=np.zeros((1, 2, 3, 4)))
    assert label_files(tmp_path) == [tmp_path / "cam.analysis.h5"]


def test_session_info_on_a_demo_output_folder(demo_like, capsys):
    assert find_sessions(demo_like) == [demo_like / "session"]
    with pytest.raises(FileNotFoundError, match="holds 1 session.*session; give one of them"):
        load_session(demo_like)
    assert main(["session-info", str(demo_like), "--no-nodes"]) == 0
    out = capsys.readouterr()
    assert "showing the session it holds" in out.err
    assert "Cameras (2):" in out.out and "network" not in out.out
