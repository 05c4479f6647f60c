"""Levenberg-Marquardt on long clips: the clip parameters on a subset of frames, then windows of frames.

The Gauss-Newton matrices of :mod:`~napari_smil_mv.fitting.lm` need about 2-4 MB per frame (31-42 joints), so a
clip longer than ``FitConfig.lm_window`` frames is refined in two steps, each on at most ``lm_window`` frames:

1. every parameter of the stage (per-frame and clip) on 200 frames (at most ``lm_window``) spread evenly over the
   clip: the clip parameters (shape, per-joint scales and offsets, a clip mesh scale) converge on a sample of the
   whole recording (these frames are not neighbours, so the temporal smoothness does not apply among them);
2. the per-frame parameters (rotations, translation, a per-frame mesh scale) of consecutive windows of frames,
   with the clip parameters fixed. The smoothness across a window boundary is not part of either window's
   problem.

Each step is its own problem (its frames' data, the same camera weights, loss weights and length scale; every data
term and the pose prior are means over frames, so their balance with each other is the one of the whole clip).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np
import torch

from napari_smil_mv.body import SMILModelData, matrix_to_rotation_6d
from napari_smil_mv.fitting.data import FitData
from napari_smil_mv.fitting.lm import LevenbergMarquardt, LMSettings
from napari_smil_mv.fitting.params import BodyParams
from napari_smil_mv.fitting.problem import Problem

PER_FRAME_GROUPS = ("global_orient", "body_pose", "trans")
#: Frames of the sample on which a long clip's clip parameters are refined (fewer when lm_window is smaller).
CLIP_SAMPLE_FRAMES = 200


def frame_windows(n_frames: int, window: int) -> list[slice]:
    """Split ``n_frames`` into consecutive windows of at most ``window`` frames and nearly equal length."""
    n = max(1, -(-n_frames // max(1, window)))
    bounds = np.linspace(0, n_frames, n + 1).round().astype(int)
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]


def _window_params(params: BodyParams, rows: torch.Tensor, model: SMILModelData) -> BodyParams:
    """BodyParams of some frames (``rows``: frame positions) with the current values of every parameter."""
    with torch.no_grad():
        scale = params.mesh_scale()
        scale = scale[rows] if scale.numel() > 1 else scale
        betas = params.betas() if params.betas_z.numel() else None
        return BodyParams(
            len(rows),
            params.pose6d.shape[1] + 1,
            params.betas_z.numel(),
            params.rotmats()[rows],
            params.trans()[rows],
            scale,
            params.body_length,
            betas=betas,
            log_beta_scales=params.log_beta_scales,
            betas_trans=params.betas_trans,
            shape_mean=model.shape_mean_betas,
            shape_cov=model.shape_cov,
            per_frame_mesh_scale=scale.numel() > 1,
            isotropic_scales=params.isotropic_scales,
            **params.kw,
        )


def _write_back(params: BodyParams, window: BodyParams, rows: torch.Tensor, clip: bool) -> None:
    """Copy the per-frame parameters of ``window`` to ``rows`` of ``params`` (with ``clip``: the clip ones)."""
    with torch.no_grad():
        d6 = matrix_to_rotation_6d(window.rotmats())
        params.root6d[rows] = d6[:, 0]
        params.pose6d[rows] = d6[:, 1:]
        params.trans_delta[rows] = (window.trans() - params.trans0[rows]) / params.body_length
        if params.log_scale_delta.numel() > 1:
            params.log_scale_delta[rows] = torch.log(window.mesh_scale()) - params.log_scale0[rows]
        elif clip:
            params.log_scale_delta.copy_(torch.log(window.mesh_scale()) - params.log_scale0)
        if clip:
            params.lbs_param.copy_(window.lbs_param)
            params.betas_z.copy_(window.betas_z)
            params.betas_trans.copy_(window.betas_trans)


def windowed_lm(
    problem: Problem,
    params: BodyParams,
    model: SMILModelData,
    data: FitData,
    camera_weights: np.ndarray,
    weights: Mapping[str, float],
    groups: tuple[str, ...],
    settings: LMSettings,
    window: int,
    max_iterations: int,
) -> Iterator[dict]:
    """Refine ``params`` in place: the sample of frames (clip parameters), then window by window.

    Yields
    ------
    dict
        ``{"window", "n_windows", "iterations", "terms", "total"}`` after each step (the sample is window 0
        when the stage optimises clip parameters), with that step's own loss.
    """
    frame_groups = tuple(g for g in groups if g in PER_FRAME_GROUPS)
    if "mesh_scale" in groups and params.log_scale_delta.numel() > 1:
        frame_groups += ("mesh_scale",)
    T = params.trans0.shape[0]
    device = params.trans0.device
    steps: list[tuple[torch.Tensor, tuple[str, ...], bool]] = []
    if set(groups) - set(frame_groups):  # clip parameters: first on a sample of frames spread over the clip
        sample = np.unique(np.linspace(0, T - 1, min(T, window, CLIP_SAMPLE_FRAMES)).round().astype(int))
        steps.append((torch.as_tensor(sample, device=device), groups, True))
    for sl in frame_windows(T, window):
        steps.append((torch.arange(sl.start, sl.stop, device=device), frame_groups, False))
    for k, (rows, step_groups, clip) in enumerate(steps):
        sub = Problem(
            model,
            data.select_frames(rows.cpu().numpy()),
            problem.config,
            problem.kw["device"],
            problem.kw["dtype"],
        )
        sub.set_camera_weights(np.asarray(camera_weights, dtype=np.float64))
        sub.body_length = problem.body_length
        sub.reproj_sigma_px = problem.reproj_sigma_px
        r = rows.cpu().numpy()
        parent = problem.pair_mask.cpu().numpy()
        pairs = (np.diff(r) == 1) & (parent[r[:-1]] > 0) if len(r) > 1 else np.zeros(0, dtype=bool)
        sub.set_smoothing(pairs, problem.acc_scale)
        wp = _window_params(params, rows, model)
        solver = LevenbergMarquardt(sub, wp, weights, step_groups, settings)
        last = None
        for step in solver.run(max_iterations):
            last = step
        _write_back(params, wp, rows, clip)
        if last is None:
            total, terms = solver.loss()
            last = {"iteration": 0, "terms": terms, "total": total}
        yield {
            "window": k,
            "n_windows": len(steps),
            "iterations": last["iteration"],
            "terms": last["terms"],
            "total": last["total"],
        }
