"""A deterministic walking motion for the procedural demo insect (:mod:`napari_smil_mv.body.demo_model`).

Alternating-tripod gait (front-left, mid-right and hind-left legs swing together, then the other three), body
sway, abdomen and head movement, waving antennae, and forward travel along a gentle left-curving arc on the
floor ``z = 0``. Time is ``frame / fps``, so a shorter clip is the start of a longer one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

GAIT_PERIOD_S = 1.5  # one full stride cycle (both tripods), seconds
PROTRACTION_RAD = 0.2  # coxa swing amplitude about the vertical axis
LIFT_RAD = 0.3  # femur lift at mid-swing
PATH_CURVATURE = 0.8  # 1 / radius of the walked arc, per model unit
PATH_CENTRE_S = 2.0  # time at which the insect passes the world origin heading along +x
DEMO_BETAS = (0.5, 0.4, 0.3, -0.4)  # body length, leg length, girth, antenna length (see SHAPE_DIRECTIONS)
_TRIPOD_A = {("front", "l"), ("mid", "r"), ("hind", "l")}


def _field(model_data: Any, key: str, attr: str) -> Any:
    if isinstance(model_data, Mapping):
        if key not in model_data:
            raise KeyError(f"demo_motion: the model dictionary has no {key!r} entry.")
        return model_data[key]
    if not hasattr(model_data, attr):
        raise KeyError(f"demo_motion: the model data has no {attr!r} attribute.")
    return getattr(model_data, attr)


def _numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().numpy()
    if hasattr(x, "toarray"):  # scipy.sparse (the loaded model's J_regressor)
        x = x.toarray()
    return np.asarray(x, dtype=np.float64)


def _rest_geometry(model_data: Any, betas: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Joint names, rest joints (J, 3) and shaped rest vertices (V, 3) for ``betas``."""
    names = [str(n) for n in _field(model_data, "J_names", "joint_names")]
    v = _numpy(_field(model_data, "v_template", "v_template"))
    shapedirs = _numpy(_field(model_data, "shapedirs", "shapedirs"))
    if shapedirs.size and betas.size:
        v = v + shapedirs[..., : betas.size] @ betas
    regressor = _numpy(_field(model_data, "J_regressor", "J_regressor"))
    joints = regressor @ v
    return names, joints, v


def demo_motion(n_frames: int, model_data: Any, fps: float = 30.0) -> dict[str, np.ndarray | float]:
    """Walking motion for the demo insect.

    Parameters
    ----------
    n_frames
        Number of frames, >= 1.
    model_data
        The demo model: the ``.pkl`` dictionary from :func:`build_demo_model_dict`, or a loaded model's data
        object with ``joint_names``, ``v_template``, ``shapedirs`` and ``J_regressor`` attributes.
    fps
        Frame rate; frame ``f`` is at time ``f / fps`` seconds.

    Returns
    -------
    dict
        ``pose`` (F, J, 3) axis-angle radians (joint 0 = global orientation, others relative to the parent);
        ``trans`` (F, 3) world position of the root joint, model units, floor at ``z = 0``; ``betas`` (K,);
        ``mesh_scale`` (F,) ones; ``fps`` (float). Use with the SMIL placement
        ``x' = (x - J'_0) * mesh_scale + trans``.

    Raises
    ------
    KeyError
        If the model lacks the demo joint names (``thorax``, ``leg_<pair>_<side>_coxa``, ...).
    """
    if int(n_frames) < 1:
        raise ValueError(f"demo_motion: n_frames must be >= 1, got {n_frames}.")
    n_frames = int(n_frames)
    shapedirs = _numpy(_field(model_data, "shapedirs", "shapedirs"))
    n_betas = shapedirs.shape[-1] if shapedirs.ndim == 3 else 0
    betas = np.zeros(n_betas)
    betas[: min(n_betas, len(DEMO_BETAS))] = DEMO_BETAS[: min(n_betas, len(DEMO_BETAS))]
    names, joints, verts = _rest_geometry(model_data, betas)
    index = {n: i for i, n in enumerate(names)}
    required = ["thorax", "head"] + [
        f"leg_{p}_{s}_{seg}"
        for p in ("front", "mid", "hind")
        for s in "lr"
        for seg in ("coxa", "femur", "tibia")
    ]
    missing = [n for n in required if n not in index]
    if missing:
        raise KeyError(f"demo_motion drives the procedural demo model only; joints missing: {missing[:4]}...")

    t = np.arange(n_frames) / float(fps)
    rot = np.zeros((n_frames, len(names), 3))
    up = np.array([0.0, 0.0, 1.0])
    step = 2.0 * np.pi * 2.0 * t / GAIT_PERIOD_S  # two steps (one per tripod) per cycle

    reaches = []
    for pair in ("front", "mid", "hind"):
        for side in "lr":
            coxa = index[f"leg_{pair}_{side}_coxa"]
            tip = index.get(f"leg_{pair}_{side}_claw", index[f"leg_{pair}_{side}_tibia"])
            lateral = joints[tip] - joints[coxa]
            lateral[2] = 0.0
            reaches.append(np.linalg.norm(lateral))
            lateral /= np.linalg.norm(lateral)
            sign = 1.0 if side == "l" else -1.0
            phase = (t / GAIT_PERIOD_S + (0.0 if (pair, side) in _TRIPOD_A else 0.5)) % 1.0
            swing = phase >= 0.5
            u = np.where(swing, (phase - 0.5) / 0.5, 0.0)
            protraction = np.where(
                swing,
                -PROTRACTION_RAD + 2 * PROTRACTION_RAD * u * u * (3 - 2 * u),
                PROTRACTION_RAD * (1.0 - 4.0 * phase),
            )
            lift = np.where(swing, LIFT_RAD * np.sin(np.pi * u), 0.0)
            lift_axis = np.cross(lateral, up)  # rotating about it raises the leg
            rot[:, coxa] = protraction[:, None] * np.array([0.0, 0.0, -sign])
            rot[:, index[f"leg_{pair}_{side}_femur"]] = lift[:, None] * lift_axis
            rot[:, index[f"leg_{pair}_{side}_tibia"]] = -0.5 * lift[:, None] * lift_axis

    # Abdomen sway and head movement (small local rotations), antennae waving.
    for k, name in enumerate(("abdomen_1", "abdomen_2", "abdomen_3")):
        if name in index:
            rot[:, index[name]] = np.stack(
                [
                    np.zeros_like(t),
                    0.04 * np.sin(np.pi * t / 1.3 + k),
                    0.06 * np.sin(step / 2 + 1.0 + 0.6 * k),
                ],
                1,
            )
    rot[:, index["head"]] = np.stack(
        [np.zeros_like(t), 0.06 * np.sin(2 * np.pi * t / 1.9), 0.12 * np.sin(2 * np.pi * t / 2.3)], 1
    )
    for side, sign in (("l", 1.0), ("r", -1.0)):
        for level, (period, amp) in enumerate(((1.7, 0.35), (1.1, 0.3))):
            name = f"antenna_{side}_{level + 1}"
            if name in index:
                wave = np.sin(2 * np.pi * t / period + (0.0 if side == "l" else 1.3))
                nod = np.sin(2 * np.pi * t / (period * 0.8) + 0.5 * level)
                rot[:, index[name]] = np.stack([0.15 * nod * sign, 0.2 * nod, amp * wave * sign], 1)

    # Root: heading along the arc plus sway; translation integrates the heading at constant speed.
    speed = 2.0 * PROTRACTION_RAD * float(np.mean(reaches)) / (0.5 * GAIT_PERIOD_S)
    heading = PATH_CURVATURE * speed * (t - PATH_CENTRE_S)  # heading 0 and position (0, 0) at PATH_CENTRE_S
    yaw = heading + 0.04 * np.sin(step)
    roll = 0.015 * np.sin(step + 0.5 * np.pi)
    pitch = 0.01 * np.sin(step)
    root = Rotation.from_euler("ZYX", np.stack([yaw, pitch, roll], 1))
    rot[:, index["thorax"]] = root.as_rotvec()
    height = 0.008 - float(verts[:, 2].min())  # claws about on the floor z = 0 despite the sway
    x = np.sin(heading) / PATH_CURVATURE
    y = (1.0 - np.cos(heading)) / PATH_CURVATURE
    z = height + 0.004 * np.sin(step)
    return {
        "pose": rot,
        "trans": np.stack([x, y, z], 1),
        "betas": betas,
        "mesh_scale": np.ones(n_frames),
        "fps": float(fps),
    }
