"""Feeding the network from a multi-view dataset file: splits, deterministic sampling, batches, original cameras.

Builds on :mod:`napari_smil_mv.dataset` (``MultiViewDataset``, ``multiview_collate``, ``split_samples``) without
changing it. Randomness (view sampling, permutation, augmentation) is drawn from a generator seeded by
``(seed, epoch, item)``, so an epoch is the same with any number of workers and after a resume.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from napari_smil_mv.dataset import MultiViewDataset, multiview_collate, split_samples
from napari_smil_mv.dataset.schema import KEYPOINTS


class SeededSamples(torch.utils.data.Dataset):
    """A :class:`MultiViewDataset` whose per-item randomness depends only on ``(seed, epoch, item)``."""

    def __init__(self, base: MultiViewDataset, seed: int, indices: np.ndarray | None = None) -> None:
        self.base = base
        self.seed = int(seed)
        self.epoch = 0
        #: File sample index of every item (None: all samples in order).
        self.indices = None if indices is None else np.asarray(indices, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, item: int) -> tuple[dict, dict]:
        self.base.set_sample_seed([self.seed, self.epoch, int(item)])
        return self.base[item]


class EpochBatches(torch.utils.data.Sampler):
    """Batches of item indices for one epoch: a permutation seeded by ``(seed, epoch)``, split over ranks.

    Parameters
    ----------
    n
        Number of items.
    batch_size
        Items per batch (per rank).
    shuffle
        Permute (training) or keep the order (validation).
    rank, world
        This process's rank and the number of processes (items are padded by repetition to a multiple of
        ``world`` when shuffling, so every rank runs the same number of steps).
    skip_batches
        Batches to skip at the start (resuming in the middle of an epoch).
    max_batches
        Stop after this many batches (None = all).
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        seed: int,
        epoch: int,
        shuffle: bool = True,
        rank: int = 0,
        world: int = 1,
        skip_batches: int = 0,
        max_batches: int | None = None,
    ) -> None:
        if shuffle:
            order = np.random.default_rng([int(seed), int(epoch)]).permutation(n)
            if world > 1 and n % world:
                order = np.concatenate([order, order[: world - n % world]])
            order = order[rank::world]
        else:
            order = np.arange(n)[rank::world]
        self.batches = [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]
        if max_batches is not None:
            self.batches = self.batches[:max_batches]
        self.batches = self.batches[skip_batches:]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def collate(batch: list[tuple[dict, dict]]) -> tuple[dict, dict]:
    """:func:`~napari_smil_mv.dataset.multiview_collate` (with ``x["sample_index"] (B,)``) plus ``y["has_pose"]``."""
    x, y = multiview_collate(batch)
    y["has_pose"] = torch.tensor([bool(b[0]["available_labels"].get("joint_rot", False)) for b in batch])
    return x, y


@dataclass
class OriginalCameras:
    """The calibration behind every stored view, read once from a dataset file (ours; None for other files).

    Attributes
    ----------
    K, dist, size, fisheye
        ``(N, V, 3, 3)`` original camera matrices, ``(N, V, 14)`` distortion, ``(N, V, 2)`` image sizes (W, H),
        ``(N, V)`` fisheye flags.
    R, t
        ``(N, V, 3, 3)`` and ``(N, V, 3)`` world-to-camera pose, ``t`` in the dataset's world units.
    crop_box
        ``(N, V, 4)`` crop ``(x0, y0, w, h)`` of the undistorted source.
    camera_indices
        ``(N, V)`` canonical camera of each slot (-1 empty).
    undistorted
        Whether images and keypoints had the distortion removed (else it is kept and ``K`` includes it).
    """

    K: np.ndarray
    dist: np.ndarray
    size: np.ndarray
    fisheye: np.ndarray
    R: np.ndarray
    t: np.ndarray
    crop_box: np.ndarray
    camera_indices: np.ndarray
    undistorted: bool

    @classmethod
    def read(cls, path: str | Path) -> OriginalCameras | None:
        """Read from ``path``; None when the file lacks the original calibration (a reference-tool file)."""
        from napari_smil_mv.dataset.reader import DatasetFile

        with DatasetFile(path) as ds:
            need = ("original_intrinsics", "distortion_coefficients", "original_image_sizes", "crop_box")
            if not all(ds.has(KEYPOINTS, k) for k in need) or not ds.has(KEYPOINTS, "camera_extrinsics_R"):
                return None
            crop_box = ds.keypoint_array("crop_box", dtype=np.float64)
            fisheye = ds.keypoint_array("fisheye", dtype=bool)
            return cls(
                K=ds.keypoint_array("original_intrinsics", dtype=np.float64),
                dist=ds.keypoint_array("distortion_coefficients", dtype=np.float64),
                size=ds.keypoint_array("original_image_sizes", dtype=np.int64),
                fisheye=fisheye if fisheye is not None else np.zeros(crop_box.shape[:2], bool),
                R=ds.keypoint_array("camera_extrinsics_R", dtype=np.float64),
                t=ds.keypoint_array("camera_extrinsics_t", dtype=np.float64),
                crop_box=crop_box,
                camera_indices=ds.keypoint_array("camera_indices", dtype=np.int64),
                undistorted=bool(ds.attrs.get("undistort_images", True)),
            )

    def slot(self, sample: int, camera: int) -> int:
        """Slot of ``camera`` in ``sample`` (KeyError when the sample has no such view)."""
        hits = np.flatnonzero(self.camera_indices[sample] == camera)
        if hits.size == 0:
            raise KeyError(f"sample {sample} has no view of camera {camera}")
        return int(hits[0])

    def camera(self, sample: int, camera: int, name: str):
        """The original :class:`~napari_smil_mv.cameras.Camera` of one view (dataset world units)."""
        from napari_smil_mv.cameras import Camera, matrix_to_rodrigues

        s = self.slot(sample, camera)
        fish = bool(self.fisheye[sample, s])
        dist = self.dist[sample, s][:4] if fish else self.dist[sample, s]
        return Camera(
            name,
            self.K[sample, s],
            dist,
            matrix_to_rodrigues(self.R[sample, s]),
            self.t[sample, s],
            tuple(int(v) for v in self.size[sample, s]),
            fish,
        )


def split_indices(config, dataset: MultiViewDataset) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation sample indices of ``dataset`` from the ``[data]`` config (time blocks or sessions)."""
    sessions, frames = dataset.sample_keys()
    n = len(frames)
    if config.val_dataset:
        return np.arange(n), np.zeros(0, dtype=np.int64)
    if config.val_fraction == 0 and config.test_fraction == 0:
        return np.arange(n), np.zeros(0, dtype=np.int64)
    train_f = 1.0 - config.val_fraction - config.test_fraction
    parts = split_samples(
        sessions,
        frames,
        fractions=(train_f, config.val_fraction, config.test_fraction),
        by=config.split_by,
        block_frames=config.block_frames,
        gap_frames=config.gap_frames,
        seed=config.split_seed,
    )
    return np.asarray(parts["train"], dtype=np.int64), np.asarray(parts["val"], dtype=np.int64)


def make_datasets(config, seed: int) -> tuple[SeededSamples, MultiViewDataset | None]:
    """Training (seeded, augmented) and validation (all views, canonical order, no augmentation) datasets."""
    from napari_smil_mv.dataset import AugmentationConfig

    path = Path(config.dataset)
    if not path.is_file():
        raise FileNotFoundError(f"data.dataset: dataset file not found: {path}")
    probe = MultiViewDataset(path)
    train_idx, val_idx = split_indices(config, probe)
    probe.close()
    if len(train_idx) == 0:
        raise ValueError(
            f"{path}: no training samples after the split (val_fraction {config.val_fraction}, "
            f"test_fraction {config.test_fraction}); lower the fractions or add data"
        )
    if config.max_train_samples is not None:
        train_idx = train_idx[: config.max_train_samples]
    train = MultiViewDataset(
        path,
        num_views_to_use=config.num_views,
        random_view_sampling=config.random_view_sampling,
        permute_views=config.permute_views,
        augment=config.augment,
        augmentation=AugmentationConfig(zoom=config.zoom),
        indices=train_idx,
    )
    if config.val_dataset:
        vpath = Path(config.val_dataset)
        if not vpath.is_file():
            raise FileNotFoundError(f"data.val_dataset: dataset file not found: {vpath}")
        val_idx = None
    else:
        vpath = path
    val = None
    if val_idx is None or len(val_idx):
        if val_idx is not None and config.max_val_samples is not None:
            val_idx = val_idx[: config.max_val_samples]
        val = MultiViewDataset(vpath, random_view_sampling=False, indices=val_idx)
    return SeededSamples(train, seed, train_idx), val


def to_device(
    x: dict, y: dict, device: torch.device, image_size: int, dist: torch.Tensor | None = None
) -> dict:
    """The tensors the network and the losses need, on ``device``.

    Returns
    -------
    dict
        ``images (B, V, 3, S, S)``, ``view_mask``, ``camera_indices``, ``K``, ``R``, ``t`` (calibrated crop
        cameras, training units), ``kp2d (B, V, J, 2)`` px (x, y) in the crop, ``vis (B, V, J)``,
        ``kp3d (B, J, 3)``, ``kp3d_valid (B, J)``, ``betas (B, K)``, ``has_betas (B,)``, ``pose (B, J, 6)``,
        ``has_pose (B,)``, ``dist`` or None, ``sample_index (B,)``.
    """
    nb = {"non_blocking": True}
    kp = y["keypoints_2d"].to(device, **nb)
    out = {
        "images": x["images"].to(device, **nb),
        "view_mask": x["view_mask"].to(device, **nb),
        "camera_indices": x["camera_indices"].to(device, **nb),
        "K": y["camera_intrinsics"].to(device, **nb).float(),
        "R": y["camera_extrinsics_R"].to(device, **nb).float(),
        "t": y["camera_extrinsics_t"].to(device, **nb).float(),
        "kp2d": kp[..., [1, 0]].float() * float(image_size),
        "vis": y["keypoint_visibility"].to(device, **nb).float() * x["view_mask"].to(device).unsqueeze(-1),
        "kp3d": y["keypoints_3d"].to(device, **nb).float(),
        "kp3d_valid": y["keypoints_3d_valid"].to(device, **nb).bool() & y["has_3d_data"].to(device)[:, None],
        "betas": y["betas"].to(device, **nb).float(),
        "has_betas": y["has_ground_truth_betas"].to(device, **nb),
        "pose": torch.cat([y["root_rot"].unsqueeze(1), y["joint_angles"][:, 1:]], dim=1)
        .to(device, **nb)
        .float(),
        "has_pose": y["has_pose"].to(device, **nb),
        "dist": None if dist is None else dist.to(device, **nb).float(),
        "sample_index": x["sample_index"],
    }
    return out


def view_distortion(cams: OriginalCameras | None, x: dict) -> torch.Tensor | None:
    """``(B, V, 14)`` distortion of each view when the dataset kept it in the images (else None)."""
    if cams is None or cams.undistorted:
        return None
    idx = x["sample_index"].numpy()
    ci = x["camera_indices"].numpy()
    out = np.zeros((*ci.shape, cams.dist.shape[-1]))
    for b, i in enumerate(idx):
        for v, c in enumerate(ci[b]):
            if c >= 0:
                out[b, v] = cams.dist[i, cams.slot(int(i), int(c))]
    return torch.from_numpy(out).float()
