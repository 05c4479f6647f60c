"""Results of a body fit or a network inference: the ``*.smilmv.h5`` file, metrics and exports.

No Qt/napari imports.
"""

from napari_smil_mv.results.exports import (
    check_model,
    evaluate_meshes,
    export_animation,
    export_joints_csv,
    export_meshes,
    export_slp,
)
from napari_smil_mv.results.io import read_results, write_results
from napari_smil_mv.results.metrics import (
    body_length,
    evaluate,
    finite_median,
    joint_errors_3d,
    json_safe,
    metrics_json,
    pck,
    reprojection_errors,
    reprojection_summary,
)
from napari_smil_mv.results.results import FORMAT_NAME, RESULTS_SUFFIX, SCHEMA_VERSION, Results

__all__ = [
    "FORMAT_NAME",
    "RESULTS_SUFFIX",
    "SCHEMA_VERSION",
    "Results",
    "body_length",
    "check_model",
    "evaluate",
    "evaluate_meshes",
    "export_animation",
    "export_joints_csv",
    "export_meshes",
    "export_slp",
    "finite_median",
    "joint_errors_3d",
    "json_safe",
    "metrics_json",
    "pck",
    "read_results",
    "reprojection_errors",
    "reprojection_summary",
    "write_results",
]
