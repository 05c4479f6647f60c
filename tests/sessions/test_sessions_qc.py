"""Calibration QC on the real sessions, the flag rule, the session-info command, joint maps."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_smil_mv import cli
from napari_smil_mv.sessions import (
    JointMap,
    auto_match,
    calibration_qc,
    flag_cameras,
    load_session,
    normalise_name,
    units_hint,
)


@pytest.fixture
def minimal(shared):
    return shared("external", "sleap-anipose", "minimal_session")


@pytest.fixture
def frame_groups(shared):
    return shared("external", "sleap-multiview", "cameras", "minimal_session", "min_session_frame_groups.slp")


def test_qc_minimal_session_with_points3d_flags_side(minimal):
    s = load_session(minimal)
    r = calibration_qc(s)
    assert r.points3d_source == "points3d.h5"
    med = r.median_px
    # numbers measured independently (formats.md 7.1): back 9.60, mid 5.57, top 5.28, side 91.9 px
    assert med["back"] == pytest.approx(9.60, abs=0.05)
    assert med["mid"] == pytest.approx(5.57, abs=0.05)
    assert med["top"] == pytest.approx(5.28, abs=0.05)
    assert med["side"] == pytest.approx(91.9, abs=0.2)
    assert r.flagged == ["side"]
    assert r.per_camera["back"].valid_fraction == pytest.approx(0.7822, abs=1e-3)
    assert r.per_camera["mid"].valid_fraction == 1.0
    assert r.errors.shape == (4, 120, 1, 15)
    assert r.camera_node_median.shape == (4, 15)
    assert set(r.per_node) == set(s.skeleton.nodes)
    table = r.to_table()
    assert "FLAGGED" in table and "side" in table and "Shoulder_left" in table
    d = r.to_dict()
    assert d["flagged_cameras"] == ["side"] and d["reprojection_px"]["mid"] == pytest.approx(5.57, abs=0.05)
    json.dumps(d, allow_nan=False)


def test_qc_triangulates_from_consensus_when_no_3d(minimal):
    s = load_session(minimal)
    s.points3d, s.points3d_source = None, None
    r = calibration_qc(s)
    assert s.points3d is None  # not modified
    assert r.consensus_cameras == ["back", "mid", "top"]
    assert "side" in r.consensus_log[0]
    med = r.median_px
    # DLT(back, mid, top) reprojection (formats.md 7.1): 7.12 / 2.62 / 3.29 px
    assert med["back"] == pytest.approx(7.12, abs=0.05)
    assert med["mid"] == pytest.approx(2.62, abs=0.05)
    assert med["top"] == pytest.approx(3.29, abs=0.05)
    assert med["side"] > 50
    assert r.flagged == ["side"]
    # triangulating with all four cameras spreads the error: nothing is flagged then (why consensus is used)
    r_all = calibration_qc(s, points3d=s.triangulate())
    assert r_all.flagged == [] and r_all.median_px["side"] == pytest.approx(67.8, abs=0.5)
    pts = s.ensure_points3d(cameras=r.consensus_cameras)
    assert s.points3d_source == "triangulated" and pts.shape == (120, 1, 15, 3)
    assert np.nanmedian(np.linalg.norm(pts - load_session(minimal).points3d, axis=-1)) == pytest.approx(
        3.5, abs=0.2
    )


def test_qc_multiview_session(frame_groups):
    s = load_session(frame_groups)
    r = calibration_qc(s)
    assert r.consensus_cameras == s.camera_names
    assert r.flagged == []
    med = r.median_px
    all_err = r.errors[np.isfinite(r.errors)]
    assert np.median(all_err) == pytest.approx(3.02, abs=0.05)  # formats.md 7.2: 3.02 px overall median
    assert med["sideL"] == pytest.approx(7.45, abs=0.05)
    assert max(v for k, v in med.items() if k != "sideL") < 3.5


def test_flag_rule():
    flagged, reasons = flag_cameras({"a": 2.0, "b": 2.5, "c": 3.0, "d": 12.0})
    assert flagged == ["d"] and "3 x" in reasons["d"]
    assert flag_cameras({"a": 1.0, "b": 1.0, "c": 4.9})[0] == []  # under the 5 px floor
    assert flag_cameras({"a": 10.0, "b": 12.0, "c": 29.0})[0] == []  # under 3x the others
    assert flag_cameras({"a": 1.0, "b": 40.0}, counts={"a": 100, "b": 3})[0] == []  # too few points
    assert flag_cameras({"a": 1.0})[0] == []


def test_units_hint_is_labelled_guess(minimal):
    hint = units_hint(load_session(minimal))
    assert hint.startswith("mm") and "guess" in hint


def _cli(argv, monkeypatch):
    # only our command, so that this test does not depend on other commands' modules
    monkeypatch.setattr(cli, "COMMAND_MODULES", [("session-info", "napari_smil_mv.commands.session_info")])
    return cli.main(argv)


def test_session_info_json(minimal, capsys, monkeypatch):
    assert _cli(["session-info", str(minimal), "--json"], monkeypatch) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["cameras"] == ["back", "mid", "side", "top"]
    assert out["n_frames"] == 120 and out["frame_range"] == [0, 119]
    assert len(out["nodes"]) == 15 and out["nodes"][0] == "Nose"
    assert out["n_animals"] == 1
    assert out["units"] == "unknown" and "guess" in out["units_hint"]
    assert out["flagged_cameras"] == ["side"]
    assert out["reprojection_px"]["top"] == pytest.approx(5.28, abs=0.05)
    assert out["videos"]["back"]["shape"] == [120, 1024, 1280, 3]
    assert out["points3d_source"] == "points3d.h5"


def test_session_info_table_and_errors(frame_groups, tmp_path, capsys, monkeypatch):
    assert _cli(["session-info", str(frame_groups), "--units", "mm"], monkeypatch) == 0
    text = capsys.readouterr().out
    assert "Cameras (8)" in text and "Animals (2): track_0, track_1" in text and "Units: mm" in text
    assert "sideL" in text and "median" in text
    assert _cli(["session-info", str(tmp_path)], monkeypatch) == 2
    assert "not a session" in capsys.readouterr().err


def test_joint_map_auto_match_mouse():
    data = ["Nose", "Ear_R", "Ear_L", "TTI", "TailTip", "Head", "Trunk", "Tail_0", "Tail_1", "Tail_2",
            "Shoulder_left", "Shoulder_right", "Haunch_left", "Haunch_right", "Neck"]  # fmt: skip
    model = ["Lumbar-Vertebrae", "tharocic-vertebrae", "cervical-vertebrae", "skull", "Ear_L", "Ear_L_tip", "Ear_R",
             "Ear_R_tip", "Nose", "humerus_L", "ulna-radius_L", "paw_L", "humerus_R", "ulna-radius_R", "paw_R",
             "Tail_00", "Tail_01", "Tail_02", "Tail_03", "femur_L", "tibia_L", "Foot_L", "femur_R"]  # fmt: skip
    jm = auto_match(data, model)
    d2m = {d: m[0] for d, m in jm.data_to_model.items()}
    assert d2m["Nose"] == "Nose" and d2m["Ear_L"] == "Ear_L" and d2m["Ear_R"] == "Ear_R"
    assert (
        d2m["Head"] == "skull"
        and d2m["Neck"] == "cervical-vertebrae"
        and d2m["Trunk"] == "tharocic-vertebrae"
    )
    assert d2m["TTI"] == "Lumbar-Vertebrae"
    assert d2m["Tail_0"] == "Tail_00" and d2m["Tail_2"] == "Tail_02"
    assert d2m["Shoulder_left"] == "humerus_L" and d2m["Shoulder_right"] == "humerus_R"
    assert d2m["Haunch_left"] == "femur_L" and d2m["Haunch_right"] == "femur_R"
    assert "TailTip" not in d2m  # no tail tip in this model list: left unmatched, not guessed
    assert normalise_name("Ear_L_tip") == normalise_name("left ear tip")
    d_idx, m_idx = jm.index_pairs(data, model)
    assert [data[i] for i in d_idx] == [d for d, _ in jm.pairs]
    imap = jm.model_index_map(data, model)
    assert imap[model.index("skull")] == data.index("Head") and imap[model.index("paw_L")] == -1


def test_joint_map_csv_roundtrip(tmp_path):
    jm = JointMap.from_dict({"Nose": "Nose", "Head": "skull"})
    path = jm.write(tmp_path / "joint_lookup.csv", model_joints=["skull", "Nose", "paw_L"])
    assert path.read_text().splitlines() == ["model,data", "skull,Head", "Nose,Nose", "paw_L,"]
    back = JointMap.read(path)
    assert back.model_to_data == {"skull": "Head", "Nose": "Nose"}
    assert jm.validate(["Nose"], ["Nose", "skull"]) == [
        "data nodes ['Head'] are not in the skeleton ['Nose']"
    ]
    with pytest.raises(FileExistsError):
        jm.write(path)
    (tmp_path / "bad.csv").write_text("joint,node\na,b\n")
    with pytest.raises(ValueError, match="needs columns 'model' and 'data'"):
        JointMap.read(tmp_path / "bad.csv")
    (tmp_path / "dup.csv").write_text("model,data\nskull,Head\nskull,Nose\n")
    with pytest.raises(ValueError, match="dup.csv"):
        JointMap.read(tmp_path / "dup.csv")
