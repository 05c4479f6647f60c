"""Projection maths: numpy vs OpenCV / aniposelib, torch vs numpy, Rodrigues, undistortion."""

import cv2
import numpy as np
import pytest
import torch

from napari_smil_mv.cameras import (
    camera_depths,
    distort_normalized,
    matrix_to_rodrigues,
    normalize_distortion,
    project_points,
    project_points_torch,
    rodrigues_to_matrix,
    rodrigues_to_matrix_torch,
    undistort_points,
)


def random_camera(rng, n_dist=5, scale=0.05, fisheye=False):
    K = np.array(
        [
            [rng.uniform(300, 1500), 0, rng.uniform(200, 800)],
            [0, rng.uniform(300, 1500), rng.uniform(200, 600)],
            [0, 0, 1.0],
        ]
    )
    d = rng.normal(0, scale, 4 if fisheye else n_dist)
    rvec = rng.normal(0, 1, 3)
    tvec = rng.normal(0, 1, 3) + [0, 0, 8]
    return K, d, rvec, tvec


@pytest.mark.parametrize("n_dist", [4, 5, 8, 12, 14])
def test_project_points_equals_cv2(n_dist):
    rng = np.random.default_rng(n_dist)
    worst = 0.0
    for _ in range(10):
        K, d, rvec, tvec = random_camera(rng, n_dist)
        X = rng.normal(0, 1.5, (40, 3))
        ref, _ = cv2.projectPoints(X, rvec, tvec, K, d)
        ours = project_points(X, K, rvec, tvec, d)
        worst = max(worst, np.abs(ref.reshape(-1, 2) - ours).max())
        assert np.abs(ours - project_points(X, K, rodrigues_to_matrix(rvec), tvec, d)).max() < 1e-9
    assert worst < 1e-6


def test_project_points_five_coefficients_all_nonzero_strong():
    rng = np.random.default_rng(1)
    K, _, rvec, tvec = random_camera(rng)
    d = np.array([-0.3, 0.12, 0.01, -0.008, -0.02])
    X = rng.normal(0, 2.0, (500, 3))
    ref, _ = cv2.projectPoints(X, rvec, tvec, K, d)
    assert np.abs(ref.reshape(-1, 2) - project_points(X, K, rvec, tvec, d)).max() < 1e-6


def test_project_points_fisheye_equals_cv2():
    rng = np.random.default_rng(2)
    for _ in range(10):
        K, d, rvec, tvec = random_camera(rng, fisheye=True)
        X = rng.normal(0, 2.0, (40, 3))
        ref, _ = cv2.fisheye.projectPoints(X[:, None], rvec, tvec, K, d)
        ours = project_points(X, K, rvec, tvec, d, fisheye=True)
        assert np.abs(ref.reshape(-1, 2) - ours).max() < 1e-6


def test_project_points_equals_aniposelib():
    from aniposelib.cameras import Camera as ACamera
    from aniposelib.cameras import FisheyeCamera

    rng = np.random.default_rng(3)
    K, d, rvec, tvec = random_camera(rng)
    X = rng.normal(0, 1.5, (30, 3))
    ref = ACamera(matrix=K, dist=d, rvec=rvec, tvec=tvec, size=(1000, 800)).project(X)
    assert np.abs(ref.reshape(-1, 2) - project_points(X, K, rvec, tvec, d)).max() < 1e-6
    K, d, rvec, tvec = random_camera(rng, fisheye=True)
    ref = FisheyeCamera(matrix=K, dist=d, rvec=rvec, tvec=tvec, size=(1000, 800)).project(X)
    assert np.abs(ref.reshape(-1, 2) - project_points(X, K, rvec, tvec, d, fisheye=True)).max() < 1e-6


def test_behind_camera_is_nan_and_shapes_kept():
    K = np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]])
    X = np.array([[[0.0, 0, 2], [0, 0, -2]], [[0, 0, 0], [1, 1, 5]]])  # (2, 2, 3)
    out = project_points(X, K, np.zeros(3), np.zeros(3))
    assert out.shape == (2, 2, 2)
    assert np.allclose(out[0, 0], [320, 240]) and np.isnan(out[0, 1]).all() and np.isnan(out[1, 0]).all()
    assert np.allclose(out[1, 1], [420, 340])
    assert np.isfinite(project_points(X, K, np.zeros(3), np.zeros(3), nan_behind=False)[0, 1]).all()
    assert np.allclose(camera_depths(X, np.zeros(3), np.zeros(3)), X[..., 2])


def test_skew_is_applied():
    K = np.array([[500.0, 7.0, 320], [0, 400, 240], [0, 0, 1]])
    out = project_points(np.array([0.2, 0.4, 2.0]), K, np.zeros(3), np.zeros(3))
    assert np.allclose(out, [500 * 0.1 + 7 * 0.2 + 320, 400 * 0.2 + 240])


@pytest.mark.parametrize("fisheye,n_dist", [(False, 5), (False, 8), (False, 14), (True, 4)])
def test_undistort_inverts_distortion(fisheye, n_dist):
    rng = np.random.default_rng(4)
    K, d, _, _ = random_camera(rng, n_dist, scale=0.04, fisheye=fisheye)
    xy = rng.uniform(-0.5, 0.5, (200, 2))
    xy[0] = [0.0, 0.0]
    ideal = np.c_[K[0, 0] * xy[:, 0] + K[0, 2], K[1, 1] * xy[:, 1] + K[1, 2]]
    xyd = distort_normalized(xy, d, fisheye)
    distorted = np.c_[K[0, 0] * xyd[:, 0] + K[0, 2], K[1, 1] * xyd[:, 1] + K[1, 2]]
    assert np.abs(undistort_points(distorted, K, d, fisheye) - ideal).max() < 1e-6
    assert np.abs(undistort_points(distorted, K, d, fisheye, output="normalized") - xy).max() < 1e-9


def test_undistort_more_accurate_than_cv2_default_and_matches_iterated_cv2():
    K = np.array([[770.0, 0, 639.5], [0, 770, 511.5], [0, 0, 1]])
    d = np.array([-0.29, 0, 0, 0, 0])
    xy = np.array([[0.5, 0.4], [-0.4, 0.3], [0.1, -0.2]])
    px_d = K[:2, :2] @ distort_normalized(xy, d).T
    px_d = px_d.T + K[:2, 2]
    ideal = (K[:2, :2] @ xy.T).T + K[:2, 2]
    ours = undistort_points(px_d, K, d)
    assert np.abs(ours - ideal).max() < 1e-6
    crit = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 200, 1e-12)
    cv_iter = cv2.undistortPoints(px_d[:, None], K, d, R=np.eye(3), P=K, criteria=crit).reshape(-1, 2)
    assert np.abs(cv_iter - ours).max() < 1e-4
    cv_default = cv2.undistortPoints(px_d[:, None], K, d, P=K).reshape(-1, 2)
    assert np.abs(cv_default - ideal).max() > np.abs(ours - ideal).max()


def test_undistort_outside_invertible_region_is_nan():
    # k1 = -0.29: r_d = r (1 + k1 r^2) peaks at r_d ~ 0.715, so r_d = 1.0 has no preimage.
    K = np.array([[770.0, 0, 639.5], [0, 770, 511.5], [0, 0, 1]])
    d = np.array([-0.29, 0, 0, 0, 0])
    px = np.array([[639.5 + 770 * 1.0, 511.5], [np.nan, 3.0], [700.0, 600.0]])
    out = undistort_points(px, K, d)
    assert np.isnan(out[0]).all() and np.isnan(out[1]).all() and np.isfinite(out[2]).all()
    assert np.allclose(undistort_points(px[2:], K, None), px[2:])


def test_normalize_distortion():
    assert normalize_distortion(None).shape == (5,)
    assert normalize_distortion([0.1, 0.2, 0, 0]).shape == (5,)
    assert normalize_distortion(np.zeros((1, 8))).shape == (8,)
    assert normalize_distortion(np.ones(9)).shape == (12,)
    assert normalize_distortion([0.1], fisheye=True).tolist() == [0.1, 0, 0, 0]
    with pytest.raises(ValueError, match="at most 14"):
        normalize_distortion(np.zeros(15))
    with pytest.raises(ValueError, match="fisheye camera takes 4"):
        normalize_distortion(np.zeros(5), fisheye=True)
    with pytest.raises(ValueError, match="NaN"):
        normalize_distortion([np.nan, 0, 0, 0, 0])


def test_rodrigues_matches_cv2_including_edge_angles():
    rng = np.random.default_rng(5)
    axes = rng.normal(0, 1, (300, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    angles = np.r_[rng.uniform(0, np.pi, 200), np.full(50, 1e-9), np.full(50, np.pi - 1e-6)]
    rvecs = axes * angles[:, None]
    Rs = rodrigues_to_matrix(rvecs)
    for rv, R in zip(rvecs, Rs, strict=True):
        assert np.abs(cv2.Rodrigues(rv)[0] - R).max() < 1e-12
    back = matrix_to_rodrigues(Rs)
    assert np.abs(rodrigues_to_matrix(back) - Rs).max() < 1e-12
    assert np.abs(back[:250] - rvecs[:250]).max() < 1e-9
    ref = np.stack([cv2.Rodrigues(R)[0].ravel() for R in Rs[:200]])
    assert np.abs(ref - back[:200]).max() < 1e-7
    assert np.allclose(matrix_to_rodrigues(np.eye(3)), 0)
    assert np.isclose(np.linalg.norm(matrix_to_rodrigues(np.diag([1.0, -1, -1]))), np.pi)
    with pytest.raises(ValueError, match="reflection"):
        matrix_to_rodrigues(np.diag([1.0, 1, -1]))


# ------------------------------------------------------------------------------------------------ torch


@pytest.mark.parametrize("n_dist,fisheye", [(5, False), (8, False), (14, False), (4, True), (0, False)])
def test_torch_projection_equals_numpy(n_dist, fisheye):
    rng = np.random.default_rng(6)
    B, N = 3, 25
    cams = [random_camera(rng, n_dist, fisheye=fisheye) for _ in range(B)]
    X = rng.normal(0, 1.5, (B, N, 3))
    ref = np.stack(
        [
            project_points(X[b], K, rv, tv, d if n_dist else None, fisheye)
            for b, (K, d, rv, tv) in enumerate(cams)
        ]
    )
    Kt = torch.tensor(np.stack([c[0] for c in cams]))
    Rt = torch.tensor(rodrigues_to_matrix(np.stack([c[2] for c in cams])))
    tt = torch.tensor(np.stack([c[3] for c in cams]))
    dt = torch.tensor(np.stack([c[1] for c in cams])) if n_dist else None
    out, depth = project_points_torch(torch.tensor(X), Kt, Rt, tt, dt, fisheye=fisheye, return_depth=True)
    assert out.shape == (B, N, 2) and out.dtype == torch.float64
    assert np.abs(out.numpy() - ref).max() < 1e-6
    assert depth.shape == (B, N) and (depth > 0).all()
    # single camera, unbatched points
    single = project_points_torch(
        torch.tensor(X[0]), Kt[0], Rt[0], tt[0], None if dt is None else dt[0], fisheye=fisheye
    )
    assert single.shape == (N, 2) and np.abs(single.numpy() - ref[0]).max() < 1e-6
    # float32 agrees to float32 precision
    out32 = project_points_torch(torch.tensor(X, dtype=torch.float32), Kt, Rt, tt, dt, fisheye=fisheye)
    assert out32.dtype == torch.float32 and np.abs(out32.double().numpy() - ref).max() < 5e-2


def test_torch_projection_broadcasts_cameras_over_points():
    rng = np.random.default_rng(7)
    K, d, rv, tv = random_camera(rng)
    X = torch.tensor(rng.normal(0, 1, (4, 10, 3)))
    out = project_points_torch(
        X, torch.tensor(K), torch.tensor(rodrigues_to_matrix(rv)), torch.tensor(tv), torch.tensor(d)
    )
    assert out.shape == (4, 10, 2)
    assert np.abs(out.numpy() - project_points(X.numpy(), K, rv, tv, d)).max() < 1e-6


def test_torch_projection_gradients():
    rng = np.random.default_rng(8)
    K, d, rv, tv = random_camera(rng, 8)
    X = torch.tensor(rng.normal(0, 1, (5, 3)), requires_grad=True)
    rvec = torch.tensor(rv, requires_grad=True)
    dist = torch.tensor(d, requires_grad=True)

    def f(X, rvec, dist):
        return project_points_torch(
            X, torch.tensor(K), rodrigues_to_matrix_torch(rvec), torch.tensor(tv), dist
        )

    assert torch.autograd.gradcheck(f, (X, rvec, dist))
    # behind the camera: finite values and gradients (masked by depth)
    Xb = torch.tensor([[0.0, 0.0, -20.0], [0.1, 0.2, -30.0]], dtype=torch.float64, requires_grad=True)
    out, z = project_points_torch(
        Xb,
        torch.tensor(K),
        torch.eye(3, dtype=torch.float64),
        torch.tensor(tv),
        torch.tensor(d),
        return_depth=True,
    )
    out.sum().backward()
    assert (z <= 0).all() and torch.isfinite(out).all() and torch.isfinite(Xb.grad).all()


def test_rodrigues_torch_matches_numpy_and_is_smooth_at_zero():
    rng = np.random.default_rng(9)
    rv = rng.normal(0, 1, (20, 3))
    assert np.abs(rodrigues_to_matrix_torch(torch.tensor(rv)).numpy() - rodrigues_to_matrix(rv)).max() < 1e-12
    z = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    rodrigues_to_matrix_torch(z).sum().backward()
    assert torch.isfinite(z.grad).all()
    assert torch.autograd.gradcheck(
        rodrigues_to_matrix_torch,
        (torch.tensor([1e-5, -2e-5, 3e-6], requires_grad=True, dtype=torch.float64),),
    )


def test_undistort_rejects_mirrored_root_beyond_barrel_fold():
    """With strong single-k1 barrel distortion the image corners have a point-mirrored second root; it must be NaN."""
    K = np.array([[1000.0, 0, 640], [0, 1000.0, 512], [0, 0, 1]])
    dist = np.array([-0.30195982, 0, 0, 0, 0])
    corners = np.array([[-0.5, -0.5], [1279.5, 1023.5], [640.0, -0.5]])
    from napari_smil_mv.cameras import undistort_points

    xy = undistort_points(corners, K, dist, output="normalized")
    assert np.isnan(xy[:2]).all()
    # the mid-edge point is invertible and round-trips
    assert np.isfinite(xy[2]).all()
    back = project_points(np.append(xy[2], 1.0)[None], K, np.zeros(3), np.zeros(3), dist)
    np.testing.assert_allclose(back[0], corners[2], atol=1e-6)
