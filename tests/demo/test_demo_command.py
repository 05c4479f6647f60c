"""``napari-smil-mv demo``: the synthetic multi-camera demo folder, its consistency, and the napari sample."""

from __future__ import annotations

import argparse
import json

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from napari_smil_mv.cli import COMMAND_MODULES, CommandError  # noqa: E402
from napari_smil_mv.commands import demo as demo_command  # noqa: E402
from napari_smil_mv.demo.pipeline import DEMO_IMAGE_SIZE, DemoEvent, run_demo  # noqa: E402


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="napari-smil-mv")
    demo_command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    assert _cli(["demo", str(out), "--frames", "6", "--cameras", "2", "--seed", "0", "--no-fit"]) == 0
    return out


def test_command_is_registered():
    assert ("demo", "napari_smil_mv.commands.demo") in COMMAND_MODULES


def test_writes_every_file(demo_dir, capsys):
    summary = json.loads((demo_dir / "summary.json").read_text())
    expected = {
        "model/demo_model.pkl",
        "calibration.toml",
        "meshes.npz",
        "keypoints_3d.npz",
        "keypoints_3d.csv",
        "keypoints_2d.npz",
        "animation.npz",
        "preview_cam1.png",
        "preview_cam2.png",
        "summary.json",
        "README.txt",
    }
    assert set(summary["files"]) == expected
    for name in expected:
        assert (demo_dir / name).is_file() and (demo_dir / name).stat().st_size > 0, name
    leftovers = [p.name for p in demo_dir.rglob("*") if ".tmp" in p.name]
    assert not leftovers
    assert summary["n_frames"] == 6 and summary["cameras"] == ["cam1", "cam2"]
    readme = (demo_dir / "README.txt").read_text()
    assert all(name in readme for name in expected)


def test_keypoints_2d_are_the_projections_of_keypoints_3d(demo_dir):
    from napari_smil_mv.cameras import load_calibration

    rig = load_calibration(demo_dir / "calibration.toml")
    k3 = np.load(demo_dir / "keypoints_3d.npz")
    k2 = np.load(demo_dir / "keypoints_2d.npz")
    assert list(k2["camera_names"]) == rig.names
    assert list(k2["joint_names"]) == list(k3["joint_names"])
    points3d = k3["points"]
    assert points3d.shape == (6, len(k3["joint_names"]), 3)
    for c, cam in enumerate(rig):
        assert np.allclose(k2["points"][c], cam.project(points3d), atol=1e-6)
        assert tuple(k2["image_sizes"][c]) == cam.size == DEMO_IMAGE_SIZE
    vis = k2["visible"]
    assert vis.dtype == bool and vis.shape == k2["points"].shape[:3]
    assert 0.3 < vis.mean() < 0.98  # most joints seen, some hidden behind the body
    inside = np.all((k2["points"] >= 0) & (k2["points"] <= np.array(DEMO_IMAGE_SIZE) - 1), axis=-1)
    assert np.all(inside) and not np.any(vis & ~inside)
    # The CSV holds the same numbers.
    table = np.loadtxt(demo_dir / "keypoints_3d.csv", delimiter=",", skiprows=1)
    assert np.allclose(table[:, 1:].reshape(points3d.shape), points3d)
    header = (demo_dir / "keypoints_3d.csv").read_text().splitlines()[0].split(",")
    assert header[:4] == ["frame", "thorax_x", "thorax_y", "thorax_z"]


def test_animation_reproduces_the_meshes(demo_dir):
    from napari_smil_mv.body import SMILModel, load_smil_model
    from napari_smil_mv.body.animation import evaluate_animation, load_animation

    raw = np.load(demo_dir / "animation.npz")
    meshes = np.load(demo_dir / "meshes.npz")
    data = load_smil_model(demo_dir / "model" / "demo_model.pkl")
    n = raw["poses"].shape[0]
    assert raw["trans"].shape == (n, 3) and raw["betas_per_frame"].shape == (n, data.n_betas)
    assert raw["betas"].shape == (data.n_betas,) and np.any(raw["betas"] != 0)
    assert raw["log_beta_scales"].shape == raw["betas_trans"].shape == (n, data.n_joints, 3)
    assert float(raw["fps"]) == 30.0 and raw["mesh_scale"].shape == (n,)
    assert list(raw["joint_names"]) == data.joint_names
    # Re-posing the stored parameters gives the stored ground truth (both through the project's own I/O).
    anim = load_animation(demo_dir / "animation.npz", data)
    again = evaluate_animation(SMILModel(data, dtype=torch.float64), anim)
    assert np.allclose(again.vertices, meshes["vertices"], atol=1e-5)
    assert np.allclose(again.joints, meshes["joints"], atol=1e-5)
    assert np.array_equal(meshes["faces"], data.faces)
    points3d = np.load(demo_dir / "keypoints_3d.npz")["points"]
    assert points3d.dtype == np.float64 and np.allclose(points3d, meshes["joints"], atol=1e-5)


def test_previews_show_the_insect(demo_dir):
    from napari_smil_mv.cameras import load_calibration
    from napari_smil_mv.rendering import preview_header_height

    rig = load_calibration(demo_dir / "calibration.toml")
    meshes = np.load(demo_dir / "meshes.npz")
    mid = json.loads((demo_dir / "summary.json").read_text())["preview_frame"]
    for cam in rig:
        img = cv2.imread(str(demo_dir / f"preview_{cam.name}.png"))[:, :, ::-1]
        top = preview_header_height(DEMO_IMAGE_SIZE[0])  # title band above, legend below the image
        assert img.shape[1] == DEMO_IMAGE_SIZE[0] and img.shape[0] > top + DEMO_IMAGE_SIZE[1]
        img = img[top : top + DEMO_IMAGE_SIZE[1]]
        # Reddish-brown body pixels (R clearly above B) exist and lie on the projected mesh.
        body = (img[:, :, 0].astype(int) - img[:, :, 2] > 60) & (img[:, :, 0] > 80)
        assert body.sum() > 500
        xy = np.rint(cam.project(meshes["vertices"][mid])).astype(int)
        hull = np.zeros(body.shape, np.uint8)
        cv2.fillConvexPoly(hull, cv2.convexHull(xy.astype(np.int32)), 1)
        assert np.mean(hull[body]) > 0.97


def test_refuses_non_empty_folder_then_overwrites(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("user data")
    with pytest.raises(CommandError, match="not empty"):
        _cli(["demo", str(out), "--frames", "2", "--cameras", "1"])
    with pytest.raises(FileExistsError):
        run_demo(out, n_frames=2, n_cameras=1)
    events = list(run_demo(out, n_frames=2, n_cameras=1, overwrite=True))
    assert all(isinstance(e, DemoEvent) for e in events)
    progress = [e.progress for e in events]
    assert progress == sorted(progress) and progress[-1] == 1.0 and events[-1].stage == "done"
    assert (out / "mine.txt").read_text() == "user data"
    assert (out / "preview_cam1.png").is_file()


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="n_frames"):
        run_demo(tmp_path / "a", n_frames=0)
    with pytest.raises(ValueError, match="n_cameras"):
        run_demo(tmp_path / "a", n_cameras=0)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        run_demo(tmp_path / "file")
    assert not (tmp_path / "a").exists()  # nothing written on bad input


def test_demo_body_sample_layers():
    from napari_smil_mv.body import load_smil_model
    from napari_smil_mv.napari.sample_data.demo_body import SAMPLE_FRAMES, make_demo_body_sample

    data = load_smil_model(None)
    layers = make_demo_body_sample()
    assert [t for _, _, t in layers] == ["surface", "points"]
    (verts, faces, values), skw, _ = layers[0]
    n_v = data.n_vertices
    assert verts.shape == (SAMPLE_FRAMES * n_v, 4) and faces.shape == (SAMPLE_FRAMES * data.n_faces, 3)
    assert values.shape == (SAMPLE_FRAMES * n_v,)
    assert np.array_equal(faces[data.n_faces : 2 * data.n_faces], data.faces + n_v)  # per-frame offsets
    assert np.all(verts[n_v : 2 * n_v, 0] == 1)  # frame column
    assert skw["metadata"]["napari_smil_mv"]["role"] == "mesh_world"
    points, pkw, _ = layers[1]
    assert points.shape == (SAMPLE_FRAMES * data.n_joints, 4)
    assert list(pkw["features"]["joint"][: data.n_joints]) == data.joint_names
    assert pkw["metadata"]["napari_smil_mv"]["role"] == "kp3d"
    # (frame, z, y, x): the claws are near the floor z = 0 and the root joint is above it.
    assert points[0, 1] > 0.15 and abs(points[data.joint_names.index("leg_mid_l_claw"), 1]) < 0.06
    layer_cls = pytest.importorskip("napari.layers").Layer
    surface, joints = (layer_cls.create(*t) for t in layers)  # napari accepts the tuples (no viewer needed)
    assert surface.ndim == joints.ndim == 4 and joints.features["part"].nunique() == 4
