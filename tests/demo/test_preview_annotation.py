"""Preview annotation: a title/camera/frame header above the untouched image and a legend strip below it."""

import numpy as np
import pytest

from napari_smil_mv.rendering import annotate_preview, preview_header_height

BAND = np.array([32, 34, 40])


def test_image_is_kept_and_bands_hold_text_and_swatches():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (120, 320, 3), dtype=np.uint8)
    legend = [("fitted mesh", (70, 150, 255), "patch"), ("data", (255, 230, 60), "disc")]
    out = annotate_preview(img, "Fit: a title", "camera cam1 - frame 3", legend)
    top = preview_header_height(320)
    assert out.dtype == np.uint8 and out.shape[1:] == (320, 3) and out.shape[0] > top + 120
    assert np.array_equal(out[top : top + 120], img)
    header, strip = out[:top].astype(int), out[top + 120 :].astype(int)
    assert (np.abs(header - BAND).sum(-1) > 100).sum() > 50  # text drawn
    blue = (strip[..., 2] > 200) & (strip[..., 0] < 100)
    yellow = (strip[..., 0] > 200) & (strip[..., 1] > 200) & (strip[..., 2] < 100)
    assert blue.sum() > 20 and yellow.sum() > 10  # the swatches in their colours


def test_long_legends_wrap_and_bad_markers_are_named():
    img = np.zeros((50, 200, 3), np.uint8)
    one = annotate_preview(img, "t", legend=[("a", (255, 0, 0), "line")])
    many = annotate_preview(img, "t", legend=[(f"entry number {i}", (255, 0, 0), "cross") for i in range(6)])
    assert many.shape[0] > one.shape[0]
    assert annotate_preview(img, "t").shape[0] == preview_header_height(200) + 50  # no legend, no strip
    with pytest.raises(ValueError, match="marker"):
        annotate_preview(img, "t", legend=[("a", (1, 2, 3), "star")])
    with pytest.raises(ValueError, match="shape"):
        annotate_preview(np.zeros((5, 5)), "t")
