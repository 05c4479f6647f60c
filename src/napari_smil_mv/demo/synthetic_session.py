"""A synthetic multi-camera session of the procedural demo insect, written in the sleap-anipose layout.

:func:`iter_write_synthetic_session` (a generator of progress events) and :func:`write_synthetic_session` write::

    DIR/calibration.toml        N cameras on a ring ~300-500 mm from the insect ([metadata] units = "mm")
    DIR/<cam>/<cam>.mp4         rendered frames (shaded mesh on a textured floor), h264, 30 fps
    DIR/<cam>/<cam>.slp         sleap-io PredictedInstances: noisy projections, hidden nodes NaN, scores in (0, 1]
    DIR/points3d.h5             ground-truth 3D nodes (F, 1, N, 3), sleap-anipose layout
    DIR/joint_lookup.csv        data node <-> model joint (columns model, data)
    DIR/ground_truth.npz        body parameters (animation schema), joints, cameras, clean 2D, visibility
    DIR/session.toml            units = "mm"
    DIR/README.txt

The session is read back with :func:`napari_smil_mv.sessions.load_session` like any recorded one. World frame:
the floor is ``z = 0``, ``+z`` up, units mm; the insect is the demo model scaled by ``mesh_scale`` (mm per model
unit, about 60). Everything depends only on the arguments (deterministic for a seed); the folder is written
next to ``DIR`` and renamed into place at the end.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from napari_smil_mv.demo.pipeline import DEMO_FPS, DemoEvent, joint_radii, part_colors
from napari_smil_mv.demo.synthetic_scene import (
    MM_PER_MODEL_UNIT,
    OCCLUSION_MARGIN,
    UNITS,
    demo_camera_rig,
    node_visibility,
    noisy_keypoints,
    occluder_faces,
    pose_demo_body,
)
from napari_smil_mv.sessions.ground_truth import GROUND_TRUTH_KEYS, GROUND_TRUTH_NPZ
from napari_smil_mv.utils.mp4_writer import Mp4Writer

__all__ = [
    "DATA_NODES",
    "DATA_EDGES",
    "DATA_SYMMETRIES",
    "iter_write_synthetic_session",
    "write_synthetic_session",
]

_LEGS = [(f"{p[0]}{s}", f"leg_{p}_{s}") for p in ("front", "mid", "hind") for s in "lr"]
#: SLEAP skeleton of the session: (node, model joint it observes), as a biologist would track the insect.
DATA_NODES: tuple[tuple[str, str], ...] = (
    ("head", "head"),
    ("thorax", "thorax"),
    ("petiole", "abdomen_1"),
    ("gaster", "abdomen_2"),
    ("abdomen_tip", "abdomen_tip"),
    ("antenna_l", "antenna_l_tip"),
    ("antenna_r", "antenna_r_tip"),
    *(
        (f"{leg}_{k}", f"{joint}_{j}")
        for leg, joint in _LEGS
        for k, j in (("knee", "tibia"), ("tarsus", "claw"))
    ),
)
DATA_EDGES: tuple[tuple[str, str], ...] = (
    ("thorax", "head"),
    ("head", "antenna_l"),
    ("head", "antenna_r"),
    ("thorax", "petiole"),
    ("petiole", "gaster"),
    ("gaster", "abdomen_tip"),
    *((a, b) for leg, _ in _LEGS for a, b in (("thorax", f"{leg}_knee"), (f"{leg}_knee", f"{leg}_tarsus"))),
)
DATA_SYMMETRIES: tuple[tuple[str, str], ...] = (("antenna_l", "antenna_r"),) + tuple(
    (f"{p}l_{k}", f"{p}r_{k}") for p in "fmh" for k in ("knee", "tarsus")
)
TRACK_NAME = "insect"
_MARKER = GROUND_TRUTH_NPZ  # a folder holding this was written by us and may be replaced with overwrite=True


# ------------------------------------------------------------------------------------------ arguments
def _check_args(outdir: Path, n_cameras, n_frames, seed, noise_px, image_size, overwrite) -> tuple:
    if not 2 <= int(n_cameras) <= 64:
        raise ValueError(f"n_cameras must be in 2..64, got {n_cameras}.")
    if not 1 <= int(n_frames) <= 100000:
        raise ValueError(f"n_frames must be in 1..100000, got {n_frames}.")
    if int(seed) < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}.")
    if not (np.isfinite(float(noise_px)) and float(noise_px) >= 0):
        raise ValueError(f"noise_px must be a finite number >= 0 (0 = noise-free), got {noise_px}.")
    try:
        w, h = (int(v) for v in image_size)
    except (TypeError, ValueError):
        raise ValueError(f"image_size must be (width, height) in pixels, got {image_size!r}.") from None
    if not (32 <= w <= 8192 and 32 <= h <= 8192 and w % 2 == 0 and h % 2 == 0):
        raise ValueError(
            f"image_size must be two even numbers in 32..8192 (h264 needs even sizes), got {image_size!r}."
        )
    if outdir.exists() and not outdir.is_dir():
        raise ValueError(f"output folder {outdir} is a file; choose a folder path.")
    if outdir.is_dir() and any(outdir.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f"output folder {outdir} is not empty; choose an empty or new folder, or pass --overwrite "
                "(overwrite=True) to replace a session written by make-demo-session."
            )
        if not (outdir / _MARKER).is_file():
            raise ValueError(
                f"refusing to replace {outdir}: it has no {_MARKER}, so it was not written by make-demo-session "
                "and --overwrite would delete other files. Choose an empty or new folder."
            )
    return int(n_cameras), int(n_frames), int(seed), float(noise_px), (w, h)


# ------------------------------------------------------------------------------------------ building blocks
def _video_writer(path: Path, size: tuple[int, int], fps: float) -> Mp4Writer:
    """The session's videos: h264, near-lossless (crf 18), a key frame every 30 frames for quick seeking."""
    return Mp4Writer(path, size, fps, ("-crf", "18", "-preset", "veryfast", "-g", "30"))


def _render_camera(folder: Path, cam, c, verts, faces, colors, nodes3d, margin, mask, seed, n_frames):
    """Render ``folder/<cam>/<cam>.mp4``; yields the frames done every 10 %, returns node visibility (F, N)."""
    from napari_smil_mv.rendering import render_mesh, textured_background

    background = textured_background(cam.size, seed=seed * 101 + c)
    visible = np.zeros(nodes3d.shape[:2], dtype=bool)
    folder = folder / cam.name
    folder.mkdir()
    writer = _video_writer(folder / f"{cam.name}.mp4", cam.size, DEMO_FPS)
    try:
        step = max(1, n_frames // 10)
        for f in range(n_frames):
            writer.write(render_mesh(verts[f], faces, cam, background, colors))
            visible[f] = node_visibility(cam, verts[f], faces, nodes3d[f], margin, mask)
            if (f + 1) % step == 0 and f + 1 < n_frames:
                yield f + 1
    finally:
        writer.close()
    return visible


def _write_slp(cam, mp4: Path, final_mp4: Path, keypoints, scores, n_frames: int, seed: int) -> Path:
    """Write ``<cam>.slp`` next to the video: one PredictedInstance per frame that shows any node."""
    import sleap_io as sio

    video = sio.load_video(str(mp4))
    w, h = cam.size
    shape = tuple(int(s) for s in video.shape)
    if shape[:3] != (n_frames, h, w):
        raise RuntimeError(f"{mp4}: sleap-io reads shape {shape}, expected ({n_frames}, {h}, {w}, 3)")
    nodes = [n for n, _ in DATA_NODES]
    skeleton = sio.Skeleton(
        nodes=nodes, edges=list(DATA_EDGES), symmetries=list(DATA_SYMMETRIES), name="insect"
    )
    track = sio.Track(TRACK_NAME)
    frames = []
    for f in range(n_frames):
        ok = np.isfinite(keypoints[f, :, 0])
        if not ok.any():
            continue
        inst = sio.PredictedInstance.from_numpy(
            keypoints[f],
            skeleton=skeleton,
            point_scores=np.where(ok, scores[f], 0.0),
            score=float(np.mean(scores[f, ok])),
            track=track,
        )
        frames.append(sio.LabeledFrame(video=video, frame_idx=f, instances=[inst]))
    labels = sio.Labels(
        labeled_frames=frames,
        videos=[video],
        skeletons=[skeleton],
        tracks=[track],
        provenance={"generator": "napari-smil-mv make-demo-session", "seed": int(seed)},
    )
    # Store the final absolute video path, as SLEAP does (readers also find the video by name next to the .slp).
    labels.replace_filenames(new_filenames=[str(final_mp4)], open_videos=False)
    path = mp4.with_suffix(".slp")
    sio.save_slp(labels, str(path), verbose=False)
    video.close()
    return path


def _write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def _sibling(outdir: Path, tag: str) -> Path:
    return outdir.parent / f".{outdir.name}.{tag}-{os.getpid()}-{secrets.token_hex(4)}"


def _move_into_place(tmp: Path, outdir: Path) -> None:
    """Rename the finished ``tmp`` folder to ``outdir``, replacing an empty or previously generated one."""
    if outdir.is_dir() and not any(outdir.iterdir()):
        outdir.rmdir()
    if outdir.exists():  # a previous session (checked by _check_args): swap, then delete the old one
        old = _sibling(outdir, "old")
        os.replace(outdir, old)
        os.replace(tmp, outdir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, outdir)


# ------------------------------------------------------------------------------------------ the writer
def iter_write_synthetic_session(
    outdir: str | os.PathLike,
    n_cameras: int = 4,
    n_frames: int = 120,
    seed: int = 0,
    noise_px: float = 0.7,
    image_size: tuple[int, int] = (640, 480),
    overwrite: bool = False,
    save_vertices: bool = False,
) -> Iterator[DemoEvent]:
    """Write a synthetic session into ``outdir``, yielding :class:`~napari_smil_mv.demo.DemoEvent` progress.

    Parameters
    ----------
    outdir
        Session folder to create (see the module docstring for its files). It must not exist or be empty,
        unless ``overwrite`` and it holds a previous generated session (then it is replaced as a whole).
    n_cameras
        Number of cameras, 2..64.
    n_frames
        Number of frames at 30 fps.
    seed
        Seed (>= 0) of the insect size, cameras, distortion, background textures and keypoint noise.
    noise_px
        Typical keypoint noise in px (each point's sigma is ``noise_px`` times a log-normal factor); 0 writes
        the exact projections with score 1.
    image_size
        ``(W, H)`` px, even numbers.
    overwrite
        Replace an existing generated session.
    save_vertices
        Also store the posed mesh ``vertices (F, V, 3)`` and ``faces`` in ``ground_truth.npz`` (about
        5 MB for 120 frames).

    Returns
    -------
    Iterator[DemoEvent]
        Arguments are checked when called; the work happens while iterating. The last event has stage
        ``"done"``. Stopping early leaves no files behind.

    Raises
    ------
    ValueError
        Out-of-range arguments, ``outdir`` is a file, or a non-empty ``outdir`` not written by this generator.
    FileExistsError
        ``outdir`` is not empty and ``overwrite`` is False.
    """
    outdir = Path(outdir).expanduser().absolute()
    args = _check_args(outdir, n_cameras, n_frames, seed, noise_px, image_size, overwrite)
    return _generate(outdir, *args, bool(save_vertices))


def write_synthetic_session(
    outdir: str | os.PathLike,
    n_cameras: int = 4,
    n_frames: int = 120,
    seed: int = 0,
    noise_px: float = 0.7,
    image_size: tuple[int, int] = (640, 480),
    overwrite: bool = False,
    progress: Callable[[DemoEvent], None] | None = None,
    save_vertices: bool = False,
) -> Path:
    """Write a synthetic session (see :func:`iter_write_synthetic_session`); returns the session folder.

    ``progress`` is called with every :class:`~napari_smil_mv.demo.DemoEvent`.
    """
    events = iter_write_synthetic_session(
        outdir, n_cameras, n_frames, seed, noise_px, image_size, overwrite, save_vertices
    )
    try:
        for event in events:
            if progress is not None:
                progress(event)
    finally:
        events.close()  # an error in ``progress`` still removes the temporary folder at once
    return Path(outdir).expanduser().absolute()


def _generate(
    outdir: Path, n_cameras: int, n_frames: int, seed: int, noise_px: float, image_size, save_vertices: bool
) -> Iterator[DemoEvent]:
    from napari_smil_mv.body import load_smil_model
    from napari_smil_mv.cameras import save_calibration
    from napari_smil_mv.sessions.anipose_files import write_points3d_h5
    from napari_smil_mv.sessions.joint_map import JOINT_LOOKUP_CSV, JointMap

    started = time.perf_counter()
    outdir.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(outdir, "tmp")
    tmp.mkdir()  # not mkdtemp: the session folder gets the usual permissions
    try:
        yield DemoEvent("model", "posing the demo insect", 0.0)
        data = load_smil_model(None)
        scale = float(np.random.default_rng([seed, 0]).uniform(*MM_PER_MODEL_UNIT))
        params, verts, joints = pose_demo_body(data, n_frames, scale)
        names = list(data.joint_names)
        node_names = [n for n, _ in DATA_NODES]
        node_joints = np.array([names.index(j) for _, j in DATA_NODES])
        nodes3d = joints[:, node_joints]  # (F, N, 3) mm
        length = float(np.ptp(verts[0] @ np.array([1.0, 0.0, 0.0])))
        yield DemoEvent(
            "motion",
            f"{n_frames} frames of walking at {DEMO_FPS:g} fps; mesh_scale {scale:.1f} mm/unit (~{length:.0f} mm "
            f"span), {len(node_names)} SLEAP nodes",
            0.05,
        )

        step = max(1, n_frames // 30)
        rig = demo_camera_rig(verts[::step, ::4].reshape(-1, 3), n_cameras, image_size, seed)
        save_calibration(rig, tmp / "calibration.toml")
        far = np.linalg.norm(rig.centers - nodes3d.reshape(-1, 3).mean(0), axis=1)
        yield DemoEvent(
            "cameras", f"{n_cameras} cameras {rig.names}, {far.min():.0f}-{far.max():.0f} mm away", 0.1
        )

        faces = np.asarray(data.faces)
        colors = part_colors(names, faces, data.weights)
        rest = np.asarray(data.v_template) + np.asarray(data.shapedirs) @ params["betas"]
        mask = occluder_faces(data, node_joints)
        margin = OCCLUSION_MARGIN * joint_radii(data, rest)[node_joints] * scale
        clean = np.stack([cam.project(nodes3d) for cam in rig])  # (C, F, N, 2)
        visible = np.zeros((n_cameras, n_frames, len(node_names)), dtype=bool)
        keypoints = np.full_like(clean, np.nan)
        scores = np.full(visible.shape, np.nan)
        sigma = np.zeros(visible.shape)
        for c, cam in enumerate(rig):
            span = 0.8 / n_cameras
            gen = _render_camera(tmp, cam, c, verts, faces, colors, nodes3d, margin, mask, seed, n_frames)
            while True:
                try:
                    done = next(gen)
                except StopIteration as stop:
                    visible[c] = stop.value
                    break
                yield DemoEvent(
                    "render",
                    f"camera {cam.name}: frame {done}/{n_frames}",
                    0.1 + span * (c + done / n_frames),
                )
            keypoints[c], scores[c], sigma[c] = noisy_keypoints(
                clean[c], visible[c], noise_px, np.random.default_rng([seed, 2, c])
            )
            mp4 = tmp / cam.name / f"{cam.name}.mp4"
            _write_slp(cam, mp4, outdir / cam.name / mp4.name, keypoints[c], scores[c], n_frames, seed)
            yield DemoEvent(
                "render",
                f"camera {cam.name}: {cam.name}/{cam.name}.mp4 and .slp ({visible[c].mean():.0%} of nodes visible)",
                0.1 + span * (c + 1),
            )

        write_points3d_h5(tmp / "points3d.h5", nodes3d[:, None], cameras=rig.names)
        JointMap(list(DATA_NODES)).write(tmp / JOINT_LOOKUP_CSV, model_joints=names)
        truth = {
            **params,
            "frame_indices": np.arange(n_frames),
            "joint_names": np.array(names),
            "parents": np.asarray(data.parents),
            "joints3d": joints,
            "node_names": np.array(node_names),
            "node_joints": np.array([j for _, j in DATA_NODES]),
            "edges": np.array([(node_names.index(a), node_names.index(b)) for a, b in DATA_EDGES]),
            "points3d": nodes3d,
            "keypoints_2d_clean": clean,
            "keypoints_2d": keypoints,
            "visible": visible,
            "scores": scores,
            "noise_sigma_px": sigma,
            "camera_names": np.array(rig.names),
            "K": np.stack([cam.matrix for cam in rig]),
            "dist": np.stack([cam.dist[:5] for cam in rig]),
            "rvec": np.stack([cam.rvec for cam in rig]),
            "tvec": np.stack([cam.tvec for cam in rig]),
            "size": np.array([cam.size for cam in rig]),
            "units": np.array(UNITS),
            "up": np.array([0.0, 0.0, 1.0]),
            "floor_z": np.float64(0.0),
            "model_sha256": np.array(data.sha256),
            "model_source": np.array(data.source),
            "seed": np.int64(seed),
            "noise_px": np.float64(noise_px),
        }
        if save_vertices:
            truth["vertices"] = verts.astype(np.float32)
            truth["faces"] = faces.astype(np.int32)
        np.savez_compressed(tmp / GROUND_TRUTH_NPZ, **truth)
        _write_text(
            tmp / "session.toml",
            f'# synthetic session written by napari-smil-mv make-demo-session (seed {seed})\nunits = "{UNITS}"\n',
        )
        info = {"n_frames": n_frames, "seed": seed, "noise_px": noise_px, "scale": scale, "size": image_size}
        _write_text(tmp / "README.txt", _readme(info, rig.names, node_names, save_vertices))
        yield DemoEvent("write", "wrote points3d.h5, joint_lookup.csv, ground_truth.npz, session.toml", 0.95)
        _move_into_place(tmp, outdir)
        yield DemoEvent(
            "done",
            f"session written to {outdir} in {time.perf_counter() - started:.1f} s "
            f"({visible.mean():.0%} of nodes visible)",
            1.0,
        )
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _readme(info: dict, cameras: list[str], nodes: list[str], save_vertices: bool) -> str:
    w, h = info["size"]
    keys = {k: v for k, v in GROUND_TRUTH_KEYS.items() if save_vertices or k not in ("vertices", "faces")}
    lines = [
        "napari-smil-mv synthetic session (make-demo-session)",
        "====================================================",
        "",
        f"The procedural demo insect walking for {info['n_frames']} frames at {DEMO_FPS:g} fps, filmed by "
        f"{len(cameras)} calibrated cameras ({', '.join(cameras)}) at {w}x{h} px. Seed {info['seed']}.",
        f"World: mm, floor z = 0, +z up; mesh_scale = {info['scale']:.3f} mm per model unit.",
        "Cameras: OpenCV/Anipose convention (x_cam = R X + t, Rodrigues rvec, pixel centres at integer",
        "coordinates, points as (x, y)); some cameras have principal point offsets and mild distortion.",
        f"2D keypoints: projection of the model joints + Gaussian noise (noise_px = {info['noise_px']:g});",
        "nodes hidden by the body or outside the image are missing (NaN). Scores in (0, 1], lower for noisier",
        "points. Load with napari_smil_mv.sessions.load_session(DIR); ground truth with",
        "napari_smil_mv.sessions.ground_truth.read_ground_truth(DIR).",
        "",
        "Files:",
        '  calibration.toml      Anipose calibration ([metadata] units = "mm")',
        "  <cam>/<cam>.mp4       rendered video (h264)",
        "  <cam>/<cam>.slp       SLEAP predictions (sleap-io), track 'insect'",
        "  points3d.h5           ground-truth 3D nodes, tracks (F, 1, N, 3) (sleap-anipose layout)",
        "  joint_lookup.csv      model joint <-> SLEAP node (columns model, data)",
        "  ground_truth.npz      body parameters, joints, cameras and clean 2D keypoints:",
        *(f"      {k:<20} {v}" for k, v in keys.items()),
        '  session.toml          units = "mm"',
        "",
        f"SLEAP nodes ({len(nodes)}): {', '.join(nodes)}",
        "",
    ]
    return "\n".join(lines)
