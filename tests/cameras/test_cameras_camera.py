"""Camera / CameraRig model: validation, geometry, copies, aniposelib conversion."""

import cv2
import numpy as np
import pytest

from napari_smil_mv.cameras import Camera, CameraRig, ring_of_cameras, rodrigues_to_matrix

K = np.array([[800.0, 0, 319.5], [0, 780.0, 239.5], [0, 0, 1]])


def make(name="c", dist=(-0.1, 0.02, 0.001, -0.002, 0.0), rvec=(0.1, -0.2, 0.3), tvec=(0.1, 0.2, 3.0), **kw):
    return Camera(name, K.copy(), dist, np.array(rvec), np.array(tvec), (640, 480), **kw)


def test_validation_names_camera_and_field():
    with pytest.raises(ValueError, match=r"camera 'c1': matrix must have shape \(3, 3\)"):
        Camera("c1", np.eye(2), None, np.zeros(3), np.zeros(3), (10, 10))
    with pytest.raises(ValueError, match="camera 'c1': matrix must have positive focal"):
        Camera("c1", np.diag([0.0, 1, 1]), None, np.zeros(3), np.zeros(3), (10, 10))
    with pytest.raises(ValueError, match="camera 'c1': matrix must have the form"):
        Camera("c1", np.array([[1.0, 0, 0], [0, 1, 0], [0, 1, 1]]), None, np.zeros(3), np.zeros(3), (10, 10))
    with pytest.raises(ValueError, match="camera 'c1': rvec must have shape"):
        Camera("c1", K, None, np.zeros(4), np.zeros(3), (10, 10))
    with pytest.raises(ValueError, match="camera 'c1': tvec contains NaN"):
        Camera("c1", K, None, np.zeros(3), [0, np.nan, 0], (10, 10))
    with pytest.raises(ValueError, match="camera 'c1': dist: OpenCV distortion takes at most 14"):
        Camera("c1", K, np.zeros(20), np.zeros(3), np.zeros(3), (10, 10))
    with pytest.raises(ValueError, match="camera 'c1': size"):
        Camera("c1", K, None, np.zeros(3), np.zeros(3), (640,))
    with pytest.raises(ValueError, match="camera 'c1': size"):
        Camera("c1", K, None, np.zeros(3), np.zeros(3), (640, -1))
    with pytest.raises(ValueError, match="non-empty string"):
        Camera("", K, None, np.zeros(3), np.zeros(3), (10, 10))


def test_normalises_inputs():
    cam = Camera("c", K.tolist(), [0.1, 0.2, 0, 0], np.zeros((3, 1)), [[0.0, 0.0, 1.0]], (640.0, 480.0))
    assert cam.dist.shape == (5,) and cam.rvec.shape == (3,) and cam.tvec.shape == (3,)
    assert cam.size == (640, 480) and isinstance(cam.size[0], int)
    fish = make(dist=(0.1,), fisheye=True)
    assert fish.dist.shape == (4,)


def test_pose_geometry():
    cam = make()
    R = cv2.Rodrigues(cam.rvec)[0]
    assert np.allclose(cam.R, R)
    assert np.allclose(cam.center, -R.T @ cam.tvec)
    assert np.allclose(cam.world_to_camera(cam.center), 0, atol=1e-12)
    X = np.random.default_rng(0).normal(0, 0.5, (4, 6, 3))
    assert cam.world_to_camera(X).shape == (4, 6, 3)
    # projection matrix = ideal pinhole projection
    P = cam.projection_matrix
    h = np.c_[X.reshape(-1, 3), np.ones(24)] @ P.T
    assert np.allclose(h[:, :2] / h[:, 2:], cam.project(X, distort=False).reshape(-1, 2))
    assert np.allclose(cam.extrinsics[:3], np.c_[cam.R, cam.tvec])


def test_project_and_undistort_consistent():
    cam = make()
    X = np.random.default_rng(1).normal(0, 0.4, (50, 3))
    ref, _ = cv2.projectPoints(X, cam.rvec, cam.tvec, cam.matrix, cam.dist)
    assert np.abs(cam.project(X) - ref.reshape(-1, 2)).max() < 1e-6
    assert np.abs(cam.undistort_points(cam.project(X)) - cam.project(X, distort=False)).max() < 1e-6
    rays = cam.pixel_rays(cam.project(X))
    direction = X - cam.center
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    assert np.abs(rays - direction).max() < 1e-8
    behind = cam.center + 2 * (cam.center - X[:1])  # opposite side of the camera
    assert np.isnan(cam.project(behind)).all()


@pytest.mark.parametrize("dist", [None, (-0.1, 0.02, 0.001, -0.002, 0.0)])
def test_frustum_corners_project_to_image_corners(dist):
    cam = make(dist=dist)
    fr = cam.frustum(2.5)
    assert fr.shape == (5, 3) and np.allclose(fr[0], cam.center)
    assert np.allclose(cam.world_to_camera(fr[1:])[:, 2], 2.5)
    w, h = cam.size
    corners = np.array([[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]])
    assert np.abs(cam.project(fr[1:]) - corners).max() < 1e-6
    with pytest.raises(ValueError, match="depth must be positive"):
        cam.frustum(0)


def test_frustum_falls_back_to_pinhole_where_distortion_not_invertible():
    cam = Camera(
        "b",
        [[770.0, 0, 639.5], [0, 770, 511.5], [0, 0, 1]],
        [-0.29, 0, 0, 0, 0],
        np.zeros(3),
        np.zeros(3),
        (1280, 1024),
    )
    fr = cam.frustum(1.0)
    assert np.isfinite(fr).all()
    assert np.allclose(fr[1, :2], [(-0.5 - 639.5) / 770, (-0.5 - 511.5) / 770])


def test_copy_with_pose_and_equality():
    cam = make()
    c2 = cam.copy()
    assert c2 == cam and c2 is not cam
    c2.tvec[0] += 1
    assert c2 != cam and cam.tvec[0] == 0.1
    moved = cam.with_pose(center=[1.0, 2.0, 3.0])
    assert np.allclose(moved.center, [1, 2, 3]) and np.allclose(moved.rvec, cam.rvec)
    R = rodrigues_to_matrix(np.array([0.0, 0.5, 0.0]))
    rot = cam.with_pose(R=R, tvec=[0, 0, 1])
    assert (
        np.allclose(rot.R, R) and np.allclose(rot.tvec, [0, 0, 1]) and np.array_equal(rot.matrix, cam.matrix)
    )
    assert cam.with_pose(rvec=[0, 0, 0.1]).isclose(
        cam.with_pose(R=rodrigues_to_matrix(np.array([0, 0, 0.1])))
    )
    with pytest.raises(ValueError, match="not both"):
        cam.with_pose(rvec=[0, 0, 0], R=np.eye(3))
    assert cam.renamed("other").name == "other"


def test_resized_and_cropped_intrinsics():
    cam = make(dist=None)
    X = np.random.default_rng(2).normal(0, 0.3, (20, 3))
    half = cam.resized((320, 240))
    p, p2 = cam.project(X), half.project(X)
    assert np.allclose(p2, (p + 0.5) * 0.5 - 0.5)
    crop = cam.cropped(100, 50, (200, 200))
    assert crop.size == (200, 200) and np.allclose(crop.project(X), p - [100, 50])


def test_aniposelib_round_trip():
    from aniposelib.cameras import FisheyeCamera

    cam = make()
    a = cam.to_aniposelib()
    X = np.random.default_rng(3).normal(0, 0.4, (10, 3))
    assert np.abs(a.project(X).reshape(-1, 2) - cam.project(X)).max() < 1e-6
    assert Camera.from_aniposelib(a) == cam
    fish = make(dist=(0.01, 0.0, 0.0, 0.0), fisheye=True)
    fa = fish.to_aniposelib()
    assert isinstance(fa, FisheyeCamera) and Camera.from_aniposelib(fa) == fish
    assert fish.to_dict()["fisheye"] is True and "fisheye" not in cam.to_dict()


def test_rig_api():
    rig = ring_of_cameras(3, names=["b", "a", "c"], units="m")
    assert rig.names == ["b", "a", "c"] and len(rig) == 3 and "a" in rig
    assert rig["a"] is rig[1] and [c.name for c in rig] == rig.names
    sub = rig.subset(["c", "b"])
    assert sub.names == ["c", "b"] and sub.units == "m" and sub["c"] == rig["c"] and sub["c"] is not rig["c"]
    assert sub.subset([1]).names == ["b"]
    with pytest.raises(KeyError, match=r"no camera named 'x'.*\['b', 'a', 'c'\]"):
        rig["x"]
    with pytest.raises(IndexError, match="out of range"):
        rig[7]
    with pytest.raises(KeyError, match=r"\['x', 'y'\] are not in"):
        rig.require(["a", "x", "y"])
    with pytest.raises(ValueError, match="duplicated"):
        CameraRig([rig[0], rig[0].copy()])
    X = np.random.default_rng(4).normal(0, 0.2, (5, 7, 3))
    proj = rig.project(X)
    assert proj.shape == (3, 5, 7, 2) and np.allclose(proj[1], rig["a"].project(X))
    assert rig.centers.shape == (3, 3) and np.allclose(rig.centers[2], rig["c"].center)
    mm = rig.scaled(1000.0, units="mm")
    assert mm.units == "mm" and np.allclose(mm.centers, rig.centers * 1000)
    assert np.allclose(mm.project(X * 1000), proj)
    assert rig.with_units("cm").units == "cm"


def test_rig_aniposelib_round_trip_keeps_order_and_names():
    rig = ring_of_cameras(12, names=[f"cam_{i}" for i in range(12)], dist=(-0.05, 0, 0, 0, 0))
    cg = rig.to_aniposelib()
    assert cg.get_names() == rig.names
    back = CameraRig.from_aniposelib(cg)
    assert back.names == rig.names and all(a == b for a, b in zip(back, rig, strict=True))
    X = np.random.default_rng(5).normal(0, 0.2, (9, 3))
    assert np.abs(cg.project(X) - rig.project(X)).max() < 1e-6
