"""A small hand-made Results (no fit) for the export tests: 5 frames, 6 joints in a chain, 3 cameras."""

from __future__ import annotations

import numpy as np

from napari_smil_mv.cameras import ring_of_cameras
from napari_smil_mv.results import Results

JOINTS = ["root", "spine", "head", "leg_l", "leg_r", "tail"]
PARENTS = [-1, 0, 1, 0, 0, 0]
DATA = ["Trunk", "", "Nose", "", "", "TailTip"]


def small_results(fps: float | None = 30.0, n_frames: int = 5) -> Results:
    """Joints ``(T, 6, 3)`` in mm near the origin with one NaN, projected exactly into 3 cameras."""
    rng = np.random.default_rng(3)
    rig = ring_of_cameras(3, distance=300.0, units="mm", seed=0)
    T, J = n_frames, len(JOINTS)
    joints = rng.normal(0.0, 20.0, (T, J, 3))
    joints[2, 5] = np.nan
    proj = np.stack([cam.project(joints.reshape(-1, 3)).reshape(T, J, 2) for cam in rig])
    return Results(
        poses=rng.normal(0, 0.1, (T, J, 3)),
        betas=np.zeros((T, 2)),
        trans=joints[:, 0],
        mesh_scale=np.full(T, 40.0),
        log_beta_scales=np.zeros((T, J, 3)),
        betas_trans=np.zeros((T, J, 3)),
        joints_3d=joints,
        frame_indices=np.arange(T) + 7,
        cameras=rig,
        projections_2d=proj,
        reprojection_error=np.zeros((3, T, J)),
        joint_names=JOINTS,
        model_sha256="ab" * 32,
        model_source="demo_model.pkl",
        units="mm",
        data_names=DATA,
        parents=np.array(PARENTS),
        fps=fps,
        provenance={"producer": "test", "created": "2026-01-02T03:04:05+00:00", "path": "r.smilmv.h5"},
    )
