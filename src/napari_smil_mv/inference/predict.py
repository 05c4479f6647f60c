"""Running a trained network and packaging its predictions as :class:`~napari_smil_mv.results.Results`.

Predictions are written in the units of the data (the session's or the dataset's calibration units), with the
body parameters in the animation schema (axis-angle poses, ``trans`` and ``mesh_scale`` in those units), the 3D
keypoints, and their projections through the *calibrated* cameras (the network's bounded camera corrections stay
internal), so ``napari-smil-mv evaluate`` and the exports treat them exactly like a fit.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from napari_smil_mv.body.rotations import matrix_to_axis_angle, rotation_6d_to_matrix
from napari_smil_mv.network import body_joints, pose_6d
from napari_smil_mv.utils.cancel import CancelFlag, is_cancelled


@dataclass
class InferEvent:
    """Progress of an inference run.

    Attributes
    ----------
    stage : ``load``, ``predict``, ``refine``, ``done``
    done, total : units of work (samples or frames) done and planned
    message : one human-readable line
    results : on ``done``, the :class:`~napari_smil_mv.results.Results` (one per session and animal)
    """

    stage: str
    done: int = 0
    total: int = 0
    message: str = ""
    results: list = field(default_factory=list)

    @property
    def progress(self) -> float:
        return self.done / self.total if self.total else (1.0 if self.stage == "done" else 0.0)


class Predictor:
    """A trained network with its body model, ready to predict.

    Parameters
    ----------
    checkpoint
        Checkpoint file (``best.pt``/``last.pt``).
    body_model
        Body model file or data to use instead of the one recorded in the checkpoint (checked by SHA-256).
    device
        Torch device.
    """

    def __init__(self, checkpoint: str | Path, body_model=None, device: str | torch.device = "cpu") -> None:
        from napari_smil_mv.body import SMILModel
        from napari_smil_mv.training.checkpoint import load_network

        self.device = torch.device(device)
        self.checkpoint = Path(checkpoint)
        self.net, self.model_data, blob = load_network(checkpoint, body_model, self.device)
        self.spec = self.net.spec
        self.smil = SMILModel(self.model_data).to(self.device)
        self.epoch = int(blob.get("epoch", 0))

    def camera_index(self, name: str) -> int:
        """Canonical index of camera ``name`` (KeyError naming the known cameras)."""
        if name not in self.spec.camera_names:
            raise KeyError(
                f"camera {name!r} is unknown to the network (trained on cameras {self.spec.camera_names}); "
                "a network predicts only for the cameras it was trained with"
            )
        return self.spec.camera_names.index(name)

    @torch.no_grad()
    def predict(
        self,
        images: torch.Tensor,
        view_mask: torch.Tensor,
        camera_indices: torch.Tensor,
        K: torch.Tensor,
        R: torch.Tensor,
        t: torch.Tensor,
    ) -> dict[str, np.ndarray]:
        """Predict a batch (inputs as for :meth:`MultiViewRegressor.forward`, training units).

        Returns
        -------
        dict of numpy arrays
            ``poses (B, J, 3)`` axis-angle, ``betas (B, K)``, ``trans (B, 3)``, ``mesh_scale (B,)``,
            ``log_beta_scales``, ``betas_trans (B, J, 3)``, ``joints (B, J, 3)`` (training units),
            ``K``, ``R``, ``t`` (the network's corrected cameras, ``(B, V, ...)``).
        """
        dev = self.device
        out = self.net(
            images.to(dev), view_mask.to(dev), camera_indices.to(dev), K.to(dev), R.to(dev), t.to(dev)
        )
        joints = body_joints(self.smil, out)
        poses = matrix_to_axis_angle(rotation_6d_to_matrix(pose_6d(out).double()))

        def np_(x: torch.Tensor) -> np.ndarray:
            return x.detach().double().cpu().numpy()

        return {
            "poses": np_(poses),
            "betas": np_(out["betas"]),
            "trans": np_(out["trans"]),
            "mesh_scale": np_(out["mesh_scale"])[:, 0],
            "log_beta_scales": np_(out["log_beta_scales"]),
            "betas_trans": np_(out["betas_trans"]),
            "joints": np_(joints),
            "K": np_(out["K"]),
            "R": np_(out["R"]),
            "t": np_(out["t"]),
        }


def build_results(
    pred: dict[str, np.ndarray],
    world_scale: float,
    rig,
    frame_indices: np.ndarray,
    model_data,
    units: str,
    observed_2d: np.ndarray | None,
    observed_weights: np.ndarray | None,
    data_names: list[str] | None,
    videos: list | None = None,
    fps: float | None = None,
    provenance: dict[str, Any] | None = None,
):
    """:class:`~napari_smil_mv.results.Results` from stacked predictions of T frames.

    Parameters
    ----------
    pred
        Output of :meth:`Predictor.predict` stacked over frames (``(T, ...)``).
    world_scale
        Data units -> training units factor; lengths are divided by it.
    rig
        The C calibrated cameras (data units) in the order of ``observed_2d``.
    observed_2d, observed_weights
        ``(C, T, J, 2)`` observed pixels (NaN = missing) and ``(C, T, J)`` weights, or None.
    """
    from napari_smil_mv.results import Results

    ws = float(world_scale)
    joints = pred["joints"] / ws
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        proj = rig.project(joints)  # (C, T, J, 2), NaN behind a camera
    C, T, J = len(rig), joints.shape[0], joints.shape[1]
    if observed_2d is not None:
        obs = np.where((observed_weights > 0)[..., None], observed_2d, np.nan)
        err = np.linalg.norm(proj - obs, axis=-1)
    else:
        err = np.full((C, T, J), np.nan)
    return Results(
        poses=pred["poses"],
        betas=pred["betas"] if pred["betas"].shape[-1] else np.zeros((T, 0)),
        trans=pred["trans"] / ws,
        mesh_scale=pred["mesh_scale"] / ws,
        log_beta_scales=pred["log_beta_scales"],
        betas_trans=pred["betas_trans"],
        joints_3d=joints,
        frame_indices=np.asarray(frame_indices, dtype=np.int64),
        cameras=rig,
        projections_2d=proj,
        reprojection_error=err,
        joint_names=list(model_data.joint_names),
        model_sha256=model_data.sha256,
        model_source=model_data.source,
        units=units,
        observed_2d=observed_2d,
        observed_weights=observed_weights,
        data_names=data_names,
        videos=videos,
        parents=np.asarray(model_data.parents),
        fps=fps,
        provenance=dict(provenance or {}),
    )


def stack(preds: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Concatenate per-batch prediction dicts along the batch axis (per-view arrays padded to the widest)."""
    out = {}
    for k in preds[0]:
        arrays = [p[k] for p in preds]
        if k in ("K", "R", "t"):
            width = max(a.shape[1] for a in arrays)
            arrays = [np.pad(a, [(0, 0), (0, width - a.shape[1])] + [(0, 0)] * (a.ndim - 2)) for a in arrays]
        out[k] = np.concatenate(arrays, axis=0)
    return out


def select(pred: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    """Rows of a stacked prediction."""
    return {k: v[rows] for k, v in pred.items()}


def infer_dataset_iter(
    checkpoint: str | Path | Predictor,
    dataset: str | Path,
    body_model=None,
    device: str | torch.device = "cpu",
    batch_size: int = 8,
    indices: np.ndarray | list[int] | None = None,
    refine: bool = False,
    fit_config=None,
    cancel: CancelFlag = None,
) -> Iterator[InferEvent]:
    """Predict every sample of a preprocessed dataset; one Results per (session, animal), frames in order.

    Parameters
    ----------
    checkpoint
        Checkpoint file or a :class:`Predictor`.
    dataset
        Dataset file written by ``napari-smil-mv preprocess`` (its original calibration is needed to express the
        predictions in the original images).
    indices
        Sample indices to predict (default: all).
    refine, fit_config
        Refine each result with the fitter (:func:`~napari_smil_mv.inference.refine.refine_results`).
    """
    from napari_smil_mv.dataset import MultiViewDataset
    from napari_smil_mv.training.data import EpochBatches, OriginalCameras, collate, to_device

    pr = checkpoint if isinstance(checkpoint, Predictor) else Predictor(checkpoint, body_model, device)
    ds = MultiViewDataset(dataset, random_view_sampling=False, indices=indices)
    names = ds.get_canonical_camera_order()
    known = pr.spec.camera_names
    untrained = [n for n in names if n not in known]
    message = f"network from {pr.checkpoint} (epoch {pr.epoch}), dataset {dataset}"
    if untrained:
        message += (
            f"; cameras {untrained} left out of the prediction: the network was trained on cameras {known} "
            "only (they are still projected into and evaluated on)"
        )
    yield InferEvent("load", 0, 0, message)
    original = OriginalCameras.read(dataset)
    if original is None:
        raise ValueError(
            f"{dataset} does not store the original calibration (crop boxes, original camera matrices); inference "
            "results need it: preprocess the sessions with napari-smil-mv, or run inference on the sessions"
        )
    # dataset camera index -> network index; -1 (padding) stays, cameras unknown to the network become -1
    remap = np.array([known.index(n) if n in known else -1 for n in names] + [-1])
    ws = float(ds.world_scale)
    n = len(ds)
    sampler = EpochBatches(n, batch_size, 0, 0, shuffle=False)
    loader = torch.utils.data.DataLoader(ds, batch_sampler=sampler, collate_fn=collate)
    preds, keys, done = [], [], 0
    obs_rows: list[tuple] = []
    for x, y in loader:
        if is_cancelled(cancel):
            ds.close()
            return
        b = to_device(x, y, torch.device("cpu"), pr.spec.image_size)
        cam_idx = torch.from_numpy(remap[b["camera_indices"].numpy()])
        view_mask = b["view_mask"] & (cam_idx >= 0)
        blind = (~view_mask.any(1)).nonzero().flatten().tolist()
        if blind:
            ds.close()
            raise ValueError(
                f"{dataset}: sample(s) {[int(x['sample_index'][i]) for i in blind]} are seen only by cameras the "
                f"network was not trained on ({untrained}; it knows {known}); predict from a dataset with "
                "those cameras' views, or leave those samples out (indices=)"
            )
        preds.append(pr.predict(b["images"], view_mask, cam_idx, b["K"], b["R"], b["t"]))
        for i, s in enumerate(x["sample_index"].tolist()):
            keys.append((x["session_name"][i], x["animal"][i], int(x["frame_idx"][i]), s))
            obs_rows.append(
                (x["camera_indices"][i].numpy(), b["kp2d"][i].double().numpy(), b["vis"][i].numpy())
            )
        done += len(x["sample_index"])
        yield InferEvent("predict", done, n, f"predicted {done}/{n} samples")
    ds.close()
    pred = stack(preds)
    results = []
    groups: dict[tuple[str, str], list[int]] = {}
    for row, (session, animal, _frame, _s) in enumerate(keys):
        groups.setdefault((session, animal), []).append(row)
    for (session, animal), rows in groups.items():
        rows = sorted(rows, key=lambda r: keys[r][2])
        res = _dataset_group_results(pr, pred, keys, obs_rows, rows, original, names, ws, ds, session, animal)
        results.append(res)
    if refine:
        from napari_smil_mv.inference.refine import refine_results

        refined = []
        for i, res in enumerate(results):
            yield InferEvent(
                "refine", i, len(results), f"refining {res.provenance.get('session_name')} with the fitter"
            )
            refined.append(refine_results(res, pr.model_data, fit_config, device=pr.device))
        results = refined
    yield InferEvent("done", n, n, f"{n} samples -> {len(results)} result set(s)", results)


def _dataset_group_results(pr, pred, keys, obs_rows, rows, original, names, ws, ds, session, animal):
    from napari_smil_mv.cameras import CameraRig
    from napari_smil_mv.training.metrics import crop_to_original

    S = pr.spec.image_size
    present = sorted({int(c) for r in rows for c in obs_rows[r][0] if c >= 0})
    cams = []
    for c in present:
        first = next(keys[r][3] for r in rows if c in obs_rows[r][0])
        cams.append(original.camera(first, c, names[c]))
    rig = CameraRig(cams, ds.info.world_units)
    T, J = len(rows), pred["joints"].shape[1]
    obs = np.full((len(present), T, J, 2), np.nan)
    w = np.zeros((len(present), T, J))
    for ti, r in enumerate(rows):
        cam_idx, kp, vis = obs_rows[r]
        s = keys[r][3]
        for v, c in enumerate(cam_idx):
            if c < 0:
                continue
            ci = present.index(int(c))
            slot = original.slot(s, int(c))
            cam = rig[ci]
            px = crop_to_original(
                kp[v],
                original.crop_box[s, slot],
                S,
                cam.K,
                original.dist[s, slot],
                cam.fisheye,
                original.undistorted,
            )
            seen = vis[v] > 0
            obs[ci, ti][seen] = px[seen]
            w[ci, ti] = seen.astype(float)
    jm = dict((m, d) for d, m in pr.spec.joint_map) if pr.spec.joint_map else {}
    data_names = [jm.get(name, "") for name in pr.spec.joint_names] if jm else None
    prov = {
        "producer": "napari-smil-mv infer",
        "checkpoint": str(pr.checkpoint),
        "checkpoint_epoch": pr.epoch,
        "dataset": str(ds.path),
        "session_name": session,
        "animal_name": animal,
        "sample_indices": [int(keys[r][3]) for r in rows],
        "cameras_unknown_to_network": [names[c] for c in present if names[c] not in pr.spec.camera_names],
        "network": {
            k: getattr(pr.spec, k) for k in ("backbone", "fusion", "body_head", "camera_head", "camera_mode")
        },
    }
    return build_results(
        select(pred, np.asarray(rows)),
        ws,
        rig,
        np.array([keys[r][2] for r in rows]),
        pr.model_data,
        ds.info.world_units,
        obs,
        w,
        data_names,
        provenance=prov,
    )
