"""The procedural demo insect: SMIL file layout, closed surface, skinning, shape directions, motion."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from napari_smil_mv.body.demo_model import (
    SHAPE_DIRECTIONS,
    SHAPE_STEPS,
    build_demo_model_dict,
    demo_model_bytes,
    demo_motion,
    write_demo_model,
)


@pytest.fixture(scope="module")
def model() -> dict:
    return build_demo_model_dict()


def _index(d: dict) -> dict[str, int]:
    return {n: i for i, n in enumerate(d["J_names"])}


def test_layout_matches_a_smil_file(model):
    v, f = model["v_template"], model["f"]
    n_v, n_j, k = len(v), len(model["J_names"]), model["shapedirs"].shape[2]
    assert v.dtype == np.float64 and v.shape == (n_v, 3) and 2000 <= n_v <= 5000
    assert f.dtype == np.int32 and f.shape[1] == 3 and f.min() == 0 and f.max() == n_v - 1
    assert model["weights"].shape == (n_v, n_j)
    assert model["J_regressor"].shape == (n_j, n_v) and isinstance(model["J_regressor"], np.ndarray)
    assert model["J"].shape == (n_j, 3)
    assert model["kintree_table"].dtype == np.int32 and model["kintree_table"].shape == (2, n_j)
    assert np.array_equal(model["kintree_table"][1], np.arange(n_j))
    assert model["shapedirs"].shape == (n_v, 3, k) and k >= 3
    assert model["posedirs"].shape == (0,)
    assert model["scaledirs"].shape == model["transdirs"].shape == (k, n_j, 3)
    assert model["shape_cov"].shape == (k, k) and np.all(np.linalg.eigvalsh(model["shape_cov"]) > 0)
    assert model["shape_mean_betas"].shape == (k,)
    assert model["static_joint_locs"] is False
    assert (model["bs_style"], model["bs_type"]) == ("lbs", "lrotmin")
    assert model["shapedirs_names"] == list(SHAPE_DIRECTIONS)
    sym = model["sym_verts"]
    assert sym.dtype == np.int64 and len(sym) > 10 and np.all(np.abs(v[sym, 1]) < 1e-9)


def test_skeleton_has_many_joints_and_segmented_legs(model):
    names, parents = model["J_names"], model["kintree_table"][0]
    assert len(names) >= 20 and len(set(names)) == len(names)
    assert parents[0] == -1 and all(0 <= parents[i] < i for i in range(1, len(names)))
    idx = _index(model)
    legs = [f"leg_{p}_{s}" for p in ("front", "mid", "hind") for s in "lr"]
    for leg in legs:
        chain = [f"{leg}_{seg}" for seg in ("coxa", "femur", "tibia", "tarsus", "claw")]
        assert parents[idx[chain[0]]] == idx["thorax"]
        for parent, child in zip(chain, chain[1:], strict=False):
            assert parents[idx[child]] == idx[parent], f"{child} should hang from {parent}"
    for side in "lr":
        assert parents[idx[f"antenna_{side}_1"]] == idx["head"]
    assert parents[idx["abdomen_1"]] == idx["thorax"]
    # Axes like SMILy_STICK: long axis x (head in front), left legs at +y, claws below the body.
    joints = model["J"]
    assert joints[idx["head"], 0] > 0 > joints[idx["abdomen_tip"], 0]
    assert joints[idx["leg_mid_l_claw"], 1] > 0.2 and joints[idx["leg_mid_r_claw"], 1] < -0.2
    assert joints[idx["leg_mid_l_claw"], 2] < -0.15
    extent = model["v_template"].max(0) - model["v_template"].min(0)
    assert 0.9 < extent[0] < 1.6 and extent[0] > extent[2]


def test_surface_is_closed_and_outward(model):
    v, f = model["v_template"], model["f"].astype(np.int64)
    directed = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    # Every directed edge once and its reverse once: closed 2-manifold, consistently oriented.
    assert len(np.unique(directed, axis=0)) == len(directed)
    undirected, counts = np.unique(np.sort(directed, axis=1), axis=0, return_counts=True)
    assert np.all(counts == 2)
    adj = sp.coo_matrix((np.ones(len(undirected)), tuple(undirected.T)), shape=(len(v), len(v)))
    n_comp, label = connected_components(adj, directed=False)
    assert n_comp == 9  # body, 2 antennae, 6 legs: a union of closed tubes
    tri = v[f]
    signed = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])) / 6.0
    for c in range(n_comp):
        in_c = label[f[:, 0]] == c
        n_edges = np.sum(label[undirected[:, 0]] == c)
        assert np.sum(label == c) - n_edges + in_c.sum() == 2, "each component is a sphere (Euler char. 2)"
        assert signed[in_c].sum() > 0, f"component {c} has inward-facing triangles"


def test_skinning_weights_and_regressor(model):
    w = model["weights"].astype(np.float64)
    assert np.all(w >= 0) and np.allclose(w.sum(1), 1.0, atol=1e-6)
    nnz = (w > 0).sum(1)
    assert nnz.max() == 2 and np.mean(nnz == 2) > 0.05  # blended near joints, rigid elsewhere
    reg = model["J_regressor"].astype(np.float64)
    assert np.allclose(reg.sum(1), 1.0, atol=1e-6)
    assert np.allclose(reg @ model["v_template"], model["J"], atol=1e-6)
    # Each joint's regressor ring is skinned (at least partly) to that joint or its parent.
    parents = model["kintree_table"][0]
    for j in range(len(reg)):
        ring = np.flatnonzero(reg[j])
        owners = {j, int(parents[j])}
        assert all(owners & set(np.flatnonzero(w[i])) for i in ring)


def test_shape_directions_do_what_they_say(model):
    idx = _index(model)
    v0, sd, reg = model["v_template"], model["shapedirs"], model["J_regressor"].astype(np.float64)

    def shaped(name: str, beta: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        betas = np.zeros(sd.shape[2])
        betas[SHAPE_DIRECTIONS.index(name)] = beta
        v = v0 + sd @ betas
        return v, reg @ v

    j0 = model["J"].astype(np.float64)

    v, j = shaped("body_length")
    head_to_tail = j[idx["head"], 0] - j[idx["abdomen_tip"], 0]
    assert head_to_tail / (j0[idx["head"], 0] - j0[idx["abdomen_tip"], 0]) == pytest.approx(
        1 + SHAPE_STEPS["body_length"], rel=1e-6
    )
    assert np.allclose(v[:, 1:], v0[:, 1:])  # only x changes
    assert np.allclose(j[idx["thorax"]], j0[idx["thorax"]], atol=1e-9)  # the root stays

    v, j = shaped("leg_length")
    for leg in ("front_l", "mid_r", "hind_l"):
        a, b = idx[f"leg_{leg}_coxa"], idx[f"leg_{leg}_claw"]
        ratio = np.linalg.norm(j[b] - j[a]) / np.linalg.norm(j0[b] - j0[a])
        assert ratio == pytest.approx(1 + SHAPE_STEPS["leg_length"], rel=1e-6)
    assert np.allclose(j[idx["head"]], j0[idx["head"]]) and np.allclose(
        j[idx["abdomen_tip"]], j0[idx["abdomen_tip"]]
    )

    v, j = shaped("girth")
    assert np.allclose(j, j0, atol=1e-9)  # thicker tubes, same skeleton
    mid = np.flatnonzero(reg[idx["abdomen_2"]])
    assert np.linalg.norm(v[mid] - j[idx["abdomen_2"]], axis=1).mean() / np.linalg.norm(
        v0[mid] - j0[idx["abdomen_2"]], axis=1
    ).mean() == pytest.approx(1 + SHAPE_STEPS["girth"], rel=1e-6)

    v, j = shaped("antenna_length")
    a, b = idx["antenna_r_1"], idx["antenna_r_tip"]
    assert np.linalg.norm(j[b] - j[a]) / np.linalg.norm(j0[b] - j0[a]) == pytest.approx(
        1 + SHAPE_STEPS["antenna_length"], rel=1e-6
    )
    assert np.allclose(j[idx["leg_mid_l_claw"]], j0[idx["leg_mid_l_claw"]])


def test_mirror_symmetric(model):
    from scipy.spatial import cKDTree

    v = model["v_template"]
    dist, _ = cKDTree(v).query(v * (1.0, -1.0, 1.0))
    assert dist.max() < 1e-9
    idx = _index(model)
    assert np.allclose(model["J"][idx["leg_hind_l_tibia"]] * (1, -1, 1), model["J"][idx["leg_hind_r_tibia"]])


def test_deterministic_bytes_and_seeded_variants():
    a, b = demo_model_bytes(), demo_model_bytes()
    assert a == b
    assert demo_model_bytes(3) == demo_model_bytes(3) != a
    other = build_demo_model_dict(3)
    assert other["J_names"] == build_demo_model_dict()["J_names"]


def test_pkl_round_trip_and_overwrite(tmp_path, model):
    from napari_smil_mv.body import load_smil_model

    path = write_demo_model(tmp_path / "demo.pkl")
    with open(path, "rb") as fh:
        raw = pickle.load(fh, encoding="latin1")  # how SMILify reads model files
    assert sorted(raw) == sorted(model)
    for key, value in model.items():
        if isinstance(value, np.ndarray):
            assert np.array_equal(raw[key], value) and raw[key].dtype == value.dtype, key
        else:
            assert raw[key] == value, key
    loaded = load_smil_model(path)
    assert loaded.joint_names == model["J_names"] and loaded.n_betas == 4 and not loaded.static_joint_locs
    assert np.array_equal(loaded.v_template, model["v_template"])
    with pytest.raises(FileExistsError, match="overwrite"):
        write_demo_model(path)
    write_demo_model(path, seed=1, overwrite=True)
    assert path.read_bytes() == demo_model_bytes(1)
    assert [p.name for p in tmp_path.iterdir()] == ["demo.pkl"]  # no temporary files left behind


def test_default_model_loader_and_rest_pose():
    torch = pytest.importorskip("torch")
    from napari_smil_mv.body import SMILModel, load_smil_model

    data = load_smil_model(None)
    assert data.n_joints == 42 and data.source == "<demo model>"
    model = SMILModel(data, dtype=torch.float64)
    out = model(torch.zeros(1, data.n_joints, 3))
    # Identity pose: the template itself (the root keypoint is at the origin, so placement is a no-op).
    assert np.allclose(out.vertices[0].numpy(), data.v_template, atol=1e-9)
    assert np.allclose(out.joints[0].numpy(), data.J, atol=1e-6)


def test_demo_motion_walks(model):
    torch = pytest.importorskip("torch")
    from napari_smil_mv.body import SMILModel, load_smil_model

    motion = demo_motion(60, model)
    n_j = len(model["J_names"])
    assert motion["pose"].shape == (60, n_j, 3) and motion["trans"].shape == (60, 3)
    assert motion["betas"].shape == (4,) and np.array_equal(motion["mesh_scale"], np.ones(60))
    short = demo_motion(6, model)
    assert np.allclose(short["pose"], motion["pose"][:6]) and np.allclose(short["trans"], motion["trans"][:6])
    again = demo_motion(60, model)
    assert all(np.array_equal(again[k], motion[k]) for k in ("pose", "trans", "betas", "mesh_scale"))

    data = load_smil_model(None)
    out = SMILModel(data, dtype=torch.float64)(
        torch.as_tensor(motion["pose"]),
        betas=torch.as_tensor(motion["betas"]),
        trans=torch.as_tensor(motion["trans"]),
        mesh_scale=torch.as_tensor(motion["mesh_scale"]),
    )
    verts, joints = out.vertices.numpy(), out.joints.numpy()
    lowest = verts[:, :, 2].min(1)
    assert np.all(lowest > -0.02) and np.all(lowest < 0.03)  # standing on the floor z = 0
    assert np.linalg.norm(joints[-1, 0, :2] - joints[0, 0, :2]) > 0.3  # travels
    idx = _index(model)
    claws = [idx[f"leg_{p}_{s}_claw"] for p in ("front", "mid", "hind") for s in "lr"]
    claw_z = joints[:, claws, 2]
    # Tripod gait: at any frame some legs are lifted while at least three stay near the ground.
    assert claw_z.max() > 0.08
    assert np.all(np.sort(claw_z, axis=1)[:, 2] < 0.05)
    tripod_a = [0, 3, 4]  # front_l, mid_r, hind_l in the order above
    lifted_a = claw_z[:, tripod_a].mean(1) > claw_z[:, [1, 2, 5]].mean(1) + 0.01
    lifted_b = claw_z[:, [1, 2, 5]].mean(1) > claw_z[:, tripod_a].mean(1) + 0.01
    assert lifted_a.any() and lifted_b.any() and not np.any(lifted_a & lifted_b)
    # Antennae move relative to the head.
    ant = joints[:, idx["antenna_l_tip"]] - joints[:, idx["head"]]
    assert np.ptp(np.linalg.norm(ant - ant.mean(0), axis=1)) > 0.01


def test_demo_motion_rejects_other_models():
    model = build_demo_model_dict()
    model = dict(model, J_names=[f"joint_{i}" for i in range(len(model["J_names"]))])
    with pytest.raises(KeyError, match="demo model only"):
        demo_motion(3, model)
    with pytest.raises(ValueError, match="n_frames"):
        demo_motion(0, build_demo_model_dict())
