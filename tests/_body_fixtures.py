"""Small synthetic SMIL models and paths to the shared real models for the body-model tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from _sample_data import SHARED

MODEL_NAMES = ("SMILy_STICK", "SMILy_Mouse_static_joints")


def shared_model(name: str) -> Path:
    """Path of a real model in /work/shared/models, or skip the test."""
    path = SHARED / "models" / f"{name}.pkl"
    if not path.is_file():
        pytest.skip(f"shared model {path} not available")
    return path


def golden(name: str) -> dict[str, np.ndarray]:
    """Golden reference arrays for a real model, or skip the test."""
    path = SHARED / "golden" / f"{name}_reference.npz"
    if not path.is_file():
        pytest.skip(f"golden file {path} not available")
    with np.load(path) as npz:
        return {k: npz[k] for k in npz.files}


def tiny_model_dict(seed: int = 0, static: bool = False, n_per_joint: int = 6) -> dict:
    """A 5-joint model in the ``.pkl`` layout: chain 0-1-2 and branch 0-3-4, ≤2 weights per vertex.

    Has a sparse joint regressor, 3 shape directions, 2 scale/translation PCA directions (stored (K, J, 3)) and
    a shape covariance.
    """
    rng = np.random.default_rng(seed)
    parents = np.array([-1, 0, 1, 0, 3])
    joints = np.array(
        [[0.0, 0.0, 0.0], [0.5, 0.1, 0.0], [1.0, 0.15, 0.1], [-0.4, 0.2, -0.1], [-0.8, 0.3, 0.0]]
    )
    n_joints = len(parents)
    verts, weights = [], []
    for j in range(n_joints):
        for _ in range(n_per_joint):
            verts.append(joints[j] + 0.1 * rng.standard_normal(3))
            w = np.zeros(n_joints)
            other = parents[j] if parents[j] >= 0 else 1
            a = rng.uniform(0.5, 1.0)
            w[j], w[other] = a, 1.0 - a
            weights.append(w)
    v_template = np.asarray(verts)
    n_verts = v_template.shape[0]
    faces = np.array([[i, (i + 1) % n_verts, (i + 2) % n_verts] for i in range(0, n_verts, 2)])
    regressor = np.zeros((n_joints, n_verts))
    for j in range(n_joints):
        idx = rng.choice(np.arange(j * n_per_joint, (j + 1) * n_per_joint), size=3, replace=False)
        regressor[j, idx] = rng.dirichlet(np.ones(3))
    return {
        "v_template": v_template,
        "f": faces.astype(np.int32),
        "weights": np.asarray(weights, dtype=np.float32),
        "J_regressor": regressor.astype(np.float32),
        "J": joints.astype(np.float32),
        "kintree_table": np.stack([parents, np.arange(n_joints)]).astype(np.int32),
        "J_names": ["root", "a1", "a2", "b1", "b2"],
        "shapedirs": 0.05 * rng.standard_normal((n_verts, 3, 3)),
        "posedirs": np.empty(0),
        "scaledirs": 0.1 * rng.standard_normal((2, n_joints, 3)),
        "transdirs": rng.standard_normal((2, n_joints, 3)),
        "shape_cov": np.diag([1.0, 0.5, 0.25]),
        "shape_mean_betas": np.zeros(3),
        "static_joint_locs": static,
        "sym_verts": np.arange(2),
        "bs_style": "lbs",
    }


def random_params(n_joints: int, n_betas: int, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random but moderate SMIL parameters (float64)."""
    rng = np.random.default_rng(seed)
    return {
        "pose": 0.4 * rng.standard_normal((batch, n_joints, 3)),
        "betas": rng.standard_normal((batch, n_betas)),
        "log_beta_scales": 0.1 * rng.standard_normal((batch, n_joints, 3)),
        "betas_trans": 0.05 * rng.standard_normal((batch, n_joints, 3)),
        "trans": rng.standard_normal((batch, 3)),
        "mesh_scale": rng.uniform(0.5, 2.0, size=batch),
    }
