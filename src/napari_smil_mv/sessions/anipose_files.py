"""3D point files of the Anipose world: sleap-anipose ``points3d.h5`` and Anipose ``pose-3d/*.csv``.

Both hold points in the calibration's world frame and units (Anipose stores no unit; it is the calibration
board's unit, mm in every data set we have seen). The Anipose CSV may be re-oriented by the project's
``[triangulation] axes / reference_point`` settings: ``xyz_csv = xyz_calib @ M.T - center``; the reader undoes it
(``xyz_calib = (xyz_csv + center) @ M``) so that the points project with the calibration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_smil_mv.utils.atomic import h5_file_atomic


@dataclass
class Points3DFile:
    """Contents of a sleap-anipose ``points3d.h5``.

    Attributes
    ----------
    points
        ``(F, A, N, 3)`` float64 world points; NaN where missing (exact ``(0, 0, 0)`` is read as missing too,
        since some writers store NaN as 0).
    frame_indices
        ``(F,)`` video frame index of each row (from the optional ``frames = [start, end)`` dataset, else 0..F-1).
    cameras
        Camera names listed in the ``Description`` attribute, if any.
    """

    points: np.ndarray
    frame_indices: np.ndarray
    cameras: list[str]
    path: Path


def read_points3d_h5(path: str | Path) -> Points3DFile:
    """Read a sleap-anipose ``points3d.h5`` (dataset ``tracks`` of shape ``(F, A, N, 3)``).

    Raises
    ------
    FileNotFoundError, ValueError
        Naming the file and the problem (missing ``tracks`` dataset, wrong shape).
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"3D points file not found: {path}")
    try:
        with h5py.File(path, "r") as h5:
            if "tracks" not in h5:
                raise ValueError(
                    f"{path} has no 'tracks' dataset (found {sorted(h5.keys())}); expected sleap-anipose "
                    "points3d.h5 with tracks of shape (n_frames, n_tracks, n_nodes, 3)"
                )
            pts = np.asarray(h5["tracks"][()], dtype=np.float64)
            desc = h5["tracks"].attrs.get("Description", "")
            if isinstance(desc, bytes):
                desc = desc.decode("utf-8", "replace")
            frames = np.asarray(h5["frames"][()]).reshape(-1) if "frames" in h5 else None
    except OSError as exc:
        raise ValueError(f"{path} is not a readable HDF5 file ({exc})") from exc
    if pts.ndim == 3 and pts.shape[-1] == 3:  # (F, N, 3): single animal without the track axis
        pts = pts[:, None]
    if pts.ndim != 4 or pts.shape[-1] != 3:
        raise ValueError(f"{path}: 'tracks' has shape {pts.shape}; expected (n_frames, n_tracks, n_nodes, 3)")
    pts[np.all(pts == 0, axis=-1)] = np.nan
    start = int(frames[0]) if frames is not None and frames.size >= 1 else 0
    cams = []
    m = re.search(r"camera order:\s*\[([^\]]*)\]", str(desc), flags=re.IGNORECASE)
    if m:
        cams = [c.strip().strip("'\"") for c in m.group(1).split(",") if c.strip()]
    return Points3DFile(pts, np.arange(start, start + pts.shape[0], dtype=np.int64), cams, path)


def write_points3d_h5(
    path: str | Path, points: np.ndarray, cameras: list[str] | None = None, overwrite: bool = False
) -> Path:
    """Write ``points (F, A, N, 3)`` as a sleap-anipose ``points3d.h5`` (atomic; NaN kept as NaN)."""
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 4 or pts.shape[-1] != 3:
        raise ValueError(f"points must be (n_frames, n_tracks, n_nodes, 3), got {pts.shape}")
    desc = "Shape: (n_frames, n_tracks, n_nodes, 3)."
    if cameras:
        desc += f" In calibration camera order: {list(cameras)}"
    with h5_file_atomic(path, overwrite=overwrite) as h5:
        ds = h5.create_dataset("tracks", data=pts, compression="gzip", compression_opts=1)
        ds.attrs["Description"] = desc
    return Path(path)


@dataclass
class AniposeCSV:
    """Contents of an Anipose ``pose-3d/<trial>.csv`` with the re-orientation undone.

    Attributes
    ----------
    points
        ``(F, N, 3)`` float64 world points in the **calibration** frame; NaN where Anipose dropped them.
    bodyparts
        Node names ``N`` in column order.
    frame_indices
        ``(F,)`` video frame index (``fnum`` column, else 0..F-1).
    error
        ``(F, N)`` Anipose's mean reprojection error in px.
    ncams
        ``(F, N)`` number of cameras used (NaN where not triangulated).
    score
        ``(F, N)`` the smallest 2D score of the views used.
    M
        ``(3, 3)`` re-orientation rotation found in the file (identity when absent).
    center
        ``(3,)`` re-orientation offset found in the file (zeros when absent).
    """

    points: np.ndarray
    bodyparts: list[str]
    frame_indices: np.ndarray
    error: np.ndarray
    ncams: np.ndarray
    score: np.ndarray
    M: np.ndarray
    center: np.ndarray
    path: Path


def read_pose3d_csv(path: str | Path) -> AniposeCSV:
    """Read an Anipose ``pose-3d`` CSV and undo its re-orientation (``xyz_calib = (xyz_csv + center) @ M``).

    Raises
    ------
    FileNotFoundError, ValueError
        Naming the file and the missing or inconsistent columns.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Anipose 3D CSV not found: {path}")
    try:
        df = pd.read_csv(path)
    except Exception as exc:
        raise ValueError(f"{path} could not be read as CSV ({type(exc).__name__}: {exc})") from exc
    cols = list(df.columns)
    bodyparts = [c[:-2] for c in cols if c.endswith("_x") and f"{c[:-2]}_y" in cols and f"{c[:-2]}_z" in cols]
    bodyparts = [b for b in bodyparts if not re.fullmatch(r"M_\d\d|center_\d", b)]
    if not bodyparts:
        raise ValueError(
            f"{path} has no '<bodypart>_x/_y/_z' columns (found {cols[:12]}...); is it an Anipose pose-3d CSV?"
        )
    n = len(df)
    points = np.stack(
        [df[[f"{b}_x", f"{b}_y", f"{b}_z"]].to_numpy(dtype=np.float64) for b in bodyparts], axis=1
    )

    def column(suffix: str) -> np.ndarray:
        names = [f"{b}_{suffix}" for b in bodyparts]
        if all(c in cols for c in names):
            return df[names].to_numpy(dtype=np.float64)
        return np.full((n, len(bodyparts)), np.nan)

    m_cols = [f"M_{i}{j}" for i in range(3) for j in range(3)]
    c_cols = [f"center_{i}" for i in range(3)]
    has_m = all(c in cols for c in m_cols)
    has_c = all(c in cols for c in c_cols)
    if any(c in cols for c in m_cols) and not has_m:
        raise ValueError(
            f"{path}: some of the columns {m_cols} are missing; the re-orientation cannot be undone"
        )
    M = np.eye(3)
    center = np.zeros(3)
    if has_m and n:
        Ms = df[m_cols].to_numpy(dtype=np.float64).reshape(n, 3, 3)
        M = Ms[0]
        if not np.allclose(Ms, M, atol=1e-9):
            raise ValueError(
                f"{path}: the rotation M_ij changes between rows; expected one re-orientation per file"
            )
        if not np.allclose(M @ M.T, np.eye(3), atol=1e-6):
            raise ValueError(f"{path}: M_ij is not a rotation matrix (M @ M.T != I)")
    if has_c and n:
        cs = df[c_cols].to_numpy(dtype=np.float64)
        center = cs[0]
        if not np.allclose(cs, center, atol=1e-9):
            raise ValueError(f"{path}: center_i changes between rows; expected one re-orientation per file")
    points = (points + center) @ M
    fnum = df["fnum"].to_numpy(dtype=np.int64) if "fnum" in cols else np.arange(n, dtype=np.int64)
    return AniposeCSV(
        points=points,
        bodyparts=bodyparts,
        frame_indices=fnum,
        error=column("error"),
        ncams=column("ncams"),
        score=column("score"),
        M=M,
        center=center,
        path=path,
    )


def align_points3d(
    points: np.ndarray,
    frame_indices: np.ndarray,
    nodes: list[str] | None,
    session_frames: np.ndarray,
    session_nodes: list[str],
    n_animals: int,
    source: Path,
) -> np.ndarray:
    """Place 3D points from a file onto a session's frame, animal and node axes.

    Parameters
    ----------
    points
        ``(F, A_file, N_file, 3)`` world points.
    frame_indices
        ``(F,)`` video frame index of each file row.
    nodes
        Node names of the file (None: same order as the session, counts must agree).
    session_frames, session_nodes, n_animals
        The session's axes.
    source
        File name for messages.

    Returns
    -------
    numpy.ndarray
        ``(T, A, N, 3)``; NaN where the file has no value.
    """
    pts = np.asarray(points, dtype=np.float64)
    if nodes is None:
        if pts.shape[2] != len(session_nodes):
            raise ValueError(
                f"{source} has {pts.shape[2]} nodes per animal but the session skeleton has {len(session_nodes)} "
                f"({session_nodes}); the 3D points must use the same skeleton"
            )
        node_idx = np.arange(len(session_nodes))
    else:
        missing = [n for n in session_nodes if n not in nodes]
        if len(missing) == len(session_nodes):
            raise ValueError(f"{source}: none of its bodyparts {nodes} are session nodes {session_nodes}")
        node_idx = np.array([nodes.index(n) if n in nodes else -1 for n in session_nodes])
    out = np.full((len(session_frames), n_animals, len(session_nodes), 3), np.nan)
    row = {int(f): i for i, f in enumerate(frame_indices)}
    a = min(n_animals, pts.shape[1])
    ok = node_idx >= 0
    for t, f in enumerate(session_frames):
        i = row.get(int(f))
        if i is None:
            continue
        block = out[t, :a]  # view (a, N, 3)
        block[:, ok] = pts[i, :a][:, node_idx[ok]]
    return out
