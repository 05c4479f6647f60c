"""Inference: on a dataset (results evaluate to the trainer's validation metrics), on a session with crops made
on the fly (same predictions as through the dataset), refinement by the fitter, and checkpoint checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_smil_mv.body import load_smil_model
from napari_smil_mv.dataset import MultiViewDataset
from napari_smil_mv.inference import Predictor, infer, infer_dataset_iter, infer_session_iter, refine_results
from napari_smil_mv.results import evaluate, read_results, write_results
from napari_smil_mv.training import TrainConfig, read_checkpoint
from napari_smil_mv.training.checkpoint import resolve_body_model, save_checkpoint
from napari_smil_mv.training.data import split_indices


def _val_indices(tiny_config, fresh_dir, synthetic_dataset) -> np.ndarray:
    cfg = TrainConfig.from_dict(tiny_config(fresh_dir("cfg")))
    ds = MultiViewDataset(synthetic_dataset())
    _, val = split_indices(cfg.data, ds)
    ds.close()
    return val


def test_dataset_inference_evaluates_to_the_validation_metrics(
    fresh_dir, tiny_config, synthetic_dataset, trained_checkpoint, tmp_path
):
    ckpt = trained_checkpoint()
    metrics = read_checkpoint(ckpt)["history"][-1]["metrics"]
    events = list(
        infer_dataset_iter(
            ckpt, synthetic_dataset(), indices=_val_indices(tiny_config, fresh_dir, synthetic_dataset)
        )
    )
    assert [e.stage for e in events][0] == "load" and events[-1].stage == "done"
    (res,) = events[-1].results
    assert res.units == "mm" and res.camera_names == ["cam1", "cam2", "cam3"] and res.n_frames == 2
    write_results(res, tmp_path / "r.smilmv.h5")
    back = read_results(tmp_path / "r.smilmv.h5")
    m = evaluate(back)
    assert np.isclose(m["reprojection_px_median"], metrics["px_median"], rtol=1e-9)
    assert np.isclose(m["pck_5px"], metrics["pck_5px"]) and m["n_keypoints"] == metrics["n_keypoints"]
    assert back.provenance["producer"] == "napari-smil-mv infer" and back.data_names[0] == "thorax"
    # the 3D keypoints are the body model's joints for the stored parameters (animation schema, mm)
    from napari_smil_mv.body import SMILModel

    out = SMILModel(load_smil_model(None), dtype=torch.float64)(
        torch.as_tensor(back.poses),
        betas=torch.as_tensor(back.betas),
        log_beta_scales=torch.as_tensor(back.log_beta_scales),
        betas_trans=torch.as_tensor(back.betas_trans),
        trans=torch.as_tensor(back.trans),
        mesh_scale=torch.as_tensor(back.mesh_scale),
    )
    assert np.allclose(out.joints.numpy(), back.joints_3d, atol=1e-3)


def test_session_inference_without_a_dataset_matches_dataset_inference(
    synthetic_dataset, synthetic_session, trained_checkpoint
):
    ckpt = trained_checkpoint()
    pr = Predictor(ckpt)
    (from_ds,) = infer(pr, synthetic_dataset())
    events = list(infer_session_iter(pr, synthetic_session()))
    assert events[0].stage == "load" and "joint_lookup.csv" in events[0].message
    (from_session,) = events[-1].results
    assert list(from_session.frame_indices) == list(from_ds.frame_indices)
    # same crops (undistort + crop + JPEG round trip) -> the same prediction up to float noise
    assert np.abs(from_session.joints_3d - from_ds.joints_3d).max() < 0.05  # mm
    gt = evaluate(from_session, synthetic_session() / "ground_truth.npz")
    assert np.isfinite(gt["joint_error_3d_median"]) and gt["reference"] == "ground truth"
    sub = list(infer_session_iter(pr, synthetic_session(), frames=slice(2, 5)))[-1].results[0]
    assert list(sub.frame_indices) == list(from_ds.frame_indices[2:5])


def test_refinement_by_the_fitter_lowers_the_reprojection_error(synthetic_dataset, trained_checkpoint):
    pr = Predictor(trained_checkpoint())
    (raw,) = infer(pr, synthetic_dataset())
    from napari_smil_mv.fitting import FitConfig

    cfg = FitConfig()
    cfg.stages[-1].iterations = 40
    refined = refine_results(raw, pr.model_data, cfg)
    assert refined.provenance["refined"] is True and "network_provenance" in refined.provenance
    assert evaluate(refined)["reprojection_px_median"] < evaluate(raw)["reprojection_px_median"]


def test_checkpoint_checks(trained_checkpoint, tmp_path):
    ckpt = trained_checkpoint()
    with pytest.raises(ValueError, match="not a napari-smil-mv network checkpoint"):
        torch.save({"a": 1}, tmp_path / "x.pt")
        Predictor(tmp_path / "x.pt")
    with pytest.raises(FileNotFoundError):
        Predictor(tmp_path / "missing.pt")
    blob = read_checkpoint(ckpt)
    from napari_smil_mv.network import NetworkSpec

    spec = NetworkSpec.from_dict(dict(blob["spec"]))
    spec.body_model_sha256 = "0" * 64
    with pytest.raises(ValueError, match="not the model the network was trained with"):
        resolve_body_model(spec)
    blob["spec"] = spec.to_dict()
    blob["spec"]["body_model_source"] = str(tmp_path / "gone.pkl")
    save_checkpoint(
        tmp_path / "moved.pt", **{k: v for k, v in blob.items() if k not in ("format", "version")}
    )
    with pytest.raises(FileNotFoundError, match="gone.pkl"):
        Predictor(tmp_path / "moved.pt")
    pr = Predictor(ckpt)
    with pytest.raises(KeyError, match="unknown to the network"):
        pr.camera_index("cam9")
