"""The torch SMIL model: golden outputs, rest pose, gradients, representations, PCA variants, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fixtures.body import MODEL_NAMES, golden, random_params, shared_model, tiny_model_dict
from napari_smil_mv.body import (
    SMILModel,
    load_smil_model,
    matrix_to_rotation_6d,
    smil_model_from_dict,
)
from napari_smil_mv.body.rotations import axis_angle_to_matrix
from napari_smil_mv.body.smil_reference import NaiveSMIL


@pytest.fixture(scope="module")
def tiny():
    return smil_model_from_dict(tiny_model_dict(), source="tiny")


@pytest.fixture(scope="module")
def tiny_static():
    return smil_model_from_dict(tiny_model_dict(static=True), source="tiny-static")


def _call(model, p, **kw):
    t = {k: torch.as_tensor(v, dtype=model.dtype) for k, v in p.items()}
    return model(
        t["pose"], t["betas"], t["log_beta_scales"], t["betas_trans"], t["trans"], t["mesh_scale"], **kw
    )


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_golden_outputs_float32(name):
    model = SMILModel(load_smil_model(shared_model(name)), dtype=torch.float32)
    g = golden(name)
    out = model(
        g["poses"],
        betas=g["betas_per_frame"],
        log_beta_scales=g["log_beta_scales"],
        betas_trans=g["betas_trans"],
        trans=g["trans"],
        mesh_scale=g["mesh_scale"],
    )
    assert out.vertices.dtype == torch.float32 and out.vertices.shape == g["vertices"].shape
    for key in ("vertices", "joints", "vertices_unplaced", "joints_unplaced"):
        err = np.abs(getattr(out, key).numpy() - g[key]).max()
        assert err < 1e-4, f"{name} {key}: max error {err}"
    if model.static_joint_locs:
        torch.testing.assert_close(out.fk_joints, out.joints)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_rest_pose_is_template(name):
    data = load_smil_model(shared_model(name))
    model = SMILModel(data, dtype=torch.float64)
    out = model(torch.zeros(1, data.n_joints, 3, dtype=torch.float64))
    np.testing.assert_allclose(out.vertices_unplaced[0].numpy(), data.v_template, atol=1e-6)
    if data.static_joint_locs:
        np.testing.assert_allclose(out.joints_unplaced[0].numpy(), data.J, atol=1e-6)
    else:
        np.testing.assert_allclose(
            out.joints_unplaced[0].numpy(), data.J_regressor @ data.v_template, atol=1e-6
        )
    np.testing.assert_allclose(out.vertices[0].numpy(), data.v_template - out.root.numpy(), atol=1e-6)


@pytest.mark.parametrize("static", [False, True])
@pytest.mark.parametrize("propagate", [True, False])
def test_matches_naive_dense_implementation(tiny, tiny_static, static, propagate):
    data = tiny_static if static else tiny
    p = random_params(5, 3, batch=3, seed=4)
    out = _call(SMILModel(data, dtype=torch.float64), p, propagate_scaling=propagate)
    ref = _call(NaiveSMIL(data, dtype=torch.float64), p, propagate_scaling=propagate)
    for a, b in zip((out.vertices, out.joints, out.vertices_unplaced, out.joints_unplaced), ref, strict=True):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)


def test_pose_blend_shapes_match_naive_implementation():
    d = tiny_model_dict()
    d["posedirs"] = 0.02 * np.random.default_rng(3).standard_normal((30, 3, 9 * 4))
    data = smil_model_from_dict(d, source="tiny-posedirs")
    p = random_params(5, 3, batch=2, seed=5)
    out = _call(SMILModel(data, dtype=torch.float64), p)
    ref = _call(NaiveSMIL(data, dtype=torch.float64), p)
    torch.testing.assert_close(out.vertices, ref[0], atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(out.joints, ref[1], atol=1e-10, rtol=1e-10)
    without = _call(SMILModel(smil_model_from_dict(tiny_model_dict(), source="tiny"), dtype=torch.float64), p)
    assert not torch.allclose(out.vertices, without.vertices)


def test_static_model_joints_ignore_shape_and_equal_fk(tiny_static):
    model = SMILModel(tiny_static, dtype=torch.float64)
    pose = torch.zeros(2, 5, 3, dtype=torch.float64)
    betas = torch.tensor([[0.0, 0.0, 0.0], [2.0, -1.0, 1.0]], dtype=torch.float64)
    out = model(pose, betas)
    torch.testing.assert_close(out.joints_unplaced[0], out.joints_unplaced[1])
    torch.testing.assert_close(out.joints_unplaced[0], torch.as_tensor(tiny_static.J))
    assert not torch.allclose(out.vertices_unplaced[0], out.vertices_unplaced[1])


def test_scales_offsets_and_placement_semantics(tiny):
    model = SMILModel(tiny, dtype=torch.float64)
    zero = torch.zeros(1, 5, 3, dtype=torch.float64)
    base = model(zero)
    # The root's own log-scale is never applied.
    ls = zero.clone()
    ls[0, 0] = 0.7
    torch.testing.assert_close(model(zero, log_beta_scales=ls).vertices, base.vertices)
    # An offset on joint 3 moves joint 3 and its child by (x, -y, z), not the other branch.
    bt = zero.clone()
    bt[0, 3] = torch.tensor([0.1, 0.2, 0.3])
    fk = model(zero, betas_trans=bt).joint_transforms[..., 3]
    torch.testing.assert_close(
        fk[0, 3] - base.joint_transforms[0, 3, :, 3], torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64)
    )
    torch.testing.assert_close(fk[0, 1:3], base.joint_transforms[0, 1:3, :, 3])
    # Placement: (x - root) * s + t.
    trans = torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64)
    placed = model(zero, trans=trans, mesh_scale=torch.tensor([2.0], dtype=torch.float64))
    torch.testing.assert_close(
        placed.vertices, (base.vertices_unplaced - base.root[:, None]) * 2.0 + trans[:, None]
    )
    torch.testing.assert_close(
        placed.fk_joints, (base.joint_transforms[..., 3] - base.root[:, None]) * 2 + trans
    )


def test_pose_representations_agree(tiny):
    model = SMILModel(tiny, dtype=torch.float64)
    aa = torch.as_tensor(random_params(5, 3, batch=2)["pose"])
    R = axis_angle_to_matrix(aa)
    a = model(aa).vertices
    torch.testing.assert_close(model(R).vertices, a)
    torch.testing.assert_close(model(matrix_to_rotation_6d(R)).vertices, a)


def test_wrong_shapes_raise(tiny):
    model = SMILModel(tiny)
    with pytest.raises(ValueError, match=r"pose has shape \(2, 4, 3\); expected \(B, 5, 3\)"):
        model(torch.zeros(2, 4, 3))
    with pytest.raises(ValueError, match=r"'betas' has shape \(2, 2\); expected \(2, 3\)"):
        model(torch.zeros(2, 5, 3), betas=torch.zeros(2, 2))
    with pytest.raises(ValueError, match="'trans'"):
        model(torch.zeros(2, 5, 3), trans=torch.zeros(3, 3))
    with pytest.raises(ValueError, match="'mesh_scale'"):
        model(torch.zeros(2, 5, 3), mesh_scale=torch.ones(3))


def test_broadcast_of_shared_parameters(tiny):
    model = SMILModel(tiny, dtype=torch.float64)
    p = random_params(5, 3, batch=2)
    shared = model(
        p["pose"],
        betas=p["betas"][0],
        trans=p["trans"][0],
        mesh_scale=1.5,
        log_beta_scales=p["log_beta_scales"][0],
    )
    full = model(
        p["pose"],
        betas=np.repeat(p["betas"][:1], 2, 0),
        trans=np.repeat(p["trans"][:1], 2, 0),
        mesh_scale=np.full(2, 1.5),
        log_beta_scales=np.repeat(p["log_beta_scales"][:1], 2, 0),
    )
    torch.testing.assert_close(shared.vertices, full.vertices)


def test_pca_scale_trans_formula(tiny):
    model = SMILModel(tiny, dtype=torch.float64)
    w = torch.tensor([[0.5, -1.0], [20.0, 0.0]], dtype=torch.float64)
    ls, tr = model.pca_scale_trans(w, w)
    scale = 1.0 + np.einsum("jck,bk->bjc", tiny.scaledirs, w.numpy())
    np.testing.assert_allclose(ls.numpy(), np.log(np.maximum(scale, 1e-4)))
    np.testing.assert_allclose(tr.numpy(), np.einsum("jck,bk->bjc", tiny.transdirs, w.numpy()) * 0.01)
    assert model.pca_scale_trans(None, None) == (None, None)
    with pytest.raises(ValueError, match=r"'scale_weights' has shape \(1, 3\)"):
        model.pca_scale_trans(torch.zeros(1, 3), None)


def test_float64_and_to(tiny):
    model = SMILModel(tiny)
    p = random_params(5, 3, batch=2)
    out32 = _call(model, p)
    model64 = model.to(torch.float64)
    assert model64.dtype == torch.float64
    out64 = _call(model64, p)
    assert out64.vertices.dtype == torch.float64
    torch.testing.assert_close(out64.vertices.float(), out32.vertices, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("static", [False, True])
@pytest.mark.parametrize("propagate", [True, False])
def test_gradcheck_all_inputs(tiny, tiny_static, static, propagate):
    data = tiny_static if static else tiny
    model = SMILModel(data, dtype=torch.float64)
    p = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in random_params(5, 3, batch=2, seed=7).items()}
    names = list(p)

    for name in names:

        def f(x, name=name):
            kw = dict(p)
            kw[name] = x
            out = model(
                kw["pose"],
                kw["betas"],
                kw["log_beta_scales"],
                kw["betas_trans"],
                kw["trans"],
                kw["mesh_scale"],
                propagate_scaling=propagate,
            )
            return out.vertices, out.joints, out.fk_joints

        x = p[name].clone().requires_grad_(True)
        assert torch.autograd.gradcheck(f, (x,), eps=1e-6, atol=1e-6), name


def test_vertex_blocks_give_identical_values_and_gradients(tiny):
    p = {k: torch.as_tensor(v) for k, v in random_params(5, 3, batch=3, seed=2).items()}
    results = []
    for block_bytes, min_vertices in ((1 << 40, 32), (1, 4)):
        model = SMILModel(tiny, dtype=torch.float64)
        model.block_bytes, model.min_block_vertices = block_bytes, min_vertices
        inputs = {k: v.clone().requires_grad_(True) for k, v in p.items()}
        out = model(**inputs)
        (out.vertices.square().sum() + out.joints.sum()).backward()
        results.append((out.vertices.detach(), [inputs[k].grad for k in p]))
        assert len(model._block_cache[next(iter(model._block_cache))]) == (1 if block_bytes > 1 else 4)
    torch.testing.assert_close(results[0][0], results[1][0])
    for a, b in zip(results[0][1], results[1][1], strict=True):
        torch.testing.assert_close(a, b)


def test_gradcheck_6d_pose_and_pca(tiny):
    model = SMILModel(tiny, dtype=torch.float64)
    d6 = matrix_to_rotation_6d(axis_angle_to_matrix(torch.as_tensor(random_params(5, 3, 2)["pose"])))
    d6 = d6.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: model(x).vertices, (d6,), eps=1e-6, atol=1e-6)
    w = torch.tensor([[0.3, -0.2], [0.1, 0.4]], dtype=torch.float64, requires_grad=True)

    def f(weights):
        ls, tr = model.pca_scale_trans(weights, weights)
        return model(torch.zeros(2, 5, 3, dtype=torch.float64), log_beta_scales=ls, betas_trans=tr).joints

    assert torch.autograd.gradcheck(f, (w,), eps=1e-6, atol=1e-6)
