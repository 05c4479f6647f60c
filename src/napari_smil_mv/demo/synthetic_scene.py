"""Building blocks of the synthetic demo session: the posed insect in mm, the camera ring, which keypoints
each camera sees (exact ray cast against the mesh) and keypoint noise with scores.

Used by :mod:`napari_smil_mv.demo.synthetic_session`; no file I/O here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from napari_smil_mv.demo.pipeline import DEMO_FPS

__all__ = [
    "demo_camera_rig",
    "first_surface_distance",
    "node_visibility",
    "noisy_keypoints",
    "occluder_faces",
    "pose_demo_body",
]

UNITS = "mm"
MM_PER_MODEL_UNIT = (55.0, 65.0)  # seeded range of mesh_scale: the insect is about 65-77 mm long
CAMERA_DISTANCE_MM = (340.0, 440.0)  # seeded range of the ring radius
CAMERA_ELEVATION_DEG = 35.0
IMAGE_FILL = 0.85  # the walked path (all frames) spans this fraction of each camera's half image
OCCLUSION_MARGIN = 1.5  # a node counts as hidden when the surface is nearer than this x the local body radius
NOISE_SPREAD = 0.35  # per-point noise sigma = noise_px * exp(N(0, NOISE_SPREAD))
SCORE_PX = 2.0  # score = exp(-sigma^2 / (2 SCORE_PX^2)): 1 for noise-free points, lower for noisier ones


def demo_camera_rig(points: np.ndarray, n_cameras: int, image_size: tuple[int, int], seed: int) -> Any:
    """A ring of calibrated cameras around ``points`` whose images all show every point.

    Parameters
    ----------
    points
        ``(P, 3)`` world points (mm) that must be in view: the insect's vertices over the whole clip.
    n_cameras, image_size, seed
        Number of cameras, ``(W, H)`` px and the seed of the jitter.

    Returns
    -------
    CameraRig
        Cameras ``cam1..camN`` at 340-440 mm (seeded) and ~35 deg elevation, +-5 deg / +-5 % / +-5 px jitter
        (principal point offsets), mild OpenCV distortion on every other camera, focal lengths chosen so that
        the points span :data:`IMAGE_FILL` of each half image; ``units = "mm"``.
    """
    from napari_smil_mv.cameras import Camera, CameraRig, ring_of_cameras

    rng = np.random.default_rng([seed, 1])
    distance = float(rng.uniform(*CAMERA_DISTANCE_MM))
    dist = np.zeros((n_cameras, 5))
    for c in range(0, n_cameras, 2):
        dist[c] = [rng.uniform(-0.12, -0.04), rng.uniform(0.0, 0.05), *rng.uniform(-1e-3, 1e-3, 2), 0.0]
    lo, hi = points.min(0), points.max(0)
    ring = ring_of_cameras(
        n_cameras,
        distance=distance,
        elevation_deg=CAMERA_ELEVATION_DEG,
        image_size=tuple(image_size),
        fov_deg=30.0,
        target=0.5 * (lo + hi),
        dist=dist,
        seed=seed,
        units=UNITS,
    )
    cams = []
    for cam in ring:
        K = cam.matrix.copy()
        half = np.array(cam.size, dtype=float) / 2.0
        for _ in range(4):  # image extent grows ~linearly with the focal length
            fitted = Camera(cam.name, K, cam.dist, cam.rvec, cam.tvec, cam.size)
            extent = float(np.max(np.abs(fitted.project(points) - K[:2, 2]) / half))
            K[0, 0] *= IMAGE_FILL / extent
            K[1, 1] *= IMAGE_FILL / extent
        cams.append(Camera(cam.name, K, cam.dist, cam.rvec, cam.tvec, cam.size))
    return CameraRig(cams, UNITS, {"generator": "napari-smil-mv make-demo-session", "seed": int(seed)})


def pose_demo_body(data: Any, n_frames: int, scale: float) -> tuple[dict, np.ndarray, np.ndarray]:
    """The demo walk (:func:`~napari_smil_mv.body.demo_motion.demo_motion`) scaled to world units.

    Parameters
    ----------
    data
        The demo model (``load_smil_model(None)``).
    n_frames
        Number of frames at ``DEMO_FPS``.
    scale
        World units (mm) per model unit; becomes ``mesh_scale``, and the walked path is scaled alike.

    Returns
    -------
    params : dict
        Animation-schema arrays: ``poses (F, J, 3)``, ``trans (F, 3)`` mm, ``betas (K,)``,
        ``betas_per_frame (F, K)``, ``mesh_scale (F,)``, ``log_beta_scales (F, J, 3)`` and
        ``betas_trans (F, J, 3)`` (zeros), ``fps``.
    vertices : np.ndarray
        ``(F, V, 3)`` posed mesh, mm.
    joints : np.ndarray
        ``(F, J, 3)`` model joints, mm.
    """
    import torch

    from napari_smil_mv.body import SMILModel
    from napari_smil_mv.body.demo_motion import demo_motion

    motion = demo_motion(n_frames, data, fps=DEMO_FPS)
    J, K = data.n_joints, data.n_betas
    betas = np.asarray(motion["betas"], dtype=np.float64).reshape(K)
    params = {
        "poses": np.asarray(motion["pose"], dtype=np.float64),
        "trans": np.asarray(motion["trans"], dtype=np.float64) * scale,  # the walk in mm
        "betas": betas,
        "betas_per_frame": np.repeat(betas[None], n_frames, 0),
        "mesh_scale": np.asarray(motion["mesh_scale"], dtype=np.float64) * scale,
        "log_beta_scales": np.zeros((n_frames, J, 3)),
        "betas_trans": np.zeros((n_frames, J, 3)),
        "fps": np.float64(DEMO_FPS),
    }
    model = SMILModel(data, dtype=torch.float64)
    with torch.no_grad():
        out = model(
            torch.as_tensor(params["poses"]),
            betas=torch.as_tensor(params["betas_per_frame"]),
            log_beta_scales=torch.as_tensor(params["log_beta_scales"]),
            betas_trans=torch.as_tensor(params["betas_trans"]),
            trans=torch.as_tensor(params["trans"]),
            mesh_scale=torch.as_tensor(params["mesh_scale"]),
        )
    return params, out.vertices.numpy(), out.joints.numpy()


def noisy_keypoints(
    clean: np.ndarray, visible: np.ndarray, noise_px: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detector-like 2D keypoints: Gaussian noise whose size varies per point, and matching scores.

    Parameters
    ----------
    clean
        ``(..., 2)`` exact projections, px.
    visible
        ``(...)`` bool; hidden points become NaN.
    noise_px
        Typical noise: each point's sigma is ``noise_px * exp(N(0, NOISE_SPREAD))``. 0 = exact points.
    rng
        Random generator. The draws do not depend on ``noise_px``, so one seed gives the same pattern at any
        noise level.

    Returns
    -------
    keypoints : np.ndarray
        ``(..., 2)`` px, NaN where hidden.
    scores : np.ndarray
        ``(...)`` in (0, 1]: ``exp(-sigma^2 / (2 SCORE_PX^2))`` (1 when noise-free), NaN where hidden.
    sigma : np.ndarray
        ``(...)`` the noise standard deviation of each point, px.
    """
    sigma = noise_px * np.exp(rng.normal(0.0, NOISE_SPREAD, visible.shape))
    offsets = rng.standard_normal(clean.shape) * sigma[..., None]
    keypoints = np.where(visible[..., None], clean + offsets, np.nan)
    scores = np.where(visible, np.exp(-0.5 * (sigma / SCORE_PX) ** 2), np.nan)
    return keypoints, scores, sigma


def first_surface_distance(
    vertices_cam: np.ndarray, faces: np.ndarray, points_cam: np.ndarray, face_mask: np.ndarray | None = None
) -> np.ndarray:
    """Distance from the camera centre to the first mesh surface along the ray through each point.

    An exact z-buffer value at the point's own (sub-pixel) image position: a Möller-Trumbore ray cast of the
    rays camera centre -> point against every triangle.

    Parameters
    ----------
    vertices_cam
        ``(V, 3)`` mesh vertices in camera coordinates (world units).
    faces
        ``(T, 3)`` triangles.
    points_cam
        ``(N, 3)`` points in camera coordinates.
    face_mask
        Optional ``(N, T)`` bool: the triangles that may hide each point (others are ignored).

    Returns
    -------
    np.ndarray
        ``(N,)`` distance along each ray to its nearest hit (world units), ``inf`` where the ray misses.
    """
    tri = np.asarray(vertices_cam, dtype=np.float64)[np.asarray(faces)]
    v0, e1, e2 = tri[:, 0], tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]  # (T, 3)
    pts = np.asarray(points_cam, dtype=np.float64)
    norm = np.linalg.norm(pts, axis=1, keepdims=True)
    d = pts / np.where(norm > 0, norm, 1.0)  # (N, 3) unit rays from the camera centre (the origin)
    p = np.cross(d[:, None], e2[None])  # (N, T, 3)
    det = np.einsum("tk,ntk->nt", e1, p)
    q = np.cross(-v0, e1)  # (T, 3)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / det
        u = np.einsum("tk,ntk->nt", -v0, p) * inv
        v = (d @ q.T) * inv
        t = np.einsum("tk,tk->t", e2, q)[None] * inv
        hit = (np.abs(det) > 1e-12) & (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 0)
    if face_mask is not None:
        hit &= face_mask
    return np.where(hit, t, np.inf).min(axis=1)


def occluder_faces(data: Any, node_joints: np.ndarray) -> np.ndarray:
    """``(N, T)`` bool: faces that can hide each node, i.e. faces of body parts not adjacent to its joint.

    A face belongs to the joint with the largest summed skinning weight of its vertices. A joint lies inside its
    own segment and those of its parent and children, so those faces never count as hiding it (an insect's
    tarsus tip seen along the tarsus is still annotated); every other part can.
    """
    faces = np.asarray(data.faces)
    owner = np.asarray(data.weights)[faces].sum(axis=1).argmax(axis=1)  # (T,)
    parents = np.asarray(data.parents)
    mask = np.ones((len(node_joints), len(faces)), dtype=bool)
    for n, j in enumerate(node_joints):
        near = {int(j), int(parents[j])} | {int(k) for k in np.flatnonzero(parents == j)}
        mask[n] = ~np.isin(owner, sorted(near))
    return mask


def node_visibility(cam, vertices, faces, nodes, margin, face_mask=None) -> np.ndarray:
    """``(N,)`` bool: node in front of the camera, inside the image, and not hidden by the body.

    A node (``nodes (N, 3)`` world) is hidden when the first surface of ``vertices (V, 3)`` / ``faces (T, 3)``
    (restricted by ``face_mask (N, T)``, see :func:`occluder_faces`) along its camera ray lies more than
    ``margin (N,)`` world units in front of it.
    """
    from napari_smil_mv.rendering import point_visibility

    ok = point_visibility(nodes, cam)
    if ok.any():
        nodes_cam = cam.world_to_camera(nodes[ok])
        mask = None if face_mask is None else face_mask[ok]
        hit = first_surface_distance(cam.world_to_camera(vertices), faces, nodes_cam, mask)
        ok[ok] = hit >= np.linalg.norm(nodes_cam, axis=1) - margin[ok]
    return ok
