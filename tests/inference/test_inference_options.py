"""InferOptions: validation names the option, the frame range selects rows of the session's frame axis."""

import numpy as np
import pytest

from napari_smil_mv.inference import InferOptions


def test_frame_range_selects_video_frames():
    frames = np.array([10, 11, 12, 20, 21])
    assert InferOptions().frame_rows(frames) is None
    assert InferOptions(frame_start=11, frame_stop=21).frame_rows(frames).tolist() == [1, 2, 3]
    assert InferOptions(frame_stop=12).frame_rows(frames).tolist() == [0, 1]
    with pytest.raises(ValueError, match="select none"):
        InferOptions(frame_start=100).frame_rows(frames)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"refine_iterations": 0}, "refine_iterations"),
        ({"frame_start": 5, "frame_stop": 5}, "frame_stop"),
        ({"animal": " "}, "animal"),
        ({"exclude_cameras": ("a", "")}, "exclude_cameras"),
    ],
)
def test_bad_options_are_named(kwargs, name):
    with pytest.raises(ValueError, match=name):
        InferOptions(**kwargs).validate()


def test_refine_iterations_set_the_last_stage():
    assert InferOptions().fit_config() is None
    assert InferOptions(refine_iterations=7).fit_config().stages[-1].iterations == 7
    assert InferOptions(exclude_cameras=("b", "a", "b")).validate().exclude_cameras == ("b", "a")
