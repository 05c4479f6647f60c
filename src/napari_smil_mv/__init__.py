"""napari-smil-mv: fit SMIL parametric animal body models to calibrated multi-camera recordings.

The computational core (``body``, ``cameras``, ``sessions``, ``fitting``, ...) never imports Qt or napari;
napari code lives in :mod:`napari_smil_mv.napari`.
"""

import os as _os

# aniposelib 0.8 turns on JAX 64-bit mode for the whole process on its first triangulate() unless this is set;
# set it before anything can import aniposelib (see napari_smil_mv.cameras.triangulation).
_os.environ.setdefault("ANIPOSE_DISABLE_JAX_X64", "1")

__version__ = "0.1.0"

__all__ = ["__version__"]
