"""Finding and loading sessions: one session folder, one ``.slp`` session, or a directory of sessions.

``load_session`` accepts a session folder (camera-folder layout, or a folder holding exactly one ``.slp`` with a
recording session), its ``calibration.toml``, or a ``.slp`` file. ``find_sessions`` lists what ``load_session``
accepts under a root, and ``load_sessions`` loads them together with the optional ``joint_lookup.csv`` and
``shape_betas.csv`` tables of the root (SMILify's sessions-directory layout).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_smil_mv.sessions import layouts
from napari_smil_mv.sessions.joint_map import JOINT_LOOKUP_CSV, JointMap
from napari_smil_mv.sessions.session import Session
from napari_smil_mv.sessions.shape_betas import SHAPE_BETAS_CSV, ShapeBetas
from napari_smil_mv.sessions.sleap_files import slp_session_summary


# ------------------------------------------------------------------------------------------- sniffing
def _slp_has_session(path: Path) -> bool:
    try:
        return slp_session_summary(path)["n_sessions"] > 0
    except Exception:
        return False


def _session_slps(folder: Path) -> list[Path]:
    try:
        return [p for p in sorted(folder.glob("*.slp")) if p.is_file() and _slp_has_session(p)]
    except OSError:
        return []


def _folder_of_calibration(calibration: Path) -> Path:
    """Session folder of a ``calibration.toml`` (its folder, or the parent of an Anipose ``calibration/``)."""
    return calibration.parent.parent if calibration.parent.name == "calibration" else calibration.parent


def _is_camera_folder_session(folder: Path) -> bool:
    try:
        return layouts.find_calibration(folder) is not None and bool(layouts.camera_data_folders(folder))
    except OSError:
        return False


def is_session_path(path: str | Path) -> bool:
    """Cheap check (no labels or videos read) whether ``load_session`` can take ``path``. Never raises.

    True for: a ``.slp`` holding a recording session; a folder with ``calibration.toml`` (or
    ``calibration/calibration.toml``) and camera sub-folders with SLEAP files, or such a folder's
    ``calibration.toml``; a folder holding ``.slp`` files with recording sessions.
    """
    try:
        p = Path(path)
        if p.is_file():
            if p.suffix.lower() == ".slp":
                return _slp_has_session(p)
            if p.name == "calibration.toml":
                return bool(layouts.camera_data_folders(_folder_of_calibration(p)))
            return False
        if p.is_dir():
            return _is_camera_folder_session(p) or bool(_session_slps(p))
    except Exception:
        return False
    return False


def _entries(folder: Path) -> list[Path]:
    """What ``load_session`` accepts for one folder: the folder, or each session ``.slp`` when there are several."""
    if _is_camera_folder_session(folder):
        return [folder]
    slps = _session_slps(folder)
    return [folder] if len(slps) == 1 else slps


def find_sessions(root: str | Path) -> list[Path]:
    """Session paths under ``root``, sorted: ``root`` itself if it is a session, else its direct sub-folders.

    A folder with several ``.slp`` sessions contributes each ``.slp`` file. Hidden folders are skipped.

    Raises
    ------
    FileNotFoundError
        When ``root`` does not exist.
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"sessions path not found: {root}")
    if root.is_file():
        return [root] if is_session_path(root) else []
    own = _entries(root)
    if own:
        return own
    out: list[Path] = []
    for sub in sorted(root.iterdir()):
        if sub.is_dir() and not sub.name.startswith("."):
            out += _entries(sub)
    return out


# ------------------------------------------------------------------------------------------- loading
def load_session(
    path: str | Path, camera_map: dict[str, str] | None = None, units: str | None = None
) -> Session:
    """Load one session (layout detected from the files).

    Parameters
    ----------
    path
        A session folder, its ``calibration.toml``, or a ``.slp`` holding a recording session.
    camera_map
        Calibration camera name -> data for that camera: a camera folder (name or path, relative to the session
        folder) or a labels file for the camera-folder layout; a video file for ``.slp`` sessions. Merged over the
        ``[camera_map]`` table of an optional ``session.toml``.
    units
        Length unit of the calibration (e.g. ``"mm"``); overrides ``session.toml``; default ``"unknown"``.

    Returns
    -------
    Session
        Videos are not opened or decoded; 3D points are read when present (``points3d.h5``, a single Anipose
        ``pose-3d/*.csv``, or 3D points stored in the ``.slp``), otherwise ``points3d`` is None (see
        :meth:`Session.ensure_points3d`).

    Raises
    ------
    FileNotFoundError, ValueError, KeyError
        With a message naming the file, camera or field at fault and how to fix it.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"session path not found: {p}")
    if p.is_file():
        if p.suffix.lower() == ".slp":
            return layouts.load_slp_session(p, camera_map, units)
        if p.suffix.lower() == ".toml":
            return layouts.load_camera_folder_session(_folder_of_calibration(p), p, camera_map, units)
        raise ValueError(
            f"{p}: not a session file; give a session folder, its calibration.toml, or a .slp session"
        )
    if layouts.find_calibration(p) is not None and (layouts.camera_data_folders(p) or camera_map):
        return layouts.load_camera_folder_session(p, None, camera_map, units)
    slps = _session_slps(p)
    if len(slps) == 1:
        return layouts.load_slp_session(slps[0], camera_map, units, name=p.name)
    if len(slps) > 1:
        raise ValueError(
            f"{p} holds several .slp files with recording sessions: {[s.name for s in slps]}; load one of them "
            "by its path"
        )
    inner = [s for s in find_sessions(p) if Path(s) != p]
    if inner:
        names = ", ".join(str(s) for s in inner[:4])
        raise FileNotFoundError(
            f"{p} is not a session itself but holds {len(inner)} session(s): {names}; give one of them"
        )
    if layouts.find_calibration(p) is None:
        raise FileNotFoundError(
            f"{p} is not a session: no calibration.toml (folder layout) and no .slp with a recording session"
        )
    raise ValueError(
        f"{p} has calibration.toml but no camera sub-folders with SLEAP files (*.slp or *.analysis.h5); expected "
        "<session>/<camera>/<labels>.slp"
    )


@dataclass
class SessionSet:
    """Several sessions from one root folder, with the root's optional lookup tables.

    Attributes
    ----------
    root
        The sessions directory.
    sessions
        Loaded sessions, in :func:`find_sessions` order.
    joint_map
        From ``joint_lookup.csv`` (columns ``model``, ``data``), or None.
    shape_betas
        From ``shape_betas.csv`` (``label``, ``PC1..``), or None.
    """

    root: Path
    sessions: list[Session] = field(default_factory=list)
    joint_map: JointMap | None = None
    shape_betas: ShapeBetas | None = None

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.sessions]

    def betas_for(self, session: Session | str) -> np.ndarray | None:
        """Ground-truth betas of a session by **exact** label match of its name, or None."""
        if self.shape_betas is None:
            return None
        return self.shape_betas.get(session.name if isinstance(session, Session) else str(session))

    def camera_names(self) -> list[str]:
        """Canonical camera list: the sorted union of camera names over all sessions."""
        return sorted({c for s in self.sessions for c in s.camera_names})


def load_sessions(root: str | Path, units: str | None = None) -> SessionSet:
    """Load every session under ``root`` (see :func:`find_sessions`) plus ``joint_lookup.csv`` / ``shape_betas.csv``.

    Raises
    ------
    FileNotFoundError
        When no session is found (the message says what a session looks like).
    ValueError
        When a session or table fails to load; the message names it.
    """
    root = Path(root)
    paths = find_sessions(root)
    if not paths:
        raise FileNotFoundError(
            f"no sessions found in {root}: expected sub-folders with calibration.toml and camera folders, or .slp "
            "files holding recording sessions"
        )
    sessions = []
    for p in paths:
        try:
            sessions.append(load_session(p, units=units))
        except (ValueError, KeyError) as exc:
            raise type(exc)(f"session {p}: {exc}") from exc
    base = root if root.is_dir() else root.parent
    jm = base / JOINT_LOOKUP_CSV
    sb = base / SHAPE_BETAS_CSV
    return SessionSet(
        root=root,
        sessions=sessions,
        joint_map=JointMap.read(jm) if jm.is_file() else None,
        shape_betas=ShapeBetas.read(sb) if sb.is_file() else None,
    )
