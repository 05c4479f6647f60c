"""Configuration of the multi-view body fit: loss weights, robust loss, stages.

Every number that changes the fit lives here, in one dataclass with a JSON-compatible ``to_dict``/``from_dict``
round trip, so a results file can record exactly how it was produced.

All loss terms are dimensionless: 2D residuals are divided by ``reproj_sigma_px`` and 3D residuals by
``points3d_sigma`` × body length, so the default weights work for any image size and any world unit.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

#: Parameter groups that a stage can optimise.
PARAM_GROUPS = (
    "global_orient",  # root rotation per frame
    "trans",  # world translation per frame
    "mesh_scale",  # global scale about the root (shared by the clip unless per_frame_mesh_scale)
    "body_pose",  # joint rotations 1..J-1 per frame
    "log_beta_scales",  # per-joint log-scales, shared by the clip
    "betas",  # shape coefficients, shared by the clip
    "betas_trans",  # per-joint offsets, shared by the clip
)

#: Names of the loss terms a fit reports (weights live in ``FitConfig.weights`` under the same names).
LOSS_TERMS = (
    "reproj",  # robust 2D reprojection error, every camera
    "points3d",  # robust 3D distance to the given/triangulated 3D points
    "shape_prior",  # Mahalanobis norm of the betas under shape_cov (or plain squared norm)
    "pose_prior",  # squared rotation angle of every joint except the root (||R - I||_F^2 / 2)
    "limb_scale",  # squared per-joint log-scales
    "limb_scale_sym",  # left/right difference of per-joint log-scales (names ending _L/_R, left/right)
    "betas_trans",  # squared per-joint offsets (model units)
    "smooth_vel",  # squared joint velocity between consecutive frames, in body lengths per frame
    "smooth_acc",  # robust squared joint acceleration between neighbouring frames, body lengths per frame^2
)

ROBUST_LOSSES = ("gmof", "huber", "cauchy", "l2")
SMOOTH_LOSSES = ("gmof", "cauchy", "l2")
OPTIMISERS = ("adam", "lbfgs", "lm")


@dataclass
class StageConfig:
    """One optimisation stage.

    Parameters
    ----------
    name
        Label reported in progress events.
    iterations
        Number of optimiser steps (an L-BFGS step may evaluate the loss several times).
    optimise
        Parameter groups updated in this stage (see ``PARAM_GROUPS``); the others stay fixed.
    optimiser
        ``"lbfgs"`` (fast on this smooth problem), ``"lm"`` (Levenberg-Marquardt: Gauss-Newton steps on all frames
        at once; converges to the exact optimum in a few iterations where L-BFGS crawls, see
        :mod:`napari_smil_mv.fitting.lm`) or ``"adam"``.
    lr
        Learning rate (step size for L-BFGS) in the normalised parameter space; not used by ``"lm"``.
    weights
        Overrides of ``FitConfig.weights`` for this stage only (e.g. no smoothing in the global stage).
    reproj_sigma_px
        Scale of the 2D robust loss in this stage (None: ``FitConfig.reproj_sigma_px``).
    tolerance
        Convergence test (a stage ends early when it passes). ``"lm"``: the last two iterations together lowered
        the loss by less than this fraction (None: 1e-3); ``"lbfgs"``: one report interval changed the loss by
        less than this fraction (None: 1e-10). Ignored by ``"adam"``.
    """

    name: str
    iterations: int
    optimise: tuple[str, ...]
    optimiser: str = "lbfgs"
    lr: float = 1.0
    weights: dict[str, float] = field(default_factory=dict)
    tolerance: float | None = None
    reproj_sigma_px: float | None = None

    def validate(self) -> None:
        """Raise ValueError naming the bad field of this stage."""
        if self.reproj_sigma_px is not None and not self.reproj_sigma_px > 0:
            raise ValueError(
                f"stage {self.name!r}: reproj_sigma_px must be > 0 or None, got {self.reproj_sigma_px}"
            )
        unknown = [g for g in self.optimise if g not in PARAM_GROUPS]
        if unknown:
            raise ValueError(
                f"stage {self.name!r}: unknown parameter group(s) {unknown}; choose from {PARAM_GROUPS}"
            )
        if self.optimiser not in OPTIMISERS:
            raise ValueError(f"stage {self.name!r}: optimiser {self.optimiser!r} is not one of {OPTIMISERS}")
        if self.iterations < 0:
            raise ValueError(f"stage {self.name!r}: iterations must be >= 0, got {self.iterations}")
        if not self.lr > 0:
            raise ValueError(f"stage {self.name!r}: lr must be > 0, got {self.lr}")
        if self.tolerance is not None and not self.tolerance >= 0:
            raise ValueError(f"stage {self.name!r}: tolerance must be >= 0 or None, got {self.tolerance}")
        bad = [k for k in self.weights if k not in LOSS_TERMS]
        if bad:
            raise ValueError(f"stage {self.name!r}: unknown loss weight(s) {bad}; choose from {LOSS_TERMS}")


#: 2D robust scale of the default refinement stage, px: once in the basin, keypoints more than a few pixels off
#: (labels of a surface point that differ between views, swapped or wrong detections) pull less. Measured on the
#: real minimal_session, leave-one-camera-out (docs/fitting.md): fit/DLT of mid 1.19 -> 0.81, top 1.07 -> 0.84.
REFINE_SIGMA_PX = 8.0


def default_stages() -> list[StageConfig]:
    """Stage 1: rigid placement; stage 2: L-BFGS on everything the keypoints constrain (into the basin);
    stage 3: Levenberg-Marquardt on the same parameters to the optimum (stops when converged), with a tighter
    2D robust scale (``REFINE_SIGMA_PX``)."""
    everything = (
        "global_orient",
        "trans",
        "mesh_scale",
        "body_pose",
        "log_beta_scales",
        "betas",
        "betas_trans",
    )
    return [
        StageConfig(
            name="global",
            iterations=15,
            optimise=("global_orient", "trans", "mesh_scale"),
            weights={"smooth_vel": 0.0, "smooth_acc": 0.0},
        ),
        StageConfig(name="pose", iterations=30, optimise=everything),
        StageConfig(
            name="refine", iterations=25, optimise=everything, optimiser="lm", reproj_sigma_px=REFINE_SIGMA_PX
        ),
    ]


def legacy_stages() -> list[StageConfig]:
    """The stages of versions before the Levenberg-Marquardt stage (global 15, pose 150 L-BFGS iterations).

    Kept for comparisons (``FitConfig(stages=legacy_stages())``, or the same list in a config file): on clean
    synthetic data they stop about 0.6 px short of the exact solution.
    """
    stages = default_stages()[:2]
    stages[1].iterations = 150
    stages[1].reproj_sigma_px = None
    return stages


def default_weights() -> dict[str, float]:
    """Default weight of every loss term (dimensionless terms, see the module docstring)."""
    return {
        "reproj": 1.0,
        "points3d": 0.02,
        "shape_prior": 1e-3,
        "pose_prior": 1e-4,
        "limb_scale": 1e-3,
        "limb_scale_sym": 1e-2,
        "betas_trans": 1e-2,
        "smooth_vel": 0.0,
        "smooth_acc": 10.0,
    }


@dataclass
class FitConfig:
    """All settings of a fit.

    Parameters
    ----------
    stages
        Optimisation stages run in order.
    weights
        Weight per loss term (keys of ``LOSS_TERMS``).
    robust_loss
        ``"gmof"`` (Geman-McClure, bounded: outliers stop pulling), ``"huber"`` or ``"l2"``.
    reproj_sigma_px
        Scale of the 2D robust loss in pixels (residuals well below it are quadratic).
    points3d_sigma
        Scale of the 3D robust loss as a fraction of the body length.
    use_points3d
        Use the FitData's 3D points in the loss (they are always used for initialisation when present).
    fit_log_beta_scales, fit_betas_trans
        Whether the per-joint log-scales / offsets may change at all (removes them from every stage if False).
    isotropic_limb_scales
        One log-scale per joint (the same along x, y, z: a bone-length factor for the joint's children) instead
        of three; anisotropic scales are largely redundant with the joint rotations and slow the fit down.
    per_frame_mesh_scale
        Fit one mesh scale per frame instead of one for the clip.
    smooth_max_gap
        Frames whose indices differ by more than this are not smoothed against each other.
    smooth_loss
        Penalty of each joint's acceleration in ``smooth_acc``: ``"gmof"`` (Geman-McClure ``s² x/(1+x)``, bounded),
        ``"cauchy"`` (``s² log(1+x)``) with ``x = |a|²/s²``, or ``"l2"`` (``|a|²``, the earlier default: one
        fast joint or a jump between non-adjacent frames pulls the whole clip). See
        :mod:`napari_smil_mv.fitting.smoothing`.
    smooth_acc_scale
        Robust scale ``s`` of the acceleration in body lengths per frame²; None: automatic (keypoint noise and
        ``smooth_acc_typical`` / fps²).
    smooth_acc_typical
        Typical acceleration of the animal, body lengths per second² (sets the automatic scale with the fps).
    smooth_adaptive_gain, smooth_adaptive_span_s, smooth_adaptive_max
        Data-adaptive smoothing strength: the ``smooth_acc`` weight is multiplied by
        ``clip(smooth_adaptive_gain × n/m, 1, smooth_adaptive_max)``, with ``n/m`` the variance ratio of the
        frame-to-frame jitter of the initial 3D keypoints to their real acceleration, measured over spans of
        ``smooth_adaptive_span_s`` seconds (:func:`napari_smil_mv.fitting.smoothing.jitter_to_motion`; 0 on
        noise-free tracks). 3 (default) is the choice measured on real and synthetic clips (docs/fitting.md);
        0 keeps the weight as given.
    smooth_adaptive_max_jitter
        The gain applies only when the jitter variance ``n`` is at most this many times the squared 3D keypoint
        noise (from the DLT residual; white noise gives about 6): larger "jitter" is motion between frames that
        are far apart in time (sparse labelled frames renumbered 0..N), which must not be smoothed harder.
    smooth_detect_breaks
        Also treat pairs of frames whose initial 3D keypoints jump as non-adjacent (frames renumbered 0..N after
        sparse labelling, cuts): see ``smooth_max_speed`` and ``smooth_jump_factor``.
    smooth_max_speed
        Median keypoint speed (body lengths per second, with the data's fps or 30) above which two frames are a
        jump.
    smooth_jump_factor
        A pair whose median keypoint step exceeds this × the clip's median step (plus 3 × the noise) is a jump.
    camera_outlier_px, camera_outlier_ratio
        A camera whose median reprojection of the initial 3D points exceeds both ``camera_outlier_px`` and
        ``camera_outlier_ratio`` × the best camera's median is reported as inconsistent with the others.
    exclude_inconsistent_cameras
        Give inconsistent cameras zero weight in the fit (they are still evaluated and reported).
    min_init_joints
        Frames with fewer mapped joints with 3D points than this are initialised from their neighbours.
    report_every
        Yield a progress event every this many iterations (and at the end of every stage).
    lm_window
        Most frames a Levenberg-Marquardt stage solves at once (its memory grows by about 2-4 MB per frame).
        Longer clips: the clip parameters are refined on 200 frames (at most this many) spread over the clip, then
        the per-frame parameters in consecutive windows of at most this many frames
        (:mod:`napari_smil_mv.fitting.lm_windows`).
    """

    stages: list[StageConfig] = field(default_factory=default_stages)
    weights: dict[str, float] = field(default_factory=default_weights)
    robust_loss: str = "gmof"
    reproj_sigma_px: float = 20.0
    points3d_sigma: float = 0.05
    use_points3d: bool = True
    fit_log_beta_scales: bool = True
    isotropic_limb_scales: bool = True
    fit_betas_trans: bool = True
    per_frame_mesh_scale: bool = False
    smooth_max_gap: int = 1
    smooth_loss: str = "gmof"
    smooth_acc_scale: float | None = None
    smooth_acc_typical: float = 20.0
    smooth_adaptive_gain: float = 3.0
    smooth_adaptive_span_s: float = 0.25
    smooth_adaptive_max: float = 1e4
    smooth_adaptive_max_jitter: float = 100.0
    smooth_detect_breaks: bool = True
    smooth_max_speed: float = 10.0
    smooth_jump_factor: float = 10.0
    camera_outlier_px: float = 25.0
    camera_outlier_ratio: float = 4.0
    exclude_inconsistent_cameras: bool = True
    min_init_joints: int = 3
    report_every: int = 5
    lm_window: int = 500

    def __post_init__(self) -> None:
        self.stages = [s if isinstance(s, StageConfig) else StageConfig(**s) for s in self.stages]
        for stage in self.stages:
            stage.optimise = tuple(stage.optimise)
        merged = default_weights()
        merged.update(self.weights)
        self.weights = merged
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first bad field."""
        bad = [k for k in self.weights if k not in LOSS_TERMS]
        if bad:
            raise ValueError(f"FitConfig.weights: unknown loss term(s) {bad}; choose from {LOSS_TERMS}")
        negative = [k for k, v in self.weights.items() if not v >= 0]
        if negative:
            raise ValueError(f"FitConfig.weights: weights must be >= 0, got {negative}")
        if self.robust_loss not in ROBUST_LOSSES:
            raise ValueError(f"FitConfig.robust_loss {self.robust_loss!r} is not one of {ROBUST_LOSSES}")
        if self.smooth_loss not in SMOOTH_LOSSES:
            raise ValueError(f"FitConfig.smooth_loss {self.smooth_loss!r} is not one of {SMOOTH_LOSSES}")
        if not (
            self.smooth_adaptive_gain >= 0
            and self.smooth_adaptive_span_s > 0
            and self.smooth_adaptive_max >= 1
            and self.smooth_adaptive_max_jitter > 0
        ):
            raise ValueError(
                "FitConfig.smooth_adaptive_gain must be >= 0, smooth_adaptive_span_s > 0 and "
                "smooth_adaptive_max >= 1, smooth_adaptive_max_jitter > 0"
            )
        if self.smooth_acc_scale is not None and not self.smooth_acc_scale > 0:
            raise ValueError(f"FitConfig.smooth_acc_scale must be > 0 or None, got {self.smooth_acc_scale}")
        if not (self.smooth_acc_typical > 0 and self.smooth_max_speed > 0 and self.smooth_jump_factor > 0):
            raise ValueError(
                "FitConfig.smooth_acc_typical, smooth_max_speed and smooth_jump_factor must be > 0"
            )
        if not self.reproj_sigma_px > 0 or not self.points3d_sigma > 0:
            raise ValueError("FitConfig.reproj_sigma_px and points3d_sigma must be > 0")
        if not self.stages:
            raise ValueError("FitConfig.stages is empty; give at least one stage")
        for stage in self.stages:
            stage.validate()
        if self.report_every < 1:
            raise ValueError(f"FitConfig.report_every must be >= 1, got {self.report_every}")
        if self.lm_window < 3:
            raise ValueError(f"FitConfig.lm_window must be >= 3 frames, got {self.lm_window}")

    def stage_weights(self, stage: StageConfig) -> dict[str, float]:
        """The weights in effect during ``stage`` (global weights with the stage's overrides)."""
        weights = dict(self.weights)
        weights.update(stage.weights)
        return weights

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dict (tuples become lists)."""
        out = dataclasses.asdict(self)
        for stage in out["stages"]:
            stage["optimise"] = list(stage["optimise"])
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FitConfig:
        """Inverse of ``to_dict``; unknown keys and wrongly typed values raise ValueError naming them."""
        if not isinstance(data, dict):
            raise ValueError(f"FitConfig must be an object (dict) of settings, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"FitConfig: unknown key(s) {unknown}; known keys are {sorted(known)}")
        data = dict(data)
        _check_types("FitConfig", data, cls)
        if "stages" in data:
            stage_fields = {f.name for f in dataclasses.fields(StageConfig)}
            stages = []
            for i, s in enumerate(data["stages"]):
                if not isinstance(s, dict):
                    raise ValueError(
                        f"FitConfig.stages[{i}] must be an object (dict), got {type(s).__name__}"
                    )
                bad = sorted(set(s) - stage_fields)
                if bad:
                    raise ValueError(
                        f"FitConfig.stages[{i}]: unknown key(s) {bad}; known keys are {sorted(stage_fields)}"
                    )
                _check_types(f"FitConfig.stages[{i}]", s, StageConfig)
                stages.append(StageConfig(**s))
            data["stages"] = stages
        return cls(**data)


_TYPE_CHECKS: dict[str, tuple[str, Any]] = {
    "bool": ("true/false", lambda v: isinstance(v, bool)),
    "int": ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "float": ("a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)),
    "str": ("a string", lambda v: isinstance(v, str)),
    "float | None": ("a number or null", lambda v: v is None or _TYPE_CHECKS["float"][1](v)),
    "tuple[str, ...]": (
        "a list of strings",
        lambda v: isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v),
    ),
    "dict[str, float]": (
        "an object of numbers",
        lambda v: isinstance(v, dict) and all(_TYPE_CHECKS["float"][1](x) for x in v.values()),
    ),
    "list[StageConfig]": ("a list of stage objects", lambda v: isinstance(v, list)),
}


def _check_types(where: str, data: dict[str, Any], cls: type) -> None:
    """Raise ValueError naming ``where.key`` and the expected type for a wrongly typed value in ``data``."""
    hints = {f.name: str(f.type) for f in dataclasses.fields(cls)}
    for key, value in data.items():
        check = _TYPE_CHECKS.get(hints.get(key, ""))
        if check is not None and not check[1](value):
            raise ValueError(f"{where}.{key} must be {check[0]}, got {value!r} ({type(value).__name__})")
