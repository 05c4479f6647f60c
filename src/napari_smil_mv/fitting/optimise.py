"""Direct multi-view fitting of a SMIL body model to 2D (and 3D) keypoints: ``fit_iter`` and ``fit``.

All frames of a clip are optimised together in one batch (per-frame pose, rotation and translation; clip-wide
shape, mesh scale and per-joint scales), on CPU or GPU. ``fit_iter`` is a generator of :class:`FitEvent`; stopping
the iteration, or setting the ``cancel`` flag, stops the fit (with the flag, a final event still carries the
result of the last iterate).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import torch

from napari_smil_mv.body import SMILModelData, load_smil_model
from napari_smil_mv.fitting.camera_check import CameraReport, camera_verdicts, check_cameras
from napari_smil_mv.fitting.config import FitConfig, StageConfig
from napari_smil_mv.fitting.data import FitData
from napari_smil_mv.fitting.init import align_rest_pose
from napari_smil_mv.fitting.params import BodyParams, check_init_params, rotations_from_init
from napari_smil_mv.fitting.problem import Problem
from napari_smil_mv.fitting.result import FitEvent, FitResult
from napari_smil_mv.fitting.stages import floats as _floats
from napari_smil_mv.fitting.stages import gradient_steps, lm_steps
from napari_smil_mv.results.metrics import finite_median
from napari_smil_mv.utils.cancel import CancelFlag


def _as_model_data(model: Any) -> SMILModelData:
    if isinstance(model, SMILModelData):
        return model
    if model is None or isinstance(model, str) or hasattr(model, "__fspath__"):
        return load_smil_model(model)
    data = getattr(model, "data", None)  # a SMILModel module
    if isinstance(data, SMILModelData):
        return data
    raise TypeError(
        f"model must be a SMILModelData, a SMILModel, a .pkl path or None (demo model), "
        f"got {type(model).__name__}"
    )


def _initialise(
    problem: Problem, model: SMILModelData, data: FitData, config: FitConfig, init_params: dict[str, Any]
) -> tuple[BodyParams, dict[str, Any], list, np.ndarray]:
    """Camera check, similarity alignment of the rest pose, and the initial BodyParams."""
    T, J, K = data.n_frames, model.n_joints, model.n_betas
    cw = np.asarray(data.camera_weights, dtype=np.float64).copy()
    need_align = not {"poses", "trans", "mesh_scale"} <= set(init_params)
    can_triangulate = (cw > 0).sum() >= 2
    pts3d, reports, inconsistent = None, [], np.zeros(data.n_cameras, dtype=bool)
    if data.points_3d is not None or can_triangulate:
        pts3d, reports, inconsistent = check_cameras(
            data.keypoints_2d,
            data.weights,
            data.cameras,
            cw,
            data.points_3d,
            config.camera_outlier_px,
            config.camera_outlier_ratio,
        )
        if config.exclude_inconsistent_cameras:
            cw[inconsistent] = 0.0
            for rep, bad in zip(reports, inconsistent, strict=True):
                rep.used = rep.used and not bad
    elif need_align:
        raise ValueError(
            "cannot initialise the fit: it needs 3D points, or at least two cameras with weight > 0 "
            "to triangulate the keypoints, or init_params with poses, trans and mesh_scale"
        )
    else:
        n_obs = (np.isfinite(data.keypoints_2d).all(-1) & (data.weights > 0)).sum(axis=(1, 2))
        reports = [
            CameraReport(cam.name, float("nan"), float("nan"), int(n), True, bool(w > 0), "not checked")
            for cam, n, w in zip(data.cameras, n_obs, cw, strict=True)
        ]
    problem.set_camera_weights(cw)

    # Rest-pose keypoints (with the given shape / per-joint scales), root at the origin.
    jm = problem.joints_model
    kw = problem.kw
    eye = torch.eye(3, **kw).expand(1, J, 3, 3)
    with torch.no_grad():
        betas = (
            torch.as_tensor(
                np.asarray(init_params.get("betas", np.zeros(K)), dtype=np.float64).reshape(-1, K).mean(0),
                **kw,
            )
            if K
            else None
        )

        def first_frame(key: str) -> torch.Tensor | None:  # (J, 3) or (T, J, 3) init -> its first (J, 3)
            value = init_params.get(key)
            if value is None:
                return None
            return torch.as_tensor(np.asarray(value, dtype=np.float64).reshape(-1, J, 3)[0], **kw)

        rest = jm(eye, betas, first_frame("log_beta_scales"), first_frame("betas_trans"))
        rest = rest.cpu().numpy().astype(np.float64)[0]  # (J, 3)
    extent_model = float(np.max(np.linalg.norm(rest[:, None] - rest[None], axis=-1)))

    info: dict[str, Any] = {"aligned": need_align}
    if need_align:
        targets = np.full((T, J, 3), np.nan)
        targets[:, problem.mapped] = pts3d[:, problem.mapped]
        init = align_rest_pose(rest[problem.mapped], targets[:, problem.mapped], config.min_init_joints)
        rotations = np.tile(np.eye(3), (T, J, 1, 1))
        rotations[:, 0] = init.rotations
        trans, scale = init.trans, np.full(T, init.mesh_scale)
        info.update(valid_frames=int(init.valid.sum()), residual_median=float(np.nanmedian(init.residual)))
    if "poses" in init_params:
        rotations = rotations_from_init(init_params["poses"], T, J)
    if "trans" in init_params:
        trans = np.asarray(init_params["trans"], dtype=np.float64).reshape(T, 3)
    if "mesh_scale" in init_params:
        scale = np.broadcast_to(np.asarray(init_params["mesh_scale"], dtype=np.float64).reshape(-1), (T,))
    body_length = float(np.median(scale)) * extent_model
    problem.body_length = body_length
    info.update(mesh_scale=float(np.median(scale)), body_length=body_length)
    params = BodyParams(
        T,
        J,
        K,
        rotations,
        trans,
        scale,
        body_length,
        betas=init_params.get("betas"),
        log_beta_scales=init_params.get("log_beta_scales"),
        betas_trans=init_params.get("betas_trans"),
        shape_mean=model.shape_mean_betas,
        shape_cov=model.shape_cov,
        per_frame_mesh_scale=config.per_frame_mesh_scale,
        isotropic_scales=config.isotropic_limb_scales,
        **kw,
    )
    return params, info, reports, cw


def _stage_groups(stage: StageConfig, config: FitConfig, model: SMILModelData) -> tuple[str, ...]:
    groups = list(stage.optimise)
    if not config.fit_log_beta_scales and "log_beta_scales" in groups:
        groups.remove("log_beta_scales")
    if not config.fit_betas_trans and "betas_trans" in groups:
        groups.remove("betas_trans")
    if model.n_betas == 0 and "betas" in groups:
        groups.remove("betas")
    return tuple(groups)


def fit_iter(
    model: SMILModelData | str | None,
    data: FitData,
    config: FitConfig | None = None,
    init_params: Mapping[str, Any] | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float32,
    cancel: CancelFlag = None,
    num_threads: int | None = None,
) -> Iterator[FitEvent]:
    """Fit the body model to the data, yielding progress events.

    Parameters
    ----------
    model
        A SMILModelData, a SMILModel, a model ``.pkl`` path, or None for the demo model.
    data
        Observations in the model's joint order (N == J).
    config
        Fit settings (defaults: ``FitConfig()``).
    init_params
        Optional starting parameters (e.g. a network's prediction): ``poses`` (T, J, 3|6|3×3), ``trans`` (T, 3),
        ``mesh_scale`` (T,) or scalar, ``betas`` (K,) or (T, K), ``log_beta_scales`` / ``betas_trans`` (J, 3) or
        (T, J, 3). Missing placement parameters come from the automatic alignment.
    device, dtype
        Torch device (``"cpu"``, ``"cuda"``) and float dtype of the optimisation.
    cancel
        A ``threading.Event`` or a callable returning True to stop; the final event then carries the result
        of the last iterate with ``cancelled=True``.
    num_threads
        Torch intra-op threads during the fit (process-wide setting, restored afterwards). None: on CPU, 1 thread
        for clips of up to 50 000 frame·joints (the fit's many small operations run fastest, and are not slowed by
        other processes, on one thread), otherwise torch's current setting. 0 leaves the setting alone.

    Yields
    ------
    FitEvent
        ``init``, then every ``config.report_every`` iterations and at each stage end, and finally ``done``
        whose ``result`` is the :class:`FitResult`.
    """
    device = torch.device(device) if device is not None else torch.device("cpu")
    previous = torch.get_num_threads()
    threads = num_threads
    if threads is None:
        threads = 1 if device.type == "cpu" and data.n_frames * data.n_joints <= 50_000 else 0
    if threads and threads != previous:
        torch.set_num_threads(int(threads))
    try:
        yield from _fit_iter(model, data, config, init_params, device, dtype, cancel)
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)


def _fit_iter(
    model: SMILModelData | str | None,
    data: FitData,
    config: FitConfig | None,
    init_params: Mapping[str, Any] | None,
    device: torch.device,
    dtype: torch.dtype,
    cancel: CancelFlag,
) -> Iterator[FitEvent]:
    t0 = time.perf_counter()
    config = config or FitConfig()
    model = _as_model_data(model)
    J = model.n_joints
    if data.n_joints != J:
        raise ValueError(
            f"FitData has {data.n_joints} joints but the model has {J}; build the data in model-joint "
            "order (fit_data_from_session does)"
        )
    if data.joint_names is not None and list(data.joint_names) != list(model.joint_names):
        raise ValueError(
            "FitData.joint_names differ from the model's joint names; the data must be in the model's "
            "joint order"
        )
    data.check_fittable()
    init_params = check_init_params(init_params)
    problem = Problem(model, data, config, device, dtype)
    params, info, reports, cw = _initialise(problem, model, data, config, init_params)
    n_stages = len(config.stages)
    history: list[dict[str, Any]] = []
    dropped = [r.name for r in reports if not r.consistent and not r.used]
    msg = f"initialised: mesh scale {info['mesh_scale']:.4g}, body length {info['body_length']:.4g} {data.units}"
    if dropped:
        msg += f"; cameras inconsistent with the others, not used: {dropped}"
    yield FitEvent(
        "init", 0, 0, stage_index=-1, n_stages=n_stages, elapsed_s=time.perf_counter() - t0, message=msg
    )

    cancelled = False
    for si, stage in enumerate(config.stages):
        weights = config.stage_weights(stage)
        groups = _stage_groups(stage, config, model)
        if not params.tensors(groups) or stage.iterations == 0:
            continue
        if stage.optimiser == "lm":
            steps = lm_steps(problem, params, weights, groups, stage, cancel, (model, data, cw))
        else:
            steps = gradient_steps(problem, params, weights, groups, stage, config, cancel)
        for it, terms, flag in steps:
            if flag == "cancelled":
                cancelled = True
                break
            if not math.isfinite(terms["total"]):
                raise FloatingPointError(
                    f"fit stage {stage.name!r}: the loss became {terms['total']} at iteration "
                    f"{it}; lower the stage's lr or check the data for extreme values"
                )
            history.append({"stage": stage.name, "iteration": it, "loss": terms["total"], "terms": terms})
            yield FitEvent(
                stage.name,
                min(it, stage.iterations),
                stage.iterations,
                terms,
                terms["total"],
                si,
                n_stages,
                time.perf_counter() - t0,
                f"{stage.name} {min(it, stage.iterations)}/{stage.iterations} loss {terms['total']:.5g}"
                + (" (converged)" if flag == "converged" else ""),
            )
        if cancelled:
            break
    params.tensors(())
    result = _finish(problem, params, model, data, config, info, reports, cw, history, t0, cancelled)
    yield FitEvent(
        "done",
        0,
        0,
        result.loss_terms,
        result.loss_terms.get("total", float("nan")),
        n_stages,
        n_stages,
        result.elapsed_s,
        ("cancelled" if cancelled else "done")
        + f": median reprojection {result.reprojection_median():.2f} px",
        result,
    )


def _finish(
    problem: Problem,
    params: BodyParams,
    model: SMILModelData,
    data: FitData,
    config: FitConfig,
    info: dict,
    reports: list,
    cw: np.ndarray,
    history: list,
    t0: float,
    cancelled: bool,
) -> FitResult:
    with torch.no_grad():
        weights = config.stage_weights(config.stages[-1])
        total, terms = problem.losses(params, weights)
        loss_terms = _floats(terms, total)
        joints = problem.joints_model(
            params.rotmats(),
            params.betas(),
            params.log_beta_scales,
            params.betas_trans,
            params.trans(),
            params.mesh_scale(),
        )
    joints = joints.double().cpu().numpy()
    proj = data.cameras.project(joints)  # (C, T, J, 2), NaN behind a camera
    err = np.linalg.norm(proj - data.keypoints_2d, axis=-1)  # NaN where not observed
    for c, rep in enumerate(reports):
        rep.fit_median_px = finite_median(err[c])
    camera_verdicts(reports, err, list(model.joint_names), data.data_names)
    arrays = params.as_numpy()
    return FitResult(
        poses=arrays["poses"],
        betas=arrays["betas"],
        trans=arrays["trans"],
        mesh_scale=arrays["mesh_scale"],
        log_beta_scales=arrays["log_beta_scales"],
        betas_trans=arrays["betas_trans"],
        joints_3d=joints,
        projections_2d=proj,
        reprojection_error=err,
        frame_indices=data.frame_indices.copy(),
        camera_names=list(data.camera_names),
        joint_names=list(model.joint_names),
        units=data.units,
        loss_terms=loss_terms,
        history=history,
        cameras=reports,
        init=info,
        config=config,
        elapsed_s=time.perf_counter() - t0,
        cancelled=cancelled,
    )


def fit(
    model: SMILModelData | str | None,
    data: FitData,
    config: FitConfig | None = None,
    init_params: Mapping[str, Any] | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float32,
    cancel: CancelFlag = None,
    progress: Callable[[FitEvent], None] | None = None,
    num_threads: int | None = None,
) -> FitResult:
    """Run :func:`fit_iter` to the end and return its :class:`FitResult` (``progress`` sees every event)."""
    result = None
    for event in fit_iter(model, data, config, init_params, device, dtype, cancel, num_threads):
        if progress is not None:
            progress(event)
        result = event.result
    assert result is not None
    return result
