"""The synthetic multi-camera demo: a procedural insect walking in front of a ring of calibrated cameras.

:func:`run_demo` is a generator of :class:`DemoEvent` progress events (the ``demo`` command and the widgets
consume the same generator). It writes the model, the calibration, ground-truth meshes, 3D and 2D keypoints,
the animation parameters and preview images into one output folder (see :data:`DEMO_FILES`). World units are
model units (``mesh_scale = 1``), the floor is ``z = 0``, ``+z`` up.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from napari_smil_mv.utils.atomic import atomic_path

DEMO_FPS = 30.0
DEMO_IMAGE_SIZE = (640, 480)
DEMO_FOV_DEG = 45.0
DEMO_ELEVATION_DEG = 30.0
DEMO_DISTORTION = (-0.05, 0.01, 0.0, 0.0, 0.0)  # mild barrel distortion, OpenCV (k1, k2, p1, p2, k3)
#: Output files of :func:`run_demo` (``<camera>`` stands for each camera name) and what they hold.
DEMO_FILES: dict[str, str] = {
    "model/demo_model.pkl": "the procedural insect body model (SMIL .pkl layout, model units)",
    "calibration.toml": "Anipose calibration of the camera ring (OpenCV convention, world = model units)",
    "meshes.npz": "ground-truth posed meshes (float32): vertices (F, V, 3), joints (F, J, 3), faces (T, 3), "
    "joint_names, parents, fps",
    "keypoints_3d.npz": "3D keypoints = model joints per frame: points (F, J, 3), joint_names, frame_indices",
    "keypoints_3d.csv": "the same 3D keypoints as a table: frame, <joint>_x, <joint>_y, <joint>_z, ...",
    "keypoints_2d.npz": "projections per camera: points (C, F, J, 2) pixel (x, y), visible (C, F, J), "
    "camera_names, joint_names, image_sizes (C, 2) (W, H)",
    "animation.npz": "SMIL parameters (SMILify export schema, float32): poses (F, J, 3) axis-angle, trans (F, 3), "
    "betas (K,), betas_per_frame (F, K), mesh_scale (F,), log_beta_scales (F, J, 3), betas_trans (F, J, 3), "
    "fps, joint_names",
    "preview_<camera>.png": "the middle frame rendered in each camera, 2D keypoints and skeleton drawn",
    "summary.json": "machine-readable summary: parameters, cameras, joints and this file list",
    "README.txt": "this description",
}


@dataclass(frozen=True)
class DemoEvent:
    """One progress report of :func:`run_demo`.

    Attributes
    ----------
    stage
        Short stage id: ``model``, ``motion``, ``cameras``, ``write``, ``render``, ``done``.
    message
        Human-readable description.
    progress
        Overall progress in 0..1.
    """

    stage: str
    message: str
    progress: float


def run_demo(
    outdir: str | os.PathLike,
    n_frames: int = 30,
    n_cameras: int = 4,
    seed: int = 0,
    overwrite: bool = False,
    fit: bool = True,
    session_frames: int = 60,
    noise_px: float = 0.7,
    network: bool = True,
    train_seconds: float = 60.0,
) -> Iterator[DemoEvent]:
    """Write a synthetic multi-camera demo into ``outdir``, yielding progress events.

    With ``fit`` (default) the demo also writes a synthetic session of the insect (``session/``), fits the demo
    model to it, writes ``fit.smilmv.h5``, evaluates it against the ground truth (``evaluation.json``) and renders
    ``fit_preview_<camera>.png`` (see :mod:`napari_smil_mv.demo.fit_step`; skipped with fewer than 2 cameras).

    Parameters
    ----------
    outdir
        Output folder; created if missing. Must be empty unless ``overwrite`` (then files of the same name are
        replaced and other files are left alone).
    n_frames
        Number of frames (at :data:`DEMO_FPS`), 1..10000.
    n_cameras
        Number of cameras in the ring, 1..64.
    seed
        Seed for the model proportions (0 = designed proportions), the camera jitter and the textures.
    overwrite
        Allow writing into a non-empty folder.
    fit
        Also write, fit and evaluate the synthetic session (see above).
    session_frames
        Frames of the synthetic session, 1..100000.
    noise_px
        Keypoint noise of the synthetic session in px (0 = exact projections).
    network
        With ``fit``: also preprocess the session, train the small network briefly, predict every frame, refine
        the prediction with the fitter and evaluate both (:mod:`napari_smil_mv.demo.network_step`).
    train_seconds
        Training time budget of the network step, s.

    Returns
    -------
    Iterator[DemoEvent]
        Arguments and the output folder are checked when this function is called; the work happens while
        iterating.

    Raises
    ------
    ValueError
        For out-of-range arguments or an ``outdir`` that is a file.
    FileExistsError
        If ``outdir`` is not empty and ``overwrite`` is False.
    """
    outdir = Path(outdir)
    if not 1 <= int(n_frames) <= 10000:
        raise ValueError(f"n_frames must be in 1..10000, got {n_frames}.")
    if not 1 <= int(n_cameras) <= 64:
        raise ValueError(f"n_cameras must be in 1..64, got {n_cameras}.")
    if outdir.exists() and not outdir.is_dir():
        raise ValueError(f"output folder {outdir} is a file; choose a folder path.")
    if outdir.is_dir() and any(outdir.iterdir()) and not overwrite:
        raise FileExistsError(
            f"output folder {outdir} is not empty; choose an empty or new folder, or pass "
            "--overwrite (overwrite=True) to replace the demo files in it."
        )
    if not fit:
        return _run_demo(outdir, int(n_frames), int(n_cameras), int(seed))
    from napari_smil_mv.demo.fit_step import check_fit_demo_args, run_demo_with_fit

    check_fit_demo_args(outdir, session_frames, noise_px)
    base = _run_demo(outdir, int(n_frames), int(n_cameras), int(seed))
    return run_demo_with_fit(
        base,
        outdir,
        int(n_cameras),
        int(session_frames),
        int(seed),
        float(noise_px),
        network=bool(network),
        train_seconds=float(train_seconds),
    )


def _fit_ring(points: np.ndarray, n_cameras: int, seed: int) -> Any:
    """A camera ring around ``points`` (N, 3) whose images contain every point with a small margin."""
    from napari_smil_mv.cameras import ring_of_cameras

    lo, hi = points.min(0), points.max(0)
    target = 0.5 * (lo + hi)
    radius = float(np.linalg.norm(points - target, axis=1).max())
    distance = radius / np.sin(np.deg2rad(DEMO_FOV_DEG) / 2.0)

    def make(d: float):
        return ring_of_cameras(
            n_cameras,
            distance=d,
            elevation_deg=DEMO_ELEVATION_DEG,
            image_size=DEMO_IMAGE_SIZE,
            fov_deg=DEMO_FOV_DEG,
            target=target,
            dist=DEMO_DISTORTION,
            seed=seed,
        )

    def extent(rig) -> float:
        worst = 0.0
        for cam in rig:
            px = cam.project(points)
            if not np.all(np.isfinite(px)):
                return np.inf
            half = np.array(cam.size, dtype=float) / 2.0
            worst = max(worst, float(np.max(np.abs(px - (half - 0.5)) / half)))
        return worst

    rig = make(distance)
    for _ in range(8):  # the image extent scales roughly with 1 / distance
        ext = extent(rig)
        if 0.86 <= ext <= 0.94:
            break
        distance *= max(0.5, min(2.0, ext / 0.9)) if np.isfinite(ext) else 1.5
        rig = make(distance)
    while extent(rig) > 0.97:
        distance *= 1.05
        rig = make(distance)
    return rig


def joint_radii(data: Any, vertices: np.ndarray) -> np.ndarray:
    """Mean distance ``(J,)`` of each joint's regressor vertices from the regressed joint.

    ``vertices`` is ``(V, 3)``.

    For the demo model this is the tube radius at the joint: the depth below the surface at which the joint
    lies, used as the occlusion tolerance of the 2D visibility.
    """
    reg = data.J_regressor.tocsr() if hasattr(data.J_regressor, "tocsr") else np.asarray(data.J_regressor)
    joints = np.asarray(reg @ vertices)
    radii = np.zeros(len(joints))
    for j in range(len(joints)):
        row = reg[j]
        idx = row.indices if hasattr(row, "indices") else np.flatnonzero(row)
        if len(idx):
            radii[j] = np.linalg.norm(vertices[idx] - joints[j], axis=1).mean()
    return radii


def part_colors(joint_names: list[str], faces: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per-face RGB ``(T, 3)`` for the demo insect: body amber, legs darker, antennae darkest."""
    owner = np.asarray(weights).argmax(1)[np.asarray(faces)[:, 0]]
    table = np.array(
        [
            (64, 40, 26)
            if n.startswith("antenna")
            else (132, 70, 36)
            if n.startswith("leg")
            else (184, 96, 46)
            for n in joint_names
        ],
        dtype=float,
    )
    return table[owner]


def _preview_labels(camera: str, frame: int, mesh_colors: np.ndarray, kp_colors: np.ndarray) -> tuple:
    """Title, camera/frame line and legend of a ground-truth preview (:func:`rendering.annotate_preview`)."""
    legend = [
        ("mesh (colour per body part)", np.median(np.asarray(mesh_colors), axis=0), "patch"),
        ("keypoints (colour per joint)", kp_colors[len(kp_colors) // 2], "disc"),
        ("skeleton", (250, 250, 250), "line"),
    ]
    return "Synthetic demo: ground-truth body and keypoints", f"camera {camera} - frame {frame}", legend


def keypoint_colors(joint_names: list[str]) -> np.ndarray:
    """RGB ``(J, 3)`` per joint: left legs cyan, right legs magenta, antennae green, body yellow."""

    def one(name: str) -> tuple[int, int, int]:
        if name.startswith("leg_"):
            return (60, 220, 255) if "_l_" in name else (255, 80, 200)
        if name.startswith("antenna"):
            return (120, 255, 120)
        return (255, 230, 60)

    return np.array([one(n) for n in joint_names], dtype=int)


def skeleton_edges(parents: np.ndarray) -> list[tuple[int, int]]:
    """``(parent, child)`` index pairs of the kinematic tree."""
    return [(int(p), i) for i, p in enumerate(np.asarray(parents)) if p >= 0]


def _savez(path: Path, **arrays: Any) -> None:
    with atomic_path(path, overwrite=True) as tmp:
        np.savez_compressed(tmp, **arrays)


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path, overwrite=True) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _write_png(path: Path, rgb: np.ndarray) -> None:
    import cv2

    with atomic_path(path, overwrite=True) as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
            raise OSError(f"could not write the image {path}.")


def _keypoints_csv(points: np.ndarray, names: list[str]) -> str:
    header = ["frame"] + [f"{n}_{a}" for n in names for a in "xyz"]
    rows = [",".join(header)]
    for f, frame in enumerate(points):
        rows.append(",".join([str(f)] + [repr(float(v)) for v in frame.reshape(-1)]))
    return "\n".join(rows) + "\n"


def _run_demo(outdir: Path, n_frames: int, n_cameras: int, seed: int) -> Iterator[DemoEvent]:
    import torch

    from napari_smil_mv.body import SMILModel, load_smil_model
    from napari_smil_mv.body.animation import MeshSequence, write_animation_npz, write_mesh_sequence_npz
    from napari_smil_mv.body.demo_model import write_demo_model
    from napari_smil_mv.body.demo_motion import demo_motion
    from napari_smil_mv.cameras import save_calibration
    from napari_smil_mv.rendering import (
        annotate_preview,
        draw_keypoints,
        point_visibility,
        render_depth,
        render_mesh,
        textured_background,
    )

    started = time.perf_counter()
    outdir.mkdir(parents=True, exist_ok=True)
    yield DemoEvent("model", "building the procedural insect model", 0.0)
    model_path = write_demo_model(outdir / "model" / "demo_model.pkl", seed=seed, overwrite=True)
    data = load_smil_model(model_path)
    names = list(data.joint_names)
    yield DemoEvent(
        "model",
        f"model: {data.n_vertices} vertices, {data.n_faces} faces, {data.n_joints} joints, "
        f"{data.n_betas} shape coefficients -> {model_path.relative_to(outdir)}",
        0.05,
    )

    motion = demo_motion(n_frames, data, fps=DEMO_FPS)
    # animation.npz stores float32: pose the ground truth from the stored values so the file reproduces it.
    motion = {k: np.asarray(v, np.float32).astype(np.float64) if np.ndim(v) else v for k, v in motion.items()}
    model = SMILModel(data, dtype=torch.float64)
    with torch.no_grad():
        out = model(
            torch.as_tensor(motion["pose"]),
            betas=torch.as_tensor(motion["betas"])[None].expand(n_frames, -1),
            trans=torch.as_tensor(motion["trans"]),
            mesh_scale=torch.as_tensor(motion["mesh_scale"]),
        )
    verts = out.vertices.cpu().numpy()
    joints = out.joints.cpu().numpy()
    yield DemoEvent(
        "motion",
        f"posed {n_frames} frames of walking ({n_frames / DEMO_FPS:.2f} s at {DEMO_FPS:g} fps)",
        0.15,
    )

    step = max(1, verts.shape[1] // 600)
    rig = _fit_ring(np.concatenate([verts[:, ::step].reshape(-1, 3), joints.reshape(-1, 3)]), n_cameras, seed)
    rig.metadata["generator"] = "napari-smil-mv demo"
    save_calibration(rig, outdir / "calibration.toml", overwrite=True)
    yield DemoEvent(
        "cameras",
        f"{n_cameras} cameras {rig.names} at {np.linalg.norm(rig.centers[0] - joints.mean((0, 1))):.2f} "
        "units -> calibration.toml",
        0.2,
    )

    faces = np.asarray(data.faces)
    meshes = MeshSequence(verts, joints, faces, names, np.asarray(data.parents), fps=DEMO_FPS)
    write_mesh_sequence_npz(outdir / "meshes.npz", meshes, overwrite=True)
    _savez(
        outdir / "keypoints_3d.npz",
        points=joints,
        joint_names=np.array(names),
        frame_indices=np.arange(n_frames),
        units=np.array("model units"),
    )
    _write_text(outdir / "keypoints_3d.csv", _keypoints_csv(joints, names))
    zeros = np.zeros((n_frames, len(names), 3))
    write_animation_npz(
        outdir / "animation.npz",
        motion["pose"],
        betas=motion["betas"],
        trans=motion["trans"],
        log_beta_scales=zeros,
        betas_trans=zeros,
        mesh_scale=motion["mesh_scale"],
        fps=DEMO_FPS,
        joint_names=names,
        overwrite=True,
    )
    yield DemoEvent("write", "wrote meshes.npz, keypoints_3d.npz/.csv, animation.npz", 0.3)

    rest = np.asarray(data.v_template) + np.asarray(data.shapedirs) @ np.asarray(motion["betas"])
    tolerance = 1.5 * joint_radii(data, rest)
    points2d = np.zeros((n_cameras, n_frames, len(names), 2))
    visible = np.zeros((n_cameras, n_frames, len(names)), bool)
    for c, cam in enumerate(rig):
        points2d[c] = cam.project(joints)
        for f in range(n_frames):
            depth = render_depth(verts[f], faces, cam)
            visible[c, f] = point_visibility(joints[f], cam, depth, tolerance * motion["mesh_scale"][f])
        yield DemoEvent(
            "write", f"2D keypoints and visibility in camera {cam.name}", 0.3 + 0.4 * (c + 1) / n_cameras
        )
    _savez(
        outdir / "keypoints_2d.npz",
        points=points2d,
        visible=visible,
        camera_names=np.array(rig.names),
        joint_names=np.array(names),
        image_sizes=np.array([cam.size for cam in rig]),
    )

    mid = n_frames // 2
    colors = part_colors(names, faces, data.weights)
    edges = skeleton_edges(data.parents)
    kp_colors = keypoint_colors(names)
    previews = []
    for c, cam in enumerate(rig):
        image = render_mesh(
            verts[mid], faces, cam, textured_background(cam.size, seed=seed * 101 + c), colors
        )
        image = draw_keypoints(
            image, points2d[c, mid], kp_colors, edges=edges, visible=visible[c, mid], radius=2.5
        )
        name = f"preview_{cam.name}.png"
        _write_png(outdir / name, annotate_preview(image, *_preview_labels(cam.name, mid, colors, kp_colors)))
        previews.append(name)
        yield DemoEvent(
            "render", f"rendered frame {mid} in camera {cam.name} -> {name}", 0.7 + 0.25 * (c + 1) / n_cameras
        )

    files = [
        str(Path("model") / "demo_model.pkl"),
        "calibration.toml",
        "meshes.npz",
        "keypoints_3d.npz",
        "keypoints_3d.csv",
        "keypoints_2d.npz",
        "animation.npz",
        *previews,
        "summary.json",
        "README.txt",
    ]
    summary = {
        "generator": "napari-smil-mv demo",
        "n_frames": n_frames,
        "fps": DEMO_FPS,
        "seed": seed,
        "units": "model units (mesh_scale 1); floor z = 0, +z up",
        "image_size": list(DEMO_IMAGE_SIZE),
        "cameras": rig.names,
        "joint_names": names,
        "n_vertices": data.n_vertices,
        "n_betas": data.n_betas,
        "preview_frame": mid,
        "visible_fraction": float(visible.mean()),
        "files": {f: DEMO_FILES.get(f, DEMO_FILES["preview_<camera>.png"]) for f in files},
        "seconds": round(time.perf_counter() - started, 2),
    }
    _write_text(outdir / "summary.json", json.dumps(summary, indent=2) + "\n")
    _write_text(outdir / "README.txt", readme_text(summary))
    yield DemoEvent("done", f"wrote {len(files)} files to {outdir}", 1.0)


def readme_text(summary: dict) -> str:
    """README.txt of a demo folder from its ``summary.json`` content."""
    lines = [
        "napari-smil-mv synthetic demo",
        "=============================",
        "",
        f"A procedural insect walking for {summary['n_frames']} frames at {summary['fps']:g} fps, seen by "
        f"{len(summary['cameras'])} calibrated cameras ({', '.join(summary['cameras'])}), "
        f"{summary['image_size'][0]}x{summary['image_size'][1]} px.",
        f"World units: {summary['units']}. Camera convention: OpenCV/Anipose (x_cam = R X + t, pixel "
        "centres at "
        "integer coordinates, points as (x, y)).",
        "Keypoints are the model's joints, in model joint order (joint_names).",
        "",
        "Files:",
    ]
    lines += [f"  {name:<24} {text}" for name, text in summary["files"].items()]
    return "\n".join(lines) + "\n"
