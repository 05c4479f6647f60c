"""``napari-smil-mv model-info MODEL.pkl [--json]``: describe a SMIL body model."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(subparsers) -> None:
    """Add the ``model-info`` sub-command."""
    parser = subparsers.add_parser(
        "model-info",
        help="describe a SMIL model file (joint tree, sizes, shape space, checksum)",
        description="Print the joint tree, mesh size, shape-space and per-joint PCA sizes and the SHA-256 of a "
        "SMIL/SMAL model .pkl ('demo' for the embedded demo model).",
    )
    parser.add_argument("model", help="SMIL model .pkl file, or 'demo' for the embedded demo model")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON instead of text")
    parser.set_defaults(func=run)


def model_summary(data) -> dict[str, Any]:
    """Summary dictionary of a :class:`~napari_smil_mv.body.SMILModelData` (JSON-serialisable)."""
    import numpy as np

    extent = data.v_template.max(axis=0) - data.v_template.min(axis=0)
    return {
        "source": data.source,
        "sha256": data.sha256,
        "n_vertices": data.n_vertices,
        "n_faces": data.n_faces,
        "n_joints": data.n_joints,
        "n_betas": data.n_betas,
        "joints": [
            {"index": i, "name": name, "parent": int(p)}
            for i, (name, p) in enumerate(zip(data.joint_names, data.parents, strict=True))
        ],
        "joint_source": "static (fixed J)"
        if data.static_joint_locs
        else "regressed from the mesh (J_regressor)",
        "static_joint_locs": bool(data.static_joint_locs),
        "regressor_nonzeros": int(data.J_regressor.nnz),
        "max_joints_per_vertex": int((data.weights > 0).sum(axis=1).max()),
        "pose_blend_shapes": data.posedirs is not None,
        "scaledirs": None if data.scaledirs is None else int(data.scaledirs.shape[2]),
        "transdirs": None if data.transdirs is None else int(data.transdirs.shape[2]),
        "shape_prior": data.shape_cov is not None,
        "extent_model_units": [float(x) for x in np.round(extent, 4)],
        "units": "model units (arbitrary, not metres); mesh_scale maps them to world units",
    }


def _tree_lines(names: list[str], parents: list[int]) -> list[str]:
    children: dict[int, list[int]] = {i: [] for i in range(len(names))}
    roots = []
    for i, p in enumerate(parents):
        (children[p] if p >= 0 else roots).append(i)
    lines: list[str] = []

    def walk(i: int, prefix: str, last: bool, top: bool) -> None:
        branch = "" if top else ("└─ " if last else "├─ ")
        lines.append(f"{prefix}{branch}{i}: {names[i]}")
        kids = children[i]
        for k, c in enumerate(kids):
            walk(c, prefix + ("" if top else ("   " if last else "│  ")), k == len(kids) - 1, False)

    for r in roots:
        walk(r, "  ", True, True)
    return lines


def run(args: argparse.Namespace) -> int:
    """Run ``model-info``; returns the exit code."""
    from napari_smil_mv.body.model_file import load_smil_model
    from napari_smil_mv.commands._args import model_arg

    data = load_smil_model(model_arg(args.model))
    info = model_summary(data)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    pca = lambda n: "none" if n is None else f"{n} components"  # noqa: E731
    print(f"model:        {info['source']}")
    print(f"sha256:       {info['sha256']}")
    print(
        f"mesh:         {info['n_vertices']} vertices, {info['n_faces']} triangles, "
        f"≤{info['max_joints_per_vertex']} skinning joints per vertex"
    )
    print(
        f"joints:       {info['n_joints']}, {info['joint_source']}"
        + ("" if data.static_joint_locs else f" ({info['regressor_nonzeros']} regressor non-zeros)")
    )
    print(
        f"shape space:  {info['n_betas']} betas" + (", with covariance prior" if info["shape_prior"] else "")
    )
    print(f"scaledirs:    {pca(info['scaledirs'])}")
    print(f"transdirs:    {pca(info['transdirs'])}")
    print(f"pose blends:  {'yes' if info['pose_blend_shapes'] else 'none'}")
    ext = info["extent_model_units"]
    print(f"extent:       {ext[0]} x {ext[1]} x {ext[2]} ({info['units']})")
    print("joint tree (index: name):")
    for line in _tree_lines(data.joint_names, [int(p) for p in data.parents]):
        print(line)
    return 0
