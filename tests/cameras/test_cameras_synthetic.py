"""Synthetic cameras: look_at convention and rings of cameras."""

import numpy as np
import pytest

from napari_smil_mv.cameras import (
    intrinsics_from_fov,
    look_at,
    look_at_matrix,
    ring_of_cameras,
    rodrigues_to_matrix,
)


def test_look_at_opencv_convention():
    eye, target = np.array([0.0, -5.0, 0.0]), np.zeros(3)
    rvec, tvec = look_at(eye, target)
    R = rodrigues_to_matrix(rvec)
    assert np.allclose(R @ R.T, np.eye(3)) and np.isclose(np.linalg.det(R), 1)
    assert np.allclose(-R.T @ tvec, eye)
    assert np.allclose(R @ target + tvec, [0, 0, 5])  # target straight ahead on the optical axis
    # looking along +y with z up: world +x is image right, world +z is image up (negative image y)
    assert (R @ [1.0, 0, 0])[0] > 0.99 and (R @ [0, 0, 1.0])[1] < -0.99
    R2, t2 = look_at_matrix(eye, target)
    assert np.allclose(R2, R) and np.allclose(t2, tvec)
    with pytest.raises(ValueError, match="parallel to 'up'"):
        look_at([0, 0, 5.0], [0, 0, 0])
    with pytest.raises(ValueError, match="coincide"):
        look_at([1, 1, 1], [1, 1, 1])


def test_ring_geometry_and_image():
    rig = ring_of_cameras(
        5,
        distance=3.0,
        elevation_deg=30.0,
        image_size=(640, 480),
        fov_deg=45.0,
        target=(1.0, 2.0, 0.5),
        units="m",
    )
    assert rig.names == [f"cam{i}" for i in range(1, 6)] and rig.units == "m"
    c = rig.centers - [1.0, 2.0, 0.5]
    assert np.allclose(np.linalg.norm(c, axis=1), 3.0)
    assert np.allclose(np.degrees(np.arcsin(c[:, 2] / 3.0)), 30.0)
    az = np.round(np.degrees(np.arctan2(c[:, 1], c[:, 0])), 6) % 360
    assert np.allclose(np.sort(az), np.arange(5) * 72.0)
    for cam in rig:
        assert np.allclose(cam.project(np.array([1.0, 2.0, 0.5])), [319.5, 239.5])  # target at image centre
        above = cam.project(np.array([1.0, 2.0, 0.8]))
        assert above[1] < 239.5  # up is up in the image
        # vertical field of view: half-angle 22.5 deg reaches the top image border
        assert np.isclose(cam.matrix[1, 1], 240 / np.tan(np.radians(22.5)))


def test_ring_options():
    rig = ring_of_cameras(
        3, names=["a", "b", "c"], principal_point_offset=[[1, 2], [3, 4], [5, 6]], dist=(-0.1, 0.01, 0, 0, 0)
    )
    assert np.allclose(rig["b"].matrix[:2, 2], [319.5 + 3, 239.5 + 4])
    assert np.allclose(rig["c"].dist, [-0.1, 0.01, 0, 0, 0])
    j1, j2 = ring_of_cameras(4, seed=7), ring_of_cameras(4, seed=7)
    assert all(a == b for a, b in zip(j1, j2, strict=True))
    plain = ring_of_cameras(4)
    assert not np.allclose(j1.centers, plain.centers)
    assert not np.allclose(j1[0].matrix, plain[0].matrix)
    other_up = ring_of_cameras(4, up=(0, 1, 0))
    for cam in other_up:
        assert cam.project(np.array([0.0, 0.3, 0.0]))[1] < 239.5
    with pytest.raises(ValueError, match="2 names for 3 cameras"):
        ring_of_cameras(3, names=["a", "b"])
    assert np.allclose(intrinsics_from_fov((100, 50), 90.0), [[25, 0, 49.5], [0, 25, 24.5], [0, 0, 1]])
