"""The generated config forms: every field of FitConfig, PreprocessOptions, TrainConfig and InferOptions is shown,
round-trips through its widget, and bad values are named inline."""

from __future__ import annotations

import dataclasses

import pytest

pytest.importorskip("magicgui")
pytest.importorskip("qtpy")

from napari_smil_mv.dataset import PreprocessOptions  # noqa: E402
from napari_smil_mv.fitting import FitConfig  # noqa: E402
from napari_smil_mv.fitting.config import StageConfig  # noqa: E402
from napari_smil_mv.inference import InferOptions  # noqa: E402
from napari_smil_mv.napari.widgets import config_hints  # noqa: E402
from napari_smil_mv.napari.widgets.config_forms import ConfigForm, FieldError, doc_help  # noqa: E402
from napari_smil_mv.network.spec import ARCHITECTURE_FIELDS  # noqa: E402
from napari_smil_mv.training.config import DataConfig, LossConfig, OptimConfig, TrainConfig  # noqa: E402


def _fit_changed() -> FitConfig:
    stages = [
        StageConfig("a", 3, ("trans",), "adam", 0.5, {"reproj": 2.0}, 1e-4, 11.0),
        StageConfig("b", 7, ("betas", "body_pose"), "lm", 2.0, {"pose_prior": 1.0}, 0.5, 6.0),
        StageConfig("c", 9, ("trans", "global_orient"), "lbfgs", 0.25, {"smooth_acc": 0.0}, 0.01),
    ]
    weights = {k: v * 3 + 0.5 for k, v in FitConfig().weights.items()}
    return FitConfig(
        stages=stages,
        weights=weights,
        robust_loss="huber",
        reproj_sigma_px=7.5,
        points3d_sigma=0.125,
        use_points3d=False,
        fit_log_beta_scales=False,
        isotropic_limb_scales=False,
        fit_betas_trans=False,
        per_frame_mesh_scale=True,
        smooth_max_gap=4,
        smooth_loss="cauchy",
        smooth_acc_scale=0.02,
        smooth_acc_typical=12.0,
        smooth_adaptive_gain=1.5,
        smooth_adaptive_span_s=0.5,
        smooth_adaptive_max=100.0,
        smooth_adaptive_max_jitter=50.0,
        smooth_detect_breaks=False,
        smooth_max_speed=7.0,
        smooth_jump_factor=4.0,
        camera_outlier_px=33.0,
        camera_outlier_ratio=2.5,
        exclude_inconsistent_cameras=False,
        min_init_joints=5,
        report_every=2,
        lm_window=77,
    )


def _preprocess_changed() -> PreprocessOptions:
    return PreprocessOptions(
        image_size=160,
        crop_mode="bbox_crop",
        min_views=3,
        frame_skip=4,
        max_frames_per_session=50,
        jpeg_quality=80,
        undistort=False,
        min_keypoints=5,
        min_score=0.3,
        bbox_scale=1.5,
        bbox_min_size=48.0,
        load_3d=False,
        triangulate_missing_3d=True,
        outlier_std=3.5,
        animals=("mouse1", "mouse2"),
        exclude_cameras=("back", "side"),
        chunk_size=8,
    ).validate()


def _train_changed() -> TrainConfig:
    data = DataConfig(
        dataset="/data/train.h5",
        val_dataset="/data/val.h5",
        split_by="session",
        val_fraction=0.2,
        test_fraction=0.1,
        block_frames=12,
        gap_frames=3,
        split_seed=5,
        num_views=3,
        random_view_sampling=False,
        permute_views=True,
        augment=False,
        zoom=True,
        batch_size=4,
        val_batch_size=16,
        num_workers=2,
        max_train_samples=100,
        max_val_samples=20,
    )
    optim = OptimConfig(
        lr=1e-3,
        backbone_lr=None,
        weight_decay=0.01,
        grad_clip=0.5,
        schedule="steps",
        warmup_steps=10,
        min_lr_fraction=0.2,
        lr_steps={5: 0.1, 10: 0.01},
        freeze_backbone_epochs=2,
    )
    loss = LossConfig(
        weights={k: v + 0.25 for k, v in LossConfig().weights.items()},
        curriculum={3: {"keypoint_3d": 0.5}},
        joint_weights={"tail": 0.5},
        ignored_joints=["ear_L", "ear_R"],
    )
    model = {
        "backbone": "resnet18",
        "pretrained": "/weights/resnet18.pth",
        "input_size": 128,
        "fusion": "mean",
        "fusion_layers": 1,
        "fusion_heads": 2,
        "dropout": 0.2,
        "body_head": "mlp",
        "hidden_dim": 64,
        "decoder_depth": 3,
        "decoder_heads": 2,
        "ief_iters": 2,
        "camera_head": "shared",
        "camera_mode": "absolute",
        "predict_limb_scales": False,
        "predict_limb_trans": False,
        "max_rot_correction_deg": 3.0,
        "max_trans_correction": 0.1,
        "max_focal_correction": 0.2,
        "max_pp_correction": 0.05,
        "absolute_camera_distance": 12.0,
        "mesh_scale_init": 2.5,
    }
    assert set(model) == set(ARCHITECTURE_FIELDS)
    return TrainConfig(
        output_dir="/runs/x",
        body_model="/models/smil.pkl",
        epochs=3,
        device="cpu",
        amp="off",
        seed=7,
        deterministic=True,
        log_every=3,
        checkpoint_every=2,
        keep_epoch_checkpoints=True,
        sample_every=2,
        n_samples=4,
        max_steps_per_epoch=10,
        time_limit_s=60.0,
        threads=2,
        data=data,
        model=model,
        optim=optim,
        loss=loss,
    ).validate()


def _infer_changed() -> InferOptions:
    return InferOptions(
        model="/models/smil.pkl",
        device="cuda",
        batch_size=2,
        refine=True,
        refine_iterations=5,
        frame_start=10,
        frame_stop=20,
        animal="mouse",
        joint_map="/s/joint_lookup.csv",
        units="mm",
        exclude_cameras=(),
    ).validate()


CASES = {
    "fit": (FitConfig, config_hints.fit_hints, FitConfig, _fit_changed),
    "preprocess": (PreprocessOptions, config_hints.preprocess_hints, PreprocessOptions, _preprocess_changed),
    "train": (
        TrainConfig,
        config_hints.train_hints,
        lambda: TrainConfig(data=DataConfig("d.h5")),
        _train_changed,
    ),
    "infer": (InferOptions, config_hints.infer_hints, InferOptions, _infer_changed),
}


def _leaves(obj, prefix=""):
    """Dotted path -> value of every field (nested dataclasses, lists of them, the model dict) of ``obj``."""
    out = {}
    for f in dataclasses.fields(obj):
        if not f.init or f.name.startswith("_"):
            continue
        value = getattr(obj, f.name)
        path = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            out.update(_leaves(value, path + "."))
        elif isinstance(value, list) and value and dataclasses.is_dataclass(value[0]):
            for i, item in enumerate(value):
                out.update(_leaves(item, f"{path}.{i}."))
        elif path == "model" and isinstance(value, dict):
            out.update({f"model.{k}": v for k, v in value.items()})
        else:
            out[path] = value
    return out


@pytest.mark.parametrize("case", sorted(CASES))
def test_defaults_and_every_changed_field_round_trip(qtbot, case):
    cls, hints, default, changed = CASES[case]
    form = ConfigForm(cls, default(), hints=hints())
    qtbot.addWidget(form.native)
    assert _leaves(form.value()) == _leaves(default())
    new = changed()
    before, after = _leaves(default()), _leaves(new)
    same = sorted(k for k in after if before.get(k, object()) == after[k])
    assert not same, f"the test value leaves {same} at their defaults"
    form.set_value(new)
    got = form.value()
    assert type(got) is cls
    assert _leaves(got) == after
    if case == "train":
        assert got.to_dict() == new.to_dict()
    else:
        assert got == new


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_field_has_a_widget(qtbot, case):
    cls, hints, default, changed = CASES[case]
    form = ConfigForm(cls, default(), hints=hints())
    qtbot.addWidget(form.native)
    shown = set(form.leaves)
    # weights-like dicts are one widget with a field per key; compare at that level
    wanted = {p for p in _leaves(changed()) if not any(p.startswith(s + ".") for s in shown)}
    assert wanted <= shown | {p.rsplit(".", 1)[0] for p in wanted if p.rsplit(".", 1)[0] in shown}


def test_editing_one_widget_changes_that_field_only(qtbot):
    form = ConfigForm(FitConfig, hints=config_hints.fit_hints())
    qtbot.addWidget(form.native)
    form.leaves["reproj_sigma_px"].widget.value = "12.5"
    form.leaves["stages.2.iterations"].widget.value = 40
    form.leaves["weights"].editors["smooth_acc"].widget.value = "3e-2"
    form.leaves["robust_loss"].widget.value = "l2"
    cfg = form.value()
    ref = FitConfig()
    ref.reproj_sigma_px, ref.robust_loss = 12.5, "l2"
    ref.stages[2].iterations = 40
    ref.weights["smooth_acc"] = 0.03
    assert cfg == ref


def test_bad_number_is_named_inline(qtbot):
    form = ConfigForm(FitConfig, hints=config_hints.fit_hints())
    qtbot.addWidget(form.native)
    form.leaves["points3d_sigma"].widget.value = "abc"
    with pytest.raises(FieldError, match="points3d_sigma"):
        form.value()
    assert "points3d_sigma" in form.error_label.text()
    assert not form.error_label.isHidden()
    assert "e05050" in form.leaves["points3d_sigma"].widget.native.styleSheet()
    form.leaves["points3d_sigma"].widget.value = "0.1"
    assert form.value().points3d_sigma == 0.1
    assert form.error_label.isHidden()


def test_validation_error_of_the_dataclass_is_shown(qtbot):
    form = ConfigForm(PreprocessOptions, hints=config_hints.preprocess_hints())
    qtbot.addWidget(form.native)
    form.leaves["image_size"].widget.value = 4  # validate(): image_size must be >= 8
    assert "image_size" in form.error_label.text()  # re-checked on change, before any Run
    with pytest.raises(ValueError, match="image_size"):
        form.value()
    form.leaves["image_size"].widget.value = 64
    assert form.error() is None


def test_advanced_fields_are_collapsed_and_optional_tuple_distinguishes_none_from_empty(qtbot):
    form = ConfigForm(InferOptions, hints=config_hints.infer_hints())
    qtbot.addWidget(form.native)
    assert not form.collapsible.isExpanded()
    assert form.leaves["units"].widget.parent is form.advanced
    assert form.leaves["device"].widget.parent is form.main
    assert form.value().exclude_cameras is None
    form.set_value(InferOptions(exclude_cameras=()))
    assert form.value().exclude_cameras == ()
    form.set_value(InferOptions(exclude_cameras=("side",)))
    assert form.value().exclude_cameras == ("side",)


def test_help_text_comes_from_the_numpydoc():
    fit = doc_help(FitConfig)
    assert "pixels" in fit["reproj_sigma_px"]
    assert fit["camera_outlier_px"] == fit["camera_outlier_ratio"]
    assert "JPEG" in doc_help(PreprocessOptions)["jpeg_quality"]


def test_nested_fields_follow_their_group_into_the_advanced_section(qtbot):
    form = ConfigForm(FitConfig, hints=config_hints.fit_hints())
    qtbot.addWidget(form.native)
    advanced, main = form.advanced.native, form.main.native
    assert advanced.isAncestorOf(form.widget("stages.0.iterations").native)
    assert main.isAncestorOf(form.widget("weights").native)
    train = ConfigForm(TrainConfig, TrainConfig(data=DataConfig("d.h5")), hints=config_hints.train_hints())
    qtbot.addWidget(train.native)
    for path in ("data.dataset", "optim.lr", "model.pretrained", "model.fusion", "epochs"):
        assert train.main.native.isAncestorOf(train.widget(path).native), path
    for path in ("data.gap_frames", "loss.weights", "loss.curriculum", "model.ief_iters", "amp"):
        assert train.advanced.native.isAncestorOf(train.widget(path).native), path
