"""napari sample data: the procedural demo insect walking (``File > Open Sample > SMIL multi-view``).

Pure layer-data builders (no viewer needed): the posed demo model as a time-stacked 3D Surface and its
joints as Points, both with coordinates ``(frame, z, y, x)`` in model units (world ``(x, y, z)`` reversed to
napari's axis order, ``+z`` up).
"""

from __future__ import annotations

from typing import Any

import numpy as np

SAMPLE_FRAMES = 60
SAMPLE_FPS = 30.0
_AXIS_LABELS = ("frame", "z", "y", "x")


def demo_body_layer_data(
    vertices: np.ndarray,
    faces: np.ndarray,
    joints: np.ndarray,
    joint_names: list[str],
    parents: np.ndarray,
    fps: float = SAMPLE_FPS,
    source: str = "<demo model>",
) -> list[tuple[Any, dict, str]]:
    """Layer-data tuples for a posed body sequence.

    Parameters
    ----------
    vertices
        ``(F, V, 3)`` world ``(x, y, z)`` per frame.
    faces
        ``(T, 3)`` triangle vertex indices.
    joints
        ``(F, J, 3)`` world ``(x, y, z)`` keypoints per frame.
    joint_names
        ``J`` names.
    parents
        ``(J,)`` parent index per joint (-1 for the root); used for the joint colours' grouping only.
    fps
        Frame rate, stored in the metadata.
    source
        Model source, stored in the metadata.

    Returns
    -------
    list of (data, kwargs, layer_type)
        A ``surface`` with vertices ``(F V, 4)`` ``(frame, z, y, x)`` and faces offset by ``V`` per frame
        (``vertex_values`` = height, for shading), and ``points`` ``(F J, 4)`` with features ``joint`` and
        ``frame``. Metadata ``{"napari_smil_mv": {"role": "mesh_world" | "kp3d", ...}}``.
    """
    verts = np.asarray(vertices, dtype=np.float32)
    pts3 = np.asarray(joints, dtype=np.float32)
    faces = np.asarray(faces, dtype=np.int64)
    n_frames, n_verts, _ = verts.shape
    n_joints = pts3.shape[1]
    if pts3.shape[0] != n_frames or len(joint_names) != n_joints:
        raise ValueError(
            f"vertices have {n_frames} frames, joints {pts3.shape[0]} frames with "
            f"{len(joint_names)} names for {n_joints} joints; they must match."
        )
    frame_col = np.repeat(np.arange(n_frames, dtype=np.float32), n_verts)[:, None]
    surf_vertices = np.concatenate([frame_col, verts[:, :, ::-1].reshape(-1, 3)], axis=1)
    surf_faces = (faces[None] + (np.arange(n_frames) * n_verts)[:, None, None]).reshape(-1, 3)
    values = verts[:, :, 2].reshape(-1)
    common = {
        "n_frames": n_frames,
        "fps": float(fps),
        "source": source,
        "units": "model units",
        "axis_order": list(_AXIS_LABELS),
    }
    surface_kwargs = {
        "name": "demo body mesh",
        "colormap": "copper",
        "shading": "smooth",
        "axis_labels": _AXIS_LABELS,
        "metadata": {"napari_smil_mv": {"role": "mesh_world", "n_vertices": n_verts, **common}},
    }
    frame_idx = np.repeat(np.arange(n_frames), n_joints)
    point_data = np.concatenate(
        [frame_idx[:, None].astype(np.float32), pts3[:, :, ::-1].reshape(-1, 3)], axis=1
    )
    names = np.tile(np.asarray(joint_names, dtype=object), n_frames)
    groups = np.array(
        [
            "left leg"
            if n.startswith("leg_") and "_l_" in n
            else "right leg"
            if n.startswith("leg_")
            else "antenna"
            if n.startswith("antenna")
            else "body"
            for n in joint_names
        ],
        dtype=object,
    )
    points_kwargs = {
        "name": "demo body joints",
        "features": {"joint": names, "frame": frame_idx, "part": np.tile(groups, n_frames)},
        "face_color": "part",
        "size": 0.025,
        "axis_labels": _AXIS_LABELS,
        "metadata": {
            "napari_smil_mv": {
                "role": "kp3d",
                "joint_names": list(joint_names),
                "parents": np.asarray(parents).tolist(),
                **common,
            }
        },
    }
    return [
        ((surf_vertices, surf_faces, values), surface_kwargs, "surface"),
        (point_data, points_kwargs, "points"),
    ]


def make_demo_body_sample() -> list[tuple[Any, dict, str]]:
    """Sample data ``napari-smil-mv.make_demo_body_sample``: the demo insect walking for 2 s (60 frames).

    Returns
    -------
    list of (data, kwargs, layer_type)
        See :func:`demo_body_layer_data`.
    """
    import torch

    from napari_smil_mv.body import SMILModel, load_smil_model
    from napari_smil_mv.body.demo_motion import demo_motion

    data = load_smil_model(None)
    motion = demo_motion(SAMPLE_FRAMES, data, fps=SAMPLE_FPS)
    model = SMILModel(data, dtype=torch.float32)
    with torch.no_grad():
        out = model(
            torch.as_tensor(motion["pose"], dtype=torch.float32),
            betas=torch.as_tensor(motion["betas"], dtype=torch.float32),
            trans=torch.as_tensor(motion["trans"], dtype=torch.float32),
            mesh_scale=torch.as_tensor(motion["mesh_scale"], dtype=torch.float32),
        )
    return demo_body_layer_data(
        out.vertices.numpy(),
        data.faces,
        out.joints.numpy(),
        list(data.joint_names),
        data.parents,
        fps=SAMPLE_FPS,
        source=data.source,
    )
