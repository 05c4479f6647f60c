"""Reading, validating and writing SMIL/SMAL body-model files (``.pkl``).

A model file is a Python pickle of a ``dict`` (written by the SMIL Blender add-on or by SMAL/SMPL tools). Legacy
files may hold ``chumpy`` arrays and ``scipy.sparse`` matrices; both are read without chumpy installed. Only
array-like classes (numpy, scipy.sparse, chumpy, a few builtins) may be referenced by the pickle: anything else is
refused, so loading a model cannot run arbitrary code through ``find_class``.

See ``docs/body_model.md`` for the keys and their meaning.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from napari_smil_mv.body._pickle_io import UnsafePickleError, unpickle_model_bytes
from napari_smil_mv.utils.atomic import atomic_path

__all__ = [
    "SMILModelData",
    "load_smil_model",
    "smil_model_from_dict",
    "save_smil_model",
    "model_to_dict",
]

DEMO_SOURCE = "<demo model>"


@dataclass(eq=False)
class SMILModelData:
    """A validated SMIL body model as numpy arrays (model units, joints in topological order).

    Attributes
    ----------
    v_template : np.ndarray
        ``(V, 3)`` float64 template (mean-shape, rest-pose) vertices.
    faces : np.ndarray
        ``(F, 3)`` int64 triangle vertex indices, 0-based.
    weights : np.ndarray
        ``(V, J)`` float64 linear-blend-skinning weights.
    J_regressor : scipy.sparse.csr_matrix
        ``(J, V)`` float64 joint regressor (all zeros for ``static_joint_locs`` models).
    J : np.ndarray
        ``(J, 3)`` float64 rest joint locations stored in the file (used only by static models).
    parents : np.ndarray
        ``(J,)`` int64 parent joint index, ``-1`` for the root (index 0); ``parents[i] < i``.
    joint_names : list of str
        ``J`` joint names.
    shapedirs : np.ndarray
        ``(V, 3, K)`` float64 shape blend shapes (``K`` may be 0).
    posedirs : np.ndarray or None
        ``(V, 3, 9 (J − 1))`` pose corrective blend shapes, or None (all SMIL models).
    scaledirs, transdirs : np.ndarray or None
        ``(J, 3, Ks)`` per-joint log-scale / translation PCA directions, or None.
    shape_cov : np.ndarray or None
        ``(K, K)`` covariance of the shape coefficients.
    shape_mean_betas : np.ndarray or None
        ``(K,)`` mean shape coefficients.
    static_joint_locs : bool
        True when the skeleton is the fixed ``J`` (shape coefficients do not move the joints) and keypoints are the
        forward-kinematics joints.
    source : str
        File the model came from (``"<demo model>"`` for the embedded demo).
    sha256 : str
        SHA-256 of the file bytes (for the demo: of the canonical arrays).
    extras : dict
        Other keys of the file (``sym_verts``, ``bs_style``, ...), kept for round trips.
    """

    v_template: np.ndarray
    faces: np.ndarray
    weights: np.ndarray
    J_regressor: sp.csr_matrix
    J: np.ndarray
    parents: np.ndarray
    joint_names: list[str]
    shapedirs: np.ndarray
    posedirs: np.ndarray | None = None
    scaledirs: np.ndarray | None = None
    transdirs: np.ndarray | None = None
    shape_cov: np.ndarray | None = None
    shape_mean_betas: np.ndarray | None = None
    static_joint_locs: bool = False
    source: str = ""
    sha256: str = ""
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def n_vertices(self) -> int:
        """Number of mesh vertices ``V``."""
        return int(self.v_template.shape[0])

    @property
    def n_joints(self) -> int:
        """Number of joints ``J`` (root included)."""
        return int(self.parents.shape[0])

    @property
    def n_betas(self) -> int:
        """Number of shape coefficients ``K``."""
        return int(self.shapedirs.shape[2])

    @property
    def n_faces(self) -> int:
        """Number of triangles."""
        return int(self.faces.shape[0])


def load_smil_model(path: str | os.PathLike | None = None) -> SMILModelData:
    """Load and validate a SMIL/SMAL model ``.pkl`` (or the embedded demo model when ``path`` is None).

    Parameters
    ----------
    path
        Model file. None returns the procedural demo model.

    Returns
    -------
    SMILModelData

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If the file is not a readable model pickle, or a key is missing or has the wrong shape (the message names
        the key, the expected shape and the file).
    """
    if path is None:
        from napari_smil_mv.body.demo_model import build_demo_model_dict

        return smil_model_from_dict(build_demo_model_dict(), source=DEMO_SOURCE)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"SMIL model file {path} does not exist (expected a .pkl body-model file)")
    return _model_from_bytes(path.read_bytes(), path)


def _model_from_bytes(raw: bytes, path: Path) -> SMILModelData:
    """Unpickle (allow-listed classes only) and validate the bytes of the model file ``path``."""
    try:
        obj = unpickle_model_bytes(raw)
    except UnsafePickleError as exc:
        raise ValueError(
            f"{path} was refused as a body-model file: {exc}. Loading it could run code; use a model file from a "
            "trusted source"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means "not a model file"
        raise ValueError(f"{path} is not a readable SMIL model pickle: {exc}") from exc
    if not isinstance(obj, dict):
        raise ValueError(
            f"{path} does not hold a SMIL model: expected a pickled dict, found {type(obj).__name__}"
        )
    data = smil_model_from_dict(obj, source=str(path))
    data.sha256 = hashlib.sha256(raw).hexdigest()
    return data


# ----------------------------------------------------------------------------------------------- validation


def _is_empty(value: Any) -> bool:
    if value is None:
        return True
    if sp.issparse(value):
        return value.shape[0] * value.shape[1] == 0
    try:
        return np.asarray(value).size == 0
    except Exception:  # noqa: BLE001
        return False


def _array(
    d: dict, key: str, source: str, shape: tuple, dtype: Any = np.float64, what: str = ""
) -> np.ndarray:
    """``d[key]`` as a dense array of ``shape`` (``None`` entries are free, resolved sizes are checked)."""
    text = "(" + ", ".join("?" if s is None else str(s) for s in shape) + ")"
    if key not in d or d[key] is None:
        raise ValueError(
            f"model {source}: key '{key}' is missing; expected {what or 'an array'} of shape {text}"
        )
    value = d[key]
    try:
        arr = value.toarray() if sp.issparse(value) else np.asarray(value)
        arr = arr.astype(dtype)
    except Exception as exc:  # noqa: BLE001
        raise ValueError(
            f"model {source}: key '{key}' is not a numeric array ({exc}); expected shape {text}"
        ) from exc
    if arr.ndim != len(shape) or any(
        s is not None and s != a for s, a in zip(shape, arr.shape, strict=False)
    ):
        raise ValueError(
            f"model {source}: key '{key}' has shape {arr.shape}; expected {what or 'an array'} of shape {text}"
        )
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        raise ValueError(f"model {source}: key '{key}' contains NaN or infinite values")
    return arr


def _parents_from_kintree(d: dict, source: str) -> np.ndarray:
    if "kintree_table" not in d:
        raise ValueError(
            f"model {source}: key 'kintree_table' is missing; expected an int array of shape (2, J)"
        )
    table = np.asarray(d["kintree_table"])
    if table.ndim != 2 or table.shape[0] != 2 or table.shape[1] < 1:
        raise ValueError(
            f"model {source}: key 'kintree_table' has shape {table.shape}; expected (2, J) "
            "(row 0 = parent id, -1 for the root; row 1 = joint id)"
        )
    table = table.astype(np.int64)
    ids = table[1]
    n = table.shape[1]
    if len(set(ids.tolist())) != n:
        raise ValueError(f"model {source}: 'kintree_table' row 1 (joint ids) has duplicates")
    col_of = {int(j): i for i, j in enumerate(ids.tolist())}
    parents = np.empty(n, dtype=np.int64)
    for i, pid in enumerate(table[0].tolist()):
        if pid in (-1, 2**32 - 1, 2**31 - 1) and pid not in col_of:
            parents[i] = -1
        elif pid in col_of:
            parents[i] = col_of[pid]
        else:
            raise ValueError(
                f"model {source}: 'kintree_table' gives joint column {i} the parent id {pid}, which is not a joint id"
            )
    return parents


def _topological_order(parents: np.ndarray, source: str) -> np.ndarray:
    """Order joints root first, every parent before its children (stable by index); refuse cycles/forests."""
    n = parents.shape[0]
    roots = np.flatnonzero(parents == -1)
    if roots.size != 1:
        raise ValueError(
            f"model {source}: the kinematic tree must have exactly one root (parent -1); found {roots.size} "
            f"({roots.tolist()}) in 'kintree_table'"
        )
    for i, p in enumerate(parents.tolist()):
        if p == i:
            raise ValueError(f"model {source}: joint {i} is its own parent in 'kintree_table'")
    children: dict[int, list[int]] = {i: [] for i in range(n)}
    for i, p in enumerate(parents.tolist()):
        if p >= 0:
            children[p].append(i)
    order: list[int] = []
    frontier = [int(roots[0])]
    while frontier:  # breadth-first, children in index order
        order.extend(frontier)
        frontier = sorted(c for j in frontier for c in children[j])
    if len(order) != n:
        missing = sorted(set(range(n)) - set(order))
        raise ValueError(
            f"model {source}: 'kintree_table' contains a cycle; joints {missing} are not reachable from the root"
        )
    # Keep the file order when it is already valid (parents before children, root first).
    if parents[0] == -1 and all(parents[i] < i for i in range(1, n)):
        return np.arange(n)
    return np.asarray(order, dtype=np.int64)


def _joint_dirs(value: Any, key: str, n_joints: int, source: str) -> np.ndarray | None:
    """scaledirs/transdirs in any axis order → ``(J, 3, K)``; empty → None."""
    if _is_empty(value):
        return None
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != 3:
        raise ValueError(
            f"model {source}: key '{key}' has shape {arr.shape}; expected (K, {n_joints}, 3) or empty"
        )
    candidates = [(1, 2, 0), (0, 1, 2)]  # stored (K, J, 3) first, then already (J, 3, K)
    candidates += [p for p in ((0, 2, 1), (1, 0, 2), (2, 0, 1), (2, 1, 0)) if p not in candidates]
    for perm in candidates:
        if arr.shape[perm[0]] == n_joints and arr.shape[perm[1]] == 3:
            out = np.ascontiguousarray(np.transpose(arr, perm))
            if not np.all(np.isfinite(out)):
                raise ValueError(f"model {source}: key '{key}' contains NaN or infinite values")
            return out
    raise ValueError(
        f"model {source}: key '{key}' has shape {arr.shape}; expected (K, {n_joints}, 3) or empty"
    )


def smil_model_from_dict(d: dict, source: str) -> SMILModelData:
    """Validate a model dictionary (the ``.pkl`` layout) and convert it to :class:`SMILModelData`.

    Parameters
    ----------
    d
        Dictionary with the keys of a SMIL model file (see module docs).
    source
        Name used in error messages and stored as ``SMILModelData.source``.

    Returns
    -------
    SMILModelData
        With joints in topological order; if the file's order was not topological the joints are reordered
        consistently (weights, regressor, names, ``J``, scale/translation directions) and a warning is issued.
    """
    parents = _parents_from_kintree(d, source)
    n_joints = parents.shape[0]
    v_template = _array(d, "v_template", source, (None, 3), what="template vertices")
    n_verts = v_template.shape[0]
    if n_verts == 0:
        raise ValueError(f"model {source}: key 'v_template' has no vertices")
    faces = _array(d, "f", source, (None, 3), dtype=np.int64, what="triangle vertex indices")
    if faces.size and (faces.min() < 0 or faces.max() >= n_verts):
        raise ValueError(
            f"model {source}: key 'f' indexes vertices {faces.min()}..{faces.max()}, but there are {n_verts} "
            "vertices (indices must be 0-based)"
        )
    weights = _array(d, "weights", source, (n_verts, n_joints), what="skinning weights (V, J)")
    if (weights < 0).any():
        raise ValueError(f"model {source}: key 'weights' has negative skinning weights")
    row_sums = weights.sum(axis=1)
    if np.abs(row_sums - 1.0).max() > 1e-3:
        warnings.warn(
            f"model {source}: skinning weights of {(np.abs(row_sums - 1) > 1e-3).sum()} vertices do not sum to 1",
            stacklevel=2,
        )
    static_raw = d.get("static_joint_locs", False)
    static = False if _is_empty(static_raw) else bool(np.asarray(static_raw).reshape(-1)[0])

    if "shapedirs" not in d or d["shapedirs"] is None:
        raise ValueError(f"model {source}: key 'shapedirs' is missing; expected shape blend shapes (V, 3, K)")
    if _is_empty(d["shapedirs"]):
        shapedirs = np.zeros((n_verts, 3, 0))
    else:
        shapedirs = _array(d, "shapedirs", source, (n_verts, 3, None), what="shape blend shapes")
    n_betas = shapedirs.shape[2]

    if "J_regressor" in d and not _is_empty(d["J_regressor"]):
        reg = d["J_regressor"]
        if sp.issparse(reg):
            if reg.shape != (n_joints, n_verts):
                raise ValueError(
                    f"model {source}: key 'J_regressor' has shape {reg.shape}; expected ({n_joints}, {n_verts})"
                )
            regressor = sp.csr_matrix(reg, dtype=np.float64)
        else:
            regressor = sp.csr_matrix(
                _array(d, "J_regressor", source, (n_joints, n_verts), what="joint regressor")
            )
        regressor.eliminate_zeros()
    elif static:
        regressor = sp.csr_matrix((n_joints, n_verts), dtype=np.float64)
    else:
        raise ValueError(
            f"model {source}: key 'J_regressor' is missing; expected a joint regressor of shape "
            f"({n_joints}, {n_verts}) (or static_joint_locs=True with fixed joints 'J')"
        )
    if "J" in d and not _is_empty(d["J"]):
        joints = _array(d, "J", source, (n_joints, 3), what="rest joint locations")
    elif static:
        raise ValueError(
            f"model {source}: key 'J' is missing; static_joint_locs models need rest joints (J, 3)"
        )
    else:
        joints = np.asarray(regressor @ v_template, dtype=np.float64)

    names_raw = d.get("J_names")
    if names_raw is None or len(names_raw) == 0:
        names = [f"joint_{i:02d}" for i in range(n_joints)]
    else:
        names = [n.decode("latin1") if isinstance(n, bytes) else str(n) for n in list(names_raw)]
        if len(names) != n_joints:
            raise ValueError(
                f"model {source}: key 'J_names' has {len(names)} names; expected {n_joints} (one per joint)"
            )

    posedirs = None
    if not _is_empty(d.get("posedirs")):
        posedirs = _array(d, "posedirs", source, (n_verts, 3, 9 * (n_joints - 1)), what="pose blend shapes")
    scaledirs = _joint_dirs(d.get("scaledirs"), "scaledirs", n_joints, source)
    transdirs = _joint_dirs(d.get("transdirs"), "transdirs", n_joints, source)
    shape_cov = shape_mean = None
    if not _is_empty(d.get("shape_cov")):
        shape_cov = _array(d, "shape_cov", source, (n_betas, n_betas), what="shape covariance (K, K)")
    if not _is_empty(d.get("shape_mean_betas")):
        shape_mean = _array(d, "shape_mean_betas", source, (n_betas,), what="mean shape coefficients (K,)")

    known = {
        "v_template",
        "f",
        "weights",
        "J_regressor",
        "J",
        "kintree_table",
        "J_names",
        "shapedirs",
        "posedirs",
        "scaledirs",
        "transdirs",
        "shape_cov",
        "shape_mean_betas",
        "static_joint_locs",
    }
    extras = {k: v for k, v in d.items() if k not in known}

    order = _topological_order(parents, source)
    if not np.array_equal(order, np.arange(n_joints)):
        warnings.warn(
            f"model {source}: joints are not in topological order (parents before children); reordering them to "
            f"{order.tolist()} (poses and per-joint parameters use the new order)",
            stacklevel=2,
        )
        new_index = np.empty(n_joints, dtype=np.int64)
        new_index[order] = np.arange(n_joints)
        parents = np.where(parents[order] >= 0, new_index[np.maximum(parents[order], 0)], -1)
        weights = weights[:, order]
        regressor = sp.csr_matrix(regressor[order])
        joints = joints[order]
        names = [names[i] for i in order]
        scaledirs = None if scaledirs is None else scaledirs[order]
        transdirs = None if transdirs is None else transdirs[order]
        if posedirs is not None:
            if order[0] != 0:
                raise ValueError(
                    f"model {source}: cannot reorder 'posedirs' when the root is not joint 0; fix 'kintree_table'"
                )
            pd = posedirs.reshape(n_verts, 3, n_joints - 1, 9)
            posedirs = pd[:, :, order[1:] - 1].reshape(n_verts, 3, -1)

    return SMILModelData(
        v_template=np.ascontiguousarray(v_template),
        faces=np.ascontiguousarray(faces),
        weights=np.ascontiguousarray(weights),
        J_regressor=regressor,
        J=np.ascontiguousarray(joints),
        parents=parents.astype(np.int64),
        joint_names=names,
        shapedirs=np.ascontiguousarray(shapedirs),
        posedirs=posedirs,
        scaledirs=scaledirs,
        transdirs=transdirs,
        shape_cov=shape_cov,
        shape_mean_betas=shape_mean,
        static_joint_locs=static,
        source=source,
        sha256=_arrays_sha256(v_template, faces, weights, regressor.toarray(), joints, parents, shapedirs),
        extras=extras,
    )


def _arrays_sha256(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


# ----------------------------------------------------------------------------------------------- writing


def model_to_dict(data: SMILModelData) -> dict[str, Any]:
    """Convert :class:`SMILModelData` back to the plain ``.pkl`` dictionary layout (numpy arrays only)."""
    n = data.n_joints
    out: dict[str, Any] = dict(data.extras)
    out.update(
        v_template=data.v_template,
        f=data.faces.astype(np.int32),
        weights=data.weights,
        J_regressor=data.J_regressor.toarray(),
        J=data.J,
        kintree_table=np.stack([data.parents, np.arange(n)]).astype(np.int32),
        J_names=list(data.joint_names),
        shapedirs=data.shapedirs,
        posedirs=np.empty(0) if data.posedirs is None else data.posedirs,
        scaledirs=[] if data.scaledirs is None else np.transpose(data.scaledirs, (2, 0, 1)),
        transdirs=[] if data.transdirs is None else np.transpose(data.transdirs, (2, 0, 1)),
        static_joint_locs=bool(data.static_joint_locs),
    )
    if data.shape_cov is not None:
        out["shape_cov"] = data.shape_cov
    if data.shape_mean_betas is not None:
        out["shape_mean_betas"] = data.shape_mean_betas
    return out


def save_smil_model(
    data_or_dict: SMILModelData | dict, path: str | os.PathLike, overwrite: bool = True
) -> Path:
    """Write a model as a plain pickled dict (no chumpy, no custom classes), atomically.

    Parameters
    ----------
    data_or_dict
        A :class:`SMILModelData` or a dictionary in the ``.pkl`` layout (validated before writing).
    path
        Output ``.pkl`` file.
    overwrite
        Whether an existing file may be replaced.

    Returns
    -------
    Path
        The written file.
    """
    if isinstance(data_or_dict, SMILModelData):
        d = model_to_dict(data_or_dict)
    else:
        d = dict(data_or_dict)
        smil_model_from_dict(d, source=str(path))  # refuse to write an invalid model
        d = {k: (v.toarray() if sp.issparse(v) else v) for k, v in d.items()}
    path = Path(path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as fh:
            pickle.dump(d, fh, protocol=4)
    return path
