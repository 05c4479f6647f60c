"""Crop boxes, camera-matrix adjustment and the undistort-crop-resize of images (geometry agrees with K)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_smil_mv.cameras import Camera
from napari_smil_mv.dataset.crops import (
    ViewRenderer,
    crop_box_for,
    crop_matrix,
    crop_points,
    uncrop_points,
)
from napari_smil_mv.dataset.plan import filter_3d_outliers

W, H = 320, 240


def _camera(dist=(-0.25, 0.08, 0.001, -0.002, 0.0)) -> Camera:
    return Camera(
        "c", [[300, 0, 163.2], [0, 295, 118.7], [0, 0, 1]], dist, [0.1, 0.2, 0.3], [1, 2, 300], (W, H)
    )


def test_crop_boxes():
    assert crop_box_for("default", (W, H)) == (0, 0, W, H)
    assert crop_box_for("centred", (W, H)) == (40, 0, 240, 240)
    pts = np.array([[100.0, 100.0], [140.0, 120.0], [np.nan, np.nan]])
    x0, y0, w, h = crop_box_for("bbox_crop", (W, H), pts, bbox_scale=1.5)
    assert w == h == pytest.approx(60.0)
    assert (x0 + w / 2, y0 + h / 2) == pytest.approx((120.5, 110.5))  # centre, pixel-edge coordinates
    # near the border: moved inside, still square
    x0, y0, w, h = crop_box_for("bbox_crop", (W, H), np.array([[2.0, 5.0], [30.0, 40.0]]), bbox_scale=2.0)
    assert w == h and x0 == 0 and y0 == 0
    # larger than the image: square and padded (not clamped to a non-square box)
    x0, y0, w, h = crop_box_for("bbox_crop", (W, H), np.array([[10.0, 10.0], [300.0, 230.0]]), bbox_scale=1.2)
    assert w == h > H and y0 < 0
    # no keypoints: centred fallback; unknown mode: error naming the modes
    assert crop_box_for("bbox_crop", (W, H), np.full((3, 2), np.nan)) == (40, 0, 240, 240)
    with pytest.raises(ValueError, match="bbox_crop"):
        crop_box_for("tight", (W, H))


@pytest.mark.parametrize("box", [(0, 0, W, H), (40, 0, 240, 240), (50.3, -20.7, 310.0, 310.0)])
def test_crop_matrix_matches_crop_points(box):
    cam = _camera(dist=(0, 0, 0, 0, 0))
    rng = np.random.default_rng(0)
    X = rng.uniform(-40, 40, (20, 3))
    px = cam.project(X)
    k = crop_matrix(cam.matrix, box, 64)
    xc = cam.world_to_camera(X)
    proj = (xc @ k.T)[:, :2] / xc[:, 2:]
    np.testing.assert_allclose(proj, crop_points(px, box, 64), atol=1e-9)
    np.testing.assert_allclose(uncrop_points(crop_points(px, box, 64), box, 64), px, atol=1e-9)
    # the default crop equals Camera.resized (same half-pixel convention)
    if box == (0, 0, W, H):
        np.testing.assert_allclose(k, cam.resized((64, 64)).matrix, atol=1e-12)


@pytest.mark.parametrize("mode", ["default", "centred", "bbox_crop"])
@pytest.mark.parametrize("size", [32, 96])
def test_rendered_image_matches_keypoint_transform(mode, size):
    """A bright blob drawn at a distorted pixel lands where the undistorted, cropped keypoint says."""
    cam = _camera()
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:H, 0:W]
    renderer = ViewRenderer(cam, size)
    for _ in range(3):
        X = np.array([rng.uniform(-60, 60), rng.uniform(-40, 40), 0.0])
        pd = cam.project(X)
        img = (255 * np.exp(-((xx - pd[0]) ** 2 + (yy - pd[1]) ** 2) / (2 * 4.0**2))).astype(np.uint8)
        und = cam.undistort_points(pd)
        box = crop_box_for(mode, (W, H), und[None] + rng.normal(0, 30, (6, 2)))
        out = renderer.render(np.dstack([img] * 3), box)[..., 0].astype(float)
        assert out.shape == (size, size)
        wgt = np.clip(out - 0.05 * out.max(), 0, None)
        oy, ox = np.mgrid[0:size, 0:size]
        centroid = np.array([(wgt * ox).sum(), (wgt * oy).sum()]) / wgt.sum()
        expected = crop_points(und, box, size)
        assert np.linalg.norm(centroid - expected) < 0.25
        # and the adjusted K projects the 3D point there (ideal pinhole)
        k = crop_matrix(cam.matrix, box, size)
        xc = cam.world_to_camera(X)
        np.testing.assert_allclose((k @ xc)[:2] / xc[2], expected, atol=1e-6)


def test_renderer_pads_outside_and_checks_size():
    cam = _camera(dist=(0, 0, 0, 0, 0))
    frame = np.full((H, W, 3), 200, np.uint8)
    out = ViewRenderer(cam, 32).render(frame, (-W, -H, 2 * W, 2 * W))  # image in the bottom-right quarter
    assert out[0, 0].max() == 0 and out[-10, 20].min() == 200
    gray = ViewRenderer(cam, 16).render(np.full((H, W, 1), 7, np.uint8), (0, 0, W, H))
    assert gray.shape == (16, 16, 3) and np.all(gray == 7)
    with pytest.raises(ValueError, match="calibration says 320x240"):
        ViewRenderer(cam, 16).render(np.zeros((100, 100, 3), np.uint8), (0, 0, W, H))


def test_outlier_filter():
    rng = np.random.default_rng(0)
    pts = rng.normal(0, 1, (20, 3))
    pts[3] = (80, 0, 0)  # far away
    pts[5] = 0  # (0, 0, 0) sentinel = missing
    pts[7] = np.nan
    valid = filter_3d_outliers(pts)
    assert not valid[3] and not valid[5] and not valid[7]
    assert valid.sum() == 17
    assert filter_3d_outliers(np.ones((3, 3))).all()  # no spread: nothing removed
