"""Levenberg-Marquardt stage: analytic Jacobians, the banded solver, the step algebra, and accuracy on clean data."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from napari_smil_mv.body import load_smil_model
from napari_smil_mv.body.kinematics import JointsModel
from napari_smil_mv.fitting import FitConfig, fit, fit_data_from_session
from napari_smil_mv.fitting.banded import BandedArrowSolver
from napari_smil_mv.fitting.config import legacy_stages
from napari_smil_mv.fitting.jacobian import JacobianEvaluator
from napari_smil_mv.fitting.lm import LevenbergMarquardt, _Layout, exp_so3, hat

F64 = torch.float64


def _models():
    data = load_smil_model(None)  # the demo insect: regressed joints, 4 betas
    regressed = JointsModel.from_model_data(data, dtype=F64)
    static = JointsModel(np.asarray(data.parents), np.asarray(data.J), True, dtype=F64)
    return [("regressed", regressed), ("static", static)]


@pytest.mark.parametrize("isotropic", [True, False])
@pytest.mark.parametrize("kind", ["regressed", "static"])
def test_analytic_jacobians_match_autograd(kind, isotropic):
    jm = dict(_models())[kind]
    g = torch.Generator().manual_seed(1)
    T, J = 2, jm.n_joints
    R = exp_so3(0.6 * torch.randn(T, J, 3, generator=g, dtype=F64))
    betas = 0.5 * torch.randn(max(jm.n_betas, 4), generator=g, dtype=F64)[: jm.n_betas or 4]
    lbs = 0.1 * torch.randn(J, 3, generator=g, dtype=F64)
    if isotropic:  # one scale per joint plus a fixed anisotropy, as BodyParams uses them
        lbs = lbs[:, :1].expand(J, 3) + 0.03 * torch.randn(J, 3, generator=g, dtype=F64)
    bt = 0.05 * torch.randn(J, 3, generator=g, dtype=F64)
    trans = torch.randn(T, 3, generator=g, dtype=F64)
    ms = torch.tensor([1.7, 2.1], dtype=F64)
    jac = JacobianEvaluator(jm)(R, betas, lbs, bt, trans, ms, isotropic=isotropic)
    assert torch.allclose(jac.joints, jm(R, betas, lbs, bt, trans, ms), atol=1e-12)

    def per_frame(full):  # (T, ..., T, ...) autograd Jacobian of independent frames → (T, ..., ...)
        return torch.stack([full[t, :, :, t] for t in range(T)])

    d_rot = torch.autograd.functional.jacobian(
        lambda d: jm(R + hat(d) @ R, betas, lbs, bt, trans, ms), torch.zeros(T, J, 3, dtype=F64)
    )
    assert torch.allclose(per_frame(d_rot), jac.rotation, atol=1e-10)
    p0 = torch.zeros(J, dtype=F64) if isotropic else torch.zeros(J, 3, dtype=F64)
    d_lbs = torch.autograd.functional.jacobian(
        lambda p: jm(R, betas, lbs + (p[:, None] if isotropic else p), bt, trans, ms), p0
    )
    assert torch.allclose(d_lbs, jac.log_beta_scales, atol=1e-10)
    d_bt = torch.autograd.functional.jacobian(
        lambda b: jm(R, betas, lbs, bt + b, trans, ms), torch.zeros(J, 3)
    )
    assert torch.allclose(d_bt.to(F64), jac.betas_trans, atol=1e-10)
    d_scale = torch.autograd.functional.jacobian(lambda s: jm(R, betas, lbs, bt, trans, s.exp()), ms.log())
    assert torch.allclose(per_frame(d_scale), jac.log_scale, atol=1e-10)
    d_betas = torch.autograd.functional.jacobian(lambda b: jm(R, b, lbs, bt, trans, ms), betas)
    if kind == "static":
        assert jac.betas is None and d_betas.abs().max() == 0
    else:
        assert d_betas.abs().max() > 1e-3 and torch.allclose(d_betas, jac.betas, atol=1e-10)


def test_exp_so3_is_exact_for_tiny_and_large_angles():
    v = torch.tensor([[1e-9, -2e-9, 0.5e-9], [0.3, -1.2, 2.0], [0.0, 0.0, 0.0]], dtype=F64)
    R = exp_so3(v)
    assert torch.allclose(R @ R.transpose(1, 2), torch.eye(3, dtype=F64).expand(3, 3, 3), atol=1e-14)
    assert torch.allclose(R[0], torch.eye(3, dtype=F64) + hat(v[0]), atol=1e-17)
    from napari_smil_mv.body import axis_angle_to_matrix

    assert torch.allclose(R[1], axis_angle_to_matrix(v[1]), atol=1e-7)


@pytest.mark.parametrize(
    "T,P,S,banded", [(7, 4, 3, True), (5, 3, 0, True), (6, 2, 4, False), (1, 3, 2, True)]
)
def test_banded_arrow_solver_matches_dense(T, P, S, banded):
    g = torch.Generator().manual_seed(T * 10 + P)
    n = T * P + S
    # A random symmetric positive definite matrix with the block structure of the fit.
    Jm = torch.randn(3 * n, n, generator=g, dtype=F64)
    mask = torch.zeros(n, n, dtype=torch.bool)
    for t in range(T):
        for u in range(T):
            if abs(t - u) <= (2 if banded else 0):
                mask[t * P : (t + 1) * P, u * P : (u + 1) * P] = True
    mask[T * P :, :] = True
    mask[:, T * P :] = True
    H = (Jm.T @ Jm) * mask + n * torch.eye(n, dtype=F64)
    blocks = H[: T * P, : T * P].reshape(T, P, T, P)
    diag = torch.stack([blocks[t, :, t] for t in range(T)])
    sub1 = torch.stack([blocks[t + 1, :, t] for t in range(T - 1)]) if banded and T > 1 else None
    sub2 = torch.stack([blocks[t + 2, :, t] for t in range(T - 2)]) if banded and T > 2 else None
    coupling = H[: T * P, T * P :].reshape(T, P, S)
    solver = BandedArrowSolver(diag, sub1, sub2, coupling, H[T * P :, T * P :])
    rhs = torch.randn(n, generator=g, dtype=F64)
    xf, xs = solver.solve(rhs[: T * P].reshape(T, P), rhs[T * P :])
    expected = torch.linalg.solve(H, rhs)
    assert torch.allclose(torch.cat([xf.reshape(-1), xs]), expected, atol=1e-10)


@pytest.fixture(scope="module")
def lm_problem():
    """A small noisy clip set up for one LM stage (the fit's own initialisation)."""
    from fixtures.fitting import synthetic_clip
    from napari_smil_mv.fitting.optimise import _initialise
    from napari_smil_mv.fitting.params import check_init_params
    from napari_smil_mv.fitting.problem import Problem

    clip = synthetic_clip(n_frames=6)
    rng = np.random.default_rng(0)
    clip.data.keypoints_2d = clip.data.keypoints_2d + rng.normal(0.0, 0.5, clip.data.keypoints_2d.shape)
    config = FitConfig()
    problem = Problem(clip.model, clip.data, config, torch.device("cpu"), F64)
    params, *_ = _initialise(problem, clip.model, clip.data, config, check_init_params(None))
    groups = config.stages[-1].optimise
    return problem, params, config.weights, groups


def test_lm_gradient_curvature_and_steps_are_consistent(lm_problem):
    problem, params, weights, groups = lm_problem
    lm = LevenbergMarquardt(problem, params, weights, groups)
    total, gf, gs, _ = lm.gradient()
    lm.setup()
    lay = _Layout(params, groups)
    assert gf.shape == (lm.T, lay.P_f) and gs.shape == (lay.P_s,)
    # The smoothness bands reproduce the operator S exactly (per joint coordinate: robust IRLS weights differ).
    T, n = lm.T, 3 * lm.J
    d, s1, s2 = lm.smooth.bands()
    probe = torch.eye(T, dtype=F64)[:, None, :].expand(T, n, T).contiguous()
    applied = lm.smooth.apply(probe)  # (T, 3J, T): column k = S e_k, per coordinate
    for c in (0, n // 2, n - 1):
        dense = applied[:, c, :]
        assert torch.allclose(dense.diagonal(), d[:, c]) and torch.allclose(dense.diagonal(1), s1[:, c])
        assert torch.allclose(dense.diagonal(2), s2[:, c]) and torch.allclose(dense, dense.T)
        assert dense.diagonal(3).abs().max() == 0
    # A small step along a random direction: the loss changes by gᵀΔ to first order (the gradient in the
    # increment parameterisation agrees with how steps are applied).
    g = torch.Generator().manual_seed(3)
    df = 1e-6 * torch.randn(gf.shape, generator=g, dtype=F64)
    ds = 1e-6 * torch.randn(gs.shape, generator=g, dtype=F64)
    state = lm._state()
    lm._apply(df, ds)
    up = float(lm.loss()[0])
    lm._restore(state)
    lm._apply(-df, -ds)
    down = float(lm.loss()[0])
    lm._restore(state)
    slope = float((gf * df).sum() + (gs * ds).sum())
    assert (up - down) / 2 == pytest.approx(slope, rel=1e-3)
    # The exact solve satisfies (H + λ diag H) Δ = −g.
    assert lm.factorise(1e-2)
    xf, xs = lm.solve(gf, gs)
    hf, hs = lm.hessian_product(xf, xs)
    assert torch.allclose(hf + 1e-2 * lm.Df * xf, -gf, atol=1e-9 * float(gf.abs().max()))
    assert torch.allclose(hs + 1e-2 * lm.Ds * xs, -gs, atol=1e-9 * float(gf.abs().max()))
    # Iterating lowers the loss monotonically.
    losses = [float(step["total"]) for step in lm.run(4)]
    assert losses[0] < float(total) and losses == sorted(losses, reverse=True)


@pytest.fixture(scope="module")
def clean_session(tmp_path_factory):
    from napari_smil_mv.demo.synthetic_session import write_synthetic_session

    return write_synthetic_session(
        tmp_path_factory.mktemp("clean") / "s", n_cameras=3, n_frames=10, noise_px=0.0, seed=2
    )


def test_noise_free_session_reaches_the_targets(clean_session):
    """Acceptance target: noise-free 2D, median reprojection < 0.5 px and observed-joint 3D error < 1 % of
    the body length (measured with ``evaluate`` against the session's ground truth)."""
    from napari_smil_mv.results import evaluate
    from napari_smil_mv.sessions import JointMap, load_session

    session = load_session(clean_session)
    model = load_smil_model(None)
    data = fit_data_from_session(
        session, JointMap.read(clean_session / "joint_lookup.csv"), model.joint_names
    )
    t0 = time.perf_counter()
    result = fit(model, data)
    elapsed = time.perf_counter() - t0
    m = evaluate(result.to_results(data, model), clean_session)
    assert m["reprojection_px_median"] < 0.5
    assert m["joint_error_3d_relative"] < 0.01
    assert m["n_joints_observed"] == 19 and len(m["joints_compared"]) == 19
    assert m["joint_error_3d_relative_all_joints"] < 0.05  # unobserved joints: model and priors only
    assert result.history[-1]["stage"] == "refine" and elapsed < 30  # about 2 s on an idle 2-core machine
    # The stages before the Levenberg-Marquardt refinement alone stop well short on the same data.
    legacy = fit(model, data, FitConfig(stages=legacy_stages()))
    assert legacy.reprojection_median() > 5 * result.reprojection_median()


def test_frame_windows():
    from napari_smil_mv.fitting.lm_windows import frame_windows

    assert frame_windows(10, 4) == [slice(0, 3), slice(3, 7), slice(7, 10)]
    assert frame_windows(5, 500) == [slice(0, 5)]
    assert frame_windows(1001, 500) == [slice(0, 334), slice(334, 667), slice(667, 1001)]


def test_long_clips_are_refined_in_windows(clean_session):
    """Beyond lm_window frames the LM stage refines the clip parameters on a sample of frames, then windows of
    per-frame parameters; the accuracy holds."""
    from napari_smil_mv.fitting.config import default_stages
    from napari_smil_mv.sessions import JointMap, load_session

    session = load_session(clean_session)
    model = load_smil_model(None)
    data = fit_data_from_session(
        session, JointMap.read(clean_session / "joint_lookup.csv"), model.joint_names
    )
    events = []
    windowed = fit(model, data, FitConfig(lm_window=4), progress=events.append)
    before_refine = fit(model, data, FitConfig(stages=default_stages()[:2]))
    refine = [e for e in events if e.stage == "refine"]
    assert len(refine) == 4 and refine[-1].iteration == refine[-1].total  # the sample, then 3 windows
    assert not np.allclose(windowed.log_beta_scales, before_refine.log_beta_scales)  # the sample moved them
    assert windowed.reprojection_median() < 0.5 < before_refine.reprojection_median()
    # Clip parameters only from the sample: the windows keep them.
    frames_only = FitConfig(lm_window=4)
    frames_only.stages[-1].optimise = ("global_orient", "body_pose", "trans")
    kept = fit(model, data, frames_only)
    for key in ("betas", "log_beta_scales", "betas_trans", "mesh_scale"):
        assert np.allclose(getattr(kept, key), getattr(before_refine, key), rtol=1e-6, atol=1e-7), key
    assert kept.reprojection_median() < 0.5
    with pytest.raises(ValueError, match="lm_window"):
        FitConfig(lm_window=2)
