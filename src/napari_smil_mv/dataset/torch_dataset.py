"""``MultiViewDataset``: the torch ``Dataset`` over a preprocessed multi-view HDF5 file.

Each item is one synchronised instant: ``(x_data, y_data)`` dicts as in the plan (Appendix A) - a list of the
active views' images, their camera names and canonical indices, 2D keypoints per view, calibrated cameras per view
and the shared 3D keypoints with a validity mask. Samples are never padded: a sample with fewer views than
``num_views_to_use`` returns all it has; one with more returns a (random) subset. Reads both our files and the
reference tool's. The HDF5 file is opened lazily in each worker process; the small arrays are cached in memory.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from napari_smil_mv.cameras import CV_TO_P3D
from napari_smil_mv.dataset import augment as aug
from napari_smil_mv.dataset.reader import DatasetFile, text_of
from napari_smil_mv.dataset.schema import read_dataset_info


def _rot6d(axis_angle: np.ndarray) -> np.ndarray:
    """Axis-angle ``(..., 3)`` to 6D ``(..., 6)`` (first two rows of the rotation matrix, PyTorch3D's)."""
    from napari_smil_mv.body.rotations import axis_angle_to_matrix, matrix_to_rotation_6d

    with torch.no_grad():
        m = axis_angle_to_matrix(torch.as_tensor(axis_angle, dtype=torch.float32))
        return matrix_to_rotation_6d(m).numpy()


class MultiViewDataset(torch.utils.data.Dataset):
    """Multi-view samples from a dataset HDF5 file.

    Parameters
    ----------
    hdf5_path
        Dataset file (ours or the reference tool's).
    rotation_representation
        ``"6d"`` or ``"axis_angle"`` for ``root_rot`` / ``joint_angles``.
    num_views_to_use
        Views per sample (None = all available). More available: a subset; fewer: all of them (no padding).
    return_single_view
        Return one view per sample (``preferred_view``), for single-view training.
    preferred_view
        Canonical camera index or camera name for single-view mode; the first available view when the sample
        lacks it.
    random_view_sampling
        Draw the subset at random (training); else the first ``num_views_to_use`` in canonical order.
    permute_views
        Shuffle the order of the returned views (augmentation; ``camera_indices`` follow their views).
    expand_all_views
        With ``return_single_view``: one item per (sample, view) instead of per sample.
    augment
        Apply :class:`~napari_smil_mv.dataset.augment.AugmentationConfig` (photometric shared across views;
        optional zoom updating ``K``).
    augmentation
        The configuration (default ``AugmentationConfig()``).
    indices
        Restrict to these sample indices (e.g. a split from :func:`~napari_smil_mv.dataset.split.split_samples`).
    apply_world_scale
        Multiply ``keypoints_3d``, ``camera_extrinsics_t`` and ``root_loc`` by the file's ``world_scale``.
    seed
        Seed of the view sampling / augmentation generator (combined with the worker id); None = from torch.
    """

    def __init__(
        self,
        hdf5_path: str | Path,
        rotation_representation: str = "6d",
        num_views_to_use: int | None = None,
        return_single_view: bool = False,
        preferred_view: int | str = 0,
        random_view_sampling: bool = True,
        permute_views: bool = False,
        expand_all_views: bool = False,
        augment: bool = False,
        augmentation: aug.AugmentationConfig | None = None,
        indices: np.ndarray | list[int] | None = None,
        apply_world_scale: bool = True,
        seed: int | None = None,
    ) -> None:
        if rotation_representation not in ("6d", "axis_angle"):
            raise ValueError(
                f"rotation_representation must be '6d' or 'axis_angle', got {rotation_representation!r}"
            )
        if num_views_to_use is not None and num_views_to_use < 1:
            raise ValueError(f"num_views_to_use must be None or >= 1, got {num_views_to_use}")
        self.path = Path(hdf5_path)
        self.info = read_dataset_info(self.path)
        self.rotation_representation = rotation_representation
        self.num_views_to_use = num_views_to_use
        self.return_single_view = return_single_view
        self.random_view_sampling = random_view_sampling
        self.permute_views = permute_views
        self.augment = augment
        self.augmentation = augmentation or aug.AugmentationConfig()
        self.world_scale = self.info.world_scale if apply_world_scale else 1.0
        self.seed = seed
        self._h5 = None
        self._jpeg: dict = {}
        self._pid = None
        self._rng = None
        self._arrays = self._load_arrays()
        order = self.info.canonical_camera_order
        if not order:  # reference file without the attribute: names from the per-sample lists
            order = sorted({n for s in self._arrays["camera_names"] for n in s})
        self.camera_order = list(order)
        if isinstance(preferred_view, str):
            if preferred_view not in self.camera_order:
                raise KeyError(
                    f"preferred_view {preferred_view!r} is not a camera of {self.path}: {self.camera_order}"
                )
            preferred_view = self.camera_order.index(preferred_view)
        self.preferred_view = int(preferred_view)
        base = np.arange(self.info.n_samples) if indices is None else np.asarray(indices, dtype=np.int64)
        if base.size and (base.min() < 0 or base.max() >= self.info.n_samples):
            raise IndexError(f"indices must be in 0..{self.info.n_samples - 1} for {self.path}")
        if return_single_view and expand_all_views:
            self._items = [(int(i), int(v)) for i in base for v in np.flatnonzero(self._arrays["slot_ok"][i])]
        else:
            self._items = [(int(i), None) for i in base]

    # ------------------------------------------------------------------------------------------ file access
    def _load_arrays(self) -> dict:
        with DatasetFile(self.path) as ds:
            n = self.info.n_samples
            a: dict = {}
            for name in (
                "keypoints_2d",
                "keypoint_visibility",
                "camera_intrinsics",
                "camera_extrinsics_R",
                "camera_extrinsics_t",
                "image_sizes",
                "keypoints_3d",
                "crop_box",
            ):
                a[name] = ds.keypoint_array(name)
            a["camera_indices"] = ds.camera_indices()
            a["slot_ok"] = ds.view_mask() & (a["camera_indices"] >= 0)
            _, valid = ds.keypoints_3d()
            a["kp3d_valid"] = valid if valid is not None else np.zeros((n, self.info.n_joints), bool)
            for name in ("global_rot", "joint_rot", "betas", "trans"):
                a[name] = ds.parameter_array(name)
            a["session_name"] = ds.texts("session_name")
            frame_idx = ds.auxiliary_array("frame_idx", dtype=np.int64)
            a["frame_idx"] = frame_idx if frame_idx is not None else np.arange(n)
            a["animal"] = ds.texts("animal")
            for key, name, default in (
                ("has_3d", "has_3d_data", a["kp3d_valid"].any(-1)),
                ("has_betas", "has_ground_truth_betas", np.zeros(n, bool)),
                ("has_pose", "has_ground_truth_pose", np.zeros(n, bool)),
            ):
                value = ds.auxiliary_array(name, dtype=bool)
                a[key] = value if value is not None else default
            names = ds.auxiliary_array("camera_names")
            if names is not None and names.ndim == 2:  # per-slot names
                a["camera_names"] = [[text_of(x) for x in row] for row in names]
            elif names is not None:  # the reference tool: comma-joined names of the sample's slots
                a["camera_names"] = [text_of(x).split(",") if text_of(x) else [] for x in names]
            else:
                a["camera_names"] = [[] for _ in range(n)]
        return a

    def _file(self) -> DatasetFile:
        if self._h5 is None or self._pid != os.getpid():
            self._h5 = DatasetFile(self.path)
            self._pid = os.getpid()
            self._rng = None
            self._jpeg = {}
        return self._h5

    def open(self) -> None:
        """Open the HDF5 file in this process now (it is otherwise opened lazily by the first read).

        Opening in a new process (a DataLoader worker) resets the view sampling / augmentation generator; call
        this before :meth:`set_sample_seed` when the seed must hold for the next item.
        """
        self._file()

    def set_sample_seed(self, seed: int | Sequence[int]) -> None:
        """Draw the next items' view sampling, permutation and augmentation from ``default_rng(seed)``.

        Opens the file in this process first (see :meth:`open`), so the generator is not reset by a later first
        read. Seeding before every item with e.g. ``(seed, epoch, item)`` makes an item independent of the worker
        that loads it and of the items loaded before it.

        Parameters
        ----------
        seed
            Anything :func:`numpy.random.default_rng` accepts: an int or a sequence of non-negative ints.
        """
        self._file()
        self._rng = np.random.default_rng(seed)

    def _generator(self) -> np.random.Generator:
        if self._rng is None:
            info = torch.utils.data.get_worker_info()
            wid = info.id if info is not None else 0
            seed = [self.seed, wid] if self.seed is not None else [torch.initial_seed() % 2**63, wid]
            self._rng = np.random.default_rng(seed)
        return self._rng

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_h5"] = None  # h5py handles do not pickle (DataLoader workers on spawn)
        state["_jpeg"] = {}
        return state

    def close(self) -> None:
        """Close the HDF5 handle of this process."""
        if self._h5 is not None:
            self._h5.close()
            self._h5 = None
            self._jpeg = {}

    # ------------------------------------------------------------------------------------------ queries
    def __len__(self) -> int:
        return len(self._items)

    def get_max_views_in_dataset(self) -> int:
        """Largest number of views in any sample."""
        return int(self._arrays["slot_ok"].sum(axis=1).max()) if self.info.n_samples else 0

    def get_canonical_camera_order(self) -> list[str]:
        """Camera names; ``camera_indices`` index this list."""
        return list(self.camera_order)

    def sample_keys(self) -> tuple[list[str], np.ndarray]:
        """``(session_names (N,), frame_idx (N,))`` of every sample in the file (for splitting)."""
        return list(self._arrays["session_name"]), self._arrays["frame_idx"].copy()

    def decode_image(self, sample: int, slot: int) -> np.ndarray:
        """``(S, S, 3)`` uint8 RGB image of one view slot."""
        h5 = self._file()
        ds = self._jpeg.get(slot)
        if ds is None:
            ds = self._jpeg[slot] = h5.image_dataset(slot)
        raw = ds[sample]
        img = cv2.imdecode(np.asarray(raw, dtype=np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f"{self.path}: sample {sample} view slot {slot} holds no decodable JPEG")
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)

    def _select_slots(self, i: int, slot: int | None) -> np.ndarray:
        slots = np.flatnonzero(self._arrays["slot_ok"][i])
        if slot is not None:
            return np.array([slot])
        rng = self._generator()
        if self.return_single_view:
            pref = slots[self._arrays["camera_indices"][i, slots] == self.preferred_view]
            return pref[:1] if pref.size else slots[:1]
        n = self.num_views_to_use
        if n is not None and slots.size > n:
            slots = np.sort(rng.choice(slots, n, replace=False)) if self.random_view_sampling else slots[:n]
        if self.permute_views and slots.size > 1:
            slots = rng.permutation(slots)
        return slots

    # ------------------------------------------------------------------------------------------ items
    def __getitem__(self, item: int) -> tuple[dict, dict]:
        i, fixed_slot = self._items[item]
        a = self._arrays
        slots = self._select_slots(i, fixed_slot)
        images = [self.decode_image(i, int(s)).astype(np.float32) / 255.0 for s in slots]
        cam_idx = a["camera_indices"][i, slots]
        names_row = a["camera_names"][i]
        names = [
            names_row[s] if s < len(names_row) else self.camera_order[c]
            for s, c in zip(slots, cam_idx, strict=True)
        ]
        j = self.info.n_joints
        kp2 = a["keypoints_2d"][i, slots].astype(np.float32)
        vis = a["keypoint_visibility"][i, slots].astype(np.float32)
        K = (
            a["camera_intrinsics"][i, slots]
            if a["camera_intrinsics"] is not None
            else np.tile(np.eye(3), (len(slots), 1, 1))
        ).astype(np.float32)
        R = (
            a["camera_extrinsics_R"][i, slots]
            if a["camera_extrinsics_R"] is not None
            else np.tile(np.eye(3), (len(slots), 1, 1))
        ).astype(np.float32)
        t = (
            a["camera_extrinsics_t"][i, slots]
            if a["camera_extrinsics_t"] is not None
            else np.zeros((len(slots), 3))
        ).astype(np.float32) * np.float32(self.world_scale)
        size = images[0].shape[0] if images else self.info.image_size
        sizes = (
            a["image_sizes"][i, slots] if a["image_sizes"] is not None else np.full((len(slots), 2), size)
        ).astype(np.int32)
        rng = self._generator()
        if self.augment and self.augmentation.zoom:
            images, kp2, vis, K = aug.zoom(
                images, kp2, vis, K, float(rng.uniform(*self.augmentation.zoom_range))
            )
        if self.augment and self.augmentation.photometric:
            images = aug.photometric(images, rng, self.augmentation)
        kp3d = (a["keypoints_3d"][i] if a["keypoints_3d"] is not None else np.zeros((j, 3))).astype(
            np.float32
        )
        valid3d = a["kp3d_valid"][i]
        kp3d = np.where(valid3d[:, None], kp3d * np.float32(self.world_scale), np.float32(0))
        root = a["global_rot"][i] if a["global_rot"] is not None else np.zeros(3, np.float32)
        joints = a["joint_rot"][i] if a["joint_rot"] is not None else np.zeros((j, 3), np.float32)
        if self.rotation_representation == "6d":
            root, joints = _rot6d(root), _rot6d(joints)
        trans = (a["trans"][i] if a["trans"] is not None else np.zeros(3)) * self.world_scale
        betas = a["betas"][i].astype(np.float32) if a["betas"] is not None else np.zeros(0, np.float32)
        fov, aspect = self._fov(K, sizes)
        has_cams = self.info.has_camera_parameters
        n = len(slots)
        x_data = {
            "images": images,
            "view_mask": np.ones(n, dtype=bool),
            "camera_names": names,
            "camera_indices": cam_idx.astype(np.int64),
            "num_active_views": n,
            "session_name": a["session_name"][i],
            "frame_idx": int(a["frame_idx"][i]),
            "animal": a["animal"][i],
            "sample_index": i,
            "is_multiview": not self.return_single_view,
            "is_sleap_dataset": True,
            "available_labels": {
                "global_rot": bool(a["has_pose"][i]),
                "joint_rot": bool(a["has_pose"][i]),
                "trans": bool(a["has_pose"][i]),
                "betas": bool(a["has_betas"][i]),
                "fov": has_cams,
                "cam_rot": has_cams,
                "cam_trans": has_cams,
                "keypoint_2d": True,
                "keypoint_3d": bool(a["has_3d"][i]),
                "log_beta_scales": False,
                "betas_trans": False,
                "silhouette": False,
            },
        }
        y_data = {
            "keypoints_2d": kp2,
            "keypoint_visibility": vis,
            "view_valid": np.ones(n, dtype=bool),
            "betas": betas,
            "shape_betas": betas,
            "root_rot": np.asarray(root, np.float32),
            "joint_angles": np.asarray(joints, np.float32),
            "root_loc": np.asarray(trans, np.float32),
            "camera_intrinsics": K,
            "camera_extrinsics_R": R,
            "camera_extrinsics_t": t,
            "image_sizes": sizes,
            "cam_fov_per_view": fov,
            "cam_rot_per_view": np.einsum("vji,jk->vik", R, CV_TO_P3D).astype(np.float32),
            "cam_trans_per_view": (t @ CV_TO_P3D).astype(np.float32),
            "cam_aspect_per_view": aspect,
            "keypoints_3d": kp3d,
            "keypoints_3d_valid": valid3d.copy(),
            "has_3d_data": bool(a["has_3d"][i]),
            "has_ground_truth_betas": bool(a["has_betas"][i]),
            "num_views": n,
        }
        if a["crop_box"] is not None:
            y_data["crop_box"] = a["crop_box"][i, slots].astype(np.float32)
        return x_data, y_data

    @staticmethod
    def _fov(K: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Vertical FoV (degrees) and aspect ``W fy / (H fx)`` per view, ``(V, 1)`` each (PyTorch3D cameras)."""
        w, h = sizes[:, 0].astype(np.float64), sizes[:, 1].astype(np.float64)
        fx, fy = K[:, 0, 0].astype(np.float64), K[:, 1, 1].astype(np.float64)
        fov = np.degrees(2 * np.arctan(h / (2 * fy)))
        aspect = (w * fy) / (h * fx + 1e-12)
        return fov[:, None].astype(np.float32), aspect[:, None].astype(np.float32)

    def cameras(self, x_data: dict, y_data: dict) -> list:
        """The item's views as :class:`~napari_smil_mv.cameras.Camera` objects (stored ideal pinhole cameras)."""
        from napari_smil_mv.cameras import Camera
        from napari_smil_mv.cameras.projection import matrix_to_rodrigues

        out = []
        for v, name in enumerate(x_data["camera_names"]):
            out.append(
                Camera(
                    name,
                    y_data["camera_intrinsics"][v].astype(np.float64),
                    np.zeros(5),
                    matrix_to_rodrigues(y_data["camera_extrinsics_R"][v].astype(np.float64)),
                    y_data["camera_extrinsics_t"][v].astype(np.float64),
                    tuple(int(s) for s in y_data["image_sizes"][v]),
                )
            )
        return out
