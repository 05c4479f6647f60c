"""Preprocessing sessions into the multi-view HDF5: layout, geometry, view/frame selection, 3D, safety, resume."""

from __future__ import annotations

import threading
import warnings

import h5py
import numpy as np
import pytest

from _dataset_fixtures import (
    fresh_dir,
    preprocess_real_mouse_session,
    shared_path,
    synthetic_dataset,
    synthetic_session,
)
from napari_smil_mv.dataset import (
    PreprocessOptions,
    iter_preprocess,
    preprocess,
    read_dataset_info,
    reprojection_report,
    sniff_dataset,
)
from napari_smil_mv.sessions import JointMap, load_session

KP = "multiview_keypoints"


@pytest.mark.parametrize("mode", ["default", "centred", "bbox_crop"])
def test_layout_and_reprojection_synthetic(mode):
    path = synthetic_dataset(crop_mode=mode, size=64)
    assert sniff_dataset(path)
    info = read_dataset_info(path)
    assert info.is_ours and not info.assumptions
    assert (info.n_samples, info.max_views, info.image_size) == (8, 3, 64)
    assert info.canonical_camera_order == ["cam1", "cam2", "cam3"]
    assert info.world_units == "mm" and info.world_scale == 0.001 and info.world_scale_source == "units"
    with h5py.File(path) as h5:
        j = info.n_joints
        assert h5[f"{KP}/keypoints_2d"].shape == (8, 3, j, 2)
        assert h5[f"{KP}/keypoint_visibility"].shape == (8, 3, j)
        assert h5[f"{KP}/camera_intrinsics"].shape == (8, 3, 3, 3)
        assert h5[f"{KP}/keypoints_3d"].shape == (8, j, 3)
        assert h5["parameters/joint_rot"].shape == (8, j, 3)
        assert h5["multiview_images/image_jpeg_view_2"].shape == (8,)
        np.testing.assert_array_equal(h5[f"{KP}/camera_indices"][0], [0, 1, 2])
        np.testing.assert_array_equal(h5[f"{KP}/image_sizes"][0], [[64, 64]] * 3)
        assert h5["auxiliary/camera_names"][0] == b"cam1,cam2,cam3"
        np.testing.assert_array_equal(h5["auxiliary/frame_idx"][()], np.arange(8))
        attrs = h5["metadata"].attrs
        assert attrs["dataset_type"] == "sleap_multiview" and attrs["crop_mode"] == mode
        assert attrs["smilmv_schema_version"] == 1 and len(attrs["body_model_sha256"]) == 64
        assert "normalised" in attrs["keypoint_convention"] and "removed" in attrs["distortion_handling"]
        # the original distortion is kept for reference; some synthetic cameras have one
        assert np.any(h5[f"{KP}/distortion_coefficients"][()] != 0)
        boxes = h5[f"{KP}/crop_box"][()]
        if mode != "default":
            np.testing.assert_allclose(boxes[..., 2], boxes[..., 3])  # square crops
        jpeg = h5["multiview_images/image_jpeg_view_0"][0]
        import cv2

        img = cv2.imdecode(np.asarray(jpeg), cv2.IMREAD_COLOR)
        assert img.shape == (64, 64, 3) and img.std() > 5  # the rendered insect, not a blank frame
    rep = reprojection_report(path)
    finite = rep.errors[np.isfinite(rep.errors)]
    assert finite.size > 100
    assert finite.max() < 0.5  # K [R | t] maps the stored 3D points onto the stored 2D keypoints (px)


def _session_with_gaps():
    """The synthetic session with camera cam3 blind on frames 0-2 and cam2 blind on frame 1."""
    s = load_session(synthetic_session())
    for cam, frames in (("cam3", [0, 1, 2]), ("cam2", [1])):
        v = s.views[cam]
        v.visible[frames] = False
        v.keypoints[frames] = np.nan
    return s


def test_min_views_frame_skip_max_frames():
    out = fresh_dir("views") / "d.h5"
    stats = preprocess(_session_with_gaps(), out, options=PreprocessOptions(image_size=32, min_views=2))
    with h5py.File(out) as h5:
        nv = h5["auxiliary/num_views"][()]
        frames = h5["auxiliary/frame_idx"][()]
        np.testing.assert_array_equal(frames, [0, 2, 3, 4, 5, 6, 7])  # frame 1 has one camera left
        np.testing.assert_array_equal(nv, [2, 2, 3, 3, 3, 3, 3])
        assert h5["auxiliary/camera_names"][0] == b"cam1,cam2"
        np.testing.assert_array_equal(h5[f"{KP}/camera_indices"][0], [0, 1, -1])
        np.testing.assert_array_equal(h5["multiview_images/view_mask"][0], [True, True, False])
        assert len(h5["multiview_images/image_jpeg_view_2"][0]) == 0
    assert stats["frames_below_min_views"] == 1 and stats["processed_samples"] == 7
    out2 = fresh_dir("skip") / "d.h5"
    preprocess(
        _session_with_gaps(),
        out2,
        options=PreprocessOptions(image_size=32, min_views=3, frame_skip=2, max_frames_per_session=2),
    )
    with h5py.File(out2) as h5:
        # frames 3..7 have all three cameras: every 2nd of them, at most 2
        np.testing.assert_array_equal(h5["auxiliary/frame_idx"][()], [3, 5])
        assert h5["metadata"].attrs["max_views"] == 3


def test_3d_outliers_and_missing_joints():
    s = load_session(synthetic_session())
    jm = JointMap.read(synthetic_session() / "joint_lookup.csv")
    node = s.skeleton.nodes.index(jm.pairs[0][0])
    s.points3d[2, 0, node] = s.points3d[2, 0, node] + 5000.0  # far outlier on frame 2
    s.points3d[4, 0, node] = np.nan  # missing on frame 4
    out = fresh_dir("out3d") / "d.h5"
    stats = preprocess(s, out, joint_map=jm, options=PreprocessOptions(image_size=32))
    from napari_smil_mv.body import load_smil_model

    j = load_smil_model(None).joint_names.index(jm.pairs[0][1])
    with h5py.File(out) as h5:
        valid = h5[f"{KP}/keypoints_3d_valid"][()]
        kp3d = h5[f"{KP}/keypoints_3d"][()]
        vis = h5[f"{KP}/keypoint_visibility"][()]
    assert valid[0, j] and not valid[2, j] and not valid[4, j]
    np.testing.assert_array_equal(kp3d[2, j], 0) and np.testing.assert_array_equal(kp3d[4, j], 0)
    assert np.all(vis[2, :, j] == 0)  # the outlier's 2D keypoints are hidden in every view
    assert stats["total_outlier_keypoints_filtered"] >= 1 and stats["samples_with_outliers_filtered"] >= 1
    assert not np.all(valid == 0)


def test_existing_output_is_never_overwritten():
    out = fresh_dir("exists") / "d.h5"
    out.write_bytes(b"user data")
    with pytest.raises(FileExistsError, match="--overwrite"):
        preprocess(synthetic_session(), out, options=PreprocessOptions(image_size=32))
    assert out.read_bytes() == b"user data"
    preprocess(synthetic_session(), out, options=PreprocessOptions(image_size=32), overwrite=True)
    assert sniff_dataset(out)


def _read_all(path):
    with h5py.File(path) as h5:
        out = {}
        h5.visititems(lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None)
        attrs = dict(h5["metadata"].attrs)
    return out, attrs


def test_interrupt_and_resume_gives_the_same_file():
    opt = PreprocessOptions(image_size=32, crop_mode="bbox_crop", chunk_size=2)
    ref = fresh_dir("ref") / "d.h5"
    preprocess(synthetic_session(), ref, options=opt)
    out = fresh_dir("resume") / "d.h5"
    gen = iter_preprocess(synthetic_session(), out, options=opt)
    for ev in gen:
        if ev.stage == "progress":
            break
    gen.close()  # interrupted (a closed generator is what Ctrl-C / a cancelled widget leaves)
    partial = out.with_name(out.name + ".partial")
    journal = out.with_name(out.name + ".partial.journal")
    assert partial.exists() and journal.exists() and not out.exists()
    with h5py.File(partial, "r+") as h5:  # a crash after writing a chunk but before journaling it
        for name in ("multiview_keypoints/keypoints_2d", "multiview_images/image_jpeg_view_0"):
            ds = h5[name]
            ds.resize(ds.shape[0] + 3, axis=0)
    # another option: refuse to resume, say how to discard
    with pytest.raises(ValueError, match="restart"):
        preprocess(synthetic_session(), out, options=PreprocessOptions(image_size=48, chunk_size=2))
    stages = [ev for ev in iter_preprocess(synthetic_session(), out, options=opt)]
    resume = [ev for ev in stages if ev.stage == "resume"]
    assert resume and 1 <= resume[0].done < 8
    assert stages[-1].stage == "done" and not partial.exists() and not journal.exists()
    a, attrs_a = _read_all(ref)
    b, attrs_b = _read_all(out)
    assert sorted(a) == sorted(b)
    for name in a:
        if a[name].dtype == object:
            assert all(bytes(x) == bytes(y) for x, y in zip(a[name], b[name], strict=True)), name
        else:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert attrs_a["summary"] == attrs_b["summary"]


def test_cancel_event_and_restart():
    out = fresh_dir("cancel") / "d.h5"
    cancel = threading.Event()
    events = []
    for ev in iter_preprocess(
        synthetic_session(), out, options=PreprocessOptions(image_size=32, chunk_size=2), cancel=cancel
    ):
        events.append(ev)
        if ev.stage == "progress":
            cancel.set()
    assert events[-1].stage == "cancelled" and events[-1].output.name.endswith(".partial")
    stages = [
        ev.stage
        for ev in iter_preprocess(
            synthetic_session(), out, options=PreprocessOptions(image_size=32, chunk_size=2), restart=True
        )
    ]
    assert "resume" not in stages and stages[-1] == "done"


def test_errors_name_the_problem():
    out = fresh_dir("err") / "d.h5"
    with pytest.raises(ValueError, match="joint map does not fit session .s1."):
        preprocess(synthetic_session(), out, joint_map=JointMap([("nope", "nothing")]))
    with pytest.raises(ValueError, match="min_views"):
        preprocess(synthetic_session(), out, options=PreprocessOptions(min_views=5))
    with pytest.raises(ValueError, match="crop_mode"):
        preprocess(synthetic_session(), out, options=PreprocessOptions(crop_mode="tight"))
    assert not out.exists()


def test_two_sessions_canonical_order_and_units():
    a = load_session(synthetic_session("a", n_cameras=3, n_frames=4))
    b = load_session(synthetic_session("b", n_cameras=2, n_frames=4, seed=1))
    out = fresh_dir("two") / "d.h5"
    preprocess([a, b], out, options=PreprocessOptions(image_size=32))
    info = read_dataset_info(out)
    assert info.canonical_camera_order == ["cam1", "cam2", "cam3"]
    with h5py.File(out) as h5:
        names = h5["auxiliary/session_name"][()]
        assert list(names) == [b"a"] * 4 + [b"b"] * 4
        np.testing.assert_array_equal(h5[f"{KP}/camera_indices"][-1], [0, 1, -1])
    assert np.nanmax(reprojection_report(out).errors) < 0.5
    b.units = "m"  # different known units: stored in metres
    out2 = fresh_dir("two_m") / "d.h5"
    preprocess([a, b], out2, options=PreprocessOptions(image_size=32))
    info2 = read_dataset_info(out2)
    assert info2.world_units == "m" and info2.world_scale == 1.0
    assert np.nanmax(reprojection_report(out2).errors) < 0.5
    b.units = "unknown"
    with pytest.raises(ValueError, match="different length units"):
        preprocess([a, b], fresh_dir("two_u") / "d.h5", options=PreprocessOptions(image_size=32))


def test_real_minimal_session_reprojection():
    """The sleap-anipose mouse session: 4 cameras, side camera calibrated as a copy of top (large error)."""
    out, stats = preprocess_real_mouse_session("real", image_size=64, max_frames_per_session=4, frame_skip=30)
    assert stats["processed_samples"] == 4
    per_cam = reprojection_report(out).per_camera()
    scale = 64 / 1280  # stored px per original px (x)
    for cam in ("back", "mid", "top"):
        assert per_cam[cam]["median"] < 12 * scale * 1.25, per_cam  # ~2-10 px at full resolution
    assert per_cam["side"]["median"] > 3 * max(per_cam[c]["median"] for c in ("back", "mid", "top"))


def test_real_two_animal_slp_session():
    slp = shared_path(
        "external", "sleap-multiview", "cameras", "minimal_session", "min_session_frame_groups.slp"
    )
    model = shared_path("models", "SMILy_Mouse_static_joints.pkl")
    out = fresh_dir("mv") / "d.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = preprocess(slp, out, model=model, joint_map="auto", options=PreprocessOptions(image_size=32))
    assert stats["processed_samples"] == 6  # 3 frames x 2 animals
    with h5py.File(out) as h5:
        animals = sorted(set(h5["auxiliary/animal"][()]))
        assert len(animals) == 2
        assert h5["metadata"].attrs["max_views"] == 8
