"""The multi-view training dataset: preprocessing sessions into one HDF5 file and reading it with torch.

No Qt/napari imports. See ``docs/dataset.md`` for the file layout and the sample structures.
"""

from napari_smil_mv.dataset.augment import AugmentationConfig
from napari_smil_mv.dataset.collate import multiview_collate, multiview_collate_lists
from napari_smil_mv.dataset.crops import CROP_MODES, ViewRenderer, crop_box_for, crop_matrix, crop_points
from napari_smil_mv.dataset.plan import PreprocessOptions, SampleSpec, filter_3d_outliers
from napari_smil_mv.dataset.preprocess import PreprocessEvent, format_summary, iter_preprocess, preprocess
from napari_smil_mv.dataset.quality import ReprojectionReport, project_stored, reprojection_report
from napari_smil_mv.dataset.schema import (
    DATASET_SUFFIX,
    SCHEMA_VERSION,
    DatasetInfo,
    read_dataset_info,
    sniff_dataset,
)
from napari_smil_mv.dataset.split import split_samples
from napari_smil_mv.dataset.torch_dataset import MultiViewDataset

__all__ = [
    "AugmentationConfig",
    "MultiViewDataset",
    "ReprojectionReport",
    "multiview_collate",
    "multiview_collate_lists",
    "project_stored",
    "reprojection_report",
    "split_samples",
    "CROP_MODES",
    "DATASET_SUFFIX",
    "SCHEMA_VERSION",
    "DatasetInfo",
    "PreprocessEvent",
    "PreprocessOptions",
    "SampleSpec",
    "ViewRenderer",
    "crop_box_for",
    "crop_matrix",
    "crop_points",
    "filter_3d_outliers",
    "format_summary",
    "iter_preprocess",
    "preprocess",
    "read_dataset_info",
    "sniff_dataset",
]
