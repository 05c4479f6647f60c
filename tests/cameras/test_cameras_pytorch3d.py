"""OpenCV <-> PyTorch3D FoV camera conversion, checked against an independent implementation of
PyTorch3D's projection (FoV projection matrix + NDC-to-screen transform, upstream facts section 2.2)."""

import numpy as np
import pytest
import torch

from napari_smil_mv.cameras import (
    Camera,
    camera_from_pytorch3d,
    camera_to_pytorch3d,
    opencv_to_pytorch3d_torch,
    rig_to_pytorch3d,
    ring_of_cameras,
)


def p3d_screen(points, R, T, fov_y_deg, aspect, image_hw):
    """PyTorch3D FoVPerspectiveCameras.transform_points_screen, written out (row vectors, xy-flip)."""
    h, w = image_hw
    view = points @ R + T
    tan_half = np.tan(np.radians(fov_y_deg) / 2)
    x_ndc = view[:, 0] / (view[:, 2] * aspect * tan_half)
    y_ndc = view[:, 1] / (view[:, 2] * tan_half)
    s = min(h, w) / 2.0
    return np.stack([w / 2.0 - s * x_ndc, h / 2.0 - s * y_ndc], -1)


def centred_camera(size, fx=700.0, fy=720.0, cx=None, cy=None):
    w, h = size
    cx = w / 2.0 if cx is None else cx
    cy = h / 2.0 if cy is None else cy
    return Camera("c", [[fx, 0, cx], [0, fy, cy], [0, 0, 1]], None, [0.3, -0.2, 0.1], [0.1, -0.2, 4.0], size)


def points_in_front(cam, n=30):
    rng = np.random.default_rng(0)
    return cam.center + (cam.R.T @ np.array([0, 0, 4.0])) + rng.normal(0, 0.7, (n, 3))


@pytest.mark.parametrize("size", [(512, 512), (640, 480), (480, 640)])
def test_p3d_projection_equals_ours_with_centred_principal_point(size):
    w, h = size
    cam = centred_camera(size)  # cx = W/2, cy = H/2: the numbers SMILify compares
    X = points_in_front(cam)
    p = camera_to_pytorch3d(cam)
    assert p["image_size"] == (h, w)
    screen = p3d_screen(X, p["R"], p["T"], p["fov_y_deg"], p["aspect_ratio"], p["image_size"])
    assert np.abs(screen - cam.project(X)).max() < 1e-9
    # half-pixel convention: p3d pixel centres at i + 0.5, ours at integers -> ours = screen - 0.5 for a
    # camera whose principal point is the image centre in our convention, ((W-1)/2, (H-1)/2).
    ours = centred_camera(size, cx=(w - 1) / 2, cy=(h - 1) / 2)
    assert np.abs((screen - 0.5) - ours.project(X)).max() < 1e-9
    assert np.allclose(camera_to_pytorch3d(ours)["principal_point_offset"], 0)
    assert np.allclose(p["principal_point_offset"], [0.5, 0.5])


def test_smilify_formulas_equal_for_square_and_differ_otherwise():
    sq = centred_camera((512, 512))
    a, b = camera_to_pytorch3d(sq), camera_to_pytorch3d(sq, convention="smilify")
    fx, fy = 700.0, 720.0
    assert np.isclose(b["fov_y_deg"], np.degrees(2 * np.arctan(512 / (2 * fy))))  # facts 2.3
    assert np.isclose(b["aspect_ratio"], (512 * fy) / (512 * fx))
    assert np.isclose(a["fov_y_deg"], b["fov_y_deg"]) and np.isclose(a["aspect_ratio"], b["aspect_ratio"])
    wide = centred_camera((640, 480))
    s = camera_to_pytorch3d(wide, convention="smilify")
    assert np.isclose(s["aspect_ratio"], (640 * fy) / (480 * fx))
    X = points_in_front(wide)
    off = p3d_screen(X, s["R"], s["T"], s["fov_y_deg"], s["aspect_ratio"], s["image_size"]) - wide.project(X)
    assert np.abs(off[:, 0]).max() > 1.0  # x is scaled by H/W relative to the true projection
    with pytest.raises(ValueError, match="convention"):
        camera_to_pytorch3d(wide, convention="opengl")


def test_extrinsic_formulas_and_inverse():
    cam = centred_camera((640, 480))
    p = camera_to_pytorch3d(cam)
    D = np.diag([-1.0, -1, 1])
    assert np.allclose(p["R"], cam.R.T @ D) and np.allclose(p["T"], D @ cam.tvec)
    assert np.allclose(D @ p["R"].T, cam.R) and np.allclose(D @ p["T"], cam.tvec)


@pytest.mark.parametrize("convention", ["pytorch3d", "smilify"])
@pytest.mark.parametrize("size", [(512, 512), (640, 480), (300, 700)])
def test_round_trips(size, convention):
    w, h = size
    cam = centred_camera(size, cx=(w - 1) / 2, cy=(h - 1) / 2)
    p = camera_to_pytorch3d(cam, convention)
    back = camera_from_pytorch3d(
        p["R"], p["T"], p["fov_y_deg"], p["aspect_ratio"], p["image_size"], "c", convention
    )
    assert back.isclose(cam, atol=1e-9)
    # p3d -> ours -> p3d, with torch inputs
    back2 = camera_to_pytorch3d(
        camera_from_pytorch3d(
            torch.tensor(p["R"])[None],
            torch.tensor(p["T"]),
            torch.tensor(p["fov_y_deg"]),
            p["aspect_ratio"],
            p["image_size"],
            "x",
            convention,
        ),
        convention,
    )
    for key in ("R", "T", "fov_y_deg", "aspect_ratio"):
        assert np.allclose(back2[key], p[key], atol=1e-12)


def test_conversion_drops_principal_point_and_distortion():
    cam = Camera(
        "c",
        [[700.0, 0, 300.0], [0, 700, 260.0], [0, 0, 1]],
        [-0.1, 0, 0, 0, 0],
        [0.1, 0.2, 0.3],
        [0, 0, 3.0],
        (640, 480),
    )
    p = camera_to_pytorch3d(cam)
    assert np.allclose(p["principal_point_offset"], [300 - 319.5, 260 - 239.5])
    back = camera_from_pytorch3d(p["R"], p["T"], p["fov_y_deg"], p["aspect_ratio"], p["image_size"], "c")
    assert np.allclose(back.matrix[:2, 2], [319.5, 239.5]) and not back.has_distortion


def test_torch_conversion_matches_numpy_and_is_differentiable():
    rig = ring_of_cameras(3, image_size=(640, 480), principal_point_offset=(3, -2))
    batch = rig_to_pytorch3d(rig, dtype=torch.float64)
    assert (
        batch["R"].shape == (3, 3, 3) and batch["fov"].shape == (3,) and batch["image_size"][0] == (480, 640)
    )
    R = torch.tensor(np.stack([c.R for c in rig]), requires_grad=True)
    t = torch.tensor(np.stack([c.tvec for c in rig]))
    K = torch.tensor(np.stack([c.matrix for c in rig]), requires_grad=True)
    out = opencv_to_pytorch3d_torch(R, t, K, (640, 480))
    for key, bkey in (("R", "R"), ("T", "T"), ("fov_y_deg", "fov"), ("aspect_ratio", "aspect_ratio")):
        assert torch.allclose(out[key], batch[bkey])
    (out["fov_y_deg"].sum() + out["R"].sum()).backward()
    assert torch.isfinite(K.grad).all() and K.grad[:, 1, 1].abs().min() > 0
    assert np.allclose(batch["principal_point_offset"], [[3, -2]] * 3)


def test_fov_perspective_cameras_needs_pytorch3d_or_matches():
    from napari_smil_mv.cameras import fov_perspective_cameras

    rig = ring_of_cameras(2, image_size=(256, 256))
    try:
        import pytorch3d  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="PyTorch3D is not installed"):
            fov_perspective_cameras(rig)
        return
    cams = fov_perspective_cameras(rig)
    X = torch.tensor(points_in_front(rig[0]), dtype=torch.float32)
    screen = cams[0].transform_points_screen(X[None], image_size=((256, 256),))[0, :, :2].double().numpy()
    assert np.abs(screen - 0.5 - rig[0].project(X.double().numpy())).max() < 1e-2
