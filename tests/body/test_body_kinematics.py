"""One forward-kinematics kernel (body/kinematics.py): SMILModel and JointsModel give the numbers of the old paths.

The references below are the two former kernels, copied verbatim: SMILModel's ``_kinematics`` (4×4 homogeneous
frames composed level by level; the shared :func:`napari_smil_mv.body.kinematics.compose_frames` is that code, so
SMILModel's numbers are bit-identical) and ``fitting/kinematics.py``'s ``JointsModel.forward_kinematics`` (3×3
rotations and positions; now the shared kernel too: equal to float64 rounding).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fixtures.body import MODEL_NAMES, shared_model, tiny_model_dict
from napari_smil_mv.body import SMILModel, load_smil_model, smil_model_from_dict
from napari_smil_mv.body.kinematics import JointsModel, KinematicTree, compose_frames, tree_levels
from napari_smil_mv.body.rotations import axis_angle_to_matrix


def old_kinematics(model: SMILModel, rotations, rest, log_scales, offsets, propagate: bool) -> torch.Tensor:
    """SMILModel._kinematics as it was (4x4 homogeneous frames), on the model's buffers."""
    levels, parent_positions = tree_levels(model.parents.cpu().numpy())
    order = torch.as_tensor(np.concatenate(levels))
    inverse = torch.as_tensor(np.argsort(np.concatenate(levels)))
    ends = np.cumsum([lv.size for lv in levels])
    spans = [(int(e - lv.size), int(e)) for lv, e in zip(levels, ends, strict=True)]
    batch, J = rotations.shape[0], model.n_joints
    local_rot = rotations
    if log_scales is not None:
        masked = log_scales * model.nonroot[None, :, None]
        local_rot = local_rot * torch.exp(masked)[:, :, None, :]
        if not propagate:
            parent_log = log_scales.index_select(1, model.parent_index) * model.nonroot[None, :, None]
            local_rot = torch.exp(-parent_log)[:, :, :, None] * local_rot
    parent_rest = rest.index_select(1, model.parent_index) * model.nonroot[None, :, None]
    offset = rest - parent_rest
    if offsets is not None:
        offset = offset + offsets * model.offset_sign
    top = torch.cat([local_rot, offset.unsqueeze(-1)], dim=-1)
    bottom = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=rotations.dtype)
    local = torch.cat([top, bottom.expand(batch, J, 1, 4)], dim=-2)
    local = local.index_select(1, order)
    start, end = spans[0]
    previous = top.index_select(1, order[start:end])
    blocks = [previous]
    for i, (start, end) in enumerate(spans[1:], start=1):
        parent_frames = previous.index_select(1, torch.as_tensor(parent_positions[i]))
        previous = torch.matmul(parent_frames, local[:, start:end])
        blocks.append(previous)
    world = torch.cat(blocks, dim=1) if len(blocks) > 1 else blocks[0]
    return world.index_select(1, inverse)


def old_joints_fk(jm: JointsModel, rotmats, rest_joints, log_beta_scales=None, betas_trans=None):
    """JointsModel.forward_kinematics as it was in fitting/kinematics.py (3x3 frames and positions)."""
    levels, parent_positions = tree_levels(jm.parents)
    levels_t = [torch.as_tensor(lv) for lv in levels]
    parent_local = [None] + [torch.as_tensor(pos) for pos in parent_positions[1:]]
    inverse = torch.as_tensor(np.argsort(np.concatenate(levels)))
    parents_t = torch.as_tensor(np.maximum(jm.parents, 0))
    sign = torch.as_tensor((1.0, -1.0, 1.0), dtype=rotmats.dtype)
    B = rotmats.shape[0]
    if rest_joints.dim() == 2:
        rest_joints = rest_joints.unsqueeze(0).expand(B, -1, -1)
    offsets = rest_joints - rest_joints[:, parents_t]
    if betas_trans is not None:
        offsets = offsets + (betas_trans * sign).expand(B, -1, -1)
    local = rotmats
    if log_beta_scales is not None:
        local = rotmats * torch.exp(log_beta_scales).expand(B, -1, -1).unsqueeze(-2)
    A_levels, p_levels = [], []
    root = levels_t[0]
    A_prev = rotmats[:, root]
    p_prev = rest_joints[:, root]
    A_levels.append(A_prev)
    p_levels.append(p_prev)
    for lv, par in zip(levels_t[1:], parent_local[1:], strict=True):
        A_par = A_prev[:, par]
        p_prev = p_prev[:, par] + torch.einsum("bnij,bnj->bni", A_par, offsets[:, lv])
        A_prev = A_par @ local[:, lv]
        A_levels.append(A_prev)
        p_levels.append(p_prev)
    return torch.cat(A_levels, dim=1)[:, inverse], torch.cat(p_levels, dim=1)[:, inverse]


def _models():
    yield "tiny", smil_model_from_dict(tiny_model_dict(0), source="tiny")
    yield "tiny_static", smil_model_from_dict(tiny_model_dict(1, static=True), source="tiny static")
    yield "demo", load_smil_model(None)


def _inputs(data, batch: int, dtype, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    J, K = data.n_joints, data.n_betas
    return {
        "pose": (0.4 * torch.randn(batch, J, 3, generator=g)).to(dtype),
        "betas": (0.5 * torch.randn(batch, K, generator=g)).to(dtype),
        "log_beta_scales": (0.1 * torch.randn(batch, J, 3, generator=g)).to(dtype),
        "betas_trans": (0.02 * torch.randn(batch, J, 3, generator=g)).to(dtype),
    }


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 2e-5)])
@pytest.mark.parametrize("propagate", [True, False])
def test_smil_kinematics_equal_old_path(dtype, tol, propagate):
    for _name, data in _models():
        model = SMILModel(data, dtype=dtype)
        x = _inputs(data, 5, dtype)
        rot = axis_angle_to_matrix(x["pose"])
        rest = model.rest_joints(x["betas"], 5)
        new = model._kinematics(rot, rest, x["log_beta_scales"], x["betas_trans"], propagate)
        old = old_kinematics(model, rot, rest, x["log_beta_scales"], x["betas_trans"], propagate)
        assert new.shape == old.shape == (5, data.n_joints, 3, 4)
        assert torch.equal(new, old)  # the same operations: identical numbers
        none = model._kinematics(rot, rest, None, None, propagate)
        assert torch.equal(none, old_kinematics(model, rot, rest, None, None, propagate))
        jm = JointsModel.from_model_data(data, dtype=dtype)
        for args in ((x["log_beta_scales"], x["betas_trans"]), (None, None)):
            A, pos = jm.forward_kinematics(rot, rest, *args)
            A_old, pos_old = old_joints_fk(jm, rot, rest, *args)
            scale = float(pos_old.abs().max())
            assert float((A - A_old).abs().max()) <= tol and float((pos - pos_old).abs().max()) <= tol * scale


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_real_models_kinematics_equal_old_path(name):
    data = load_smil_model(shared_model(name))
    model = SMILModel(data, dtype=torch.float64)
    x = _inputs(data, 3, torch.float64, seed=2)
    rot = axis_angle_to_matrix(x["pose"])
    rest = model.rest_joints(x["betas"], 3)
    for propagate in (True, False):
        new = model._kinematics(rot, rest, x["log_beta_scales"], x["betas_trans"], propagate)
        old = old_kinematics(model, rot, rest, x["log_beta_scales"], x["betas_trans"], propagate)
        assert torch.equal(new, old)
    jm = JointsModel.from_model_data(data, dtype=torch.float64)
    A, pos = jm.forward_kinematics(rot, rest, x["log_beta_scales"], x["betas_trans"])
    A_old, pos_old = old_joints_fk(jm, rot, rest, x["log_beta_scales"], x["betas_trans"])
    assert float((A - A_old).abs().max()) <= 1e-12
    assert float((pos - pos_old).abs().max()) <= 1e-12 * float(pos_old.abs().max())


def test_joints_model_and_smil_model_share_the_kernel():
    for _name, data in _models():
        model = SMILModel(data, dtype=torch.float64)
        jm = JointsModel.from_model_data(data, dtype=torch.float64)
        x = _inputs(data, 4, torch.float64, seed=3)
        trans = torch.randn(4, 3, dtype=torch.float64)
        scale = torch.full((4,), 2.5, dtype=torch.float64)
        out = model(**x, trans=trans, mesh_scale=scale)
        rot = axis_angle_to_matrix(x["pose"])
        kp = jm(rot, x["betas"], x["log_beta_scales"], x["betas_trans"], trans, scale)
        assert torch.allclose(kp, out.joints, atol=1e-9)


def test_compose_frames_on_a_chain():
    # joints 0-1-2 in a line, 90 degrees about z at the root: positions rotate, frames compose
    parents = np.array([-1, 0, 1])
    levels, _ = tree_levels(parents)
    assert [lv.tolist() for lv in levels] == [[0], [1], [2]]
    rz = torch.tensor([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]], dtype=torch.float64)
    eye = torch.eye(3, dtype=torch.float64)
    offsets = torch.tensor([[0.0, 0, 0], [1, 0, 0], [1, 0, 0]], dtype=torch.float64)
    local = torch.cat([torch.stack([rz, eye, eye]), offsets[:, :, None]], dim=-1)[None]  # (1, 3, 3, 4)
    tree = KinematicTree(parents)
    world = tree.compose(local)
    assert torch.equal(
        world, compose_frames(local, tree.depth_order, tree.spans, tree.level_parents, tree.depth_inverse)
    )
    assert torch.allclose(
        world[0, :, :, 3], torch.tensor([[0.0, 0, 0], [0, 1, 0], [0, 2, 0]], dtype=torch.float64)
    )
    assert torch.allclose(world[0, 2, :, :3], rz)
    assert [lv.tolist() for lv in tree.levels] == [[0], [1], [2]]
    with pytest.raises(ValueError, match="does not precede"):
        tree_levels(np.array([-1, 2, 0]))
