"""Calibration quality control: reprojection error of a session's 3D points into every camera.

For each camera ``c`` the error of a keypoint is ``|| project_c(X) - x_c ||`` in pixels, over every frame, animal
and node where both the 3D point ``X`` and the 2D keypoint ``x_c`` exist (and ``X`` is in front of the camera).

**Flagging rule.** Camera ``c`` is flagged when its median error exceeds both ``factor`` times the median of the
other cameras' medians and an absolute floor: ``median_c > max(factor * median(others), floor_px)`` with defaults
``factor = 3`` and ``floor_px = 5`` px. It needs at least ``min_points`` valid errors and two cameras with errors.
The median over the *other* cameras keeps one bad camera from raising the bar it is compared against.

**Which 3D points.** The session's own 3D points when present (``points3d.h5``, Anipose CSV, ``.slp``).
Otherwise they are triangulated here (DLT) from a *consensus* set of cameras, because a DLT over all cameras
spreads one bad camera's error over every camera (on the sleap-anipose sample: 23 / 19 / 68 / 26 px, nothing
stands out) and per-point RANSAC favours whichever pair agrees best (the third good camera then looks bad).
Consensus: start with all cameras; for each camera ``c`` triangulate without it and take the pooled median error
of those points in the remaining cameras, ``r_c``; if the pooled median error of the current set exceeds
``max(factor * min_c r_c, floor_px)``, drop the camera with the smallest ``r_c`` and repeat (at least three
cameras are needed to drop one). The points triangulated from the final set are then projected into *every*
camera, so a dropped camera shows its real error. The session is not modified; ``QCReport.consensus_cameras``
says which cameras were used, e.g. for ``session.ensure_points3d(cameras=report.consensus_cameras)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from napari_smil_mv.cameras import reprojection_errors
from napari_smil_mv.sessions.session import Session

FLAG_FACTOR = 3.0
FLAG_FLOOR_PX = 5.0
MIN_POINTS = 10


@dataclass
class ErrorStats:
    """Summary of reprojection errors: ``median``/``p90`` px (NaN if none), valid count and fraction.

    ``valid_fraction`` = ``n_valid / n_total`` where ``n_total`` counts every (frame, animal, node[, camera]) slot,
    and ``n_labelled`` the slots with a 2D keypoint.
    """

    median: float
    p90: float
    n_valid: int
    n_labelled: int
    n_total: int

    @property
    def valid_fraction(self) -> float:
        return self.n_valid / self.n_total if self.n_total else 0.0

    @classmethod
    def of(cls, errors: np.ndarray, labelled: np.ndarray) -> ErrorStats:
        e = np.asarray(errors, dtype=np.float64).ravel()
        ok = e[np.isfinite(e)]
        med = float(np.median(ok)) if ok.size else float("nan")
        p90 = float(np.percentile(ok, 90)) if ok.size else float("nan")
        return cls(med, p90, int(ok.size), int(np.count_nonzero(labelled)), int(e.size))

    def to_dict(self) -> dict:
        return {
            "median_px": _num(self.median),
            "p90_px": _num(self.p90),
            "n_valid": self.n_valid,
            "n_labelled": self.n_labelled,
            "n_total": self.n_total,
            "valid_fraction": round(self.valid_fraction, 4),
        }


def _num(x: float) -> float | None:
    return None if not np.isfinite(x) else round(float(x), 3)


@dataclass
class QCReport:
    """Result of :func:`calibration_qc`.

    Attributes
    ----------
    cameras, nodes
        Names in session order.
    per_camera
        Camera -> :class:`ErrorStats` over frames, animals and nodes.
    per_node
        Node -> :class:`ErrorStats` over frames, animals and cameras.
    camera_node_median
        ``(C, N)`` median px per camera and node (NaN where no valid error).
    errors
        ``(C, T, A, N)`` reprojection error px (NaN where not computable).
    flagged
        Flagged camera names (see the module docstring for the rule).
    reasons
        Camera -> sentence explaining its flag.
    points3d_source
        Which 3D points were used (the session's source, ``"given"``, or ``"triangulated for QC (...)"``).
    consensus_cameras
        Cameras the QC triangulated from (all cameras when the 3D points were not triangulated here).
    consensus_log
        Why cameras were left out of the QC triangulation.
    """

    session_name: str
    cameras: list[str]
    nodes: list[str]
    per_camera: dict[str, ErrorStats]
    per_node: dict[str, ErrorStats]
    camera_node_median: np.ndarray
    errors: np.ndarray
    flagged: list[str]
    reasons: dict[str, str] = field(default_factory=dict)
    points3d_source: str | None = None
    factor: float = FLAG_FACTOR
    floor_px: float = FLAG_FLOOR_PX
    consensus_cameras: list[str] = field(default_factory=list)
    consensus_log: list[str] = field(default_factory=list)

    @property
    def median_px(self) -> dict[str, float]:
        """Camera -> median reprojection error in px (NaN where none)."""
        return {c: s.median for c, s in self.per_camera.items()}

    def to_dict(self, include_nodes: bool = True) -> dict:
        """JSON-ready summary (no per-point arrays)."""
        out = {
            "session": self.session_name,
            "points3d_source": self.points3d_source,
            "rule": f"median > max({self.factor:g} x median of the other cameras, {self.floor_px:g} px)",
            "reprojection_px": {c: _num(s.median) for c, s in self.per_camera.items()},
            "per_camera": {c: s.to_dict() for c, s in self.per_camera.items()},
            "flagged_cameras": list(self.flagged),
            "reasons": dict(self.reasons),
            "consensus_cameras": list(self.consensus_cameras),
            "consensus_log": list(self.consensus_log),
        }
        if include_nodes:
            out["per_node"] = {n: s.to_dict() for n, s in self.per_node.items()}
            out["camera_node_median_px"] = {
                c: {n: _num(self.camera_node_median[i, j]) for j, n in enumerate(self.nodes)}
                for i, c in enumerate(self.cameras)
            }
        return out

    def to_table(self, nodes: bool = True) -> str:
        """Plain-text tables: one row per camera, then one row per node."""
        lines = [f"Reprojection error of 3D points ({self.points3d_source}) into each camera, px:"]
        head = f"  {'camera':<14} {'median':>8} {'p90':>8} {'valid':>7} {'labelled':>9}  flag"
        lines += [head, "  " + "-" * (len(head) - 2)]
        for c, s in self.per_camera.items():
            flag = "FLAGGED" if c in self.flagged else ""
            lines.append(
                f"  {c:<14} {_fmt(s.median):>8} {_fmt(s.p90):>8} {s.valid_fraction:>7.1%} "
                f"{s.n_labelled / s.n_total if s.n_total else 0:>9.1%}  {flag}"
            )
        lines.append(
            f"  rule: flag when median > max({self.factor:g} x median of the other cameras, "
            f"{self.floor_px:g} px)"
        )
        for c in self.flagged:
            lines.append(f"  {c}: {self.reasons.get(c, '')}")
        for entry in self.consensus_log:
            lines.append(f"  triangulation for QC {entry}")
        if nodes:
            lines += ["", f"  {'node':<16} {'median':>8} {'p90':>8} {'valid':>7}"]
            for n, s in self.per_node.items():
                lines.append(f"  {n:<16} {_fmt(s.median):>8} {_fmt(s.p90):>8} {s.valid_fraction:>7.1%}")
        return "\n".join(lines)


def _fmt(x: float) -> str:
    return "-" if not np.isfinite(x) else f"{x:.2f}"


def flag_cameras(
    medians: dict[str, float],
    counts: dict[str, int] | None = None,
    factor: float = FLAG_FACTOR,
    floor_px: float = FLAG_FLOOR_PX,
    min_points: int = MIN_POINTS,
) -> tuple[list[str], dict[str, str]]:
    """Apply the flagging rule (module docstring) to per-camera medians; returns ``(flagged, reasons)``."""
    counts = counts or {c: min_points for c in medians}
    usable = {c: m for c, m in medians.items() if np.isfinite(m) and counts.get(c, 0) >= min_points}
    flagged, reasons = [], {}
    if len(usable) < 2:
        return flagged, reasons
    for c, m in usable.items():
        others = float(np.median([v for k, v in usable.items() if k != c]))
        limit = max(factor * others, floor_px)
        if m > limit:
            flagged.append(c)
            reasons[c] = (
                f"median {m:.1f} px > {limit:.1f} px (= max({factor:g} x {others:.1f} px median of the "
                f"other cameras, {floor_px:g} px)); check this camera's calibration and name"
            )
    return flagged, reasons


def _pooled_median(session: Session, points3d: np.ndarray, cameras: list[str]) -> float:
    """Median reprojection error px of ``points3d`` over all keypoints of ``cameras`` (NaN when none)."""
    kp = np.stack([session.views[c].keypoints for c in cameras])
    e = reprojection_errors(points3d, kp, session.rig.subset(cameras))
    e = e[np.isfinite(e)]
    return float(np.median(e)) if e.size else float("nan")


def consensus_triangulation(
    session: Session, factor: float = FLAG_FACTOR, floor_px: float = FLAG_FLOOR_PX
) -> tuple[np.ndarray, list[str], list[str]]:
    """Triangulate (DLT) from a consensus set of cameras (module docstring).

    Returns
    -------
    points3d
        ``(T, A, N, 3)`` world points from the consensus cameras.
    cameras
        The consensus cameras, in rig order.
    log
        One sentence per dropped camera.
    """
    active = list(session.camera_names)
    log: list[str] = []
    points = session.triangulate(cameras=active)
    while len(active) >= 3:
        full = _pooled_median(session, points, active)
        trials = {}
        for c in active:
            rest = [k for k in active if k != c]
            pts_c = session.triangulate(cameras=rest)
            trials[c] = (_pooled_median(session, pts_c, rest), pts_c)
        finite = {c: v for c, v in trials.items() if np.isfinite(v[0])}
        if not finite or not np.isfinite(full):
            break
        best = min(finite, key=lambda c: finite[c][0])
        r_best = finite[best][0]
        if full <= max(factor * r_best, floor_px):
            break
        log.append(
            f"dropped {best!r}: without it the other cameras agree to {r_best:.2f} px "
            f"(median), with it {full:.2f} px"
        )
        active = [k for k in active if k != best]
        points = finite[best][1]
    return points, active, log


def calibration_qc(
    session: Session,
    points3d: np.ndarray | None = None,
    factor: float = FLAG_FACTOR,
    floor_px: float = FLAG_FLOOR_PX,
    min_points: int = MIN_POINTS,
) -> QCReport:
    """Reprojection-error report of a session (see the module docstring).

    Parameters
    ----------
    session
        The session; not modified.
    points3d
        ``(T, A, N, 3)`` world points to check; default: the session's own, else triangulated here from a
        consensus set of cameras.
    factor, floor_px, min_points
        Parameters of the flagging rule (and of the consensus).

    Returns
    -------
    QCReport
    """
    consensus = list(session.camera_names)
    log: list[str] = []
    if points3d is not None:
        source = "given"
        pts = np.asarray(points3d, dtype=np.float64)
    elif session.points3d is not None:
        source = session.points3d_source
        pts = session.points3d
    else:
        pts, consensus, log = consensus_triangulation(session, factor, floor_px)
        source = "triangulated for QC (DLT from " + ", ".join(consensus) + ")"
    expected = (session.n_frames, session.n_animals, session.n_nodes, 3)
    if pts.shape != expected:
        raise ValueError(f"points3d has shape {pts.shape}; the session needs {expected}")
    kp = session.keypoints_2d()
    err = reprojection_errors(pts, kp, session.rig)  # (C, T, A, N) px, NaN where undefined
    labelled = np.all(np.isfinite(kp), axis=-1)  # (C, T, A, N)
    cams, nodes = session.camera_names, session.skeleton.nodes
    per_camera = {c: ErrorStats.of(err[i], labelled[i]) for i, c in enumerate(cams)}
    per_node = {n: ErrorStats.of(err[..., j], labelled[..., j]) for j, n in enumerate(nodes)}
    cn = np.full((len(cams), len(nodes)), np.nan)
    for i in range(len(cams)):
        for j in range(len(nodes)):
            e = err[i, ..., j]
            e = e[np.isfinite(e)]
            if e.size:
                cn[i, j] = np.median(e)
    flagged, reasons = flag_cameras(
        {c: s.median for c, s in per_camera.items()},
        {c: s.n_valid for c, s in per_camera.items()},
        factor,
        floor_px,
        min_points,
    )
    return QCReport(
        session.name,
        cams,
        list(nodes),
        per_camera,
        per_node,
        cn,
        err,
        flagged,
        reasons,
        source,
        factor,
        floor_px,
        consensus,
        log,
    )


def units_hint(session: Session) -> str | None:
    """A *guess* of the length unit from the median distance between camera centres (labelled as a guess).

    Laboratory rigs are usually 0.1–3 m across: a median distance >= 100 suggests mm, 10–100 cm, < 10 m.
    Returns None with fewer than two cameras.
    """
    centres = session.rig.centers
    if len(centres) < 2:
        return None
    d = np.linalg.norm(centres[:, None] - centres[None], axis=-1)[np.triu_indices(len(centres), 1)]
    d = float(np.median(d[d > 0])) if np.any(d > 0) else 0.0
    if d <= 0:
        return None
    unit = "mm" if d >= 100 else ("cm" if d >= 10 else "m")
    return f"{unit} (guess: median distance between cameras is {d:.4g} units)"
