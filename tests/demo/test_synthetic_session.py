"""The synthetic demo session (make-demo-session): layout, round trip through the real readers, ground truth."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from napari_smil_mv.demo.synthetic_scene import first_surface_distance, node_visibility
from napari_smil_mv.demo.synthetic_session import (
    DATA_EDGES,
    DATA_NODES,
    iter_write_synthetic_session,
    write_synthetic_session,
)
from napari_smil_mv.sessions import JointMap, calibration_qc, load_session, load_sessions
from napari_smil_mv.sessions.ground_truth import read_ground_truth

SMALL = {"n_cameras": 3, "n_frames": 8, "image_size": (160, 120)}
NODES = [n for n, _ in DATA_NODES]


@pytest.fixture(scope="module")
def noisy(tmp_path_factory):
    return write_synthetic_session(tmp_path_factory.mktemp("noisy") / "session", seed=3, **SMALL)


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    return write_synthetic_session(tmp_path_factory.mktemp("clean") / "session", seed=3, noise_px=0, **SMALL)


def _slp_arrays(folder, cam):
    import sleap_io as sio

    labels = sio.load_slp(str(folder / cam / f"{cam}.slp"), open_videos=False)
    return labels.numpy(untracked=False, return_confidence=True)  # (F, 1, N, 3): x, y, score


def test_layout_and_load_session(noisy):
    names = sorted(p.name for p in noisy.iterdir())
    assert names == [
        "README.txt",
        "calibration.toml",
        "cam1",
        "cam2",
        "cam3",
        "ground_truth.npz",
        "joint_lookup.csv",
        "points3d.h5",
        "session.toml",
    ]
    assert not [p for p in noisy.parent.iterdir() if p.name.startswith(".")]  # no temporary folders left
    s = load_session(noisy)
    gt = read_ground_truth(noisy)
    assert s.camera_names == gt.camera_names == ["cam1", "cam2", "cam3"]
    assert s.units == gt.units == "mm" and s.rig.units == "mm"
    assert s.skeleton.nodes == NODES and len(s.skeleton.nodes) == 19
    assert {(NODES[a], NODES[b]) for a, b in s.skeleton.edges} == set(DATA_EDGES)
    assert s.n_frames == 8 and list(s.frame_indices) == list(range(8)) and s.animal_names == ["insect"]
    assert s.points3d_source == "points3d.h5"
    for cam, ref in zip(s.rig, gt.rig, strict=True):
        assert cam.isclose(ref, atol=1e-12) and cam.size == (160, 120)
    # Realistic cameras: 300-500 mm away, principal points off-centre, distortion on some cameras only.
    dist = np.linalg.norm(s.rig.centers - gt["points3d"].reshape(-1, 3).mean(0), axis=1)
    assert np.all((dist > 300) & (dist < 500))
    assert np.all(np.abs(gt["K"][:, :2, 2] - [79.5, 59.5]).max(axis=1) > 0.1)
    assert gt["dist"][0].any() and not gt["dist"][1].any()
    # The insect is 60-80 mm long (mesh_scale converts model units to mm).
    body = gt["joints3d"][0, [gt.joint_names.index("head"), gt.joint_names.index("abdomen_tip")]]
    assert 40 < np.linalg.norm(body[0] - body[1]) < 80 and 55 <= gt["mesh_scale"][0] <= 65
    for cam in s.camera_names:
        video = s.views[cam].video
        assert video.exists and video.shape == (8, 120, 160, 3)
    assert load_sessions(noisy).joint_map is not None


def test_videos_show_the_insect_under_its_keypoints(noisy):
    import sleap_io as sio

    from napari_smil_mv.rendering import textured_background

    gt = read_ground_truth(noisy)
    on_body = []
    for c, cam in enumerate(gt.camera_names):
        video = sio.load_video(str(noisy / cam / f"{cam}.mp4"))
        assert video.shape == (8, 120, 160, 3) and video.fps == pytest.approx(30.0)
        background = textured_background((160, 120), seed=3 * 101 + c).astype(float)
        for f in (0, 7):
            diff = np.abs(video[f].astype(float) - background).max(axis=2)
            assert (diff > 40).mean() > 0.01  # the insect covers part of the image
            for x, y in gt["keypoints_2d_clean"][c, f][gt["visible"][c, f]]:
                xi, yi = int(round(x)), int(round(y))
                on_body.append(diff[max(0, yi - 1) : yi + 2, max(0, xi - 1) : xi + 2].max() > 40)
    assert np.mean(on_body) > 0.9


def test_noise_free_keypoints_are_exact_projections(clean):
    s = load_session(clean)
    gt = read_ground_truth(clean)
    kp = s.keypoints_2d()[:, :, 0]  # (C, T, N, 2)
    vis = gt["visible"]
    assert 0.5 < vis.mean() < 1.0  # some nodes are hidden, most are seen
    for c, cam in enumerate(s.rig):
        proj = cam.project(gt["points3d"])  # (T, N, 2)
        np.testing.assert_allclose(kp[c][vis[c]], proj[vis[c]], atol=1e-9)
        np.testing.assert_allclose(gt["keypoints_2d_clean"][c], proj, atol=1e-9)
    assert np.all(np.isnan(kp[~vis]))
    np.testing.assert_array_equal(s.scores_2d()[:, :, 0][vis], 1.0)
    report = calibration_qc(s)
    assert max(report.median_px.values()) < 1e-6 and report.flagged == []
    # Calibration and 2D agree without the stored 3D points too: triangulate and check.
    tri = s.triangulate()
    np.testing.assert_allclose(tri[:, 0], gt["points3d"], atol=1e-6)
    report = calibration_qc(s, points3d=tri)
    assert max(report.median_px.values()) < 0.01 and report.flagged == []


def test_noisy_keypoints_and_scores(noisy, clean):
    s = load_session(noisy)
    gt, gt0 = read_ground_truth(noisy), read_ground_truth(clean)
    vis = gt["visible"]
    np.testing.assert_array_equal(vis, gt0["visible"])  # visibility does not depend on the noise
    for key in ("poses", "trans", "points3d", "keypoints_2d_clean", "K", "rvec"):
        np.testing.assert_array_equal(gt[key], gt0[key])
    kp = s.keypoints_2d()[:, :, 0]
    np.testing.assert_allclose(kp[vis], gt["keypoints_2d"][vis], atol=1e-9)
    err = np.linalg.norm(kp - gt["keypoints_2d_clean"], axis=-1)[vis]
    assert 0.3 < np.median(err) < 1.5 and err.max() < 8 * 0.7 * np.exp(3 * 0.35)
    scores = s.scores_2d()[:, :, 0][vis]
    assert np.all((scores > 0) & (scores <= 1)) and scores.min() < 0.99
    np.testing.assert_allclose(scores, gt["scores"][vis])
    sigma = gt["noise_sigma_px"][vis]
    assert np.corrcoef(scores, sigma)[0, 1] < -0.9  # lower scores for noisier points
    low = scores < np.median(scores)
    assert err[low].mean() > err[~low].mean()
    report = calibration_qc(s)
    assert all(0.3 < m < 1.5 for m in report.median_px.values()) and report.flagged == []


def test_points3d_and_ground_truth_body(noisy):
    from napari_smil_mv.body import SMILModel, load_smil_model
    from napari_smil_mv.body.animation import evaluate_animation, load_animation

    s = load_session(noisy)
    gt = read_ground_truth(noisy)
    idx = [gt.joint_names.index(j) for _, j in DATA_NODES]
    assert gt.node_joints == [j for _, j in DATA_NODES] and gt.node_names == NODES
    np.testing.assert_allclose(s.points3d[:, 0], gt["joints3d"][:, idx], atol=1e-12)
    np.testing.assert_allclose(gt["points3d"], gt["joints3d"][:, idx])
    model_data = load_smil_model(None)
    assert gt.model_sha256 == model_data.sha256 and gt.model_source == model_data.source
    # The GT file is an animation file of the demo model whose evaluation gives the stored joints (mm).
    anim = load_animation(gt.path, model_data)
    meshes = evaluate_animation(SMILModel(model_data), anim)
    np.testing.assert_allclose(meshes.joints, gt["joints3d"], atol=1e-3)
    np.testing.assert_allclose(gt.animation().poses, anim.poses)
    assert gt["floor_z"] == 0 and gt["joints3d"][..., 2].min() > -1.0  # walking on the floor z = 0
    jm = JointMap.read(noisy / "joint_lookup.csv")
    assert sorted(jm.pairs) == sorted(DATA_NODES)
    assert len((noisy / "joint_lookup.csv").read_text().splitlines()) == 1 + len(gt.joint_names)


def test_hidden_nodes_are_really_behind_the_body(clean):
    """Every node flagged hidden (inside the image) is behind another body part along its camera ray."""
    import torch

    from napari_smil_mv.body import SMILModel, load_smil_model
    from napari_smil_mv.body.animation import evaluate_animation

    gt = read_ground_truth(clean)
    data = load_smil_model(None)
    verts = evaluate_animation(SMILModel(data, dtype=torch.float64), gt.animation()).vertices
    vis = gt["visible"]
    col, row = np.rint(gt["keypoints_2d_clean"]).transpose(3, 0, 1, 2)
    inside = (col >= 0) & (col <= 159) & (row >= 0) & (row <= 119)
    hidden = np.argwhere(inside & ~vis)
    assert len(hidden) > 0
    for c, f, n in hidden:
        cam = gt.rig[int(c)]
        p = cam.world_to_camera(gt["points3d"][f, n][None])
        hit = first_surface_distance(cam.world_to_camera(verts[f].astype(float)), data.faces, p)
        assert hit[0] < np.linalg.norm(p) - 0.3  # some surface lies well in front of it
    assert np.all(~vis[~inside])


def test_visibility_primitives():
    from napari_smil_mv.cameras import Camera

    K = [[100.0, 0, 99.5], [0, 100.0, 49.5], [0, 0, 1]]
    cam = Camera("c", K, np.zeros(5), np.zeros(3), np.zeros(3), (200, 100))
    # A square wall at z = 10 (two triangles) in front of points at z = 20.
    wall = np.array([[-5.0, -5, 10], [5, -5, 10], [5, 5, 10], [-5, 5, 10]])
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    pts = np.array([[0.0, 0, 20], [1, 1, 20], [0.4, 0, 4], [12, 0, 20], [100, 0, 20]])
    dist = first_surface_distance(wall, faces, pts)
    np.testing.assert_allclose(dist[:2], [10.0, 10 * np.linalg.norm([1, 1, 20]) / 20])
    assert dist[2] == pytest.approx(10 * np.linalg.norm([0.4, 0, 4]) / 4)  # the wall is behind: hit beyond
    assert np.isinf(dist[3])  # the ray passes beside the wall
    margin = np.full(len(pts), 1.0)
    vis = node_visibility(cam, wall, faces, pts, margin)
    assert vis.tolist() == [
        False,
        False,
        True,
        True,
        False,
    ]  # hidden, hidden, in front, beside, outside image
    assert node_visibility(cam, wall, faces, pts, np.full(len(pts), 11.0)).tolist()[:2] == [True, True]
    mask = np.zeros((len(pts), 2), dtype=bool)  # no face may hide anything
    assert node_visibility(cam, wall, faces, pts, margin, mask).tolist()[:2] == [True, True]


def test_cli_is_deterministic_and_seed_dependent(noisy, tmp_path, capsys):
    from napari_smil_mv.cli import main

    out = tmp_path / "again"
    args = ["make-demo-session", str(out), "--cameras", "3", "--frames", "8", "--image-size", "160x120"]
    assert main([*args, "--seed", "3"]) == 0
    text = capsys.readouterr().out
    assert "done" in text and "camera cam3" in text
    a, b = read_ground_truth(noisy), read_ground_truth(out)
    assert sorted(a.arrays) == sorted(b.arrays)
    for key in a.arrays:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    for cam in a.camera_names:
        np.testing.assert_array_equal(_slp_arrays(noisy, cam), _slp_arrays(out, cam))
    other = tmp_path / "other"
    assert (
        main(
            [
                "make-demo-session",
                str(other),
                "--cameras",
                "2",
                "--frames",
                "2",
                "--image-size",
                "64x48",
                "--seed",
                "4",
                "--quiet",
            ]
        )
        == 0
    )
    c = read_ground_truth(other)
    assert c["mesh_scale"][0] != a["mesh_scale"][0] and not np.allclose(c["K"][0], a["K"][0])
    # Bad input: one clear line, exit code 2.
    assert main([*args, "--seed", "3"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["make-demo-session", str(tmp_path / "x"), "--image-size", "161x120"]) == 2
    assert "even" in capsys.readouterr().err


def test_atomic_writes_and_overwrite(tmp_path):
    small = {"n_cameras": 2, "n_frames": 2, "image_size": (64, 48)}
    target = tmp_path / "s"
    events = iter_write_synthetic_session(target, **small)
    next(events), next(events)
    events.close()  # stopped half way: nothing is left behind
    assert list(tmp_path.iterdir()) == []
    write_synthetic_session(target, seed=1, **small)
    with pytest.raises(FileExistsError, match="not empty"):
        iter_write_synthetic_session(target, **small)
    seen = []
    write_synthetic_session(target, seed=2, overwrite=True, progress=seen.append, **small)
    assert read_ground_truth(target)["seed"] == 2 and seen[-1].stage == "done" and seen[-1].progress == 1.0
    assert [p.name for p in tmp_path.iterdir()] == ["s"]
    user = tmp_path / "user"
    user.mkdir()
    (user / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not written by make-demo-session"):
        iter_write_synthetic_session(user, overwrite=True, **small)
    assert (user / "notes.txt").read_text() == "mine"
    empty = tmp_path / "empty"
    empty.mkdir()
    write_synthetic_session(empty, **small)
    assert (empty / "ground_truth.npz").is_file()
    for bad in ({"n_cameras": 1}, {"noise_px": -1}, {"image_size": (63, 48)}, {"seed": -2}):
        with pytest.raises(ValueError):
            iter_write_synthetic_session(tmp_path / "bad", **{**small, **bad})


def test_moved_session_still_finds_its_videos(tmp_path):
    import sleap_io as sio

    first = write_synthetic_session(tmp_path / "first", n_cameras=2, n_frames=3, image_size=(64, 48))
    assert sio.load_slp(str(first / "cam1" / "cam1.slp"), open_videos=False).video.filename == str(
        first / "cam1" / "cam1.mp4"
    )  # the absolute path, as SLEAP stores it
    moved = tmp_path / "moved"
    shutil.move(first, moved)
    s = load_session(moved)
    assert all(v.video.exists and str(v.video.path).startswith(str(moved)) for v in s.views.values())
    labels = sio.load_slp(str(moved / "cam1" / "cam1.slp"))
    assert labels.video.exists() and labels.video.shape == (3, 48, 64, 3)


def test_read_ground_truth_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="make-demo-session"):
        read_ground_truth(tmp_path)
    np.savez(tmp_path / "ground_truth.npz", poses=np.zeros((1, 2, 3)))
    with pytest.raises(ValueError, match="missing"):
        read_ground_truth(tmp_path)
