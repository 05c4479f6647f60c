"""Batching samples with different numbers of views.

:func:`multiview_collate` pads every per-view array to the largest view count in the batch and returns torch
tensors with a ``view_mask``; padded slots hold zero images, ``camera_indices = -1``, zero keypoints and
visibility, identity rotations and identity camera matrices, so losses must use ``view_mask`` (and
``keypoint_visibility``). :func:`multiview_collate_lists` keeps the plan's list-of-dicts form (SMILify's
``multiview_collate_fn``) and adds ``images_stacked`` per sample.
"""

from __future__ import annotations

import numpy as np
import torch

#: Per-view arrays in ``y_data`` and the value their padded slots get.
_PER_VIEW = {
    "keypoints_2d": 0.0,
    "keypoint_visibility": 0.0,
    "camera_intrinsics": "eye",
    "camera_extrinsics_R": "eye",
    "camera_extrinsics_t": 0.0,
    "image_sizes": 0,
    "cam_fov_per_view": 0.0,
    "cam_rot_per_view": "eye",
    "cam_trans_per_view": 0.0,
    "cam_aspect_per_view": 1.0,
    "crop_box": 0.0,
}
#: Per-sample arrays stacked as they are.
_PER_SAMPLE = ("keypoints_3d", "keypoints_3d_valid", "betas", "root_rot", "joint_angles", "root_loc")


def _pad(arrays: list[np.ndarray], n: int, fill) -> torch.Tensor:
    first = np.asarray(arrays[0])
    out = np.zeros((len(arrays), n, *first.shape[1:]), dtype=first.dtype)
    if fill == "eye":
        out[...] = np.eye(first.shape[-1], dtype=first.dtype)
    elif fill:
        out[...] = fill
    for b, a in enumerate(arrays):
        out[b, : len(a)] = a
    return torch.from_numpy(out)


def multiview_collate(batch: list[tuple[dict, dict]]) -> tuple[dict, dict]:
    """Collate ``(x_data, y_data)`` items into padded tensors.

    Returns
    -------
    tuple of dict
        ``x``: ``images (B, Vb, 3, S, S)`` float32, ``view_mask (B, Vb)`` bool, ``camera_indices (B, Vb)`` int64
        (-1 padded), ``num_active_views (B,)``, ``frame_idx (B,)``, ``sample_index (B,)`` int64 (the file's sample
        index; only when every item has one, as :class:`MultiViewDataset` items do), and lists ``camera_names``,
        ``session_name``, ``animal``, ``available_labels``. ``y``: every per-view array padded to ``(B, Vb, ...)``,
        ``keypoints_3d (B, J, 3)``, ``keypoints_3d_valid (B, J)``, ``betas (B, K)``, ``root_rot``,
        ``joint_angles``, ``root_loc``, ``has_3d_data (B,)``, ``has_ground_truth_betas (B,)``.
        ``Vb`` is the largest ``num_active_views`` in the batch.
    """
    if not batch:
        raise ValueError("cannot collate an empty batch")
    xs, ys = [b[0] for b in batch], [b[1] for b in batch]
    nv = [x["num_active_views"] for x in xs]
    vb = max(nv)
    sizes = {img.shape for x in xs for img in x["images"]}
    if len(sizes) != 1:
        raise ValueError(f"images in a batch must have one size, got {sorted(sizes)}")
    s = next(iter(sizes))
    images = np.zeros((len(xs), vb, s[2], s[0], s[1]), dtype=np.float32)
    mask = np.zeros((len(xs), vb), dtype=bool)
    cams = np.full((len(xs), vb), -1, dtype=np.int64)
    for b, x in enumerate(xs):
        n = x["num_active_views"]
        if n:
            images[b, :n] = np.stack(x["images"]).transpose(0, 3, 1, 2)
        mask[b, :n] = True
        cams[b, :n] = x["camera_indices"]
    x_out = {
        "images": torch.from_numpy(images),
        "view_mask": torch.from_numpy(mask),
        "camera_indices": torch.from_numpy(cams),
        "num_active_views": torch.tensor(nv, dtype=torch.int64),
        "frame_idx": torch.tensor([x["frame_idx"] for x in xs], dtype=torch.int64),
        "camera_names": [list(x["camera_names"]) for x in xs],
        "session_name": [x["session_name"] for x in xs],
        "animal": [x.get("animal", "") for x in xs],
        "available_labels": [x["available_labels"] for x in xs],
    }
    if all("sample_index" in x for x in xs):
        x_out["sample_index"] = torch.tensor([int(x["sample_index"]) for x in xs], dtype=torch.int64)
    y_out: dict = {}
    for key, fill in _PER_VIEW.items():
        if all(key in y for y in ys):
            y_out[key] = _pad([y[key] for y in ys], vb, fill)
    y_out["view_valid"] = torch.from_numpy(mask.copy())
    for key in _PER_SAMPLE:
        if all(key in y for y in ys):
            y_out[key] = torch.from_numpy(np.stack([np.asarray(y[key]) for y in ys]))
    y_out["has_3d_data"] = torch.tensor([bool(y["has_3d_data"]) for y in ys])
    y_out["has_ground_truth_betas"] = torch.tensor([bool(y["has_ground_truth_betas"]) for y in ys])
    return x_out, y_out


def multiview_collate_lists(batch: list[tuple[dict, dict]]) -> tuple[list[dict], list[dict]]:
    """The plan's collate (section 5.2): lists of per-sample dicts, plus ``images_stacked (V, S, S, 3)`` each."""
    xs, ys = [], []
    for x, y in batch:
        shapes = [img.shape for img in x["images"]]
        if shapes and all(sh == shapes[0] for sh in shapes):
            x = dict(x, images_stacked=np.stack(x["images"], axis=0))
        xs.append(x)
        ys.append(y)
    return xs, ys
