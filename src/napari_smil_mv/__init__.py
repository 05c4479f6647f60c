"""napari-smil-mv: fit SMIL parametric animal body models to calibrated multi-camera recordings.

The computational core (``body``, ``cameras``, ``sessions``, ``fitting``, ...) never imports Qt or napari;
napari code lives in :mod:`napari_smil_mv.napari`.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
