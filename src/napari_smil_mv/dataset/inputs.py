"""Resolving the inputs of a preprocessing run: sessions, body model, joint map, shape betas and world units."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_smil_mv.dataset.plan import exclude_session_cameras
from napari_smil_mv.dataset.schema import infer_world_scale, world_scale_for_units
from napari_smil_mv.sessions import JointMap, Session, SessionSet, ShapeBetas, auto_match, load_sessions
from napari_smil_mv.sessions.joint_map import check_joint_map


@dataclass
class RunInputs:
    """Everything a run reads, resolved.

    Attributes
    ----------
    sessions
        Loaded sessions (unique names).
    model
        Body model (``SMILModelData``): joint names, shape count, identity.
    joint_map
        Data node -> model joint pairs.
    joint_map_source
        Where the joint map came from (a file path, ``"auto"``, ``"exact names"``, ``"given"``).
    betas
        Session name -> ground-truth betas or None.
    unit_factor
        Session name -> factor applied to its 3D points and camera translations (1 unless units were unified).
    world_units, world_scale, world_scale_source
        Unit of the stored 3D data, factor to metres, and how it was found.
    """

    sessions: list[Session]
    model: object
    joint_map: JointMap
    joint_map_source: str
    betas: dict[str, np.ndarray | None]
    unit_factor: dict[str, float]
    world_units: str
    world_scale: float
    world_scale_source: str


def _load_model(model):
    from napari_smil_mv.body import load_smil_model

    if model is None or isinstance(model, (str, Path)):
        return load_smil_model(model)
    if not hasattr(model, "joint_names"):
        raise ValueError(
            f"model must be a model file path, a loaded SMIL model or None, got {type(model).__name__}"
        )
    return model


def _session_sets(sessions, units: str | None) -> tuple[list[Session], list[SessionSet]]:
    if isinstance(sessions, (str, Path, Session, SessionSet)):
        sessions = [sessions]
    loaded: list[Session] = []
    sets: list[SessionSet] = []
    for item in sessions:
        if isinstance(item, Session):
            loaded.append(item)
        elif isinstance(item, SessionSet):
            sets.append(item)
            loaded += item.sessions
        else:
            ss = load_sessions(item, units=units)
            sets.append(ss)
            loaded += ss.sessions
    if not loaded:
        raise ValueError("no sessions given")
    names = [s.name for s in loaded]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        paths = [str(s.path) for s in loaded if s.name in dupes]
        raise ValueError(
            f"several sessions are named {dupes} ({paths}); samples are identified by (session, frame), so session "
            "names must be unique: rename the folders"
        )
    return loaded, sets


def _resolve_joint_map(joint_map, sets: list[SessionSet], sessions: list[Session], joint_names) -> tuple:
    if isinstance(joint_map, JointMap):
        return joint_map, "given"
    if isinstance(joint_map, str) and joint_map == "auto":
        pairs: dict[str, str] = {}
        for s in sessions:
            for d, m in auto_match(s.skeleton.nodes, joint_names).pairs:
                pairs.setdefault(d, m)
        used: set[str] = set()
        unique = []
        for d, m in pairs.items():
            if m not in used:
                unique.append((d, m))
                used.add(m)
        return JointMap(unique), "auto"
    if joint_map is not None:
        return JointMap.read(joint_map), str(Path(joint_map))
    found = {str(ss.root): ss.joint_map for ss in sets if ss.joint_map is not None}
    distinct = {tuple(sorted(jm.pairs)) for jm in found.values()}
    if len(distinct) > 1:
        raise ValueError(
            f"the session folders {sorted(found)} hold different joint_lookup.csv tables; pass one with --joint-map"
        )
    if found:
        root, jm = next(iter(found.items()))
        return jm, str(Path(root) / "joint_lookup.csv")
    nodes = {n for s in sessions for n in s.skeleton.nodes}
    return JointMap([(n, n) for n in joint_names if n in nodes]), "exact names"


def _resolve_betas(shape_betas, sets: list[SessionSet], sessions: list[Session], n_betas: int) -> dict:
    table = None
    if isinstance(shape_betas, ShapeBetas):
        table = shape_betas
    elif shape_betas is not None:
        table = ShapeBetas.read(shape_betas)
    out = {}
    for s in sessions:
        tables = (
            [table]
            if table is not None
            else [ss.shape_betas for ss in sets if any(s is x for x in ss.sessions)]
        )
        b = None
        for t in tables:
            if t is not None and (b := t.get(s.name, n_betas)) is not None:
                break
        out[s.name] = b
    return out


def _resolve_units(sessions: list[Session]) -> tuple[dict[str, float], str, float, str]:
    units = {s.name: s.units for s in sessions}
    distinct = sorted(set(units.values()))
    if len(distinct) == 1:
        u = distinct[0]
        ws = world_scale_for_units(u)
        if ws is not None:
            return {n: 1.0 for n in units}, u, ws, "units"
        t0 = sessions[0].rig[0].tvec if len(sessions[0].rig) else np.zeros(3)
        return {n: 1.0 for n in units}, u, infer_world_scale(t0), "heuristic"
    unknown = [n for n, u in units.items() if world_scale_for_units(u) is None]
    if unknown:
        raise ValueError(
            f'sessions have different length units {units}; declare the unit of {unknown} (units = "mm" in '
            "session.toml, or --units) so their 3D data can be stored in one unit"
        )
    return {n: float(world_scale_for_units(u)) for n, u in units.items()}, "m", 1.0, "units"


def check_videos(sessions: list[Session], skip_unreadable: bool = False) -> list[str]:
    """Check every session's videos before their images are used; returns the warnings to record.

    Parameters
    ----------
    sessions
        The sessions of the run (after camera exclusion).
    skip_unreadable
        Leave a camera whose video file cannot be decoded out (with a warning) instead of raising.

    Returns
    -------
    list of str
        One line per problem (missing, undecodable-but-skipped, or shorter than the labels); the short and skipped
        ones are also issued as ``UserWarning`` (missing videos were already warned about when loading).

    Raises
    ------
    ValueError
        When a video file exists but cannot be decoded and ``skip_unreadable`` is False (the message names the
        session, camera and file, and the two ways out).
    """
    import warnings

    from napari_smil_mv.sessions.video_checks import check_session_videos

    problems = [p for s in sessions for p in check_session_videos(s)]
    unreadable = [p for p in problems if p.kind == "unreadable"]
    if unreadable and not skip_unreadable:
        cams = ",".join(dict.fromkeys(p.camera for p in unreadable))
        raise ValueError(
            "; ".join(p.message for p in unreadable)
            + f". Replace the file, leave the camera out with --exclude-cameras {cams}, or pass "
            "--skip-unreadable-videos to store the session without its images (recorded in the dataset)"
        )
    lines = []
    for p in problems:
        if p.kind == "missing":
            lines.append(f"{p.message}; its views are left out")
        elif p.kind == "unreadable":
            lines.append(f"{p.message}; camera skipped (--skip-unreadable-videos), its views are left out")
            warnings.warn(lines[-1], UserWarning, stacklevel=2)
        else:
            lines.append(p.message)
            warnings.warn(lines[-1], UserWarning, stacklevel=2)
    return lines


def resolve_inputs(
    sessions,
    model=None,
    joint_map=None,
    shape_betas=None,
    units: str | None = None,
    options=None,
) -> RunInputs:
    """Load and check the inputs of a preprocessing run.

    Parameters
    ----------
    sessions
        A session path or a directory of sessions, a :class:`Session`, a :class:`SessionSet`, or a sequence of
        these.
    model
        Body model file, a loaded model, or None for the built-in demo model.
    joint_map
        ``joint_lookup.csv`` path, a :class:`JointMap`, ``"auto"`` (match names with
        :func:`~napari_smil_mv.sessions.auto_match`) or None (the sessions folder's ``joint_lookup.csv``, else
        nodes named exactly like model joints).
    shape_betas
        ``shape_betas.csv`` path, a :class:`ShapeBetas`, or None (the sessions folder's table, if any).
    units
        Length unit of all sessions' calibrations (overrides ``session.toml``).
    options
        The run's :class:`~napari_smil_mv.dataset.plan.PreprocessOptions`: its ``exclude_cameras`` are removed
        from the loaded sessions (:func:`~napari_smil_mv.dataset.plan.exclude_session_cameras`); None keeps all.
    """
    loaded, sets = _session_sets(sessions, units)
    mdl = _load_model(model)
    joint_names = list(mdl.joint_names)
    jm, jm_source = _resolve_joint_map(joint_map, sets, loaded, joint_names)
    if jm_source not in ("auto", "exact names"):  # a user's table: the same check as fit and infer
        for s in loaded:
            check_joint_map(jm, s, joint_names, "" if jm_source == "given" else jm_source)
    betas = _resolve_betas(shape_betas, sets, loaded, int(mdl.n_betas))
    if options is not None:
        loaded = exclude_session_cameras(loaded, options)
    factor, world_units, ws, ws_source = _resolve_units(loaded)
    return RunInputs(loaded, mdl, jm, jm_source, betas, factor, world_units, ws, ws_source)
