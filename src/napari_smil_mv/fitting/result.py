"""Progress events and the result of a fit."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from napari_smil_mv.fitting.camera_check import CameraReport
from napari_smil_mv.fitting.config import FitConfig
from napari_smil_mv.fitting.quality import FitQuality
from napari_smil_mv.results.metrics import finite_median


@dataclass
class FitResult:
    """Fitted body parameters and their agreement with the data.

    Attributes
    ----------
    poses : (T, J, 3) axis-angle rotations (root first), radians
    betas : (K,) shape coefficients (shared by the clip)
    trans : (T, 3) world translation, world units
    mesh_scale : (T,) global scale about the root (model units → world units)
    log_beta_scales, betas_trans : (T, J, 3) per-joint log-scales / offsets (constant over the clip)
    joints_3d : (T, J, 3) fitted model keypoints, world units
    projections_2d : (C, T, J, 2) fitted keypoints projected into every camera (px, x/y; NaN behind a camera)
    reprojection_error : (C, T, J) px distance to the observed keypoints (NaN where not observed)
    frame_indices : (T,) frame numbers
    camera_names, joint_names : names in array order
    units : world length unit
    loss_terms : final unweighted loss terms (and ``total``, the weighted sum)
    history : one dict per reported iteration (stage, iteration, loss, terms)
    cameras : one CameraReport per camera
    init : facts about the initialisation (mesh scale, valid frames, residual, body length)
    config : the FitConfig used
    elapsed_s : wall time of the fit including initialisation, seconds
    cancelled : True when the fit was stopped early (the parameters are the last iterate)
    quality : verdict and per frame / camera / joint errors against the DLT triangulation residual
        (:class:`~napari_smil_mv.fitting.quality.FitQuality`), or None
    """

    poses: np.ndarray
    betas: np.ndarray
    trans: np.ndarray
    mesh_scale: np.ndarray
    log_beta_scales: np.ndarray
    betas_trans: np.ndarray
    joints_3d: np.ndarray
    projections_2d: np.ndarray
    reprojection_error: np.ndarray
    frame_indices: np.ndarray
    camera_names: list[str]
    joint_names: list[str]
    units: str
    loss_terms: dict[str, float]
    history: list[dict[str, Any]]
    cameras: list[CameraReport]
    init: dict[str, Any]
    config: FitConfig
    elapsed_s: float
    cancelled: bool = False
    quality: FitQuality | None = None

    @property
    def used_cameras(self) -> list[int]:
        """Indices of cameras that contributed to the fit."""
        return [i for i, c in enumerate(self.cameras) if c.used]

    def reprojection_median(self, cameras: list[int] | None = None) -> float:
        """Median reprojection error (px) over the given cameras (default: the cameras used in the fit)."""
        cams = self.used_cameras if cameras is None else cameras
        return finite_median(self.reprojection_error[cams])

    def to_results(self, data, model, producer: str = "napari-smil-mv fit", provenance: dict | None = None):
        """Package as a :class:`napari_smil_mv.results.Results` (for ``write_results`` and the exports).

        Parameters
        ----------
        data
            The :class:`FitData` that was fitted (cameras, observations, videos, data node names).
        model
            The :class:`napari_smil_mv.body.SMILModelData` that was fitted.
        producer
            What produced the results (stored in the provenance).
        provenance
            Extra JSON-compatible provenance entries (e.g. the command line, the session path).
        """
        from napari_smil_mv.results import Results

        prov = {
            "producer": producer,
            "config": self.config.to_dict(),
            "loss_terms": self.loss_terms,
            "cameras": [c.to_dict() for c in self.cameras],
            "init": self.init,
            "elapsed_s": self.elapsed_s,
            "cancelled": self.cancelled,
        }
        if self.quality is not None:
            prov["quality"] = self.quality.attrs()
        prov.update(data.metadata)
        prov.update(provenance or {})
        return Results(
            poses=self.poses,
            betas=self.betas,  # (K,): Results repeats it per frame
            trans=self.trans,
            mesh_scale=self.mesh_scale,
            log_beta_scales=self.log_beta_scales,
            betas_trans=self.betas_trans,
            joints_3d=self.joints_3d,
            frame_indices=self.frame_indices,
            cameras=data.cameras,
            projections_2d=self.projections_2d,
            reprojection_error=self.reprojection_error,
            joint_names=self.joint_names,
            model_sha256=model.sha256,
            model_source=model.source,
            units=self.units,
            observed_2d=data.keypoints_2d,
            observed_weights=data.weights,
            data_names=data.data_names,
            camera_used=np.array([c.used for c in self.cameras]),
            videos=data.videos,
            parents=np.asarray(model.parents),
            fps=data.fps,
            provenance=prov,
            quality=None
            if self.quality is None
            else {"attrs": self.quality.attrs(), "arrays": self.quality.arrays()},
        )

    def summary(self) -> str:
        """Multi-line human-readable summary (per camera verdicts included)."""
        T, J = self.joints_3d.shape[:2]
        lines = [
            f"fit of {T} frames, {J} joints, {len(self.camera_names)} cameras in {self.elapsed_s:.2f} s"
            + (" (cancelled)" if self.cancelled else ""),
            f"median reprojection error over used cameras: {self.reprojection_median():.2f} px",
            f"mesh scale {np.median(self.mesh_scale):.4g} {self.units}/model unit",
        ]
        for cam in self.cameras:
            lines.append(
                f"  camera {cam.name}: fit {cam.fit_median_px:.2f} px, init {cam.init_median_px:.2f} px, "
                f"{cam.n_observations} keypoints, {'used' if cam.used else 'NOT used'}; {cam.note}"
            )
        if self.quality is not None:
            lines.extend(self.quality.summary_lines(self.joint_names, self.frame_indices))
        return "\n".join(lines)


@dataclass
class FitEvent:
    """Progress of a running fit (yielded by :func:`napari_smil_mv.fitting.fit_iter`).

    Attributes
    ----------
    stage : ``"init"``, a stage name from the config, or ``"done"``
    iteration : iteration within the stage (1-based; 0 for init/done)
    total : number of iterations of the stage
    loss_terms : unweighted loss terms at this iteration (empty for init/done)
    loss : weighted total loss (NaN for init)
    stage_index : 0-based index of the stage (-1 for init, n_stages for done)
    n_stages : number of optimisation stages
    elapsed_s : seconds since the fit started
    message : human-readable line
    result : the FitResult, only on the final event
    """

    stage: str
    iteration: int
    total: int
    loss_terms: dict[str, float] = field(default_factory=dict)
    loss: float = float("nan")
    stage_index: int = 0
    n_stages: int = 1
    elapsed_s: float = 0.0
    message: str = ""
    result: FitResult | None = None

    @property
    def progress(self) -> float:
        """Overall fraction done in [0, 1] (stages weighted equally)."""
        if self.stage_index < 0:
            return 0.0
        if self.stage_index >= self.n_stages:
            return 1.0
        within = self.iteration / self.total if self.total else 1.0
        return (self.stage_index + within) / self.n_stages
