"""The ``demo`` application: the embedded insect, a synthetic sleap-anipose session of it, its fit and the network.

Nothing in the core packages (body, cameras, sessions, fitting, results, dataset, network, training, inference)
imports this package; the command line (``demo``, ``make-demo-session``) and napari's sample data do.

Modules
-------
pipeline
    ``napari-smil-mv demo``: model, motion, rendered frames, calibration, animation (:func:`run_demo`).
fit_step
    Its fitting part: a synthetic session fitted and evaluated against its ground truth.
network_step
    Its network part: preprocess, train, infer and refine on the synthetic session.
synthetic_session
    The synthetic session writer (``make-demo-session``).
synthetic_scene
    Cameras, motion and visibility of that session.
"""

from napari_smil_mv.demo.pipeline import DEMO_FPS, DEMO_IMAGE_SIZE, DemoEvent, run_demo

__all__ = ["DEMO_FPS", "DEMO_IMAGE_SIZE", "DemoEvent", "run_demo"]
