"""Animation files, mesh sequences and the ``mesh`` / ``model-info`` commands."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fixtures.body import golden, shared_model, tiny_model_dict
from napari_smil_mv.body import SMILModel, save_smil_model, smil_model_from_dict
from napari_smil_mv.body.animation import evaluate_animation, load_animation, write_animation_npz
from napari_smil_mv.cli import main


def _golden_animation(tmp_path, name="SMILy_STICK"):
    g = golden(name)
    path = write_animation_npz(
        tmp_path / "anim.npz",
        g["poses"],
        betas=g["betas_per_frame"],
        trans=g["trans"],
        log_beta_scales=g["log_beta_scales"],
        betas_trans=g["betas_trans"],
        mesh_scale=g["mesh_scale"],
        fps=30,
    )
    return path, g


def _read_obj(path):
    v, f = [], []
    for line in path.read_text().splitlines():
        if line.startswith("v "):
            v.append([float(x) for x in line.split()[1:]])
        elif line.startswith("f "):
            f.append([int(x) - 1 for x in line.split()[1:]])
    return np.array(v), np.array(f)


def test_animation_round_trip_and_evaluation(tmp_path):
    data = smil_model_from_dict(tiny_model_dict(), source="tiny")
    rng = np.random.default_rng(0)
    poses = 0.3 * rng.standard_normal((4, 5, 3))
    path = write_animation_npz(
        tmp_path / "a.npz",
        poses,
        betas=np.array([0.1, 0.2, -0.3]),
        mesh_scale=np.full(4, 2.0),
        joint_names=data.joint_names,
        fps=25,
    )
    anim = load_animation(path, data)
    assert anim.n_frames == 4 and anim.fps == 25
    np.testing.assert_allclose(anim.betas, np.tile([0.1, 0.2, -0.3], (4, 1)), rtol=1e-6)
    np.testing.assert_allclose(anim.trans, 0.0)
    model = SMILModel(data)
    meshes = evaluate_animation(model, anim, batch_size=3)
    direct = model(poses, betas=anim.betas, mesh_scale=anim.mesh_scale)
    np.testing.assert_allclose(meshes.vertices, direct.vertices.numpy(), atol=1e-6)
    assert meshes.joint_names == data.joint_names


def test_pca_scales_in_animation(tmp_path):
    data = smil_model_from_dict(tiny_model_dict(), source="tiny")
    model = SMILModel(data, dtype=torch.float64)
    poses = np.zeros((2, 5, 3))
    w = np.array([[0.5, -0.5], [1.0, 0.2]])
    anim = load_animation(
        write_animation_npz(tmp_path / "a.npz", poses, log_beta_scales=w, betas_trans=w), data
    )
    meshes = evaluate_animation(model, anim)
    ls, tr = model.pca_scale_trans(w, w)
    direct = model(poses, log_beta_scales=ls, betas_trans=tr)
    np.testing.assert_allclose(meshes.vertices, direct.vertices.numpy(), atol=1e-6)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"poses": np.zeros((3, 4, 3))}, r"'poses' has 4 joints .* expected \(3, 5, 3\)"),
        ({"poses": np.zeros((3, 5))}, r"'poses' has shape \(3, 5\)"),
        (
            {"poses": np.zeros((3, 5, 3)), "betas_per_frame": np.zeros((3, 2))},
            r"shape \(3, 2\).*expected \(3, 3\)",
        ),
        ({"poses": np.zeros((3, 5, 3)), "trans": np.zeros((2, 3))}, r"'trans' has shape \(2, 3\)"),
        ({"poses": np.zeros((3, 5, 3)), "log_beta_scales": np.zeros((3, 4))}, r"'log_beta_scales' has shape"),
        ({"poses": np.zeros((3, 5, 3)), "mesh_scale": np.ones(4)}, r"'mesh_scale' has shape \(4,\)"),
        ({"betas": np.zeros(3)}, r"'poses' is missing"),
    ],
)
def test_animation_validation_errors(tmp_path, arrays, message):
    data = smil_model_from_dict(tiny_model_dict(), source="tiny")
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=message):
        load_animation(path, data)


def test_cli_mesh_matches_golden(tmp_path, capsys):
    anim, g = _golden_animation(tmp_path)
    out = tmp_path / "meshes.npz"
    assert main(["mesh", str(shared_model("SMILy_STICK")), str(anim), "-o", str(out)]) == 0
    with np.load(out) as npz:
        assert np.abs(npz["vertices"] - g["vertices"]).max() < 1e-4
        assert np.abs(npz["joints"] - g["joints"]).max() < 1e-4
        assert npz["faces"].shape == (6019, 3) and npz["joint_names"].shape == (55,)
        assert float(npz["fps"]) == 30
    assert "wrote 8 frames" in capsys.readouterr().out
    # Refuses to overwrite without --overwrite, then succeeds with it.
    assert main(["mesh", str(shared_model("SMILy_STICK")), str(anim), "-o", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["mesh", str(shared_model("SMILy_STICK")), str(anim), "-o", str(out), "--overwrite"]) == 0


def test_cli_mesh_obj_folder(tmp_path):
    anim, g = _golden_animation(tmp_path, "SMILy_Mouse_static_joints")
    folder = tmp_path / "objs"
    assert (
        main(["mesh", str(shared_model("SMILy_Mouse_static_joints")), str(anim), "-o", str(folder), "--obj"])
        == 0
    )
    files = sorted(folder.glob("frame_*.obj"))
    assert len(files) == 8 and (folder / "mesh_sequence.npz").is_file()
    v, f = _read_obj(files[5])
    assert np.abs(v - g["vertices"][5]).max() < 1e-4
    assert f.shape == (17420, 3) and f.min() == 0


def test_cli_mesh_reports_bad_input(tmp_path, capsys):
    data = smil_model_from_dict(tiny_model_dict(), source="tiny")
    model_path = save_smil_model(data, tmp_path / "tiny.pkl")
    anim = tmp_path / "anim.npz"
    np.savez(anim, poses=np.zeros((2, 7, 3)))
    assert main(["mesh", str(model_path), str(anim), "-o", str(tmp_path / "o.npz")]) == 2
    err = capsys.readouterr().err
    assert "'poses' has 7 joints" in err and "Traceback" not in err
    assert main(["mesh", str(model_path), str(anim), "-o", str(tmp_path / "o.txt")]) == 2
    assert "must end in .npz" in capsys.readouterr().err
    assert not (tmp_path / "o.npz").exists()


def test_cli_model_info_text_and_json(capsys):
    path = shared_model("SMILy_STICK")
    assert main(["model-info", str(path)]) == 0
    text = capsys.readouterr().out
    assert "3020 vertices, 6019 triangles" in text and "55, regressed" in text
    assert "scaledirs:    5 components" in text and "0: b_t" in text and "└─ 5: b_a_5" in text
    assert main(["model-info", str(shared_model("SMILy_Mouse_static_joints")), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n_joints"] == 31 and info["static_joint_locs"] is True and info["scaledirs"] is None
    assert info["joints"][4] == {"index": 4, "name": "Ear_L", "parent": 3}
    assert len(info["sha256"]) == 64


def test_cli_model_info_and_mesh_accept_demo(tmp_path, capsys):
    assert main(["model-info", "demo", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["source"] == "<demo model>" and info["n_joints"] == len(info["joints"])
    anim = write_animation_npz(tmp_path / "a.npz", np.zeros((2, info["n_joints"], 3)))
    assert main(["mesh", "demo", str(anim), "-o", str(tmp_path / "m.npz")]) == 0
    with np.load(tmp_path / "m.npz") as npz:
        assert npz["vertices"].shape == (2, info["n_vertices"], 3)
