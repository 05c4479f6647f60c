"""Running one stage of the fit: L-BFGS / Adam (``gradient_steps``) or Levenberg-Marquardt (``lm_steps``).

Each is a generator of ``(iteration, loss terms, flag)`` with flag ``""``, ``"converged"`` (the stage ended early)
or ``"cancelled"`` (the cancel flag was set); :func:`napari_smil_mv.fitting.optimise.fit_iter` turns them into
progress events.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch

from napari_smil_mv.body import SMILModelData
from napari_smil_mv.fitting.config import FitConfig, StageConfig
from napari_smil_mv.fitting.data import FitData
from napari_smil_mv.fitting.lm import LevenbergMarquardt, LMSettings
from napari_smil_mv.fitting.lm_windows import windowed_lm
from napari_smil_mv.fitting.params import BodyParams
from napari_smil_mv.fitting.problem import Problem
from napari_smil_mv.utils.cancel import CancelFlag, is_cancelled


def floats(terms: Mapping[str, torch.Tensor], total: torch.Tensor) -> dict[str, float]:
    """Loss terms and their weighted total as plain floats (``"total"`` included)."""
    out = {k: float(v.detach()) for k, v in terms.items()}
    out["total"] = float(total.detach())
    return out


Step = tuple[int, dict[str, float], str]


def gradient_steps(
    problem: Problem,
    params: BodyParams,
    weights: dict[str, float],
    groups: tuple[str, ...],
    stage: StageConfig,
    config: FitConfig,
    cancel: CancelFlag,
) -> Iterator[Step]:
    """L-BFGS or Adam: yields (iteration, loss terms, "" | "converged" | "cancelled") every report_every steps."""
    tensors = params.tensors(groups)
    last: dict[str, Any] = {}

    def closure() -> torch.Tensor:
        for t in tensors:
            t.grad = None
        total, terms = problem.losses(params, weights)
        total.backward()
        last["total"], last["terms"] = total, terms
        return total

    if stage.optimiser == "lbfgs":
        opt = torch.optim.LBFGS(
            tensors,
            lr=stage.lr,
            max_iter=config.report_every,
            history_size=20,
            line_search_fn="strong_wolfe",
            tolerance_grad=1e-9,
            tolerance_change=1e-12,
        )
    else:
        opt = torch.optim.Adam(tensors, lr=stage.lr)
    it = 0
    while it < stage.iterations:
        if is_cancelled(cancel):
            yield it, {}, "cancelled"
            return
        if stage.optimiser == "lbfgs":
            chunk = min(config.report_every, stage.iterations - it)
            opt.param_groups[0]["max_iter"] = chunk
            opt.param_groups[0]["max_eval"] = 4 * chunk
            before = opt.state[tensors[0]].get("n_iter", 0)
            previous = last.get("total")
            opt.step(closure)
            done = opt.state[tensors[0]].get("n_iter", 0) - before
            it += max(done, 1)
            # L-BFGS stops early only at a stationary point (or when its line search makes no progress).
            change = (
                abs(float(previous.detach()) - float(last["total"].detach()))
                if previous is not None
                else float("inf")
            )
            tol = 1e-10 if stage.tolerance is None else stage.tolerance
            converged = done == 0 or change <= tol * max(1.0, abs(float(last["total"].detach())))
        else:
            for _ in range(min(config.report_every, stage.iterations - it)):
                opt.step(closure)
                it += 1
            converged = False
        yield it, floats(last["terms"], last["total"]), "converged" if converged else ""
        if converged:
            return


def lm_steps(
    problem: Problem,
    params: BodyParams,
    weights: dict[str, float],
    groups: tuple[str, ...],
    stage: StageConfig,
    cancel: CancelFlag,
    inputs: tuple[SMILModelData, FitData, np.ndarray],
) -> Iterator[Step]:
    """Levenberg-Marquardt (:mod:`napari_smil_mv.fitting.lm`): yields after every Jacobian update, or after
    every window of :mod:`~napari_smil_mv.fitting.lm_windows` for clips longer than ``config.lm_window``."""
    params.tensors(())
    settings = LMSettings() if stage.tolerance is None else LMSettings(ftol=stage.tolerance)
    model, data, cw = inputs
    if params.trans0.shape[0] > problem.config.lm_window:
        windows = windowed_lm(
            problem,
            params,
            model,
            data,
            cw,
            weights,
            groups,
            settings,
            problem.config.lm_window,
            stage.iterations,
        )
        for w in windows:
            it = max(1, round(stage.iterations * (w["window"] + 1) / w["n_windows"]))
            yield it, floats(w["terms"], w["total"]), ""
            if is_cancelled(cancel) and w["window"] + 1 < w["n_windows"]:
                yield it, {}, "cancelled"
                return
        return
    solver = LevenbergMarquardt(problem, params, weights, groups, settings)
    for step in solver.run(stage.iterations):
        yield (
            step["iteration"],
            floats(step["terms"], step["total"]),
            "converged" if step["converged"] else "",
        )
        if is_cancelled(cancel) and not step["converged"]:
            yield step["iteration"], {}, "cancelled"
            return
