"""How raw head outputs become body parameters and cameras (our own parameterisation; see docs/training.md).

Body (one raw vector ``z`` per sample, zero at initialisation, so the initial prediction is the rest pose):

* ``global_rot = I6 + z_g`` and ``joint_rot = I6 + z_j`` in the PyTorch3D 6D convention (first two rows of the
  rotation matrix); ``I6 = [1, 0, 0, 0, 1, 0]`` is the true identity.
* ``betas = z_b``; ``log_beta_scales = z_s`` (``(J, 3)``), ``betas_trans = z_t`` (``(J, 3)``, model units).
* ``mesh_scale = m0 · exp(z_m)`` with ``m0`` the initial mesh scale (world units per model unit).
* ``trans = anchor + L · z_trans`` with ``L`` the initial body length (world units) and ``anchor`` the point
  closest to the central rays of all views' calibrated crop cameras (:func:`ray_anchor`): with bounding-box crops
  it is near the animal, so the network predicts a small offset in body lengths instead of an absolute world
  position it could not see in a crop. Without calibration the anchor is the origin.

Calibrated cameras (``K0, R0, t0`` of each view, world to camera, OpenCV): the head predicts bounded corrections
``o`` (9 numbers):

* rotation ``R = Exp(ω) · R0`` with ``ω = max_rot · tanh(o[0:3])`` (radians, axis-angle in the camera frame);
* translation ``t = t0 + max_trans · |t0| · tanh(o[3:6])``;
* focal lengths (and skew) ``× exp(log(1 + max_focal) · tanh(o[6]))``;
* principal point ``c = c0 + max_pp · S · tanh(o[7:9])`` (px).

Absolute cameras (no calibration; 10 numbers): ``fov = 5° + 115° · sigmoid(o[0])``, ``R`` from the 6D vector
``I6 + o[1:7]``, ``t = d · (0.5 tanh(o[7]), 0.5 tanh(o[8]), exp(o[9]))`` with ``d`` the initial camera distance,
principal point at the image centre, square pixels.
"""

from __future__ import annotations

import math

import torch

from napari_smil_mv.body.rotations import axis_angle_to_matrix, rotation_6d_to_matrix

IDENTITY_6D = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
CALIBRATED_OUTPUTS = 9
ABSOLUTE_OUTPUTS = 10


class ParamLayout:
    """Slices of the raw body vector ``z`` (see the module docstring).

    Parameters
    ----------
    n_joints, n_betas
        Joints ``J`` (root first) and shape coefficients ``K`` of the body model.
    limb_scales, limb_trans
        Whether per-joint log-scales / offsets are predicted (else they are zero).
    """

    def __init__(
        self, n_joints: int, n_betas: int, limb_scales: bool = True, limb_trans: bool = True
    ) -> None:
        self.n_joints, self.n_betas = int(n_joints), int(n_betas)
        self.limb_scales, self.limb_trans = bool(limb_scales), bool(limb_trans)
        sizes = [
            ("global_rot", 6),
            ("joint_rot", 6 * (self.n_joints - 1)),
            ("betas", self.n_betas),
            ("trans", 3),
            ("log_mesh_scale", 1),
        ]
        if self.limb_scales:
            sizes.append(("log_beta_scales", 3 * self.n_joints))
        if self.limb_trans:
            sizes.append(("betas_trans", 3 * self.n_joints))
        self.slices: dict[str, slice] = {}
        start = 0
        for name, n in sizes:
            self.slices[name] = slice(start, start + n)
            start += n
        self.size = start

    def decode(
        self,
        z: torch.Tensor,
        anchor: torch.Tensor,
        body_length: float,
        mesh_scale_init: float,
    ) -> dict[str, torch.Tensor]:
        """Body parameters from raw vectors.

        Parameters
        ----------
        z
            ``(B, size)`` raw head output.
        anchor
            ``(B, 3)`` translation anchor, world units.
        body_length, mesh_scale_init
            Initial body length (world units) and mesh scale (world units per model unit).

        Returns
        -------
        dict
            ``global_rot (B, 6)``, ``joint_rot (B, J-1, 6)``, ``betas (B, K)``, ``trans (B, 3)``,
            ``mesh_scale (B, 1)``, ``log_beta_scales (B, J, 3)``, ``betas_trans (B, J, 3)``.
        """
        B, J = z.shape[0], self.n_joints
        eye6 = z.new_tensor(IDENTITY_6D)
        s = self.slices
        zeros = z.new_zeros(B, J, 3)
        return {
            "global_rot": eye6 + z[:, s["global_rot"]],
            "joint_rot": eye6 + z[:, s["joint_rot"]].reshape(B, J - 1, 6),
            "betas": z[:, s["betas"]],
            "trans": anchor + body_length * z[:, s["trans"]],
            "mesh_scale": mesh_scale_init * torch.exp(z[:, s["log_mesh_scale"]]),
            "log_beta_scales": z[:, s["log_beta_scales"]].reshape(B, J, 3) if self.limb_scales else zeros,
            "betas_trans": z[:, s["betas_trans"]].reshape(B, J, 3) if self.limb_trans else zeros,
        }


def pose_6d(params: dict[str, torch.Tensor]) -> torch.Tensor:
    """``(B, J, 6)`` pose (root first) from ``global_rot`` and ``joint_rot``."""
    return torch.cat([params["global_rot"].unsqueeze(1), params["joint_rot"]], dim=1)


def calibrated_cameras(
    raw: torch.Tensor,
    K0: torch.Tensor,
    R0: torch.Tensor,
    t0: torch.Tensor,
    image_size: int,
    max_rot_deg: float,
    max_trans: float,
    max_focal: float,
    max_pp: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Corrected cameras ``K (B, V, 3, 3)``, ``R (B, V, 3, 3)``, ``t (B, V, 3)`` from raw ``(B, V, 9)``."""
    o = torch.tanh(raw)
    omega = math.radians(max_rot_deg) * o[..., 0:3]
    R = axis_angle_to_matrix(omega) @ R0
    t = t0 + max_trans * torch.linalg.vector_norm(t0, dim=-1, keepdim=True) * o[..., 3:6]
    focal = torch.exp(math.log1p(max_focal) * o[..., 6])  # (B, V)
    pp = max_pp * image_size * o[..., 7:9]
    scale_rows = torch.stack([focal, focal, torch.ones_like(focal)], dim=-1)  # first two rows' linear part
    K = K0.clone()
    K[..., 0, 0] = K0[..., 0, 0] * scale_rows[..., 0]
    K[..., 0, 1] = K0[..., 0, 1] * scale_rows[..., 0]
    K[..., 1, 1] = K0[..., 1, 1] * scale_rows[..., 1]
    K[..., 0, 2] = K0[..., 0, 2] + pp[..., 0]
    K[..., 1, 2] = K0[..., 1, 2] + pp[..., 1]
    return K, R, t


def absolute_cameras(
    raw: torch.Tensor, image_size: int, distance: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Free cameras ``K, R, t`` (see the module docstring) from raw ``(B, V, 10)``; ``distance`` in world units."""
    fov = math.radians(5.0) + math.radians(115.0) * torch.sigmoid(raw[..., 0])
    f = (image_size / 2.0) / torch.tan(fov / 2.0)
    c = (image_size - 1) / 2.0
    K = torch.zeros(*raw.shape[:-1], 3, 3, dtype=raw.dtype, device=raw.device)
    K[..., 0, 0] = f
    K[..., 1, 1] = f
    K[..., 0, 2] = c
    K[..., 1, 2] = c
    K[..., 2, 2] = 1.0
    R = rotation_6d_to_matrix(raw.new_tensor(IDENTITY_6D) + raw[..., 1:7])
    t = distance * torch.stack(
        [0.5 * torch.tanh(raw[..., 7]), 0.5 * torch.tanh(raw[..., 8]), torch.exp(raw[..., 9])], dim=-1
    )
    return K, R, t


def ray_anchor(
    K: torch.Tensor, R: torch.Tensor, t: torch.Tensor, view_mask: torch.Tensor, image_size: int
) -> torch.Tensor:
    """Point closest (least squares) to the central rays of every valid view, ``(B, 3)`` world units.

    Each view contributes the ray through its image centre ``((S-1)/2, (S-1)/2)``. With one view (or parallel
    rays) the solution is regularised towards the point at distance ``|t|`` along the rays. No gradient.

    Parameters
    ----------
    K, R, t
        ``(B, V, 3, 3)``, ``(B, V, 3, 3)``, ``(B, V, 3)`` calibrated crop cameras (world to camera).
    view_mask
        ``(B, V)`` bool, valid views.
    image_size
        Side ``S`` of the crops (px).
    """
    with torch.no_grad():
        K, R, t = K.double(), R.double(), t.double()
        c = (image_size - 1) / 2.0
        pix = torch.tensor([c, c, 1.0], dtype=K.dtype, device=K.device).expand(*K.shape[:-2], 3)
        d_cam = torch.linalg.solve(K, pix.unsqueeze(-1)).squeeze(-1)
        d = torch.einsum("bvji,bvj->bvi", R, d_cam)  # R^T d_cam
        d = d / torch.linalg.vector_norm(d, dim=-1, keepdim=True).clamp_min(1e-12)
        origin = -torch.einsum("bvji,bvj->bvi", R, t)  # camera centres -R^T t
        w = view_mask.to(K.dtype)
        eye = torch.eye(3, dtype=K.dtype, device=K.device)
        P = eye - d.unsqueeze(-1) * d.unsqueeze(-2)  # (B, V, 3, 3) projector orthogonal to each ray
        A = (w[..., None, None] * P).sum(1)
        b = (w[..., None] * (P @ origin.unsqueeze(-1)).squeeze(-1)).sum(1)
        dist = torch.linalg.vector_norm(t, dim=-1, keepdim=True)
        fallback = (w[..., None] * (origin + d * dist)).sum(1) / w.sum(1, keepdim=True).clamp_min(1.0)
        lam = 1e-3 * w.sum(1).clamp_min(1.0)
        A = A + lam[:, None, None] * eye
        b = b + lam[:, None] * fallback
        return torch.linalg.solve(A, b.unsqueeze(-1)).squeeze(-1).float()
