"""Fit results in napari: pure layer builders (no viewer), the results reader, the fit job, and (GUI, Xvfb) the Fit
widget, per-frame meshes and opening a results file through napari.

The data: a tiny synthetic session (2 cameras x 6 frames, 192x144 px) fitted with a short configuration.
"""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest

from fixtures.viewer import hidden_viewer

pytest.importorskip("torch")

from napari_smil_mv.cameras import Camera  # noqa: E402
from napari_smil_mv.fitting import FitConfig  # noqa: E402
from napari_smil_mv.napari.jobs.fit_job import frame_rows, prepare_fit, resolve_joint_map, run_fit_job  # noqa: E402
from napari_smil_mv.napari.layers.results_layers import (  # noqa: E402
    RESULT_CAMERA_ROLES,
    RESULT_WORLD_ROLES,
    results_layer_data,
)
from napari_smil_mv.napari.layers.results_mesh import (  # noqa: E402
    STACKED_MAX_VERTEX_FRAMES,
    choose_mesh_mode,
    mesh_vertices,
    model_for_results,
    project_mesh,
    stack_frames,
    static_frame_transform,
)
from napari_smil_mv.napari.layers.styles import error_colors  # noqa: E402
from napari_smil_mv.napari.readers.results_reader import get_results_reader  # noqa: E402
from napari_smil_mv.napari.scripting import meta  # noqa: E402
from napari_smil_mv.results import write_results  # noqa: E402


def _drain(gen):
    events = []
    while True:
        try:
            events.append(next(gen))
        except StopIteration as stop:
            return events, stop.value


def _short_config(iterations: int = 25) -> FitConfig:
    cfg = FitConfig()
    cfg.stages[-1].iterations = iterations
    return cfg


@pytest.fixture(scope="module")
def tiny_session(tmp_path_factory):
    from napari_smil_mv.demo.synthetic_session import write_synthetic_session
    from napari_smil_mv.sessions import load_session

    folder = write_synthetic_session(
        tmp_path_factory.mktemp("results") / "session", n_cameras=2, n_frames=6, image_size=(192, 144)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_session(folder)


@pytest.fixture(scope="module")
def outcome(tiny_session):
    job = prepare_fit(tiny_session)
    _, out = _drain(run_fit_job(job, _short_config(), session_id="tiny"))
    return out


@pytest.fixture(scope="module")
def results_file(outcome, tmp_path_factory):
    return write_results(outcome.results, tmp_path_factory.mktemp("res") / "fit.smilmv.h5")


# ------------------------------------------------------------------------------------------ pure builders
def _cube() -> tuple[np.ndarray, np.ndarray]:
    """Unit cube (side 2, centred at 0) with outward, counter-clockwise triangles."""
    v = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=float)
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    faces = []
    for a, b, c, d in quads:
        for tri in ((a, b, c), (a, c, d)):
            n = np.cross(v[tri[1]] - v[tri[0]], v[tri[2]] - v[tri[0]])
            faces.append(tri if n @ v[list(tri)].mean(0) > 0 else tri[::-1])
    return v, np.array(faces)


def _camera_on_axis() -> Camera:
    """Looks along +z from (0, 0, -5): the cube's z = -1 face is the only one facing it."""
    K = np.array([[100.0, 0, 64], [0, 100.0, 48], [0, 0, 1]])
    return Camera("c", K, np.zeros(5), np.zeros(3), np.array([0.0, 0.0, 5.0]), (128, 96))


def test_project_mesh_keeps_front_faces_and_swaps_axes():
    v, f = _cube()
    cam = _camera_on_axis()
    rowcol, kept, value = project_mesh(v, f, cam)
    assert rowcol.dtype == np.float32 and kept.dtype == np.int32 and value.dtype == np.float32
    assert len(kept) == 2 and np.all(v[kept][..., 2] == -1)  # only the face towards the camera
    np.testing.assert_allclose(rowcol, cam.project(v)[:, ::-1], atol=1e-4)  # (x, y) -> (row, col)
    assert value[v[:, 2] == -1].min() == pytest.approx(1.0) and value[v[:, 2] == 1].max() == pytest.approx(
        0.0
    )
    _, all_kept, _ = project_mesh(v, f, cam, cull_backfaces=False)
    assert len(all_kept) == 12
    behind = v + np.array([0.0, 0.0, -5.5])  # part of the cube behind the camera
    rc, kept_behind, _ = project_mesh(behind, f, cam, cull_backfaces=False)
    assert np.all(np.isfinite(rc)) and not np.any(behind[kept_behind][..., 2] <= -5)


def test_stacking_and_mesh_mode():
    verts, faces = stack_frames(
        [np.zeros((3, 2)), np.ones((3, 2))], [np.array([[0, 1, 2]]), np.array([[0, 2, 1]])], np.array([7, 9])
    )
    assert verts.shape == (6, 3) and list(verts[:, 0]) == [7, 7, 7, 9, 9, 9]
    assert faces.tolist() == [[0, 1, 2], [3, 5, 4]]
    scale, translate = static_frame_transform(np.array([10, 20, 30]), 4, 1)
    assert scale == (1.0, 21.0, 1.0, 1.0) and translate == (0.0, 20.0, 0.0, 0.0)
    assert choose_mesh_mode(10, 100) == "stacked"
    assert choose_mesh_mode(STACKED_MAX_VERTEX_FRAMES // 100 + 1, 100) == "per_frame"
    assert choose_mesh_mode(10, 100, "per_frame") == "per_frame"
    with pytest.raises(ValueError, match="mesh_mode"):
        choose_mesh_mode(1, 1, "fast")


def test_result_layers_for_a_session(outcome):
    results, model = outcome.results, outcome.model
    data = outcome.layer_data  # built by the fit job for session id "tiny"
    roles = [kw["metadata"]["napari_smil_mv"]["role"] for _, kw, _ in data]
    cams = [kw["metadata"]["napari_smil_mv"]["camera"] for _, kw, _ in data]
    assert roles == [*RESULT_CAMERA_ROLES * 2, *RESULT_WORLD_ROLES]
    assert cams == ["cam1", "cam1", "cam2", "cam2", None, None, None]
    assert {kw["metadata"]["napari_smil_mv"]["session"] for _, kw, _ in data} == {"tiny"}
    T, V = results.n_frames, model.n_vertices

    (verts, faces, values), kw, kind = data[0]
    assert (
        kind == "surface"
        and verts.dtype == np.float32
        and kw["metadata"]["napari_smil_mv"]["mesh_mode"] == "stacked"
    )
    assert verts.shape == (T * V, 3) and values.shape == (T * V,)
    frame_of_vertex = verts[:, 0]
    assert np.array_equal(np.unique(frame_of_vertex), results.frame_indices)
    assert np.all(frame_of_vertex[faces].min(1) == frame_of_vertex[faces].max(1))  # no face spans two frames
    assert (
        0.3 * T * model.n_faces < len(faces) < 0.7 * T * model.n_faces
    )  # about half the faces face the camera
    full = mesh_vertices(results, model)
    rc, _, _ = project_mesh(full[2], model.faces, results.cameras[0])
    np.testing.assert_allclose(verts[2 * V : 3 * V, 1:], rc, atol=1e-3)

    points, kw, kind = data[1]
    assert kind == "points" and kw["symbol"] == "cross"
    feats = kw["features"]
    t = np.searchsorted(results.frame_indices, points[:, 0].astype(int))
    j = np.array([results.joint_names.index(n) for n in feats["joint"]])
    assert np.all(results.mapped[j])
    np.testing.assert_allclose(points[:, 1:], results.projections_2d[0, t, j][:, ::-1])
    np.testing.assert_allclose(feats["err_px"], results.reprojection_error[0, t, j])
    np.testing.assert_allclose(kw["face_color"], error_colors(feats["err_px"].to_numpy()))

    (wverts, wfaces, _), kw, _ = data[4]
    assert wverts.shape == (T * V, 4) and len(wfaces) == T * model.n_faces
    np.testing.assert_allclose(
        wverts[:V],
        np.column_stack([full[0, :, 2], np.full(V, results.frame_indices[0]), full[0, :, 1], full[0, :, 0]]),
        atol=1e-4,
    )
    # faces stay outward-oriented in napari's axis order (z, y, x): the closed mesh has a positive volume there
    tri = wverts[wfaces[: model.n_faces]][..., [0, 2, 3]].astype(np.float64)  # first frame, displayed axes
    volume = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6
    assert volume > 0
    joints, kw, _ = data[5]
    assert joints.shape == (T * results.n_joints, 4)
    skeleton, kw, _ = data[6]
    assert skeleton.shape == (T * (results.n_joints - 1), 2, 4)


def test_standalone_and_per_frame_layers(outcome):
    from napari.layers import Layer

    results = outcome.results
    data = results_layer_data(results, outcome.model, standalone=True, layout="mosaic", mesh_mode="per_frame")
    roles = [kw["metadata"]["napari_smil_mv"]["role"] for _, kw, _ in data]
    per_camera = ["video", "mesh_proj", "skeleton", "reprojection", "keypoints", "kp_pred"]
    assert roles == per_camera * 2 + ["frustums", "camera_names", *RESULT_WORLD_ROLES]
    assert all(kw["metadata"]["napari_smil_mv"]["layers_per_camera"] == 6 for _, kw, _ in data)
    video = data[0][0]
    assert video.shape[:3] == (6, 144, 192)
    kp = data[4][0]
    observed = results.observed_2d[0][results.observed_weights[0] > 0]
    assert len(kp) == len(observed)
    (verts, faces, values), kw, _ = data[1]
    assert verts.shape == (outcome.model.n_vertices, 3) and np.all(verts[:, 0] == 0)
    assert kw["scale"][0] == results.frame_indices.max() - results.frame_indices.min() + 1
    assert tuple(kw["translate"][1:]) == (0.0, 0.0)  # first camera at the mosaic origin
    assert tuple(data[7][1]["translate"][1:]) != (0.0, 0.0)  # second camera shifted
    layers = [Layer.create(d, kw, t) for d, kw, t in data]  # napari accepts every tuple
    assert layers[1].ndim == 3 and layers[-3].ndim == 4


def test_results_without_their_model(outcome, tmp_path):
    results = outcome.results
    results.model_source, sha = str(tmp_path / "gone.pkl"), results.model_sha256
    try:
        with pytest.warns(UserWarning, match="not found"):
            assert model_for_results(results) is None
        with pytest.warns(UserWarning):
            data = results_layer_data(results, standalone=True)
        roles = [kw["metadata"]["napari_smil_mv"]["role"] for _, kw, _ in data]
        assert "mesh_proj" not in roles and "mesh_world" not in roles and roles.count("kp_pred") == 2
        results.model_sha256 = "0" * 64
        with pytest.raises(ValueError, match="not the model"):
            model_for_results(results, outcome.model)
    finally:
        results.model_source, results.model_sha256 = "<demo model>", sha


def test_reader_sniffs(results_file, tiny_session, tmp_path):
    assert get_results_reader(str(results_file)) is not None
    assert get_results_reader([results_file]) is not None
    fake = tmp_path / "x.smilmv.h5"
    import h5py

    with h5py.File(fake, "w") as f:
        f.attrs["format"] = "something else"
    for path in (
        tmp_path / "none.smilmv.h5",
        fake,
        tiny_session.path / "points3d.h5",
        tmp_path,
        [results_file] * 2,
    ):
        assert get_results_reader(path) is None
    layers = get_results_reader(results_file)(results_file)
    assert sum(kw["metadata"]["napari_smil_mv"]["role"] == "mesh_proj" for _, kw, _ in layers) == 2


# ------------------------------------------------------------------------------------------ fit job
def test_fit_job_inputs_and_cancel(tiny_session, tmp_path):
    assert frame_rows(np.arange(10, 20), 12, 15).tolist() == [2, 3, 4]
    assert frame_rows(np.arange(5)) is None
    with pytest.raises(ValueError, match="select none"):
        frame_rows(np.arange(5), 7, None)
    job = prepare_fit(tiny_session, frames=(2, 5))
    assert job.data.n_frames == 3 and job.joint_map_source.endswith("joint_lookup.csv")
    bad = tmp_path / "map.csv"
    bad.write_text("model,data\nhead,no_such_node\n")
    with pytest.raises(ValueError, match="does not fit"):
        resolve_joint_map(tiny_session, job.model.joint_names, bad)
    cancel = threading.Event()
    cancel.set()
    events, out = _drain(run_fit_job(job, _short_config(), cancel=cancel, build_layers=False))
    assert out.result.cancelled and out.layer_data is None and events[-1].stage == "done"
    assert out.results.provenance["cancelled"] is True
    assert tiny_session.path / "joint_lookup.csv" in out.inputs


# ------------------------------------------------------------------------------------------ GUI (Xvfb)
@pytest.fixture(scope="module")
def viewer(qapp):
    with hidden_viewer() as v:
        yield v


def _screenshot(viewer) -> np.ndarray:
    viewer.screenshot(canvas_only=True)
    return viewer.screenshot(canvas_only=True)[..., :3].astype(int)


@pytest.mark.gui
def test_fit_widget(viewer, tiny_session, qtbot, tmp_path):
    from napari_smil_mv import api
    from napari_smil_mv.napari.widgets.fit_widget import FitWidget

    viewer.layers.clear()
    api.show_session(viewer, tiny_session)
    widget = FitWidget(viewer)
    widget.form.set_field(f"stages.{len(widget.config().stages) - 1}.iterations", 25)
    worker = widget.run()
    assert worker is not None and widget.run() is None  # one fit at a time
    qtbot.waitUntil(lambda: widget.worker is None, timeout=60000)
    assert widget.outcome is not None and not widget.outcome.result.cancelled
    assert "fit" in widget.loss_label.text() or "done" in widget.loss_label.text()
    assert sum(len(s) for s in widget.loss_plot.series.values()) >= 3  # the live loss curve got points
    roles = [meta(la)["role"] for la in viewer.layers]
    assert roles[:12] == ["video", "mesh_proj", "skeleton", "reprojection", "keypoints", "kp_pred"] * 2
    assert viewer.canvas.grid.enabled and viewer.canvas.grid.stride == 6
    assert viewer.canvas.grid.actual_shape(viewer.layers) == (1, 2)
    api.set_frame(viewer, 3)
    with_mesh = _screenshot(viewer)
    for layer in api.results_layers(viewer, "mesh_proj"):
        layer.visible = False
    without = _screenshot(viewer)
    assert (np.abs(with_mesh - without).sum(-1) > 30).sum() > 200  # the mesh is drawn over the videos
    api.set_layout(viewer, "world")
    assert all(la.visible for la in api.results_layers(viewer, ("mesh_world", "kp3d_pred")))
    assert not any(la.visible for la in api.session_layers(viewer, role=("video", "kp_pred")))
    assert _screenshot(viewer).mean() > 1
    api.set_layout(viewer, "grid")

    # saving: never over an input or a foreign file, atomically, replace only when asked
    assert widget.save(tiny_session.path / "joint_lookup.csv") is None
    other = tmp_path / "notes.smilmv.h5"
    other.write_text("mine")
    assert widget.save(other) is None and other.read_text() == "mine"
    saved = widget.save(tmp_path / "fit")
    assert saved == tmp_path / "fit.smilmv.h5" and get_results_reader(saved) is not None
    assert widget.save(saved, overwrite=False) is None and widget.save(saved, overwrite=True) == saved

    widget.run()
    widget.stop()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=60000)
    assert widget.outcome.result.cancelled


@pytest.mark.gui
def test_per_frame_meshes_and_reader(viewer, outcome, results_file, tiny_session):
    from napari_smil_mv import api

    viewer.layers.clear()
    api.show_session(viewer, tiny_session)
    api.show_results(viewer, outcome.results, outcome.model, mesh_mode="per_frame")
    mesh = api.results_layers(viewer, "mesh_proj")[0]
    assert meta(mesh)["mesh_mode"] == "per_frame"
    full = mesh_vertices(outcome.results, outcome.model)
    for frame in (4, 1):
        api.set_frame(viewer, frame)
        rc, _, _ = project_mesh(full[frame], outcome.model.faces, outcome.results.cameras[0])
        np.testing.assert_allclose(mesh.data[0][:, 1:], rc, atol=1e-3)
    assert viewer.canvas.grid.stride == 6
    from napari_smil_mv.napari.results_view import _UPDATERS

    updater = _UPDATERS[viewer][-1]
    assert api.remove_results(viewer) == 7 and viewer.canvas.grid.stride == 4
    api.set_frame(viewer, 2)
    assert not updater._connected  # its layers are gone: it stopped following the slider

    viewer.layers.clear()
    viewer.open(str(results_file), plugin="napari-smil-mv")
    roles = [meta(la).get("role") for la in viewer.layers]
    assert roles.count("mesh_proj") == 2 and roles.count("video") == 2 and "mesh_world" in roles


@pytest.mark.gui
def test_session_widget_show_selection_keeps_results(viewer, outcome, tiny_session):
    from qtpy.QtCore import Qt

    from napari_smil_mv import api
    from napari_smil_mv.napari.widgets.session_widget import SessionWidget

    viewer.layers.clear()
    api.show_session(viewer, tiny_session)
    api.show_results(viewer, outcome.results, outcome.model, mesh_mode="per_frame")
    widget = SessionWidget(viewer)
    widget._set_session(tiny_session)
    mesh = api.results_layers(viewer, "mesh_proj")[1]
    mesh.visible = False  # a choice of the user that survives
    widget.start_spin.setValue(1)
    widget.show_selection()
    roles = [meta(la)["role"] for la in viewer.layers]
    assert roles[:12] == ["video", "mesh_proj", "skeleton", "reprojection", "keypoints", "kp_pred"] * 2
    assert len(api.results_layers(viewer)) == 7 and viewer.canvas.grid.stride == 6
    assert api.results_layers(viewer, "mesh_proj")[1] is mesh and not mesh.visible
    assert api.results_layers(viewer, "mesh_proj")[0].visible
    api.set_frame(viewer, 4)  # the per-frame mesh follows the slider again
    full = mesh_vertices(outcome.results, outcome.model)
    rc, _, _ = project_mesh(full[4], outcome.model.faces, outcome.results.cameras[0])
    np.testing.assert_allclose(api.results_layers(viewer, "mesh_proj")[0].data[0][:, 1:], rc, atol=1e-3)
    widget.camera_list.item(1).setCheckState(Qt.CheckState.Unchecked)
    widget.show_selection()  # results of a camera no longer shown are left out
    assert [meta(la)["camera"] for la in api.results_layers(viewer, RESULT_CAMERA_ROLES)] == ["cam1"] * 2
    widget.close()
