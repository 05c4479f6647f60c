"""Anipose calibration.toml reading/writing (real files when present, synthetic otherwise)."""

import numpy as np
import pytest

from _sample_data import SHARED
from napari_smil_mv.cameras import Camera, CameraRig, load_calibration, ring_of_cameras, save_calibration

SLEAP_ANIPOSE = SHARED / "external/sleap-anipose/minimal_session/calibration.toml"
SLEAP_MULTIVIEW = SHARED / "external/sleap-multiview/cameras/minimal_session/calibration.toml"


def _real(path):
    if not path.is_file():
        pytest.skip(f"real calibration not available: {path}")
    return path


def test_sleap_anipose_calibration_loads():
    rig = load_calibration(_real(SLEAP_ANIPOSE), units="mm")
    assert rig.names == ["back", "mid", "side", "top"] and rig.units == "mm"
    assert all(c.size == (1280, 1024) and not c.fisheye and c.dist.shape == (5,) for c in rig)
    assert np.isclose(rig["back"].matrix[0, 0], 769.8864926727645)
    assert np.allclose(rig["back"].matrix[:2, 2], [639.5, 511.5])
    # camera centres documented in formats.md section 7.1 (mm)
    assert np.allclose(rig["back"].center, [-0.4, 4.0, 122.4], atol=0.06)
    assert np.allclose(rig["mid"].center, [-106.6, -220.2, 272.5], atol=0.06)
    assert np.allclose(rig["top"].center, rig["side"].center)


def test_sleap_multiview_calibration_matches_aniposelib_by_name():
    from aniposelib.cameras import CameraGroup

    path = _real(SLEAP_MULTIVIEW)
    rig = load_calibration(path)
    assert rig.names == ["back", "backL", "mid", "midL", "side", "sideL", "top", "topL"]
    assert rig.units is None and len(rig) == 8
    cg = CameraGroup.load(str(path))
    noise = np.random.default_rng(0).normal(0, 30, (20, 3))
    for acam in cg.cameras:
        ours = rig[acam.get_name()]
        assert ours.size == tuple(acam.get_size())
        assert np.array_equal(ours.matrix, acam.get_camera_matrix())
        assert np.array_equal(ours.rvec, acam.get_rotation()) and np.array_equal(
            ours.tvec, acam.get_translation()
        )
        X = ours.center + ours.R.T @ [0, 0, 250.0] + noise  # in front of the camera
        assert np.abs(acam.project(X).reshape(-1, 2) - ours.project(X)).max() < 1e-6


def test_round_trip_keeps_numeric_cam_order_beyond_ten(tmp_path):
    rig = ring_of_cameras(
        12, names=[f"view{i}" for i in range(12)], dist=(-0.1, 0.01, 0, 0, 0.001), seed=3, units="mm"
    )
    rig.metadata = {"adjusted": True, "error": np.float64(0.5)}
    out = save_calibration(rig, tmp_path / "calibration.toml")
    back = load_calibration(out)
    assert back.names == rig.names  # cam_10, cam_11 after cam_9 (aniposelib's load would sort them first)
    assert back.units == "mm" and back.metadata["adjusted"] is True and back.metadata["error"] == 0.5
    assert all(a == b for a, b in zip(back, rig, strict=True))
    from aniposelib.cameras import CameraGroup

    cg = CameraGroup.load(str(out))  # Anipose can read what we wrote (in its own, string-sorted order)
    assert sorted(cg.get_names()) == sorted(rig.names) and cg.get_names() != rig.names
    assert np.array_equal(
        cg.cameras[cg.get_names().index("view11")].get_camera_matrix(), rig["view11"].matrix
    )


def test_units_argument_and_conflict(tmp_path):
    rig = ring_of_cameras(2, units="m")
    path = save_calibration(rig, tmp_path / "c.toml")
    assert load_calibration(path).units == "m"
    assert load_calibration(path, units="m").units == "m"
    with pytest.raises(ValueError, match="units='mm' was requested but the file's"):
        load_calibration(path, units="mm")
    plain = save_calibration(ring_of_cameras(2), tmp_path / "p.toml")
    assert load_calibration(plain).units is None and load_calibration(plain, units="mm").units == "mm"


def test_fisheye_round_trip(tmp_path):
    cam = Camera(
        "fish",
        [[300.0, 0, 319.5], [0, 300, 239.5], [0, 0, 1]],
        [0.05, -0.01, 0.002, 0.0],
        [0.1, 0.2, 0.3],
        [0, 0, 2.0],
        (640, 480),
        fisheye=True,
    )
    rig = CameraRig([cam, ring_of_cameras(1, names=["pin"])[0]])
    path = save_calibration(rig, tmp_path / "f.toml")
    assert "fisheye = true" in path.read_text()
    back = load_calibration(path)
    assert back["fish"].fisheye and back["fish"] == cam and not back["pin"].fisheye


def test_save_refuses_to_overwrite_and_is_atomic(tmp_path):
    rig = ring_of_cameras(2)
    path = tmp_path / "c.toml"
    path.write_text("keep me")
    with pytest.raises(FileExistsError, match="already exists"):
        save_calibration(rig, path)
    assert path.read_text() == "keep me"
    save_calibration(rig, path, overwrite=True)
    assert load_calibration(path).names == ["cam1", "cam2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.toml"]  # no temp file left behind
    with pytest.raises(ValueError, match="no cameras"):
        save_calibration(CameraRig([]), tmp_path / "empty.toml")


def test_reads_file_order_of_cam_tables_numerically(tmp_path):
    text = "".join(
        f'[cam_{i}]\nname = "n{i}"\nsize = [64, 48]\nmatrix = [[50.0, 0.0, 31.5], [0.0, 50.0, 23.5], [0.0, 0.0, 1.0]]\n'
        f"distortions = [0.0, 0.0, 0.0, 0.0, 0.0]\nrotation = [0.0, 0.0, 0.0]\ntranslation = [{i}.0, 0.0, 1.0]\n\n"
        for i in (10, 2, 0, 1)
    )
    path = tmp_path / "c.toml"
    path.write_text(text + "[metadata]\n")
    assert load_calibration(path).names == ["n0", "n1", "n2", "n10"]


BASE = (
    '[cam_0]\nname = "a"\nsize = [64, 48]\nmatrix = [[50.0, 0.0, 31.5], [0.0, 50.0, 23.5], [0.0, 0.0, 1.0]]\n'
    "distortions = [0.0, 0.0, 0.0, 0.0, 0.0]\nrotation = [0.0, 0.0, 0.0]\ntranslation = [0.0, 0.0, 1.0]\n"
)


@pytest.mark.parametrize(
    "text,pattern",
    [
        (BASE.replace("rotation = [0.0, 0.0, 0.0]\n", ""), r"\[cam_0\] is missing 'rotation'"),
        (
            BASE.replace("matrix = [[50.0, 0.0, 31.5], [0.0, 50.0, 23.5], [0.0, 0.0, 1.0]]\n", "").replace(
                "size = [64, 48]\n", ""
            ),
            r"\[cam_0\] is missing 'size', 'matrix'",
        ),
        (
            BASE.replace("translation = [0.0, 0.0, 1.0]", "translation = [0.0, 1.0]"),
            r"\[cam_0\]: camera 'a': 'translation' must have shape \(3,\)",
        ),
        (
            BASE.replace(
                "matrix = [[50.0, 0.0, 31.5], [0.0, 50.0, 23.5], [0.0, 0.0, 1.0]]", "matrix = [1.0, 2.0]"
            ),
            r"\[cam_0\]: camera 'a': 'matrix' must have shape \(3, 3\)",
        ),
        (
            BASE.replace("size = [64, 48]", "size = [64]"),
            r"\[cam_0\] \(a\): 'size' must be \[width, height\]",
        ),
        (
            BASE.replace("rotation = [0.0, 0.0, 0.0]", 'rotation = ["x", 0.0, 0.0]'),
            r"'rotation' must be numeric",
        ),
        (BASE + BASE.replace("cam_0", "cam_1"), r"camera names must be unique, duplicated: \['a'\]"),
        ("[metadata]\nx = 1\n", "no camera tables"),
        ("stray = 3\n" + BASE, "top-level entry 'stray' is not a camera table"),
        ("[cam_0\nname = ", "not a valid TOML calibration file"),
    ],
)
def test_clear_errors(tmp_path, text, pattern):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=pattern) as info:
        load_calibration(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="calibration file not found"):
        load_calibration(tmp_path / "nope.toml")
    with pytest.raises(FileNotFoundError, match="is a directory"):
        load_calibration(tmp_path)


def test_name_defaults_to_table_key(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(BASE.replace('name = "a"\n', ""))
    assert load_calibration(path).names == ["cam_0"]
