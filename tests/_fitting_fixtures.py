"""Synthetic multi-view clips for the fitting and results tests (demo model, ring of cameras, exact 2D)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from napari_smil_mv.body import SMILModel, axis_angle_to_matrix, load_smil_model, matrix_to_axis_angle
from napari_smil_mv.body.demo_motion import demo_motion
from napari_smil_mv.cameras import CameraRig, ring_of_cameras
from napari_smil_mv.fitting import FitData


@dataclass
class SyntheticClip:
    model: object  # SMILModelData
    data: FitData
    joints: np.ndarray  # (T, J, 3) ground-truth keypoints, world units
    params: dict  # ground-truth parameters (poses, trans, betas, mesh_scale)
    body_length: float


def synthetic_clip(
    n_frames: int = 10,
    n_cameras: int = 4,
    world_scale: float = 40.0,
    world_rotation=(0.3, -0.5, 1.2),
    offset=(100.0, -50.0, 20.0),
    dist=(-0.1, 0.01, 0.0, 0.0, 0.0),
    units: str = "mm",
) -> SyntheticClip:
    """The demo insect walking, placed in an arbitrary world frame (rotated, shifted, in "mm"), seen by a ring of
    cameras with lens distortion; 2D keypoints are exact projections of every model joint."""
    model = load_smil_model(None)
    motion = demo_motion(n_frames, model)
    smil = SMILModel(model, dtype=torch.float64)
    G = axis_angle_to_matrix(torch.tensor(world_rotation, dtype=torch.float64))
    pose = torch.as_tensor(motion["pose"], dtype=torch.float64).clone()
    pose[:, 0] = matrix_to_axis_angle(G @ axis_angle_to_matrix(pose[:, 0]))
    trans = world_scale * torch.as_tensor(motion["trans"]) @ G.T + torch.tensor(offset, dtype=torch.float64)
    betas = torch.as_tensor(motion["betas"], dtype=torch.float64)
    scale = torch.full((n_frames,), world_scale, dtype=torch.float64)
    out = smil(pose, betas=betas.expand(n_frames, -1), trans=trans, mesh_scale=scale)
    joints = out.joints.numpy()
    centre = joints.reshape(-1, 3).mean(0)
    up = G.numpy() @ np.array([0.0, 0.0, 1.0])
    rig = ring_of_cameras(
        n_cameras,
        distance=3.6 * world_scale,
        target=centre,
        up=up,
        image_size=(640, 480),
        seed=1,
        dist=list(dist),
    )
    rig = CameraRig(rig.cameras, units)
    kp = rig.project(joints)
    data = FitData(
        kp, np.ones(kp.shape[:-1]), rig, None, units=units, joint_names=list(model.joint_names), fps=30.0
    )
    length = float(np.max(np.linalg.norm(joints[0][:, None] - joints[0][None], axis=-1)))
    params = {
        "poses": pose.numpy(),
        "trans": trans.numpy(),
        "betas": betas.numpy(),
        "mesh_scale": scale.numpy(),
    }
    return SyntheticClip(model, data, joints, params, length)


def sparse_renumbered_clip(
    n_source_frames: int = 1000, gaps: tuple[int, int] = (10, 40), noise_px: float = 0.5, seed: int = 0
) -> tuple[SyntheticClip, np.ndarray]:
    """Sparse "labelled" frames of a long synthetic clip, renumbered 0..N-1 (as when only labelled frames are
    exported): every k-th frame with random gaps k in [gaps[0], gaps[1]), Gaussian 2D noise of ``noise_px``.

    Returns the clip (its ``data`` and ``joints`` restricted to the kept frames, frame numbers 0..N-1) and the kept
    source frame numbers.
    """
    from dataclasses import replace

    clip = synthetic_clip(n_frames=n_source_frames)
    rng = np.random.default_rng(seed)
    keep = np.cumsum(rng.integers(gaps[0], gaps[1], size=n_source_frames))
    keep = keep[keep < n_source_frames]
    data = clip.data.select_frames(keep)
    noisy = data.keypoints_2d + rng.normal(0.0, noise_px, data.keypoints_2d.shape)
    data = replace(data, keypoints_2d=noisy, frame_indices=np.arange(len(keep)))
    params = {k: (v[keep] if k != "betas" else v) for k, v in clip.params.items()}
    return SyntheticClip(clip.model, data, clip.joints[keep], params, clip.body_length), keep
