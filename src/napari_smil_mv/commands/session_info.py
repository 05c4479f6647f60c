"""``napari-smil-mv session-info PATH [--json]``: what a session holds, and how well its calibration fits.

Lists cameras (with their video status), frame range, nodes, animals, units and 3D-point source, then the
calibration QC table (reprojection error per camera and node, flagged cameras). ``--json`` prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings


def register(subparsers) -> None:
    """Add the ``session-info`` sub-command."""
    p = subparsers.add_parser(
        "session-info",
        help="describe a multi-camera session and check its calibration (reprojection error per camera)",
        description=(
            "Load a session (folder with calibration.toml and camera folders, its calibration.toml, or a .slp "
            "holding a recording session), list cameras, frames, nodes, animals and units, and report the "
            "reprojection error of the 3D points in every camera. A camera is flagged when its median error is "
            "more than 3x the median of the other cameras and more than 5 px."
        ),
    )
    p.add_argument("path", help="session folder, its calibration.toml, or a .slp with a recording session")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.add_argument("--units", default=None, help="length unit of the calibration, e.g. mm (default: unknown)")
    p.add_argument(
        "--camera-map",
        action="append",
        default=[],
        metavar="CAMERA=DATA",
        help="map a calibration camera to a camera folder / labels file (or a video for .slp sessions); repeatable",
    )
    p.add_argument("--no-nodes", action="store_true", help="leave out the per-node QC table")
    p.set_defaults(func=run)


def _parse_map(items: list[str]) -> dict[str, str] | None:
    out = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--camera-map expects CAMERA=FOLDER, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out or None


def session_summary(session, report, hint: str | None, warnings_seen: list[str]) -> dict:
    """The JSON object printed by ``--json``."""
    videos = {}
    for name, view in session.views.items():
        v = view.video
        if v is None:
            videos[name] = {"path": None, "exists": False, "shape": None}
        else:
            shape = list(v.shape)  # for a missing video: the blank frames shown instead
            videos[name] = {
                "path": str(v.path) if v.path else v.stored_path,
                "exists": v.exists,
                "shape": shape,
                "missing_reason": v.missing_reason,
            }
    rng = session.frame_range
    out = {
        "name": session.name,
        "path": str(session.path),
        "cameras": session.camera_names,
        "n_cameras": len(session.camera_names),
        "n_frames": session.n_frames,
        "frame_range": list(rng) if rng else None,
        "nodes": list(session.skeleton.nodes),
        "edges": [list(e) for e in session.skeleton.edges],
        "n_animals": session.n_animals,
        "animals": list(session.animal_names),
        "units": session.units,
        "units_hint": hint,
        "points3d_source": session.points3d_source,
        "videos": videos,
    }
    qc = report.to_dict(include_nodes=True)
    out["reprojection_px"] = qc.pop("reprojection_px")
    out["flagged_cameras"] = qc.pop("flagged_cameras")
    out["qc"] = qc
    out["warnings"] = warnings_seen
    return out


def _single_inner_session(path: str) -> str:
    """``path``, or its only session sub-folder when ``path`` is an output folder (e.g. a demo's) holding one."""
    from pathlib import Path

    from napari_smil_mv.sessions import find_sessions, is_session_path

    p = Path(path)
    if not p.is_dir() or is_session_path(p):
        return path
    inner = find_sessions(p)
    if len(inner) == 1:
        print(f"{p} is not a session; showing the session it holds: {inner[0]}", file=sys.stderr)
        return str(inner[0])
    return path


def run(args: argparse.Namespace) -> int:
    """Load the session, run the QC, print tables or JSON; returns 0."""
    from napari_smil_mv.sessions import calibration_qc, load_session, units_hint

    path = _single_inner_session(args.path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        session = load_session(path, camera_map=_parse_map(args.camera_map), units=args.units)
        for view in session.views.values():  # read video headers (no decoding) to report shapes
            if view.video is not None:
                _ = view.video.shape
        report = calibration_qc(session)
    seen = list(dict.fromkeys(str(w.message) for w in caught))
    hint = units_hint(session)
    if args.json:
        print(
            json.dumps(session_summary(session, report, hint, seen), indent=2, allow_nan=False, default=str)
        )
        return 0
    rng = session.frame_range
    lines = [f"Session {session.name!r}  ({session.path})"]
    lines.append(f"Cameras ({len(session.camera_names)}):")
    for name, view in session.views.items():
        v = view.video
        if v is None:
            status = "no video"
        elif v.exists:
            status = f"{v.path.name}  shape {tuple(v.shape)}"
        else:
            status = f"MISSING {v.stored_path} (blank {v.shape[2]}x{v.shape[1]} frames)"
        lines.append(f"  {name:<14} {status}")
    lines.append(f"Frames: {session.n_frames}" + (f" (video frames {rng[0]}..{rng[1]})" if rng else ""))
    lines.append(f"Nodes ({session.n_nodes}): {', '.join(session.skeleton.nodes)}")
    lines.append(f"Animals ({session.n_animals}): {', '.join(session.animal_names)}")
    units = session.units + (f"   [hint, not used: {hint}]" if hint and session.units == "unknown" else "")
    lines.append(f"Units: {units}")
    lines.append(f"3D points: {session.points3d_source or 'none (triangulated for the QC below)'}")
    for w in seen:
        lines.append(f"Warning: {w}")
    lines.append("")
    lines.append(report.to_table(nodes=not args.no_nodes))
    print("\n".join(lines))
    return 0
