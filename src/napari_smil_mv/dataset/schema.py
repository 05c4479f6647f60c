"""The multi-view HDF5 dataset layout: names, versions, and reading the metadata of any compatible file.

The layout is SMILify's ``sleap_multiview`` HDF5 (see ``docs/dataset.md``), so files are interchangeable with the
reference tool's. Our files add explicit attributes for what that tool leaves implicit (schema version, keypoint
and pixel conventions, world units and ``world_scale``, crop transform per view, distortion handling, body model
identity). Files written by the reference tool have none of these; :func:`read_dataset_info` then applies that
tool's documented assumptions and says so in :attr:`DatasetInfo.assumptions`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: Version of our additions to the layout; bump when their meaning changes.
SCHEMA_VERSION = 1
#: ``metadata`` attribute naming our schema; its presence marks a file written by napari-smil-mv.
SCHEMA_ATTR = "smilmv_schema_version"
#: File name suffix we suggest for our datasets (the napari reader claims it without sniffing).
DATASET_SUFFIX = ".smilmv-dataset.h5"

IMAGES = "multiview_images"
KEYPOINTS = "multiview_keypoints"
PARAMETERS = "parameters"
AUXILIARY = "auxiliary"
METADATA = "metadata"

KEYPOINT_CONVENTION = (
    "keypoints_2d[..., :] = (y / S, x / S): normalised (row, column) in the stored S x S crop; pixel (x, y) = "
    "(value[1] * S, value[0] * S) with pixel centres at integer coordinates (OpenCV/SLEAP); unmapped or invisible "
    "keypoints are (0, 0) with visibility 0"
)
PIXEL_CONVENTION = "opencv: pixel centres at integer coordinates, x right, y down; image_sizes are (W, H)"
CAMERA_CONVENTION = (
    "opencv/anipose: x_cam = R @ X + t (world to camera); pixel = K @ x_cam / z; K is the crop/resize-adjusted "
    "matrix of an ideal pinhole camera (distortion removed at preprocessing)"
)
CROP_CONVENTION = (
    "crop_box (x0, y0, w, h) in undistorted source pixel-edge coordinates (pixel i covers [i, i + 1)): stored pixel "
    "u = (x + 0.5 - x0) * S / w - 0.5, x = source pixel; K' = [[fx S/w, s S/w, (cx + 0.5 - x0) S/w - 0.5], "
    "[0, fy S/h, (cy + 0.5 - y0) S/h - 0.5], [0, 0, 1]]"
)
DISTORTION_HANDLING = (
    "removed: images remapped with cv2.initUndistortRectifyMap(K, dist, None, K_crop) + cv2.remap, keypoints "
    "undistorted (Newton inversion of the same model) before the crop; original K, distortion and image size kept "
    "in original_intrinsics / distortion_coefficients / original_image_sizes"
)
KEYPOINTS_3D_MISSING = "zeros; keypoints_3d_valid is the mask (False = missing or filtered outlier)"

#: Metres per unit for the length units we know.
UNIT_TO_METRES = {"m": 1.0, "cm": 0.01, "mm": 0.001, "um": 1e-6, "µm": 1e-6}


def world_scale_for_units(units: str) -> float | None:
    """Factor from ``units`` to metres (``"mm"`` -> 0.001), or None for an unknown unit."""
    return UNIT_TO_METRES.get(str(units).strip().lower())


def infer_world_scale(t: np.ndarray, kp3d: np.ndarray | None = None) -> float:
    """SMILify's reader heuristic: 0.001 when ``||t|| > 50`` or ``max |kp3d| > 50`` (millimetres), else 1.0.

    Parameters
    ----------
    t
        ``(3,)`` one view's world-to-camera translation.
    kp3d
        ``(J, 3)`` one sample's 3D keypoints, or None.
    """
    if np.linalg.norm(np.asarray(t, dtype=np.float64)) > 50:
        return 0.001
    if kp3d is not None and np.size(kp3d) and np.nanmax(np.abs(np.asarray(kp3d, dtype=np.float64))) > 50:
        return 0.001
    return 1.0


@dataclass
class DatasetInfo:
    """What a multi-view dataset holds, from its ``metadata`` attributes (and a few array shapes).

    Attributes
    ----------
    path
        The HDF5 file.
    is_ours
        True when written by napari-smil-mv (``metadata`` has ``smilmv_schema_version``).
    schema_version
        Our schema version, 0 for a reference-tool file.
    n_samples, max_views, n_joints, image_size
        Sample count ``N``, view slots ``V``, model joints ``J``, stored image side ``S`` (px).
    canonical_camera_order
        Camera names; ``camera_indices`` index this list.
    world_units, world_scale, world_scale_source
        Unit of ``camera_extrinsics_t`` / ``keypoints_3d`` as stored, the factor to metres-like training units
        applied at load time, and where it came from (``"attribute"``, ``"units"``, ``"heuristic"``).
    has_camera_parameters, has_3d_keypoints
        Whether calibrated cameras / 3D keypoints are stored.
    joint_names
        Model joint names (ours), else None.
    attrs
        All ``metadata`` attributes, JSON strings decoded where possible.
    assumptions
        Human-readable notes on what was assumed for a file that does not state it.
    """

    path: Path
    is_ours: bool
    schema_version: int
    n_samples: int
    max_views: int
    n_joints: int
    image_size: int
    canonical_camera_order: list[str]
    world_units: str
    world_scale: float
    world_scale_source: str
    has_camera_parameters: bool
    has_3d_keypoints: bool
    joint_names: list[str] | None = None
    attrs: dict = field(default_factory=dict)
    assumptions: list[str] = field(default_factory=list)


def _decode_attr(value):
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def sniff_dataset(path: str | Path) -> bool:
    """Cheap check whether ``path`` is a multi-view dataset (ours or the reference tool's). Never raises.

    Only opens the file when its name ends in ``.h5``/``.hdf5`` and the HDF5 signature is present; reads only
    the ``metadata`` group's attributes.
    """
    try:
        p = Path(path)
        if p.suffix.lower() not in (".h5", ".hdf5") or not p.is_file():
            return False
        with open(p, "rb") as f:
            if f.read(8) != b"\x89HDF\r\n\x1a\n":
                return False
        import h5py

        with h5py.File(p, "r") as h5:
            if METADATA not in h5 or IMAGES not in h5:
                return False
            attrs = h5[METADATA].attrs
            return SCHEMA_ATTR in attrs or bool(attrs.get("is_multiview", False))
    except Exception:
        return False


def read_dataset_info(h5_or_path) -> DatasetInfo:
    """Read a dataset's metadata (ours or the reference tool's).

    Parameters
    ----------
    h5_or_path
        An open ``h5py.File`` or a path.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    ValueError
        When it is not a readable HDF5 file (truncated, damaged) or lacks the ``multiview_images`` /
        ``multiview_keypoints`` / ``metadata`` groups (the message names the file and what is missing).
    """
    import h5py

    if isinstance(h5_or_path, (str, Path)):
        p = Path(h5_or_path)
        if not p.is_file():
            raise FileNotFoundError(f"dataset file not found: {p}")
        try:
            h5 = h5py.File(p, "r")
        except OSError as exc:  # truncated (interrupted copy), damaged, or not HDF5 at all
            raise ValueError(
                f"{p} cannot be read as a dataset file ({' '.join(str(exc).split())}); it is truncated or damaged: "
                "copy it again or run 'napari-smil-mv preprocess' again"
            ) from None
        with h5:
            return read_dataset_info(h5)
    h5 = h5_or_path
    path = Path(h5.filename)
    missing = [g for g in (IMAGES, KEYPOINTS, METADATA) if g not in h5]
    if missing:
        raise ValueError(
            f"{path} is not a multi-view dataset: groups {missing} are missing (expected the layout written by "
            "'napari-smil-mv preprocess' or SMILify's preprocess_sleap_multiview_dataset)"
        )
    attrs = {k: _decode_attr(v) for k, v in h5[METADATA].attrs.items()}
    kp = h5[KEYPOINTS]
    if "keypoints_2d" not in kp:
        raise ValueError(f"{path}: {KEYPOINTS}/keypoints_2d is missing")
    n, v, j = (int(s) for s in kp["keypoints_2d"].shape[:3])
    is_ours = SCHEMA_ATTR in attrs
    assumptions: list[str] = []
    order = attrs.get("canonical_camera_order")
    if not isinstance(order, list):
        order = []
        assumptions.append(
            "no canonical_camera_order attribute: camera names taken from auxiliary/camera_names"
        )
    has_cams = bool(attrs.get("has_camera_parameters", "camera_intrinsics" in kp))
    has_3d = bool(attrs.get("has_3d_keypoints", "keypoints_3d" in kp))
    units = str(attrs.get("world_units", "unknown"))
    if "world_scale" in attrs:
        ws, src = float(attrs["world_scale"]), str(attrs.get("world_scale_source", "attribute"))
    else:
        t0 = kp["camera_extrinsics_t"][0, 0] if ("camera_extrinsics_t" in kp and n) else np.zeros(3)
        k0 = kp["keypoints_3d"][0] if ("keypoints_3d" in kp and n) else None
        ws, src = infer_world_scale(t0, k0), "heuristic"
        assumptions.append(
            f"no world_scale attribute: {ws} from the reference tool's heuristic (|t| or |kp3d| > 50 means mm)"
        )
    if not is_ours:
        assumptions += [
            "reference-tool file: keypoints_2d are normalised (y, x) in the stored crop; K and images are "
            "undistorted unless metadata.undistort_images is False",
            "3D keypoints equal to (0, 0, 0) are treated as missing",
            "no crop_box: the crop transform is unknown (only the adjusted K is stored)",
        ]
        if str(attrs.get("crop_mode", "")) == "bbox_crop":
            assumptions.append(
                "bbox_crop in a reference-tool file: crops clamped at image borders were resized non-uniformly, "
                "so keypoints and K may disagree near borders"
            )
    size = attrs.get("target_resolution")
    if size is None:
        size = int(kp["image_sizes"][0, 0, 0]) if ("image_sizes" in kp and n) else 0
    names = attrs.get("joint_names")
    return DatasetInfo(
        path=path,
        is_ours=is_ours,
        schema_version=int(attrs.get(SCHEMA_ATTR, 0)),
        n_samples=n,
        max_views=v,
        n_joints=j,
        image_size=int(size),
        canonical_camera_order=[str(c) for c in order],
        world_units=units,
        world_scale=ws,
        world_scale_source=src,
        has_camera_parameters=has_cams,
        has_3d_keypoints=has_3d,
        joint_names=[str(x) for x in names] if isinstance(names, list) else None,
        attrs=attrs,
        assumptions=assumptions,
    )
