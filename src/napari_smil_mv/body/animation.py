"""Animation files (SMIL parameters per frame) and mesh-sequence outputs.

Animation ``.npz`` (the SMILify animation-export schema; unknown keys are ignored):

=====================  =======================  ===========================================================
key                    shape                    meaning
=====================  =======================  ===========================================================
``poses``              (F, J, 3)                axis-angle, root first (``(F, J, 6)`` 6D also accepted)
``betas_per_frame``    (F, K)                   shape coefficients per frame (preferred when present)
``betas``              (K,) or (F, K)           shape coefficients shared by all frames
``trans``              (F, 3)                   world translation (optional, default 0)
``log_beta_scales``    (F, J, 3) or (F, Ks)     per-joint log-scales, or ``scaledirs`` PCA weights (optional)
``betas_trans``        (F, J, 3) or (F, Kt)     per-joint offsets, or ``transdirs`` PCA weights (optional)
``mesh_scale``         (F,) or (F, 1)           global scale about the root keypoint (optional, default 1)
``fps``                ()                       frames per second (optional)
=====================  =======================  ===========================================================

Mesh-sequence ``.npz`` written by :func:`write_mesh_sequence_npz`: ``vertices (F, V, 3)``, ``joints (F, J, 3)``,
``faces (Fc, 3)``, ``joint_names (J,)``, ``parents (J,)`` and ``fps`` when known, all in model units (after the
root-centred placement).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from napari_smil_mv.body.model_file import SMILModelData
from napari_smil_mv.body.smil import SMILModel
from napari_smil_mv.utils.atomic import atomic_path, check_can_write

__all__ = [
    "Animation",
    "MeshSequence",
    "load_animation",
    "evaluate_animation",
    "write_animation_npz",
    "write_mesh_sequence_npz",
    "write_obj",
    "write_obj_sequence",
]


@dataclass
class Animation:
    """SMIL parameters for ``F`` frames (numpy, float64, model units).

    Attributes
    ----------
    poses : np.ndarray
        ``(F, J, 3)`` axis-angle or ``(F, J, 6)`` 6D rotations, root first.
    betas : np.ndarray
        ``(F, K)`` shape coefficients.
    trans, mesh_scale : np.ndarray or None
        ``(F, 3)`` world translation and ``(F,)`` global scale.
    log_beta_scales, betas_trans : np.ndarray or None
        ``(F, J, 3)`` per-joint values, or ``(F, Ks)`` PCA weights of ``scaledirs`` / ``transdirs``.
    fps : float or None
        Frame rate when stored.
    source : str
        File name (for messages).
    """

    poses: np.ndarray
    betas: np.ndarray
    trans: np.ndarray | None = None
    log_beta_scales: np.ndarray | None = None
    betas_trans: np.ndarray | None = None
    mesh_scale: np.ndarray | None = None
    fps: float | None = None
    source: str = ""

    @property
    def n_frames(self) -> int:
        """Number of frames ``F``."""
        return int(self.poses.shape[0])

    def take(self, rows: np.ndarray) -> Animation:
        """The frames ``rows`` (indices into the ``F`` frames) as a new animation (same fps and source)."""
        r = np.asarray(rows, dtype=np.int64)

        def pick(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[r]

        return Animation(
            poses=self.poses[r],
            betas=self.betas[r],
            trans=pick(self.trans),
            log_beta_scales=pick(self.log_beta_scales),
            betas_trans=pick(self.betas_trans),
            mesh_scale=pick(self.mesh_scale),
            fps=self.fps,
            source=self.source,
        )


@dataclass
class MeshSequence:
    """Evaluated meshes: ``vertices (F, V, 3)``, ``joints (F, J, 3)``, ``faces (Fc, 3)`` and joint names."""

    vertices: np.ndarray
    joints: np.ndarray
    faces: np.ndarray
    joint_names: list[str]
    parents: np.ndarray
    fps: float | None = None


def _float_array(npz, key: str, source: str) -> np.ndarray:
    try:
        arr = np.asarray(npz[key], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"animation {source}: key '{key}' is not numeric ({exc})") from exc
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"animation {source}: key '{key}' contains NaN or infinite values")
    return arr


def load_animation(path: str | os.PathLike, model: SMILModelData | None = None) -> Animation:
    """Read an animation ``.npz`` and, when ``model`` is given, check it against the model.

    Parameters
    ----------
    path
        Animation file.
    model
        Model whose joint count, shape-space size and PCA sizes the arrays must match.

    Returns
    -------
    Animation

    Raises
    ------
    FileNotFoundError, ValueError
        Missing file, or a missing/misshapen key (the message names the key, its shape and the expected one).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"animation file {path} does not exist (expected a .npz with 'poses')")
    source = str(path)
    try:
        npz = np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"{path} is not a readable .npz animation file: {exc}") from exc
    with npz:
        if "poses" not in npz.files:
            raise ValueError(
                f"animation {source}: key 'poses' is missing; expected axis-angle poses (F, J, 3)"
            )
        poses = _float_array(npz, "poses", source)
        if poses.ndim != 3 or poses.shape[2] not in (3, 6) or poses.shape[0] == 0:
            raise ValueError(
                f"animation {source}: key 'poses' has shape {poses.shape}; expected (F, J, 3) axis-angle"
            )
        n_frames = poses.shape[0]
        if "betas_per_frame" in npz.files:
            betas = _float_array(npz, "betas_per_frame", source)
            key = "betas_per_frame"
        elif "betas" in npz.files:
            betas = _float_array(npz, "betas", source)
            key = "betas"
            if betas.ndim == 1:
                betas = np.broadcast_to(betas, (n_frames, betas.shape[0])).copy()
        else:
            n_betas = model.n_betas if model is not None else 0
            betas, key = np.zeros((n_frames, n_betas)), "betas"
        if betas.ndim != 2 or betas.shape[0] != n_frames:
            raise ValueError(
                f"animation {source}: key '{key}' has shape {betas.shape}; expected ({n_frames}, K) or (K,)"
            )
        optional = {
            k: _float_array(npz, k, source)
            for k in ("trans", "log_beta_scales", "betas_trans", "mesh_scale")
            if k in npz.files
        }
        fps = float(np.asarray(npz["fps"]).reshape(-1)[0]) if "fps" in npz.files else None

    trans = optional.get("trans")
    if trans is not None and trans.shape != (n_frames, 3):
        raise ValueError(f"animation {source}: key 'trans' has shape {trans.shape}; expected ({n_frames}, 3)")
    mesh_scale = optional.get("mesh_scale")
    if mesh_scale is not None:
        if mesh_scale.shape == (n_frames, 1):
            mesh_scale = mesh_scale[:, 0]
        if mesh_scale.shape != (n_frames,):
            raise ValueError(
                f"animation {source}: key 'mesh_scale' has shape {mesh_scale.shape}; expected ({n_frames},)"
            )
    anim = Animation(
        poses=poses,
        betas=betas,
        trans=trans,
        log_beta_scales=optional.get("log_beta_scales"),
        betas_trans=optional.get("betas_trans"),
        mesh_scale=mesh_scale,
        fps=fps,
        source=source,
    )
    if model is not None:
        validate_animation(anim, model)
    return anim


def validate_animation(anim: Animation, model: SMILModelData) -> None:
    """Check the animation arrays against a model; raise ValueError naming the key and both shapes."""
    F, J, K = anim.n_frames, model.n_joints, model.n_betas
    src = f"animation {anim.source} (model {model.source})"
    if anim.poses.shape[1] != J:
        raise ValueError(
            f"{src}: 'poses' has {anim.poses.shape[1]} joints (shape {anim.poses.shape}) but the model has {J} "
            f"joints; expected ({F}, {J}, 3). Use the model the animation was made for."
        )
    if anim.betas.shape[1] != K:
        raise ValueError(
            f"{src}: shape coefficients have shape {anim.betas.shape}; the model has {K} shape directions, "
            f"expected ({F}, {K})"
        )
    for key, dirs in (("log_beta_scales", model.scaledirs), ("betas_trans", model.transdirs)):
        value = getattr(anim, key)
        if value is None:
            continue
        if value.ndim == 3 and value.shape == (F, J, 3):
            continue
        if value.ndim == 2 and value.shape[0] == F:
            if dirs is None:
                raise ValueError(
                    f"{src}: '{key}' has shape {value.shape} (PCA weights) but the model has no "
                    f"{'scaledirs' if key == 'log_beta_scales' else 'transdirs'}; expected ({F}, {J}, 3)"
                )
            if value.shape[1] == dirs.shape[2]:
                continue
        n_pca = "" if dirs is None else f" or ({F}, {dirs.shape[2]}) PCA weights"
        raise ValueError(f"{src}: '{key}' has shape {value.shape}; expected ({F}, {J}, 3){n_pca}")


def evaluate_animation(
    model: SMILModel,
    anim: Animation,
    batch_size: int = 64,
    progress: Callable[[int, int], None] | None = None,
) -> MeshSequence:
    """Evaluate every frame of ``anim`` with ``model`` (no gradients) in batches.

    Parameters
    ----------
    model
        The SMIL model.
    anim
        Animation (validated against ``model.data`` here).
    batch_size
        Frames per forward pass.
    progress
        Optional callback ``progress(frames_done, n_frames)``.

    Returns
    -------
    MeshSequence
        Placed vertices and keypoints, float32.
    """
    validate_animation(anim, model.data)
    F = anim.n_frames
    vertices = np.empty((F, model.n_vertices, 3), dtype=np.float32)
    joints = np.empty((F, model.n_joints, 3), dtype=np.float32)
    with torch.no_grad():
        for start in range(0, F, max(1, int(batch_size))):
            sl = slice(start, min(F, start + max(1, int(batch_size))))
            log_scales, offsets = anim.log_beta_scales, anim.betas_trans
            pca_scales = log_scales[sl] if log_scales is not None and log_scales.ndim == 2 else None
            pca_offsets = offsets[sl] if offsets is not None and offsets.ndim == 2 else None
            from_pca = model.pca_scale_trans(pca_scales, pca_offsets)
            out = model(
                anim.poses[sl],
                betas=anim.betas[sl],
                log_beta_scales=from_pca[0] if pca_scales is not None else _part(log_scales, sl),
                betas_trans=from_pca[1] if pca_offsets is not None else _part(offsets, sl),
                trans=_part(anim.trans, sl),
                mesh_scale=_part(anim.mesh_scale, sl),
            )
            vertices[sl] = out.vertices.cpu().numpy()
            joints[sl] = out.joints.cpu().numpy()
            if progress is not None:
                progress(sl.stop, F)
    return MeshSequence(
        vertices=vertices,
        joints=joints,
        faces=model.data.faces.copy(),
        joint_names=list(model.joint_names),
        parents=model.data.parents.copy(),
        fps=anim.fps,
    )


def _part(value: np.ndarray | None, sl: slice) -> np.ndarray | None:
    return None if value is None else value[sl]


def write_mesh_sequence_npz(path: str | os.PathLike, meshes: MeshSequence, overwrite: bool = False) -> Path:
    """Write a mesh sequence ``.npz`` atomically (see module docs for the keys)."""
    path = Path(path)
    arrays = {
        "vertices": np.asarray(meshes.vertices, dtype=np.float32),
        "joints": np.asarray(meshes.joints, dtype=np.float32),
        "faces": np.asarray(meshes.faces, dtype=np.int32),
        "joint_names": np.asarray(meshes.joint_names, dtype=str),
        "parents": np.asarray(meshes.parents, dtype=np.int32),
    }
    if meshes.fps is not None:
        arrays["fps"] = np.float64(meshes.fps)
    with atomic_path(path, overwrite=overwrite) as tmp:
        np.savez_compressed(tmp, **arrays)
    return path


def write_obj(
    path: str | os.PathLike, vertices: np.ndarray, faces: np.ndarray, overwrite: bool = False
) -> Path:
    """Write one triangle mesh as Wavefront OBJ (``v x y z`` lines, 1-based ``f`` lines), atomically.

    Parameters
    ----------
    path
        Output ``.obj`` file.
    vertices
        ``(V, 3)`` positions.
    faces
        ``(F, 3)`` 0-based vertex indices.
    overwrite
        Whether an existing file may be replaced.
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    lines = ["# written by napari-smil-mv (model units)"]
    lines += [f"v {x:.7g} {y:.7g} {z:.7g}" for x, y, z in vertices]
    lines += [f"f {a} {b} {c}" for a, b, c in faces + 1]
    path = Path(path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return path


def write_obj_sequence(
    folder: str | os.PathLike,
    vertices: np.ndarray,
    faces: np.ndarray,
    overwrite: bool = False,
    prefix: str = "frame_",
) -> list[Path]:
    """Write ``frame_000000.obj, frame_000001.obj, ...`` (one per frame of ``vertices (F, V, 3)``) to ``folder``."""
    folder = Path(folder)
    names = [folder / f"{prefix}{i:06d}.obj" for i in range(len(vertices))]
    for name in names:  # refuse before writing anything
        check_can_write(name, overwrite=overwrite)
    return [write_obj(name, v, faces, overwrite=overwrite) for name, v in zip(names, vertices, strict=True)]


def write_animation_npz(
    path: str | os.PathLike,
    poses: np.ndarray,
    betas: np.ndarray | None = None,
    trans: np.ndarray | None = None,
    log_beta_scales: np.ndarray | None = None,
    betas_trans: np.ndarray | None = None,
    mesh_scale: np.ndarray | None = None,
    fps: float | None = None,
    joint_names: list[str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write an animation ``.npz`` in the SMILify export schema (readable by :func:`load_animation`).

    Parameters
    ----------
    path
        Output file.
    poses
        ``(F, J, 3)`` axis-angle rotations, root first.
    betas
        ``(F, K)`` per-frame or ``(K,)`` shared shape coefficients; stored as ``betas_per_frame`` and their mean
        as ``betas``.
    trans, log_beta_scales, betas_trans, mesh_scale
        Optional ``(F, 3)``, ``(F, J, 3)`` (or PCA ``(F, Ks)``), ``(F, J, 3)``, ``(F,)`` arrays.
    fps
        Frame rate.
    joint_names
        Stored as ``joint_names`` when given (an extra key the reader ignores).
    overwrite
        Whether an existing file may be replaced.
    """
    poses = np.asarray(poses, dtype=np.float32)
    if poses.ndim != 3 or poses.shape[2] != 3:
        raise ValueError(
            f"write_animation_npz: poses have shape {poses.shape}; expected (F, J, 3) axis-angle"
        )
    F = poses.shape[0]
    arrays: dict[str, np.ndarray] = {"poses": poses}
    arrays["trans"] = (
        np.zeros((F, 3), np.float32) if trans is None else np.asarray(trans, np.float32).reshape(F, 3)
    )
    if betas is not None:
        b = np.asarray(betas, dtype=np.float32)
        b = np.broadcast_to(b, (F, b.shape[-1])) if b.ndim == 1 else b
        if b.shape[0] != F:
            raise ValueError(f"write_animation_npz: betas have shape {b.shape}; expected ({F}, K) or (K,)")
        arrays["betas_per_frame"] = np.ascontiguousarray(b)
        arrays["betas"] = b.mean(axis=0)
    for key, value in (("log_beta_scales", log_beta_scales), ("betas_trans", betas_trans)):
        if value is not None:
            value = np.asarray(value, dtype=np.float32)
            if value.shape[0] != F:
                raise ValueError(
                    f"write_animation_npz: {key} has shape {value.shape}; expected {F} frames first"
                )
            arrays[key] = value
    if mesh_scale is not None:
        arrays["mesh_scale"] = np.asarray(mesh_scale, np.float32).reshape(F)
    if fps is not None:
        arrays["fps"] = np.float32(fps)
    if joint_names is not None:
        if len(joint_names) != poses.shape[1]:
            raise ValueError(
                f"write_animation_npz: {len(joint_names)} joint names for {poses.shape[1]} joints"
            )
        arrays["joint_names"] = np.asarray(joint_names, dtype=str)
    path = Path(path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        np.savez(tmp, **arrays)
    return path
