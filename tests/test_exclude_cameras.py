"""Leaving cameras out: ``PreprocessOptions.exclude_cameras``, ``--exclude-cameras`` on ``preprocess`` and
``infer``, the Preprocess widget's field, and session inference with cameras the network was not trained on."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from napari_smil_mv.cli import main
from napari_smil_mv.dataset import (
    PreprocessOptions,
    iter_preprocess,
    preprocess,
    read_dataset_info,
    reprojection_report,
)
from napari_smil_mv.sessions import load_session

KP = "multiview_keypoints"


def _options(**kw) -> PreprocessOptions:
    return PreprocessOptions(image_size=32, crop_mode="bbox_crop", **kw)


def test_excluded_camera_is_not_in_the_dataset(fresh_dir, synthetic_session):
    session = load_session(synthetic_session())
    out = fresh_dir("excl") / "d.h5"
    stats = preprocess(session, out, options=_options(exclude_cameras=("cam2",)))
    assert stats["processed_samples"] == 8
    info = read_dataset_info(out)
    assert info.canonical_camera_order == ["cam1", "cam3"]
    with h5py.File(out) as h5:
        assert h5[f"{KP}/camera_indices"].shape[1] == 2  # two view slots, both used
        np.testing.assert_array_equal(h5[f"{KP}/camera_indices"][()], np.tile([0, 1], (8, 1)))
        assert {bytes(n) for n in h5["auxiliary/camera_names"][()]} == {b"cam1,cam3"}
        # the stored calibration is that of cam1 and cam3, in that order
        for v, cam in enumerate(("cam1", "cam3")):
            np.testing.assert_allclose(
                h5[f"{KP}/original_intrinsics"][:, v], np.stack([session.rig[cam].matrix] * 8)
            )
            np.testing.assert_allclose(
                h5[f"{KP}/camera_extrinsics_R"][:, v], np.stack([session.rig[cam].R] * 8)
            )
        meta = h5["metadata"].attrs
        assert json.loads(meta["options"])["exclude_cameras"] == ["cam2"]
        assert json.loads(meta["exclude_cameras"]) == ["cam2"]
        assert json.loads(meta["sessions"])[0]["cameras"] == ["cam1", "cam3"]
    assert np.nanmax(reprojection_report(out).errors) < 0.5
    assert session.camera_names == ["cam1", "cam2", "cam3"]  # the caller's session is untouched


def test_exclude_cameras_errors_name_the_session_and_its_cameras(fresh_dir, synthetic_session):
    out = fresh_dir("excl_err") / "d.h5"
    path = synthetic_session()
    with pytest.raises(ValueError, match=r"'side'.*cam1', 'cam2', 'cam3'") as err:
        preprocess(path, out, options=_options(exclude_cameras=("side",)))
    assert str(path) in str(err.value)
    with pytest.raises(ValueError, match=r"leaves 1 camera\(s\) \['cam3'\], fewer than min_views=2"):
        preprocess(path, out, options=_options(exclude_cameras=("cam1", "cam2")))
    assert not out.exists()
    # a comma-separated string is accepted; the names are stored sorted and once
    assert PreprocessOptions(exclude_cameras="top, side,top").validate().exclude_cameras == ("side", "top")
    with pytest.raises(ValueError, match="exclude_cameras"):
        PreprocessOptions(exclude_cameras=("cam1", " ")).validate()


def test_resume_with_another_exclusion_is_another_run(fresh_dir, synthetic_session):
    out = fresh_dir("excl_resume") / "d.h5"
    opt = _options(exclude_cameras=("cam2",), chunk_size=2)
    gen = iter_preprocess(synthetic_session(), out, options=opt)
    for ev in gen:
        if ev.stage == "progress":
            break
    gen.close()  # interrupted
    for other in ((), ("cam3",)):
        with pytest.raises(ValueError, match="restart"):
            preprocess(synthetic_session(), out, options=_options(exclude_cameras=other, chunk_size=2))
    stages = [ev.stage for ev in iter_preprocess(synthetic_session(), out, options=opt)]
    assert "resume" in stages and stages[-1] == "done"
    assert read_dataset_info(out).canonical_camera_order == ["cam1", "cam3"]


def test_preprocess_command_exclude_cameras(fresh_dir, synthetic_session, capsys):
    out = fresh_dir("excl_cli") / "d.h5"
    args = ["preprocess", str(synthetic_session()), "-o", str(out), "--size", "32", "--quiet"]
    assert main([*args, "--exclude-cameras", "cam1", "cam3"]) == 2  # one camera left, min_views 2
    assert "min_views=2" in capsys.readouterr().err
    assert main([*args, "--exclude-cameras", "nope,cam3"]) == 2
    assert "['nope']" in capsys.readouterr().err
    assert main([*args, "--exclude-cameras", "cam3"]) == 0
    assert "excluded: ['cam3']" in capsys.readouterr().err
    assert read_dataset_info(out).canonical_camera_order == ["cam1", "cam2"]


def test_preprocess_widget_exclude_field(qtbot):
    from napari_smil_mv.napari.widgets.preprocess_widget import PreprocessWidget

    widget = PreprocessWidget(None)
    qtbot.addWidget(widget)
    assert widget.options().exclude_cameras == ()
    widget.form.widget("exclude_cameras").value = " side, top ,"
    assert widget.options().exclude_cameras == ("side", "top")
    widget.form.widget("min_views").value = 0
    widget.add_session("somewhere")
    widget.output_edit.setText("out.smilmv-dataset.h5")
    assert widget.run() is None and "min_views" in widget.status.text()  # named before any work starts
    assert "min_views" in widget.form.error_label.text()


def test_infer_session_with_a_camera_the_network_does_not_know(
    synthetic_session, trained_checkpoint, capsys, tmp_path
):
    from napari_smil_mv.fitting import FitConfig
    from napari_smil_mv.inference import infer_session_iter
    from napari_smil_mv.results import read_results

    ckpt = trained_checkpoint()  # trained on cam1..cam3
    four = synthetic_session("four", n_cameras=4, n_frames=4)
    events = list(infer_session_iter(ckpt, four))
    load = [ev.message for ev in events if ev.stage == "load"]
    assert (
        len(load) == 1 and "cameras ['cam4'] left out of the prediction: the network was trained" in load[0]
    )
    assert "cameras ['cam1', 'cam2', 'cam3']," in load[0]  # the cameras predicted from
    res = events[-1].results[0]  # cam4 is not predicted from, but still projected into and evaluated
    assert res.camera_names == ["cam1", "cam2", "cam3", "cam4"] and res.n_frames == 4
    assert np.isfinite(res.projections_2d[3]).all() and res.provenance["cameras_unknown_to_network"] == [
        "cam4"
    ]
    # excluded cameras are left out of prediction, results and the refining fit
    config = FitConfig()
    config.stages[-1].iterations = 3
    events = list(infer_session_iter(ckpt, four, exclude_cameras=["cam2"], refine=True, fit_config=config))
    refined = events[-1].results[0]
    assert refined.camera_names == ["cam1", "cam3", "cam4"] and refined.provenance["refined"] is True
    assert refined.provenance["network_provenance"]["excluded_cameras"] == ["cam2"]
    with pytest.raises(ValueError, match=r"no camera \['side'\] to exclude; its cameras are \['cam1'"):
        list(infer_session_iter(ckpt, four, exclude_cameras=["side"]))
    with pytest.raises(ValueError, match="none is left that the network knows"):
        list(infer_session_iter(ckpt, four, exclude_cameras=["cam1", "cam2", "cam3"]))
    # the command line
    out = tmp_path / "p.smilmv.h5"
    base = ["infer", "--checkpoint", str(ckpt), "-o", str(out)]
    assert main([*base, "--session", str(four), "--exclude-cameras", "cam3"]) == 0
    printed = capsys.readouterr().out
    assert "cameras ['cam3'] excluded; cameras ['cam4'] left out of the prediction" in printed
    assert read_results(out).camera_names == ["cam1", "cam2", "cam4"]
    assert main([*base, "--dataset", "x.h5", "--exclude-cameras", "cam3", "--overwrite"]) == 2
    assert "--exclude-cameras applies to --session" in capsys.readouterr().err


def test_real_minimal_session_without_side(preprocess_real_mouse_session):
    """sleap-anipose's session: the 'side' calibration is a copy of 'top'; leaving it out keeps back, mid, top."""
    out, stats = preprocess_real_mouse_session(
        "real_excl", image_size=32, max_frames_per_session=5, exclude_cameras=("side",)
    )
    assert stats["processed_samples"] == 5
    assert read_dataset_info(out).canonical_camera_order == ["back", "mid", "top"]
    per_cam = reprojection_report(out).per_camera()
    assert sorted(per_cam) == ["back", "mid", "top"]
    for cam in ("back", "mid", "top"):
        assert per_cam[cam]["median"] < 12 * 32 / 1280 * 1.25, per_cam  # ~2-10 px at full resolution


def test_session_inference_leaves_out_the_cameras_training_left_out(
    fresh_dir, synthetic_session, tiny_config
):
    """A network trained on a dataset without cam2 stores that; inference on the full session drops cam2 too."""
    from napari_smil_mv.inference import Predictor, infer_session_iter
    from napari_smil_mv.training import train

    path = synthetic_session()
    dataset = fresh_dir("excl_train") / "d.h5"
    preprocess(load_session(path), dataset, options=_options(exclude_cameras=("cam2",)))
    out = fresh_dir("excl_trained")
    train(tiny_config(out, epochs=1, data={"dataset": str(dataset)}))
    pr = Predictor(out / "last.pt")
    assert pr.spec.camera_names == ["cam1", "cam3"]
    assert pr.spec.preprocessing["exclude_cameras"] == ["cam2"]
    events = list(infer_session_iter(pr, path))
    load = next(ev.message for ev in events if ev.stage == "load")
    assert "cameras ['cam2'] excluded (as in the network's training dataset)" in load
    res = events[-1].results[0]
    assert res.camera_names == ["cam1", "cam3"] and res.provenance["excluded_cameras"] == ["cam2"]
    # an explicit list replaces the default: () keeps cam2 (projected into, not predicted from)
    res = list(infer_session_iter(pr, path, exclude_cameras=()))[-1].results[0]
    assert res.camera_names == ["cam1", "cam2", "cam3"]
    assert res.provenance["cameras_unknown_to_network"] == ["cam2"]
    # a dataset with cam2 too: cam2's views are left out of the prediction, with a note, and still evaluated
    from napari_smil_mv.inference import infer_dataset_iter

    full = fresh_dir("excl_full") / "d.h5"
    preprocess(load_session(path), full, options=_options())
    events = list(infer_dataset_iter(pr, full))
    load = next(ev.message for ev in events if ev.stage == "load")
    assert "cameras ['cam2'] left out of the prediction" in load
    res = events[-1].results[0]
    assert res.camera_names == ["cam1", "cam2", "cam3"]
    assert res.provenance["cameras_unknown_to_network"] == ["cam2"]
    assert np.isfinite(res.projections_2d).all()
    with pytest.raises(ValueError, match="seen only by cameras the network was not trained on"):
        only_cam2 = fresh_dir("excl_only2") / "d.h5"
        preprocess(
            load_session(path), only_cam2, options=_options(exclude_cameras=("cam1", "cam3"), min_views=1)
        )
        list(infer_dataset_iter(pr, only_cam2))
