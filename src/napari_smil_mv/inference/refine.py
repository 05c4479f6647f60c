"""Refining network predictions with the optimisation fitter (``fit(..., init_params=prediction)``)."""

from __future__ import annotations

import torch

from napari_smil_mv.fitting import FitConfig, FitData, fit


def refine_results(
    results,
    model_data,
    fit_config: FitConfig | None = None,
    device: str | torch.device = "cpu",
    points_3d=None,
):
    """Fit the body model to the observations stored in ``results``, starting from its (network) parameters.

    Parameters
    ----------
    results
        :class:`~napari_smil_mv.results.Results` with ``observed_2d`` / ``observed_weights`` (inference results
        have them).
    model_data
        The body model (:class:`~napari_smil_mv.body.SMILModelData`).
    fit_config
        Fitter settings (default ``FitConfig()``: a short rigid stage, then pose, shape and scales).
    device
        Torch device of the fit.
    points_3d
        Optional ``(T, J, 3)`` 3D points (data units) to add to the fit; by default only the 2D observations are
        used, so a 3D error against reference points stays an independent check.

    Returns
    -------
    Results
        The refined results (same cameras, frames and observations); the network's provenance is kept under
        ``network_provenance`` and ``refined`` is True.

    Raises
    ------
    ValueError
        When ``results`` has no observations to fit.
    """
    if results.observed_2d is None or results.observed_weights is None:
        raise ValueError("the results store no 2D observations, so they cannot be refined by the fitter")
    data = FitData(
        keypoints_2d=results.observed_2d,
        weights=results.observed_weights,
        cameras=results.cameras,
        points_3d=points_3d,
        units=results.units,
        frame_indices=results.frame_indices,
        joint_names=list(results.joint_names),
        data_names=results.data_names,
        videos=results.videos,
        fps=results.fps,
        metadata={k: v for k, v in results.provenance.items() if k in ("session", "session_name", "animal")},
    )
    init = {
        "poses": results.poses,
        "trans": results.trans,
        "mesh_scale": results.mesh_scale,
        "betas": results.betas,
        "log_beta_scales": results.log_beta_scales,
        "betas_trans": results.betas_trans,
    }
    fitted = fit(model_data, data, fit_config or FitConfig(), init_params=init, device=device)
    prov = {"refined": True, "network_provenance": dict(results.provenance)}
    for key in ("checkpoint", "dataset", "session", "session_name", "animal_name"):
        if key in results.provenance:
            prov[key] = results.provenance[key]
    return fitted.to_results(data, model_data, producer="napari-smil-mv infer --refine", provenance=prov)
