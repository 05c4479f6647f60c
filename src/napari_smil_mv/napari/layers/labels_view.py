"""Layers for a plain SLEAP ``.slp`` without a recording session: per video, its frames and keypoints.

There is no calibration, so there are no world layers and the reprojection layer stays empty (it is kept so
that every view has the same ``LAYERS_PER_CAMERA`` layers and the grid layout works). Layer metadata has
``session`` None and ``uncalibrated`` True. Pure (no viewer, no Qt).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_smil_mv.napari.layers.session_layers import (
    LayerDataTuple,
    ViewData,
    apply_layout,
    frame_selection,
    view_layer_data,
)
from napari_smil_mv.sessions import LazyVideo
from napari_smil_mv.sessions.sleap_files import (
    assemble_views,
    basename_of,
    collect_view,
    load_labels,
    resolve_video_path,
    skeleton_of,
    video_hints,
)


def _image_size(video, lazy: LazyVideo | None, keypoints: np.ndarray) -> tuple[int, int]:
    """``(W, H)`` from the opened video, the stored video shape, or the keypoints' extent."""
    if lazy is not None and lazy.exists:
        _, h, w, _ = lazy.shape
        return int(w), int(h)
    shape = (getattr(video, "backend_metadata", None) or {}).get("shape")
    if shape is not None and len(shape) == 4:
        return int(shape[2]), int(shape[1])
    finite = keypoints[np.all(np.isfinite(keypoints), -1)]
    if finite.size:
        return int(np.ceil(finite[:, 0].max())) + 1, int(np.ceil(finite[:, 1].max())) + 1
    return 512, 512


def labels_layer_data(
    path: str | Path,
    score_threshold: float = 0.5,
    point_size: float | None = None,
    layout: str | None = "mosaic",
) -> list[LayerDataTuple]:
    """Per-video layers (video, skeleton, empty reprojection, keypoints) of a plain ``.slp`` file.

    Parameters
    ----------
    path
        SLEAP labels file.
    score_threshold, point_size, layout
        As in :func:`napari_smil_mv.napari.layers.session_layers.session_layer_data` (default: videos side by side).

    Raises
    ------
    FileNotFoundError, ValueError
        When the file is missing or not a readable SLEAP file (the message names it).
    """
    path = Path(path)
    labels = load_labels(path)
    skeleton = skeleton_of(labels, path)
    out: list[LayerDataTuple] = []
    used: set[str] = set()
    for k, video in enumerate(labels.videos):
        stored = str(video.filename) if not isinstance(video.filename, list) else str(video.filename[0])
        name = Path(basename_of(stored)).stem or f"video_{k}"
        while name in used:
            name = f"{name}_{k}"
        used.add(name)
        records = collect_view(labels, video, skeleton.nodes, source=path)
        frames_idx, animals, arrays = assemble_views({name: records}, skeleton.n_nodes)
        arr = arrays[name]
        n_hint, channels = video_hints(video)
        resolved = resolve_video_path(stored, path)
        lazy = None
        if resolved is not None:
            lazy = LazyVideo(
                resolved, n_frames=max(n_hint or 0, 1), size=(1, 1), channels=channels, name=name
            )
        size = _image_size(video, lazy, arr["keypoints"])
        n_frames = max(n_hint or 0, int(frames_idx[-1]) + 1 if len(frames_idx) else 1)
        if lazy is None or not lazy.exists:
            lazy = LazyVideo(
                None,
                n_frames=n_frames,
                size=size,
                channels=channels,
                name=name,
                stored_path=stored,
                searched=f"also searched by name next to {path.name} and in nearby 'videos/' folders",
            )
        else:
            n_frames = max(n_frames, lazy.shape[0])
        view = ViewData(
            name,
            lazy,
            size,
            arr["keypoints"],
            arr["scores"],
            arr["visible"],
            arr["is_user"],
            frames_idx,
            list(skeleton.nodes),
            list(skeleton.edges),
            animals,
            None,
            path,
        )
        base = {"session": None, "session_name": path.stem, "session_path": str(path), "uncalibrated": True}
        out += view_layer_data(
            view, frame_selection(None, n_frames), base, None, score_threshold, point_size, ""
        )
    return apply_layout(out, layout)
