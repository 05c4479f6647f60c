"""movement (netCDF) and NWB/ndx-pose exports: round trips through the libraries' own readers, CLI errors."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from fixtures.export import DATA, JOINTS, small_results
from napari_smil_mv.cli import main
from napari_smil_mv.results import write_results


def _need(name: str):
    return pytest.importorskip(name, reason=f"{name} not installed (optional extra of the exports)")


def test_movement_netcdf_round_trip(tmp_path):
    _need("movement")
    xr = _need("xarray")
    from napari_smil_mv.results.movement_export import export_movement

    r = small_results()
    path = export_movement(r, tmp_path / "poses.nc")
    with xr.open_dataset(path) as ds:
        assert ds.position.dims == ("time", "space", "keypoints", "individuals")
        assert list(ds.keypoints.values) == JOINTS and list(ds.space.values) == ["x", "y", "z"]
        pos = ds.position.sel(individuals="animal").transpose("time", "keypoints", "space").values
        np.testing.assert_array_equal(pos, r.joints_3d)  # NaN where the fit has none, bit-exact elsewhere
        np.testing.assert_array_equal(ds.frame.values, r.frame_indices)
        np.testing.assert_allclose(ds.time.values, r.frame_indices / 30.0)
        assert ds.attrs["space_unit"] == "mm" and ds.attrs["time_unit"] == "seconds"
        assert ds.attrs["source_software"] == "napari-smil-mv" and ds.attrs["ds_type"] == "poses"
        assert np.isnan(ds.confidence.values).all()
    with pytest.raises(FileExistsError, match="already exists"):
        export_movement(r, path)


def test_movement_mapped_only_and_unknown_fps():
    _need("movement")
    from movement.kinematics import compute_velocity

    from napari_smil_mv.results.movement_export import to_movement_dataset

    ds = to_movement_dataset(small_results(fps=None), mapped_only=True)
    assert list(ds.keypoints.values) == [d for d in DATA if d]
    assert ds.attrs["time_unit"] == "frames"
    np.testing.assert_array_equal(ds.time.values, np.arange(5) + 7)
    vel = compute_velocity(ds.position)  # movement's own analysis accepts the dataset
    assert vel.shape == ds.position.shape


def test_nwb_round_trip_with_pynwb_and_movement(tmp_path):
    pynwb = _need("pynwb")
    _need("ndx_pose")
    from napari_smil_mv.results.nwb_export import export_nwb

    r = small_results()
    path = export_nwb(r, tmp_path / "poses.nwb", subject_id="mouse1", species="Mus musculus")
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        f = io.read()
        pe = f.processing["behavior"]["PoseEstimation"]
        assert pe.source_software == "napari-smil-mv"
        assert list(pe.skeleton.nodes[:]) == JOINTS
        edges = {tuple(int(v) for v in e) for e in pe.skeleton.edges[:]}
        assert edges == {(0, 1), (1, 2), (0, 3), (0, 4), (0, 5)}
        assert sorted(pe.pose_estimation_series) == sorted(JOINTS)
        for j, name in enumerate(JOINTS):
            s = pe.pose_estimation_series[name]
            assert s.unit == "mm" and "calibration" in s.reference_frame
            np.testing.assert_array_equal(s.data[:], r.joints_3d[:, j])
            np.testing.assert_allclose(s.timestamps[:], r.frame_indices / 30.0)
        assert "fitted to data keypoint Nose" in pe.pose_estimation_series["head"].description
        assert f.subject.subject_id == "mouse1"
        assert sorted(f.devices) == r.camera_names
        cam = f.devices["cam2"]
        if hasattr(cam, "intrinsic_matrix"):  # ndx-pose >= 0.4: CalibratedCamera
            np.testing.assert_allclose(cam.intrinsic_matrix[:], r.cameras[1].K)
            np.testing.assert_allclose(cam.rotation_matrix[:], r.cameras[1].R)
    _need("movement")
    from movement.io import load_poses

    ds = load_poses.from_nwb_file(path)
    for j, name in enumerate(JOINTS):
        np.testing.assert_array_equal(
            ds.position.sel(keypoints=name).squeeze("individuals").values, r.joints_3d[:, j]
        )
    assert ds.attrs["fps"] == pytest.approx(30.0)


def test_nwb_needs_a_frame_rate(tmp_path):
    _need("pynwb")
    _need("ndx_pose")
    from napari_smil_mv.results.nwb_export import export_nwb

    with pytest.raises(ValueError, match="no frame rate.*--fps"):
        export_nwb(small_results(fps=None), tmp_path / "x.nwb")
    assert not (tmp_path / "x.nwb").exists()
    export_nwb(small_results(fps=None), tmp_path / "x.nwb", fps=50.0)
    assert (tmp_path / "x.nwb").is_file()


def test_export_cli(tmp_path, capsys):
    _need("movement")
    _need("pynwb")
    _need("ndx_pose")
    res = write_results(small_results(), tmp_path / "r.smilmv.h5")
    nc, nwb = tmp_path / "o.nc", tmp_path / "o.nwb"
    assert main(["export", str(res), "--movement", str(nc), "--nwb", str(nwb)]) == 0
    assert nc.is_file() and nwb.is_file()
    assert "movement dataset" in capsys.readouterr().out
    assert main(["export", str(res), "--movement", str(nc)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["export", str(res)]) == 2
    assert "nothing to export" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "missing.smilmv.h5"), "--nwb", str(tmp_path / "n.nwb")]) == 2
    assert "not found" in capsys.readouterr().err
    nofps = write_results(small_results(fps=None), tmp_path / "nofps.smilmv.h5")
    assert main(["export", str(nofps), "--nwb", str(tmp_path / "n.nwb")]) == 2
    assert "--fps" in capsys.readouterr().err


def test_export_cli_names_the_missing_extra(tmp_path, capsys, monkeypatch):
    res = write_results(small_results(), tmp_path / "r.smilmv.h5")
    monkeypatch.setitem(sys.modules, "movement", None)  # import movement -> ImportError
    monkeypatch.setitem(sys.modules, "movement.io", None)
    monkeypatch.setitem(sys.modules, "pynwb", None)
    assert main(["export", str(res), "--movement", str(tmp_path / "o.nc")]) == 2
    assert "pip install 'napari-smil-mv[movement]'" in capsys.readouterr().err
    assert main(["export", str(res), "--nwb", str(tmp_path / "o.nwb")]) == 2
    assert "pip install 'napari-smil-mv[nwb]'" in capsys.readouterr().err
    assert not (tmp_path / "o.nc").exists() and not (tmp_path / "o.nwb").exists()
