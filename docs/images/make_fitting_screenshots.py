"""Screenshots of docs/fitting.md: the SMILy mouse fitted to the real sleap-anipose minimal_session in napari.

Run from the repository root under a display (``xvfb-run -a python docs/images/make_fitting_screenshots.py
[OUTDIR] [FRAME]``); needs ../shared (the session and the model). Writes ``fitting_mouse_cameras.png`` (each
camera zoomed on the mouse: video, fitted mesh, data keypoints, fitted keypoints coloured by error) and
``fitting_mouse_world.png`` (world view: cameras and the fitted mouse; the mouse close up: mesh, joints coloured by
their reprojection error, skeleton).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
SESSION = SHARED / "external" / "sleap-anipose" / "minimal_session"
MODEL = SHARED / "models" / "SMILy_Mouse_static_joints.pkl"
JOINT_MAP = REPO / "examples" / "minimal_session_mouse_joint_lookup.csv"


def _save(img: np.ndarray, path: Path, max_bytes: int = 300_000) -> None:
    """Write ``img`` (RGB) as PNG or JPEG (by suffix), downscaled until it is under ``max_bytes``."""
    import cv2

    bgr = np.ascontiguousarray(img[..., :3][..., ::-1])
    params = [cv2.IMWRITE_JPEG_QUALITY, 88] if path.suffix == ".jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 9]
    while True:
        ok, buf = cv2.imencode(path.suffix, bgr, params)
        if ok and len(buf) <= max_bytes:
            path.write_bytes(buf.tobytes())
            return
        bgr = cv2.resize(
            bgr, (int(bgr.shape[1] * 0.9), int(bgr.shape[0] * 0.9)), interpolation=cv2.INTER_AREA
        )


def main(outdir: Path, frame: int) -> None:
    import napari
    from napari_smil_mv import api
    from napari_smil_mv.napari.scripting import meta

    warnings.simplefilter("ignore")
    viewer = napari.Viewer(show=False)
    viewer.window.resize(760, 640)
    viewer.window._qt_window.grab()  # a hidden viewer renders black screenshots without one grab
    session = api.load_session(viewer, SESSION)
    results = api.fit_session(viewer, MODEL, JOINT_MAP)
    verdicts = {c["name"]: c for c in results.provenance["cameras"]}
    api.set_frame(viewer, frame)
    for layer in api.session_layers(viewer, role="reprojection"):
        layer.visible = False

    # per camera: only its layers, zoomed on the mouse
    viewer.canvas.grid.enabled = False
    overlay = viewer.canvas.overlays.text
    overlay.visible, overlay.font_size, overlay.color = True, 14, "white"
    tiles = []
    for cam in session.camera_names:
        for layer in api.session_layers(viewer):
            m = meta(layer)
            if m.get("camera") is not None:
                layer.visible = m["camera"] == cam and m["role"] != "reprojection"
        kp = api.session_layers(viewer, role="kp_pred", camera=cam)[0]
        pts = kp.data[kp.data[:, 0] == frame][:, 1:]
        lo, hi = pts.min(0), pts.max(0)
        size = max(float((hi - lo).max()) * 1.5, 220.0)
        viewer.scene.camera.center = (0.0, *((lo + hi) / 2))
        viewbox = np.asarray(viewer.canvas.viewbox_size(viewer.layers), float)
        viewer.scene.camera.zoom = float(np.min(viewbox / size))
        v = verdicts[cam]
        state = "used" if v["used"] else "NOT used: inconsistent"
        overlay.text = f"{cam}: {v['fit_median_px']:.1f} px, {state}"
        viewer.screenshot(canvas_only=True)
        tiles.append(viewer.screenshot(canvas_only=True)[..., :3])
    h, w = min(t.shape[0] for t in tiles), min(t.shape[1] for t in tiles)
    tiles = [t[:h, :w] for t in tiles]
    gap = np.zeros((h, 6, 3), np.uint8)
    rows = [np.concatenate([tiles[i], gap, tiles[i + 1]], 1) for i in range(0, len(tiles), 2)]
    grid = np.concatenate([rows[0], np.zeros((6, rows[0].shape[1], 3), np.uint8), rows[1]], 0)
    _save(grid, outdir / "fitting_mouse_cameras.jpg")

    # world view: overview with the cameras, and the animal close up
    overlay.text = ""
    for layer in api.session_layers(viewer):
        if meta(layer).get("camera") is not None:
            layer.visible = True
    api.set_layout(viewer, "world")
    for layer in api.session_layers(viewer, role=("points3d", "skeleton3d")):
        layer.visible = False
    shown = api.session_layers(viewer, role=("frustums", "camera_names")) + api.results_layers(
        viewer, "mesh_world"
    )
    api.fit_view(viewer, shown, margin=0.35)  # room for the camera labels
    viewer.screenshot(canvas_only=True)
    overview = viewer.screenshot(canvas_only=True)[..., :3]
    for layer in api.session_layers(viewer, role=("frustums", "camera_names")):
        layer.visible = False
    api.fit_view(viewer, api.results_layers(viewer, "mesh_world"), margin=0.15)
    viewer.screenshot(canvas_only=True)
    close = viewer.screenshot(canvas_only=True)[..., :3]
    h = min(overview.shape[0], close.shape[0])
    world = np.concatenate([overview[:h], np.full((h, 6, 3), 60, np.uint8), close[:h]], 1)
    _save(world, outdir / "fitting_mouse_world.png")
    print(results.provenance["cameras"])
    viewer.close()


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent
    main(out, int(sys.argv[2]) if len(sys.argv) > 2 else 60)
