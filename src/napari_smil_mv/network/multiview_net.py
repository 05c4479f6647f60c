"""``MultiViewRegressor``: shared backbone over all views -> fused views -> one body + one camera per view.

Data flow for ``images (B, V, 3, S, S)``: the valid views go through the backbone as one batch of ``B·V``
images; camera embeddings are added and the views are fused (:class:`~napari_smil_mv.network.blocks.ViewFusion`);
the body head predicts one raw body vector per sample from all views (pooled feature or, for the transformer,
every view's spatial tokens); one camera head per canonical camera predicts each view's camera. Raw outputs are
decoded by :mod:`napari_smil_mv.network.parameterisation`. :func:`body_joints` and :func:`project` then give the
3D keypoints (SMIL model) and their pixels in every view (our OpenCV projection with principal point and
distortion).
"""

from __future__ import annotations

import weakref

import torch
from torch import nn

from napari_smil_mv.body.rotations import rotation_6d_to_matrix
from napari_smil_mv.cameras import project_points_torch
from napari_smil_mv.network.backbones import build_backbone
from napari_smil_mv.network.blocks import (
    CameraHeads,
    MLPBodyHead,
    TransformerBodyHead,
    ViewFusion,
    resize_images,
)
from napari_smil_mv.network.parameterisation import (
    ABSOLUTE_OUTPUTS,
    CALIBRATED_OUTPUTS,
    ParamLayout,
    absolute_cameras,
    calibrated_cameras,
    pose_6d,
    ray_anchor,
)
from napari_smil_mv.network.spec import NetworkSpec

__all__ = ["MultiViewRegressor", "body_joints", "project"]


class MultiViewRegressor(nn.Module):
    """The multi-view network (see the module docstring).

    Parameters
    ----------
    spec
        Architecture and data facts; ``camera_names``, ``image_size``, ``joint_names`` must be set and
        ``camera_mode`` resolved (``"calibrated"`` or ``"absolute"``). ``hidden_dim = "auto"`` is resolved here,
        in place (:meth:`NetworkSpec.resolve_hidden_dim`).
    load_pretrained
        Load ``spec.pretrained`` into the backbone (True for a new network; False when a checkpoint follows).
    """

    def __init__(self, spec: NetworkSpec, load_pretrained: bool = True) -> None:
        super().__init__()
        spec.validate().resolve_hidden_dim()
        if spec.camera_mode not in ("calibrated", "absolute"):
            raise ValueError("NetworkSpec.camera_mode must be resolved to 'calibrated' or 'absolute' first")
        if not spec.camera_names or not spec.joint_names or spec.image_size < 8:
            raise ValueError(
                "NetworkSpec needs camera_names, joint_names and image_size (set from the dataset)"
            )
        self.spec = spec
        self.backbone = build_backbone(spec.backbone, spec.pretrained if load_pretrained else None)
        with torch.no_grad():
            was_training = self.backbone.training
            self.backbone.eval()
            size = spec.network_input_size
            n_tokens = self.backbone(torch.zeros(1, 3, size, size)).tokens.shape[1]
            self.backbone.train(was_training)
        D = spec.hidden_dim
        C = spec.n_cameras
        self.fusion = ViewFusion(
            self.backbone.feature_dim, D, C, spec.fusion, spec.fusion_layers, spec.fusion_heads, spec.dropout
        )
        self.layout = ParamLayout(
            spec.n_joints, spec.n_betas, spec.predict_limb_scales, spec.predict_limb_trans
        )
        if spec.body_head == "transformer":
            self.body_head: nn.Module = TransformerBodyHead(
                self.backbone.token_dim,
                D,
                D,
                n_tokens,
                C,
                self.layout.size,
                spec.decoder_depth,
                spec.decoder_heads,
                spec.ief_iters,
                spec.dropout,
            )
        else:
            self.body_head = MLPBodyHead(D, D, self.layout.size, spec.dropout)
        n_cam = CALIBRATED_OUTPUTS if spec.camera_mode == "calibrated" else ABSOLUTE_OUTPUTS
        self.camera_heads = CameraHeads(D, C, n_cam, spec.camera_head, hidden=D, dropout=spec.dropout)

    # ---------------------------------------------------------------------------------------------------
    def extract(self, images: torch.Tensor, view_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Backbone features of the valid views: global ``(B, V, Df)`` and tokens ``(B, V, P, Dt)`` (zeros padded)."""
        B, V = images.shape[:2]
        flat = images.reshape(B * V, *images.shape[2:])
        valid = view_mask.reshape(-1)
        if bool(valid.all()):  # the usual case: no copy of the images, no scatter of the features
            out = self.backbone(resize_images(flat, self.spec.network_input_size))
            g, tok = out.global_features, out.tokens
            return g.reshape(B, V, -1), tok.reshape(B, V, *tok.shape[1:])
        out = self.backbone(resize_images(flat[valid], self.spec.network_input_size))
        g = out.global_features.new_zeros(B * V, out.global_features.shape[-1])
        tok = out.tokens.new_zeros(B * V, *out.tokens.shape[1:])
        g = g.index_put((valid,), out.global_features)
        tok = tok.index_put((valid,), out.tokens)
        return g.reshape(B, V, -1), tok.reshape(B, V, *tok.shape[1:])

    def forward(
        self,
        images: torch.Tensor,
        view_mask: torch.Tensor,
        camera_indices: torch.Tensor,
        K: torch.Tensor | None = None,
        R: torch.Tensor | None = None,
        t: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Predict the body and the per-view cameras.

        Parameters
        ----------
        images
            ``(B, V, 3, S, S)`` float RGB in [0, 1] (padded views may hold anything).
        view_mask
            ``(B, V)`` bool, real views.
        camera_indices
            ``(B, V)`` int64 canonical camera of each view (-1 = padding).
        K, R, t
            ``(B, V, 3, 3)``, ``(B, V, 3, 3)``, ``(B, V, 3)``: the calibrated crop cameras (world to camera,
            training world units). Required in ``"calibrated"`` mode, ignored otherwise.

        Returns
        -------
        dict
            Body: ``global_rot (B, 6)``, ``joint_rot (B, J-1, 6)``, ``betas (B, K)``, ``trans (B, 3)``,
            ``mesh_scale (B, 1)``, ``log_beta_scales (B, J, 3)``, ``betas_trans (B, J, 3)``; cameras:
            ``K (B, V, 3, 3)``, ``R (B, V, 3, 3)``, ``t (B, V, 3)``, ``camera_raw (B, V, n)``; ``anchor (B, 3)``;
            ``history``: the raw body vector after each refinement iteration (list of ``(B, n)``), and
            ``view_mask``, ``camera_indices``.
        """
        spec = self.spec
        view_mask = view_mask.bool()
        if bool((view_mask.sum(1) == 0).any()):
            raise ValueError(
                "every sample needs at least one valid view (view_mask is all False for a sample)"
            )
        if bool((camera_indices[view_mask] >= spec.n_cameras).any()):
            raise ValueError(
                f"camera index out of range: this network knows {spec.n_cameras} cameras {spec.camera_names}"
            )
        g, tokens = self.extract(images, view_mask)
        fused, pooled = self.fusion(g, view_mask, camera_indices)
        with torch.autocast(device_type=images.device.type, enabled=False):
            fused32, pooled32 = fused.float(), pooled.float()
            z, history = self.body_head(
                pooled32,
                tokens=tokens.float(),
                fused=fused32,
                view_mask=view_mask,
                camera_indices=camera_indices,
            )
            raw_cam = self.camera_heads(fused32, view_mask, camera_indices).float()
            S = spec.image_size
            if spec.camera_mode == "calibrated":
                if K is None or R is None or t is None:
                    raise ValueError("a calibrated network needs the views' cameras K, R, t")
                K, R, t = K.float(), R.float(), t.float()
                anchor = ray_anchor(K, R, t, view_mask, S)
                K_hat, R_hat, t_hat = calibrated_cameras(
                    raw_cam,
                    K,
                    R,
                    t,
                    S,
                    spec.max_rot_correction_deg,
                    spec.max_trans_correction,
                    spec.max_focal_correction,
                    spec.max_pp_correction,
                )
            else:
                anchor = raw_cam.new_zeros(raw_cam.shape[0], 3)
                K_hat, R_hat, t_hat = absolute_cameras(
                    raw_cam, S, spec.absolute_camera_distance * spec.body_length
                )
            out = self.layout.decode(z, anchor, spec.body_length, spec.mesh_scale_value)
        out.update(
            K=K_hat,
            R=R_hat,
            t=t_hat,
            camera_raw=raw_cam,
            anchor=anchor,
            history=history,
            view_mask=view_mask,
            camera_indices=camera_indices,
        )
        return out

    def decode_history(self, out: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        """Body parameters after each refinement iteration (the last equals the output)."""
        return [
            self.layout.decode(z, out["anchor"], self.spec.body_length, self.spec.mesh_scale_value)
            for z in out["history"]
        ]


_JOINTS_MODELS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _joints_model(smil, device: torch.device, dtype: torch.dtype):
    """A cached :class:`~napari_smil_mv.body.kinematics.JointsModel` of ``smil`` (keypoints without the mesh),
    or None when it would not give the same keypoints (pose-corrective blend shapes move regressed joints) or
    would not be faster (regressor support over a quarter of the mesh)."""
    data = getattr(smil, "data", None)
    if data is None or (getattr(smil, "has_posedirs", False) and not data.static_joint_locs):
        return None
    from napari_smil_mv.body.kinematics import JointsModel  # lazily: only when the keypoint model is needed

    cache = _JOINTS_MODELS.setdefault(smil, {})
    key = (str(device), dtype)
    if key not in cache:
        jm = JointsModel.from_model_data(data, device=device, dtype=dtype)
        # Regressed joints need the skinned support vertices; when those are a large part of the mesh, the full
        # model's batched skinning is faster (SMILy_STICK: 1531 of 3020; the demo model: 408 of 3594).
        cache[key] = jm if jm.static or 4 * len(jm.support) <= len(data.v_template) else None
    return cache[key]


def body_joints(smil, params: dict[str, torch.Tensor], vertices: bool = False):
    """3D keypoints ``(B, J, 3)`` (world units) of predicted body parameters through the SMIL model.

    Without ``vertices`` only the keypoints are evaluated (forward kinematics, plus the regressor's support
    vertices for regressed-joint models; :class:`~napari_smil_mv.body.kinematics.JointsModel`), which gives
    the SMIL model's joints (``propagate_scaling=True``) to float rounding at a fraction of the cost of the full
    mesh. Regressed-joint models with pose-corrective blend shapes, or whose regressor reads over a quarter of
    the vertices, use the full model.

    Parameters
    ----------
    smil
        :class:`napari_smil_mv.body.SMILModel` (float32, on the parameters' device).
    params
        Output of :meth:`MultiViewRegressor.forward` (or of ``decode_history``).
    vertices
        Also return the placed vertices ``(B, Nv, 3)``.
    """
    with torch.autocast(device_type=params["trans"].device.type, enabled=False):
        pose = pose_6d(params).float()
        betas = params["betas"].float() if params["betas"].shape[-1] else None
        kw = {
            "log_beta_scales": params["log_beta_scales"].float(),
            "betas_trans": params["betas_trans"].float(),
            "trans": params["trans"].float(),
            "mesh_scale": params["mesh_scale"].float(),
        }
        fast = None if vertices else _joints_model(smil, pose.device, pose.dtype)
        if fast is not None:
            return fast(rotation_6d_to_matrix(pose), betas=betas, **kw)
        res = smil(pose, betas=betas, **kw)
    return (res.joints, res.vertices) if vertices else res.joints


def project(
    joints: torch.Tensor, K: torch.Tensor, R: torch.Tensor, t: torch.Tensor, dist: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixels ``(B, V, J, 2)`` (x, y) and depths ``(B, V, J)`` of ``joints (B, J, 3)`` in every view's camera.

    ``K, R (B, V, 3, 3)``, ``t (B, V, 3)``, ``dist (B, V, n)`` or None; same projection as
    :func:`napari_smil_mv.cameras.project_points_torch` (principal point, skew and distortion included).
    """
    with torch.autocast(device_type=joints.device.type, enabled=False):
        pts = joints.float().unsqueeze(1).expand(-1, K.shape[1], -1, -1)
        return project_points_torch(pts, K.float(), R.float(), t.float(), dist, return_depth=True)
