"""The fitting part of the ``demo`` command: a synthetic session of the demo insect, fitted and evaluated.

:func:`iter_fit_demo` writes ``session/`` (:func:`napari_smil_mv.demo.synthetic_session.write_synthetic_session`),
fits the demo model to it with the default :class:`~napari_smil_mv.fitting.FitConfig` and the session's
``joint_lookup.csv``, writes ``fit.smilmv.h5``, evaluates the fit against ``session/ground_truth.npz`` into
``evaluation.json`` (the JSON of ``napari-smil-mv evaluate fit.smilmv.h5 --ground-truth session --json``) and
renders ``fit_preview_<camera>.png``: the fitted mesh (translucent blue) over the session's video frame, the data
keypoints as discs and the fitted keypoints as crosses. No Qt.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from napari_smil_mv.demo.pipeline import DemoEvent, _write_png, _write_text, keypoint_colors, readme_text
from napari_smil_mv.results import json_safe, metrics_json

#: Files and folders written by :func:`iter_fit_demo` (relative to the demo folder).
DEMO_FIT_FILES: dict[str, str] = {
    "session/": "synthetic sleap-anipose session of the insect (videos, .slp keypoints with noise, calibration.toml, "
    "points3d.h5, joint_lookup.csv, ground_truth.npz)",
    "fit.smilmv.h5": "results of fitting the demo model to session/ (default FitConfig), see docs/fitting.md",
    "evaluation.json": "the fit against the ground truth: 3D joint error (also relative to the body length), "
    "reprojection error per camera, PCK (= napari-smil-mv evaluate --ground-truth --json)",
    "fit_preview_<camera>.png": "the fitted mesh (blue) over the session's video at the middle frame, data "
    "keypoints as discs, fitted keypoints as crosses",
}
MESH_RGB = (70, 150, 255)
MESH_ALPHA = 0.55


def fit_overlay(
    frame: np.ndarray,
    vertices: np.ndarray,
    faces: np.ndarray,
    camera: Any,
    observed: np.ndarray | None = None,
    predicted: np.ndarray | None = None,
    colors: np.ndarray | None = None,
) -> np.ndarray:
    """A video frame with a fitted mesh and keypoints drawn over it.

    Parameters
    ----------
    frame
        ``(H, W, 3)`` or ``(H, W, 1)`` uint8 RGB/grey image of the camera.
    vertices, faces
        ``(V, 3)`` world vertices and ``(F, 3)`` triangles of the fitted mesh.
    camera
        The :class:`~napari_smil_mv.cameras.Camera`.
    observed, predicted
        ``(N, 2)`` data keypoints (discs) and fitted keypoints (crosses), px ``(x, y)``; NaN rows are skipped.
    colors
        ``(N, 3)`` RGB per keypoint (default yellow).

    Returns
    -------
    np.ndarray
        ``(H, W, 3)`` uint8 RGB.
    """
    from napari_smil_mv.rendering import blend_mesh, draw_crosses, draw_keypoints

    img = np.asarray(frame, dtype=np.uint8)
    img = np.repeat(img[..., :1], 3, axis=2) if img.ndim == 3 and img.shape[2] == 1 else img[..., :3]
    out = blend_mesh(np.ascontiguousarray(img), vertices, faces, camera, MESH_RGB, MESH_ALPHA)
    n = 0 if observed is None else len(observed)
    cols = np.full((n, 3), (255, 230, 60)) if colors is None else np.asarray(colors)
    if observed is not None:
        out = draw_keypoints(out, observed, cols, radius=max(4.0, 0.009 * max(img.shape[:2])))
    if predicted is not None:
        m = len(predicted)
        per_point = cols[np.arange(m) % len(cols)] if len(cols) else np.full((m, 3), 255)
        out = draw_crosses(out, predicted, per_point, max(7, int(0.02 * max(img.shape[:2]))))
    return out


def iter_fit_demo(
    outdir: Path,
    n_cameras: int = 4,
    n_frames: int = 60,
    seed: int = 0,
    noise_px: float = 0.7,
    progress: tuple[float, float] = (0.0, 1.0),
) -> Generator[DemoEvent, None, dict]:
    """Write, fit, evaluate and preview the synthetic session (see the module docstring).

    Parameters
    ----------
    outdir
        The demo folder (``session/`` is replaced when it holds an earlier generated session).
    n_cameras, n_frames, seed, noise_px
        Passed to ``write_synthetic_session`` (``n_cameras`` >= 2).
    progress
        Range of :attr:`DemoEvent.progress` the events cover.

    Returns
    -------
    dict
        Summary (generator return value): session, cameras, frames, noise, fit seconds, the ground-truth metrics
        (``joint_error_3d_relative``, ``joint_error_3d_median``, ``reprojection_px_median``, ...), previews.
    """
    from napari_smil_mv.demo.synthetic_session import iter_write_synthetic_session
    from napari_smil_mv.fitting import FitConfig
    from napari_smil_mv.fitting.session_fit import iter_session_fit, prepare_session_fit
    from napari_smil_mv.results import evaluate, write_results
    from napari_smil_mv.sessions import JOINT_LOOKUP_CSV, load_session
    from napari_smil_mv.utils.events import relay

    lo, hi = progress

    def at(fraction: float) -> float:
        return lo + (hi - lo) * fraction

    session_dir = outdir / "session"
    for event in iter_write_synthetic_session(
        session_dir, n_cameras, n_frames, seed, noise_px, overwrite=session_dir.exists()
    ):
        yield DemoEvent("session", event.message, at(0.45 * event.progress))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        session = load_session(session_dir)
    job = prepare_session_fit(session, None, session_dir / JOINT_LOOKUP_CSV)
    model = job.model

    def progress_event(event) -> DemoEvent | None:
        if event.stage == "init" or event.stage == "done" or event.iteration == event.total:
            return DemoEvent("fit", event.message, at(0.45 + 0.4 * event.progress))
        return None

    provenance = {"command": "napari-smil-mv demo"}
    events = iter_session_fit(job, FitConfig(), producer="napari-smil-mv demo", provenance=provenance)
    result, results = yield from relay(events, progress_event)
    write_results(results, outdir / "fit.smilmv.h5", overwrite=True)
    yield DemoEvent(
        "fit", f"fit {result.elapsed_s:.1f} s, {len(results.camera_names)} cameras -> fit.smilmv.h5", at(0.87)
    )

    metrics = {
        "results": "fit.smilmv.h5",
        "stored": evaluate(results),
        "ground_truth": evaluate(results, session_dir),
    }
    _write_text(outdir / "evaluation.json", metrics_json(metrics) + "\n")
    gt = metrics["ground_truth"]
    yield DemoEvent(
        "evaluate",
        f"3D joint error {100 * gt['joint_error_3d_relative']:.2f} % of the body length over the observed "
        f"joints ({gt['joint_error_3d_median']:.2f} {results.units} median; all joints "
        f"{100 * gt['joint_error_3d_relative_all_joints']:.2f} %), median reprojection "
        f"{gt['reprojection_px_median']:.2f} px -> evaluation.json",
        at(0.9),
    )

    previews = []
    for camera, name in write_previews(outdir, results, model, session, "fit_preview"):
        previews.append(name)
        yield DemoEvent(
            "preview",
            f"fitted mesh over camera {camera}'s frame -> {name}",
            at(0.9 + 0.1 * len(previews) / len(results.cameras)),
        )
    return {
        "session": "session",
        "cameras": results.camera_names,
        "n_frames": results.n_frames,
        "noise_px": float(noise_px),
        "fit_seconds": round(float(result.elapsed_s), 2),
        "preview_frame": int(results.frame_indices[results.n_frames // 2]),
        "ground_truth": json_safe(
            {
                k: gt[k]
                for k in (
                    "joint_error_3d_relative",
                    "joint_error_3d_median",
                    "joint_error_3d_relative_all_joints",
                    "joint_error_3d_median_all_joints",
                    "body_length",
                    "reprojection_px_median",
                    "reprojection_px_per_camera",
                    "pck_5px",
                )
            }
        ),
        "previews": previews,
        "units": results.units,
    }


def _one_frame(results: Any, row: int) -> Any:
    """The results restricted to one row (for posing one mesh)."""
    from napari_smil_mv.results import Results

    r = slice(row, row + 1)
    return Results(
        poses=results.poses[r],
        betas=results.betas[r],
        trans=results.trans[r],
        mesh_scale=results.mesh_scale[r],
        log_beta_scales=results.log_beta_scales[r],
        betas_trans=results.betas_trans[r],
        joints_3d=results.joints_3d[r],
        frame_indices=results.frame_indices[r],
        cameras=results.cameras,
        projections_2d=results.projections_2d[:, r],
        reprojection_error=results.reprojection_error[:, r],
        joint_names=results.joint_names,
        model_sha256=results.model_sha256,
        model_source=results.model_source,
        units=results.units,
    )


#: Header titles of the previews, by file name prefix (:func:`write_previews`).
PREVIEW_TITLES = {
    "fit_preview": "Fit: body model fitted to the keypoints of all cameras",
    "network_preview": "Network prediction (no fitting)",
    "network_refined_preview": "Network prediction refined by the fitter",
}


def write_previews(
    outdir: Path, results: Any, model: Any, session: Any, prefix: str
) -> Iterator[tuple[str, str]]:
    """Write ``<prefix>_<camera>.png`` for every camera of ``results`` whose video is available.

    Each image is :func:`fit_overlay` of the camera's video frame at the middle row of ``results``: the posed
    mesh, the data keypoints and the results' keypoints of the observed joints, with a header (title from
    :data:`PREVIEW_TITLES`, camera and frame) and a legend (:func:`~napari_smil_mv.rendering.annotate_preview`).

    Parameters
    ----------
    outdir
        Folder receiving the images.
    results
        The :class:`~napari_smil_mv.results.Results` to draw.
    model
        The body model (SMILModelData) the results were made with.
    session
        The session the results belong to (its videos are read).
    prefix
        File name prefix, e.g. ``fit_preview``.

    Yields
    ------
    tuple[str, str]
        Camera name and file name (relative to ``outdir``) of each written image.
    """
    from napari_smil_mv.results import evaluate_meshes

    mid = results.n_frames // 2
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not writable.*")  # read-only broadcast arrays
        verts = evaluate_meshes(_one_frame(results, mid), model).vertices[0]
    colors = keypoint_colors(list(results.joint_names))
    from napari_smil_mv.rendering import annotate_preview

    title = PREVIEW_TITLES.get(prefix, prefix.replace("_", " "))
    frame_no = int(results.frame_indices[mid])
    legend = [
        ("fitted mesh" if prefix == "fit_preview" else "predicted mesh", MESH_RGB, "patch"),
        ("data keypoints (colour per joint)", colors[len(colors) // 2], "disc"),
        ("model keypoints", colors[len(colors) // 2], "cross"),
    ]
    for c, cam in enumerate(results.cameras):
        video = session.views[cam.name].video
        if video is None or not video.exists:
            continue
        frame = video[int(results.frame_indices[mid])]
        obs = results.observed_2d[c, mid] if results.observed_2d is not None else None
        pred = np.where(results.mapped[:, None], results.projections_2d[c, mid], np.nan)  # observed joints
        name = f"{prefix}_{cam.name}.png"
        image = fit_overlay(frame, verts, model.faces, cam, obs, pred, colors)
        _write_png(
            outdir / name, annotate_preview(image, title, f"camera {cam.name} - frame {frame_no}", legend)
        )
        yield cam.name, name


def check_fit_demo_args(outdir: Path, session_frames: int, noise_px: float) -> None:
    """Raise ValueError for bad fit-demo arguments, or a ``session/`` folder the demo did not write."""
    from napari_smil_mv.sessions.ground_truth import GROUND_TRUTH_NPZ

    if not 1 <= int(session_frames) <= 100000:
        raise ValueError(f"session_frames must be in 1..100000, got {session_frames}.")
    if not (np.isfinite(float(noise_px)) and float(noise_px) >= 0):
        raise ValueError(f"noise_px must be a finite number >= 0, got {noise_px}.")
    session = Path(outdir) / "session"
    if session.exists() and (
        not session.is_dir() or (any(session.iterdir()) and not (session / GROUND_TRUTH_NPZ).is_file())
    ):
        raise ValueError(
            f"{session} exists and was not written by the demo (no {GROUND_TRUTH_NPZ}); choose another output "
            "folder or pass fit=False (--no-fit)."
        )


def run_demo_with_fit(
    base: Any,
    outdir: Path,
    n_cameras: int,
    session_frames: int,
    seed: int,
    noise_px: float,
    network: bool = False,
    train_seconds: float = 60.0,
) -> Generator[DemoEvent, None, None]:
    """The demo's events (``base``, from ``napari_smil_mv.demo._run_demo``) followed by :func:`iter_fit_demo`
    and, with ``network``, :func:`napari_smil_mv.demo.network_step.iter_network_demo` (preprocess, train for at most
    ``train_seconds``, predict, refine, evaluate); adds their files and numbers to ``summary.json`` and
    ``README.txt``."""
    import time

    started = time.perf_counter()
    share = 0.3
    fit_end = 0.6 if network else 0.99
    for event in base:
        if event.stage != "done":
            yield DemoEvent(event.stage, event.message, share * event.progress)
    summary_path = outdir / "summary.json"
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    if n_cameras < 2:
        reason = "the synthetic session needs at least 2 cameras"
        summary["fit"] = {"skipped": reason}
        yield DemoEvent("fit", f"fit skipped: {reason}", 0.99)
    else:
        info = yield from iter_fit_demo(
            outdir, n_cameras, session_frames, seed, noise_px, progress=(share, fit_end)
        )
        summary["fit"] = info
        files = dict(summary["files"])
        readme = files.pop("README.txt", None)
        for name in ("session/", "fit.smilmv.h5", "evaluation.json"):
            files[name] = DEMO_FIT_FILES[name]
        for name in info["previews"]:
            files[name] = DEMO_FIT_FILES["fit_preview_<camera>.png"]
        if network:
            from napari_smil_mv.demo.network_step import DEMO_NETWORK_FILES, iter_network_demo

            net = yield from iter_network_demo(
                outdir, time_limit_s=float(train_seconds), progress=(fit_end, 0.99)
            )
            summary["network"] = {k: v for k, v in net.items() if k != "previews"}
            for name, text in DEMO_NETWORK_FILES.items():
                if "<camera>" not in name:
                    files[name] = text
            for name in net.get("previews", []):
                kind = "network_refined" if name.startswith("network_refined_") else "network"
                files[name] = DEMO_NETWORK_FILES[f"{kind}_preview_<camera>.png"]
        if readme is not None:
            files["README.txt"] = readme
        summary["files"] = files
    summary["seconds"] = round(float(summary.get("seconds", 0.0)) + time.perf_counter() - started, 2)
    text = readme_text(summary)
    if "ground_truth" in summary.get("fit", {}):
        gt = summary["fit"]["ground_truth"]
        text += (
            f"\nFit of session/ ({summary['fit']['n_frames']} frames, noise {summary['fit']['noise_px']:g} px): "
            f"3D joint error {100 * (gt['joint_error_3d_relative'] or float('nan')):.2f} % of the body length, "
            f"median reprojection {gt['reprojection_px_median'] or float('nan'):.2f} px (evaluation.json).\n"
        )
    if "network" in summary:
        net_gt = summary["network"]["network"]["ground_truth"]
        ref_gt = summary["network"].get("refined", {}).get("ground_truth", {})
        text += (
            f"Network ({summary['network']['training_epochs']} epochs in {summary['network']['training_s']:.0f} s): "
            f"3D joint error {net_gt['joint_error_3d_median']:.2f}, median reprojection "
            f"{net_gt['reprojection_px_median']:.2f} px; after refinement by the fitter "
            f"{ref_gt.get('joint_error_3d_median', float('nan')):.2f} and "
            f"{ref_gt.get('reprojection_px_median', float('nan')):.2f} px (network_evaluation.json).\n"
        )
    _write_text(summary_path, json.dumps(json_safe(summary), indent=2, default=str) + "\n")
    _write_text(outdir / "README.txt", text)
    yield DemoEvent("done", f"wrote {len(summary['files'])} files to {outdir}", 1.0)
