"""``api.set_frame`` moves to a *video* frame, also when the layers hold a frame subset that does not start at 0."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from fixtures.viewer import hidden_viewer

pytestmark = pytest.mark.gui


def test_set_frame_is_a_video_frame_with_a_frame_subset(qapp, shared):
    from napari_smil_mv import api

    path = shared("external", "sleap-anipose", "minimal_session")
    with hidden_viewer() as viewer, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        api.load_session(viewer, path, frames=slice(20, 80))
        axis = api.frame_axis(viewer)
        api.set_frame(viewer, 30)
        assert viewer.dims.point[axis] == pytest.approx(30.0)
        kp = api.session_layers(viewer, role="keypoints", camera="mid")[0]
        shown = kp.data[kp._view_indices][:, 0]
        assert shown.size and np.all(shown == 30)  # video frame 30, not the 30th frame of the subset (50)
