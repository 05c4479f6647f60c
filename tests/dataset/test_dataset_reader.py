"""The one dataset reader (dataset/reader.py): layout check, typed accessors, defaults for reference-tool files."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from napari_smil_mv.dataset import read_dataset_info
from napari_smil_mv.dataset.reader import DatasetFile


def test_accessors_match_the_raw_layout(synthetic_dataset):
    path = synthetic_dataset()
    with DatasetFile(path) as ds, h5py.File(path, "r") as raw:
        kp = raw["multiview_keypoints"]
        n, v = ds.n_samples, ds.max_views
        assert ds.info == read_dataset_info(path)
        assert np.array_equal(ds.camera_indices(), kp["camera_indices"][()])
        assert ds.camera_indices().dtype == np.int64 and ds.camera_indices().shape == (n, v)
        assert np.array_equal(ds.view_mask(), raw["multiview_images/view_mask"][()].astype(bool))
        pts, valid = ds.keypoints_3d()
        assert np.array_equal(pts, kp["keypoints_3d"][()].astype(np.float64))
        assert np.array_equal(valid, kp["keypoints_3d_valid"][()])
        sel = np.array([1, 3])
        assert np.array_equal(ds.keypoints_3d(sel)[0], pts[sel]) and ds.camera_indices(sel).shape == (2, v)
        cams = ds.cameras()
        assert cams["K"].shape == (n, v, 3, 3) and cams["t"].shape == (n, v, 3)
        px = ds.keypoints_2d_px()
        vis = kp["keypoint_visibility"][()] > 0
        assert np.isnan(px[~vis]).all() and np.isfinite(px[vis]).all()
        assert ds.texts("session_name")[0] == "s1" and ds.texts("no_such") == [""] * n
        assert ds.keypoint_array("no_such") is None and ds.parameter_array("no_such") is None
        slot = int(np.flatnonzero(ds.view_mask()[0])[0])
        jpeg = ds.image_jpeg(0, slot)
        assert jpeg.dtype == np.uint8 and jpeg[:2].tolist() == [0xFF, 0xD8]  # a JPEG
    with pytest.raises(ValueError, match="closed"):
        ds.keypoint_array("keypoints_2d")


def test_defaults_when_arrays_are_absent(tmp_path):
    path = tmp_path / "bare.h5"
    n, v, j = 2, 3, 4
    with h5py.File(path, "w") as h5:
        h5.create_group("multiview_images")
        g = h5.create_group("multiview_keypoints")
        g["keypoints_2d"] = np.zeros((n, v, j, 2), np.float32)
        g["keypoint_visibility"] = np.ones((n, v, j), np.float32)
        pts = np.ones((n, j, 3))
        pts[:, 0] = 0  # the reference tool's "missing" sentinel
        g["keypoints_3d"] = pts
        h5.create_group("metadata").attrs["is_multiview"] = True
    with DatasetFile(path) as ds:
        assert ds.camera_indices().tolist() == [[0, 1, 2]] * n
        assert ds.view_mask().all() and ds.view_mask().shape == (n, v)
        assert ds.keypoints_3d()[1].tolist() == [[False, True, True, True]] * n
        assert ds.cameras() is None


def test_bad_files_are_named(fresh_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset file not found"):
        DatasetFile(tmp_path / "missing.h5")
    text = tmp_path / "text.h5"
    text.write_text("not hdf5")
    with pytest.raises(ValueError, match="truncated or damaged"):
        DatasetFile(text)
    other = fresh_dir("reader") / "other.h5"
    with h5py.File(other, "w") as h5:
        h5["x"] = np.zeros(3)
    with pytest.raises(ValueError, match=r"other\.h5 is not a multi-view dataset: groups .* are missing"):
        DatasetFile(other)
