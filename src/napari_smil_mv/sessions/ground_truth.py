"""Ground truth of a synthetic demo session (``ground_truth.npz``): the data layout and its reader.

The file is written by :mod:`napari_smil_mv.demo.synthetic_session`. Its body-parameter keys follow the animation
schema of :mod:`napari_smil_mv.body.animation` (``poses``, ``trans``, ``betas``, ``betas_per_frame``,
``mesh_scale``, ``log_beta_scales``, ``betas_trans``, ``fps``), so ``load_animation(path, model)`` reads it too and
evaluating it with the demo model gives the world (mm) joints stored here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_smil_mv.cameras import Camera, CameraRig

__all__ = ["GROUND_TRUTH_NPZ", "GROUND_TRUTH_KEYS", "GroundTruth", "read_ground_truth"]

GROUND_TRUTH_NPZ = "ground_truth.npz"

#: Keys of ``ground_truth.npz`` with shapes and meaning (F frames, J model joints, N data nodes, C cameras).
GROUND_TRUTH_KEYS: dict[str, str] = {
    "poses": "(F, J, 3) axis-angle radians, root first (animation schema)",
    "trans": "(F, 3) world position of the root joint, world units (mm)",
    "betas": "(K,) shape coefficients",
    "betas_per_frame": "(F, K) the same per frame",
    "mesh_scale": "(F,) model units -> world units (mm per model unit), about the root joint",
    "log_beta_scales": "(F, J, 3) per-joint log scales (zeros)",
    "betas_trans": "(F, J, 3) per-joint offsets (zeros)",
    "fps": "() frames per second",
    "frame_indices": "(F,) video frame index of each row",
    "joint_names": "(J,) model joint names",
    "parents": "(J,) parent joint index, -1 for the root",
    "joints3d": "(F, J, 3) all model joints, world units",
    "node_names": "(N,) SLEAP skeleton nodes",
    "node_joints": "(N,) model joint observed by each node (as in joint_lookup.csv)",
    "edges": "(E, 2) skeleton edges as node indices",
    "points3d": "(F, N, 3) 3D position of each node = joints3d of its model joint (points3d.h5)",
    "keypoints_2d_clean": "(C, F, N, 2) noise-free projections, px (x, y), for every node (also hidden ones)",
    "keypoints_2d": "(C, F, N, 2) what the .slp files hold: projection + noise, NaN where not visible",
    "visible": "(C, F, N) bool: inside the image and not hidden by the body (z-buffer test)",
    "scores": "(C, F, N) per-node scores in (0, 1] of the .slp PredictedInstances, NaN where not visible",
    "noise_sigma_px": "(C, F, N) standard deviation of the Gaussian noise added to each keypoint, px",
    "camera_names": "(C,) camera names (calibration order)",
    "K": "(C, 3, 3) camera matrices",
    "dist": "(C, 5) OpenCV distortion (k1, k2, p1, p2, k3)",
    "rvec": "(C, 3) Rodrigues rotation, world -> camera",
    "tvec": "(C, 3) translation, world -> camera, world units",
    "size": "(C, 2) image size (W, H) px",
    "units": "() world length unit ('mm')",
    "up": "(3,) world up direction (the floor is the plane z = floor_z)",
    "floor_z": "() height of the floor, world units",
    "model_sha256": "() SHA-256 of the body model (demo model: of its canonical arrays)",
    "model_source": "() where the body model came from ('<demo model>')",
    "seed": "() generator seed",
    "noise_px": "() nominal keypoint noise, px",
    "vertices": "(F, V, 3) float32 posed mesh, world units (optional)",
    "faces": "(T, 3) mesh triangles (optional, with vertices)",
}


@dataclass
class GroundTruth:
    """Contents of ``ground_truth.npz`` (see :data:`GROUND_TRUTH_KEYS` for shapes and meaning).

    Attributes
    ----------
    arrays
        Every numeric array of the file by key (float64 / int64 / bool).
    rig
        The cameras rebuilt from ``K``, ``dist``, ``rvec``, ``tvec``, ``size``, ``camera_names`` and ``units``.
    units
        World length unit.
    joint_names, node_names, node_joints, camera_names
        Name lists.
    model_sha256, model_source
        Identity of the body model the session was made with.
    path
        The file read.
    """

    arrays: dict[str, np.ndarray]
    rig: CameraRig
    units: str
    joint_names: list[str]
    node_names: list[str]
    node_joints: list[str]
    camera_names: list[str]
    model_sha256: str
    model_source: str
    path: Path

    def __getitem__(self, key: str) -> np.ndarray:
        """Array ``key`` of the file (KeyError naming the available keys when absent)."""
        if key not in self.arrays:
            raise KeyError(f"{self.path}: no {key!r} in the ground truth; available: {sorted(self.arrays)}")
        return self.arrays[key]

    def __contains__(self, key: object) -> bool:
        return key in self.arrays

    @property
    def n_frames(self) -> int:
        return int(self.arrays["poses"].shape[0])

    def animation(self):
        """The body parameters as a :class:`napari_smil_mv.body.animation.Animation` (world units = mm)."""
        from napari_smil_mv.body.animation import Animation

        a = self.arrays
        return Animation(
            poses=a["poses"],
            betas=a["betas_per_frame"],
            trans=a["trans"],
            log_beta_scales=a["log_beta_scales"],
            betas_trans=a["betas_trans"],
            mesh_scale=a["mesh_scale"],
            fps=float(a["fps"]),
            source=str(self.path),
        )


def read_ground_truth(path: str | os.PathLike) -> GroundTruth:
    """Read the ground truth of a synthetic session.

    Parameters
    ----------
    path
        ``ground_truth.npz`` or the session folder holding it.

    Returns
    -------
    GroundTruth

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    ValueError
        When it is not a readable ``.npz`` or lacks a required key (the message names the key).
    """
    path = Path(path)
    if path.is_dir():
        path = path / GROUND_TRUTH_NPZ
    if not path.is_file():
        raise FileNotFoundError(
            f"ground truth file not found: {path} (make one with: napari-smil-mv make-demo-session DIR)"
        )
    try:
        npz = np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - any failure means "not our file"
        raise ValueError(f"{path} is not a readable .npz ground-truth file: {exc}") from exc
    with npz:
        data = {k: np.asarray(npz[k]) for k in npz.files}
    required = [k for k in GROUND_TRUTH_KEYS if k not in ("vertices", "faces")]
    missing = [k for k in required if k not in data]
    if missing:
        raise ValueError(
            f"{path}: keys {missing} are missing; this is not a ground-truth file written by make-demo-session"
        )
    names = [str(n) for n in data["camera_names"]]
    units = str(data["units"])
    cams = [
        Camera(name, data["K"][c], data["dist"][c], data["rvec"][c], data["tvec"][c], tuple(data["size"][c]))
        for c, name in enumerate(names)
    ]
    strings = {
        "joint_names",
        "node_names",
        "node_joints",
        "camera_names",
        "units",
        "model_sha256",
        "model_source",
    }
    return GroundTruth(
        arrays={k: v for k, v in data.items() if k not in strings},
        rig=CameraRig(cams, units),
        units=units,
        joint_names=[str(n) for n in data["joint_names"]],
        node_names=[str(n) for n in data["node_names"]],
        node_joints=[str(n) for n in data["node_joints"]],
        camera_names=names,
        model_sha256=str(data["model_sha256"]),
        model_source=str(data["model_source"]),
        path=path,
    )
