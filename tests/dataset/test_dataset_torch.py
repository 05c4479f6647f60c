"""The torch Dataset: plan structures and shapes, view sampling, permutation, single view, collate, augmentation,
splits, and reading a file written by the reference tool (built by hand from its documented schema)."""

from __future__ import annotations

import json

import cv2
import h5py
import numpy as np
import pytest
import torch

from napari_smil_mv.dataset import (
    AugmentationConfig,
    MultiViewDataset,
    PreprocessOptions,
    multiview_collate,
    multiview_collate_lists,
    preprocess,
    project_stored,
    read_dataset_info,
    reprojection_report,
    sniff_dataset,
    split_samples,
)
from napari_smil_mv.sessions import load_session


def _stored(path, name, i):
    with h5py.File(path) as h5:
        return h5[name][i]


def _projection_error(x, y):
    """Max px distance between projected 3D keypoints and visible 2D keypoints of one item."""
    kp3d = y["keypoints_3d"] / 1.0
    proj = project_stored(kp3d, y["camera_intrinsics"], y["camera_extrinsics_R"], y["camera_extrinsics_t"])
    s = x["images"][0].shape[0]
    px = y["keypoint_visibility"][..., None] * y["keypoints_2d"][..., ::-1] * s
    ok = (y["keypoint_visibility"] > 0) & y["keypoints_3d_valid"][None]
    return float(np.max(np.linalg.norm(proj - px, axis=-1)[ok]))


def test_item_structure_and_shapes(synthetic_dataset):
    path = synthetic_dataset()
    ds = MultiViewDataset(path, seed=0)
    j = read_dataset_info(path).n_joints
    x, y = ds[0]
    assert len(ds) == 8 and ds.get_max_views_in_dataset() == 3
    assert ds.get_canonical_camera_order() == ["cam1", "cam2", "cam3"]
    assert (
        len(x["images"]) == 3 and x["images"][0].shape == (64, 64, 3) and x["images"][0].dtype == np.float32
    )
    assert 0 <= x["images"][0].min() and x["images"][0].max() <= 1
    assert x["camera_names"] == ["cam1", "cam2", "cam3"] and list(x["camera_indices"]) == [0, 1, 2]
    assert x["num_active_views"] == 3 and x["view_mask"].tolist() == [True] * 3
    assert x["session_name"] == "s1" and x["frame_idx"] == 0 and x["is_multiview"]
    assert x["available_labels"]["keypoint_3d"] and not x["available_labels"]["joint_rot"]
    shapes = {
        "keypoints_2d": (3, j, 2),
        "keypoint_visibility": (3, j),
        "view_valid": (3,),
        "camera_intrinsics": (3, 3, 3),
        "camera_extrinsics_R": (3, 3, 3),
        "camera_extrinsics_t": (3, 3),
        "image_sizes": (3, 2),
        "cam_fov_per_view": (3, 1),
        "cam_rot_per_view": (3, 3, 3),
        "cam_aspect_per_view": (3, 1),
        "keypoints_3d": (j, 3),
        "keypoints_3d_valid": (j,),
        "root_rot": (6,),
        "joint_angles": (j, 6),
    }
    for k, shape in shapes.items():
        assert y[k].shape == shape, k
    np.testing.assert_allclose(y["root_rot"], [1, 0, 0, 0, 1, 0])  # identity in 6D (placeholder pose)
    # world_scale (mm -> m) applied to 3D points and translations alike: projection unchanged
    assert _projection_error(x, y) < 0.5
    assert np.abs(y["keypoints_3d"]).max() < 5  # metres, not millimetres
    cams = ds.cameras(x, y)
    assert [c.name for c in cams] == ["cam1", "cam2", "cam3"] and cams[0].size == (64, 64)
    ds_aa = MultiViewDataset(path, rotation_representation="axis_angle", apply_world_scale=False)
    assert ds_aa[0][1]["joint_angles"].shape == (j, 3) and np.abs(ds_aa[0][1]["keypoints_3d"]).max() > 5


def _check_views_follow_cameras(path, x, y, i):
    """Each returned view carries the stored data of the camera its camera_index names."""
    stored_idx = list(_stored(path, "multiview_keypoints/camera_indices", i))
    kp = _stored(path, "multiview_keypoints/keypoints_2d", i)
    for v, ci in enumerate(x["camera_indices"]):
        np.testing.assert_array_equal(y["keypoints_2d"][v], kp[stored_idx.index(ci)])


def test_more_views_than_requested_subset_and_permutation(synthetic_dataset):
    path = synthetic_dataset()
    ds = MultiViewDataset(path, num_views_to_use=2, seed=3)
    seen = set()
    for _ in range(20):
        x, y = ds[1]
        assert x["num_active_views"] == 2 and len(x["images"]) == 2 and y["keypoints_2d"].shape[0] == 2
        assert list(x["camera_indices"]) == sorted(x["camera_indices"])
        seen.add(tuple(x["camera_indices"]))
        _check_views_follow_cameras(path, x, y, 1)
    assert len(seen) > 1  # random subsets
    first = MultiViewDataset(path, num_views_to_use=2, random_view_sampling=False)
    assert list(first[1][0]["camera_indices"]) == [0, 1]
    perm = MultiViewDataset(path, permute_views=True, seed=1)
    orders = set()
    for _ in range(20):
        x, y = perm[2]
        orders.add(tuple(x["camera_indices"]))
        assert [x["camera_names"][v] for v in range(3)] == [perm.camera_order[c] for c in x["camera_indices"]]
        _check_views_follow_cameras(path, x, y, 2)
        assert _projection_error(x, y) < 0.5
    assert len(orders) > 1
    # reproducible with a seed
    a = [tuple(MultiViewDataset(path, num_views_to_use=2, seed=7)[1][0]["camera_indices"]) for _ in range(2)]
    assert a[0] == a[1]


def test_set_sample_seed_fixes_an_items_draws_regardless_of_history(synthetic_dataset):
    path = synthetic_dataset()
    ds = MultiViewDataset(path, num_views_to_use=2, permute_views=True, augment=True)
    draws = {}
    for item in range(4):
        ds[item]  # history differs between the two passes
        ds.set_sample_seed([5, 0, item])
        x, _ = ds[item]
        draws[item] = (tuple(x["camera_indices"]), x["images"][0].copy())
    fresh = MultiViewDataset(path, num_views_to_use=2, permute_views=True, augment=True)
    for item in (3, 1):
        fresh.set_sample_seed([5, 0, item])  # first call also opens the file without resetting the seed
        x, _ = fresh[item]
        assert tuple(x["camera_indices"]) == draws[item][0]
        np.testing.assert_array_equal(x["images"][0], draws[item][1])
    xb, _ = multiview_collate([ds[2], ds[0]])
    assert xb["sample_index"].tolist() == [2, 0] and xb["sample_index"].dtype == torch.int64
    x, y = ds[0]
    del x["sample_index"]
    assert "sample_index" not in multiview_collate([(x, y)])[0]


def test_fewer_views_than_requested_no_padding_and_collate(fresh_dir, synthetic_session):
    s = load_session(synthetic_session())
    s.views["cam3"].visible[:3] = False
    s.views["cam3"].keypoints[:3] = np.nan
    path = fresh_dir("fewer") / "d.h5"
    preprocess(s, path, options=PreprocessOptions(image_size=32))
    ds = MultiViewDataset(path, num_views_to_use=3)
    x0, y0 = ds[0]
    assert x0["num_active_views"] == 2 and len(x0["images"]) == 2 and y0["keypoints_2d"].shape[0] == 2
    x5, _ = ds[5]
    assert x5["num_active_views"] == 3
    xb, yb = multiview_collate([ds[0], ds[5], ds[1]])
    assert xb["images"].shape == (3, 3, 3, 32, 32) and xb["images"].dtype == torch.float32
    assert xb["view_mask"].tolist() == [[True, True, False], [True, True, True], [True, True, False]]
    assert xb["camera_indices"][0].tolist() == [0, 1, -1]
    assert yb["keypoints_2d"].shape[:2] == (3, 3) and torch.all(yb["keypoints_2d"][0, 2] == 0)
    assert torch.equal(yb["camera_intrinsics"][0, 2], torch.eye(3))
    assert yb["keypoints_3d"].shape[0] == 3 and yb["has_3d_data"].all()
    assert torch.all(xb["images"][0, 2] == 0)
    xl, _ = multiview_collate_lists([ds[0], ds[5]])
    assert xl[0]["images_stacked"].shape == (2, 32, 32, 3)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2, collate_fn=multiview_collate)
    batches = list(loader)
    assert sum(b[0]["images"].shape[0] for b in batches) == len(ds)


def test_single_view_modes(synthetic_dataset):
    path = synthetic_dataset()
    ds = MultiViewDataset(path, return_single_view=True, preferred_view="cam2")
    x, y = ds[0]
    assert x["camera_names"] == ["cam2"] and x["num_active_views"] == 1 and not x["is_multiview"]
    assert y["keypoints_2d"].shape[0] == 1
    np.testing.assert_array_equal(
        y["keypoints_2d"][0], _stored(path, "multiview_keypoints/keypoints_2d", 0)[1]
    )
    with pytest.raises(KeyError, match="cam9"):
        MultiViewDataset(path, return_single_view=True, preferred_view="cam9")
    ex = MultiViewDataset(path, return_single_view=True, expand_all_views=True)
    assert len(ex) == 24
    assert [ex[k][0]["camera_names"][0] for k in range(3)] == ["cam1", "cam2", "cam3"]


def test_augmentation_photometric_shared_and_zoom_keeps_geometry(synthetic_dataset):
    path = synthetic_dataset()
    plain = MultiViewDataset(path, seed=0)[0]
    cfg = AugmentationConfig(noise_std=0.0, blur_prob=0.0, erase_prob=0.0)
    x, y = MultiViewDataset(path, augment=True, augmentation=cfg, seed=0)[0]
    for k in ("keypoints_2d", "camera_intrinsics", "keypoint_visibility"):
        np.testing.assert_array_equal(y[k], plain[1][k])
    assert not np.allclose(x["images"][0], plain[0]["images"][0])
    # the same brightness change in every view: mean shift has one sign for all views
    shifts = [np.mean(a) - np.mean(b) for a, b in zip(x["images"], plain[0]["images"], strict=True)]
    assert np.all(np.sign(shifts) == np.sign(shifts[0]))
    zcfg = AugmentationConfig(photometric=False, zoom=True, zoom_range=(1.15, 1.15))
    xz, yz = MultiViewDataset(path, augment=True, augmentation=zcfg, seed=0)[0]
    assert not np.allclose(yz["camera_intrinsics"], plain[1]["camera_intrinsics"])
    assert _projection_error(xz, yz) < 0.5
    assert yz["keypoint_visibility"].sum() <= plain[1]["keypoint_visibility"].sum()


def test_splits_never_mix_neighbouring_frames(synthetic_dataset):
    names = ["a"] * 100 + ["b"] * 100 + ["c"] * 50
    frames = list(range(100)) * 2 + list(range(50))
    by_s = split_samples(names, frames, by="session", seed=0)
    groups = [{names[i] for i in by_s[k]} for k in ("train", "val", "test")]
    assert all(g for g in groups) and not (
        groups[0] & groups[1] or groups[0] & groups[2] or groups[1] & groups[2]
    )
    tb = split_samples(names, frames, by="time_block", block_frames=10, gap_frames=2, seed=0)
    assert sum(len(v) for v in tb.values()) < 250  # the guard band dropped some
    label = {i: k for k, idx in tb.items() for i in idx}
    for s in "abc":
        idx = [i for i in range(250) if names[i] == s and i in label]
        for i0, i1 in zip(idx, idx[1:], strict=False):
            if label[i0] != label[i1]:
                assert abs(frames[i1] - frames[i0]) > 2
    for k, idx in tb.items():  # whole blocks only (guard band aside)
        blocks = {(names[i], frames[i] // 10) for i in idx}
        for other in set(tb) - {k}:
            assert not blocks & {(names[i], frames[i] // 10) for i in tb[other]}
    with pytest.raises(ValueError, match="time_block"):
        split_samples(["a"] * 5, range(5), by="session")
    ds = MultiViewDataset(synthetic_dataset(), indices=[1, 3])
    assert len(ds) == 2 and ds[1][0]["frame_idx"] == 3


def _reference_file(path, n=3, v=3, j=5, size=32):
    """A file laid out like SMILify's preprocessor writes it (facts 3.8): no conventions stated, mm, 0 = missing."""
    rng = np.random.default_rng(0)
    R = np.stack([cv2.Rodrigues(np.array([0.0, a, 0.0]))[0] for a in (0.0, 0.5, -0.5)])
    t = np.array([[0.0, 0.0, 800.0]] * 3)  # mm
    K = np.array([[60.0, 0, 15.5], [0, 60.0, 15.5], [0, 0, 1]])
    kp3d = rng.normal(0, 30, (n, j, 3))
    kp3d[:, -1] = 0  # missing joint sentinel
    x = np.einsum("vij,nkj->nvki", R, kp3d) + t[None, :, None]
    px = np.einsum("ij,nvkj->nvki", K, x / x[..., 2:3])[..., :2]
    kp2 = (px[..., ::-1] / size).astype(np.float32)
    vis = np.ones((n, v, j), np.float32)
    vis[:, :, -1] = 0
    kp2[:, :, -1] = 0
    with h5py.File(path, "w") as h5:
        img = h5.create_group("multiview_images")
        jpeg = cv2.imencode(".jpg", np.full((size, size, 3), 128, np.uint8))[1]
        for k in range(v):
            d = img.create_dataset(f"image_jpeg_view_{k}", (n,), dtype=h5py.vlen_dtype(np.uint8))
            for i in range(n):
                d[i] = jpeg
        img["view_mask"] = np.ones((n, v), bool)
        g = h5.create_group("multiview_keypoints")
        g["keypoints_2d"], g["keypoint_visibility"] = kp2, vis
        g["camera_indices"] = np.tile(np.array([2, 0, 1], np.int32), (n, 1))  # slots are not cameras
        g["camera_intrinsics"] = np.tile(K, (n, v, 1, 1)).astype(np.float32)
        g["camera_extrinsics_R"] = np.tile(R, (n, 1, 1, 1)).astype(np.float32)
        g["camera_extrinsics_t"] = np.tile(t, (n, 1, 1)).astype(np.float32)
        g["image_sizes"] = np.full((n, v, 2), size, np.int32)
        g["keypoints_3d"] = kp3d.astype(np.float32)
        p = h5.create_group("parameters")
        p["global_rot"], p["joint_rot"] = np.zeros((n, 3), np.float32), np.zeros((n, j, 3), np.float32)
        p["betas"], p["trans"] = np.zeros((n, 4), np.float32), np.zeros((n, 3), np.float32)
        a = h5.create_group("auxiliary")
        a["session_name"] = np.array([b"sess"] * n)
        a["frame_idx"] = np.arange(n, dtype=np.int64) * 10
        a["num_views"] = np.full(n, v, np.int64)
        a["has_ground_truth_betas"] = np.zeros(n, bool)
        a["has_3d_data"] = np.ones(n, bool)
        a["camera_names"] = np.array([b"top,back,side"] * n)
        m = h5.create_group("metadata").attrs
        m["dataset_type"], m["is_multiview"], m["max_views"] = "sleap_multiview", True, v
        m["canonical_camera_order"] = json.dumps(["back", "side", "top"])
        m["target_resolution"], m["has_camera_parameters"], m["has_3d_keypoints"] = size, True, True
        m["crop_mode"], m["n_joints"] = "centred", j


def test_reads_a_reference_tool_file(fresh_dir):
    path = fresh_dir("ref") / "smilify.h5"
    _reference_file(path)
    assert sniff_dataset(path)
    info = read_dataset_info(path)
    assert not info.is_ours and info.schema_version == 0
    assert info.world_scale == 0.001 and info.world_scale_source == "heuristic"
    assert any("(0, 0, 0)" in a for a in info.assumptions)
    ds = MultiViewDataset(path)
    x, y = ds[1]
    assert x["camera_names"] == ["top", "back", "side"] and list(x["camera_indices"]) == [2, 0, 1]
    assert [ds.camera_order[c] for c in x["camera_indices"]] == x["camera_names"]
    assert x["frame_idx"] == 10 and x["images"][0].shape == (32, 32, 3)
    assert y["keypoints_3d_valid"].tolist() == [True] * 4 + [False]
    assert _projection_error(x, y) < 1e-3
    rep = reprojection_report(path)
    assert np.nanmax(rep.errors) < 1e-3 and set(rep.per_camera()) == {"back", "side", "top"}
