"""Opening a video probes frame 0 once (our OpenCV reader) and hands it to the first read: the same shape, channels
and frames as sleap-io's own probe, without its second decode and seek."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from napari_smil_mv.sessions.video import LazyVideo, SequentialReader


@pytest.fixture(params=["colour", "grayscale"])
def video_path(request, shared):
    if request.param == "colour":
        return shared("external", "sleap-anipose", "minimal_session", "back", "minimal_back.mp4")
    return shared("external", "sleap-multiview", "videos", "min_session_backL.mp4")


def test_probe_matches_sleap_io(video_path):
    import sleap_io as sio

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = sio.load_video(str(video_path))
        ref_shape = tuple(int(s) for s in ref.shape)
    video = LazyVideo(video_path, 1, (8, 8), name="cam")
    assert video.shape == ref_shape and ref_shape[3] in (1, 3)
    reader = video._reader
    assert isinstance(reader, SequentialReader) and reader.channels == ref_shape[3]
    assert reader._probed is not None  # frame 0 waits for the first read
    for i in (0, 1, 2, 0):
        np.testing.assert_array_equal(video.frame(i), np.asarray(ref[i]))
    assert reader._probed is None and reader.n_seeks == 1  # only the jump back to 0 sought
    np.testing.assert_array_equal(np.asarray(video._video[3]), video.frame(3))  # sleap-io's fallback agrees
    video.close()
    ref.close()


def test_probe_refuses_a_non_video(tmp_path):
    bad = tmp_path / "not_a_video.mp4"
    bad.write_bytes(b"\x00" * 64)
    assert SequentialReader(bad, 3).probe() is None
    with pytest.warns(UserWarning, match="could not be opened|no readable frames"):
        video = LazyVideo(bad, 5, (16, 8), name="cam")
        assert video.shape == (5, 8, 16, 1)
    assert video.frame(0).shape == (8, 16, 1) and not video.exists
