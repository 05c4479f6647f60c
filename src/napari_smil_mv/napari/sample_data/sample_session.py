"""napari sample data "Synthetic multi-camera session" (``File > Open Sample > SMIL multi-view``).

The session is generated offline by :func:`napari_smil_mv.demo.synthetic_session.write_synthetic_session` into a
new temporary folder (4 cameras x 30 frames, 640x480: a few seconds) and loaded like a recorded one.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from napari_smil_mv.napari.empty_text import watch_current_viewer
from napari_smil_mv.napari.layers.session_layers import LayerDataTuple, session_layer_data
from napari_smil_mv.napari.registry import register_session

SAMPLE_CAMERAS = 4
SAMPLE_FRAMES = 30


def synthetic_session_available() -> bool:
    """Whether the synthetic-session writer is installed (it ships with the package)."""
    try:
        from napari_smil_mv.demo.synthetic_session import write_synthetic_session  # noqa: F401
    except ImportError:
        return False
    return True


def make_synthetic_session_sample(
    n_cameras: int = SAMPLE_CAMERAS, n_frames: int = SAMPLE_FRAMES, seed: int = 0
) -> list[LayerDataTuple]:
    """Write a small synthetic session to a temporary folder and return its layers (cameras in a mosaic).

    Parameters
    ----------
    n_cameras, n_frames, seed
        Passed to ``write_synthetic_session``.

    Returns
    -------
    list of (data, kwargs, layer_type)
        As :func:`napari_smil_mv.napari.layers.session_layers.session_layer_data` with ``world=False`` (the
        world layers come with the first switch to the world layout); the session is registered, so
        ``napari_smil_mv.api.session_of(layer)`` returns it. The folder (``session.path``) is left in the
        system's temporary directory.
    """
    from napari_smil_mv.demo.synthetic_session import write_synthetic_session
    from napari_smil_mv.sessions import load_session

    root = Path(tempfile.mkdtemp(prefix="smil_synthetic_session_"))
    folder = write_synthetic_session(
        root / "synthetic_session", n_cameras=n_cameras, n_frames=n_frames, seed=seed
    )
    session = load_session(folder)
    sid = register_session(session)
    data = session_layer_data(session, session_id=sid, layout="mosaic", world=False)
    watch_current_viewer()  # no empty text drawn for its Points layers (napari.empty_text)
    return data
