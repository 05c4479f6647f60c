"""One session-fit orchestration (fitting.session_fit) and one joint-map choice (sessions.choose_joint_map)."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest

pytest.importorskip("torch")

from napari_smil_mv.fitting import FitConfig  # noqa: E402
from napari_smil_mv.fitting.session_fit import (  # noqa: E402
    frame_rows,
    frames_text,
    iter_session_fit,
    prepare_session_fit,
)
from napari_smil_mv.sessions import JOINT_LOOKUP_CSV, JointMap, choose_joint_map, load_session  # noqa: E402


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    from napari_smil_mv.demo.synthetic_session import write_synthetic_session

    folder = write_synthetic_session(
        tmp_path_factory.mktemp("sf") / "s", n_cameras=3, n_frames=6, image_size=(160, 120), seed=1
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_session(folder)


def test_choose_joint_map_order(session, tmp_path):
    from napari_smil_mv.body import load_smil_model

    names = load_smil_model(None).joint_names
    notes: list[str] = []
    jm, source = choose_joint_map(session, names, note=notes.append)
    assert source == str(session.path / JOINT_LOOKUP_CSV) and notes == [f"joint map: {source}"]
    given = JointMap(jm.pairs[:3])
    assert choose_joint_map(session, names, given) == (given, "given")
    bad = tmp_path / "bad.csv"
    JointMap([("no_such_node", names[0])]).write(bad)
    with pytest.raises(ValueError, match="does not fit session"):
        choose_joint_map(session, names, bad)
    assert choose_joint_map(session, names, bad, check_given=False)[1] == str(bad)

    # a session folder without joint_lookup.csv: the recorded map, then the fallback
    copy = tmp_path / "copy"
    shutil.copytree(session.path, copy)
    (copy / JOINT_LOOKUP_CSV).unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bare = load_session(copy)
    assert choose_joint_map(bare, names, recorded=(jm, "net")) == (jm, "net")
    exact, src = choose_joint_map(bare, names, fallback="exact")
    assert src == "exact names" and all(d == m for d, m in exact.pairs)
    auto, src = choose_joint_map(bare, names, note=notes.append)
    assert src == "auto" and "automatic match" in notes[-1]
    with pytest.raises(ValueError, match="could not match"):
        choose_joint_map(bare, ["x", "y", "z"])


def test_frame_rows():
    f = np.arange(10, 20)
    assert frame_rows(f) is None
    assert list(frame_rows(f, 12, 14)) == [2, 3]
    assert frames_text((None, None)) is None and frames_text((2, None)) == "2:"
    with pytest.raises(ValueError, match="select none"):
        frame_rows(f, 30, None)


def test_prepare_and_iterate(session):
    job = prepare_session_fit(session, frames=(1, None), exclude_cameras=["cam2"])
    assert job.data.n_frames == 5 and job.excluded_cameras == ["cam2"]
    assert job.data.camera_weights[job.data.camera_names.index("cam2")] == 0.0
    with pytest.raises(ValueError, match="no camera \\['nope'\\] to exclude"):
        prepare_session_fit(session, exclude_cameras=["nope"])
    cfg = FitConfig()
    cfg.stages[-1].iterations = 5
    gen = iter_session_fit(job, cfg, producer="test", provenance={"command": "unit"})
    n = 0
    while True:
        try:
            next(gen)
            n += 1
        except StopIteration as stop:
            result, results = stop.value
            break
    assert n > 0 and results.n_frames == 5
    prov = results.provenance
    assert prov["producer"] == "test" and prov["command"] == "unit" and prov["frames"] == "1:"
    assert prov["excluded_cameras"] == ["cam2"] and prov["joint_map"].endswith(JOINT_LOOKUP_CSV)
    assert np.isfinite(result.reprojection_median())


def test_drain_and_relay():
    from napari_smil_mv.utils.events import drain, relay

    def job():
        yield from range(4)
        return "done"

    seen: list[int] = []
    assert drain(job(), seen.append) == "done" and seen == [0, 1, 2, 3]
    assert drain(job()) == "done"

    def outer():
        result = yield from relay(job(), lambda i: f"e{i}" if i % 2 else None)
        return result.upper()

    assert drain(outer(), seen.append) == "DONE" and seen[4:] == ["e1", "e3"]
