"""A model ``.pkl`` that a results/checkpoint/dataset file merely names is hashed before it is unpickled, and
opening a results file in napari never loads it without the user's choice."""

from __future__ import annotations

import hashlib
import struct
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("napari")

from fixtures.viewer import hidden_viewer  # noqa: E402
from napari_smil_mv.body import load_smil_model  # noqa: E402
from napari_smil_mv.body.model_file import save_smil_model  # noqa: E402
from napari_smil_mv.napari.layers.results_mesh import RECORDED_MODEL, model_for_results  # noqa: E402
from napari_smil_mv.results import read_results, write_results  # noqa: E402


def _evil_pickle(sentinel: Path) -> bytes:
    cmd = f"touch {sentinel}".encode()
    return b"\x80\x02cos\nsystem\n(X" + struct.pack("<I", len(cmd)) + cmd + b"tR."


@pytest.fixture()
def unpickled(monkeypatch):
    """Records every model file that reaches the unpickler."""
    from napari_smil_mv.body import model_file

    calls: list[bytes] = []
    real = model_file.unpickle_model_bytes

    def spy(raw):
        calls.append(raw)
        return real(raw)

    monkeypatch.setattr(model_file, "unpickle_model_bytes", spy)
    return calls


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A short fit of a tiny session with the demo model saved as a ``.pkl`` (recorded path + file SHA-256)."""
    from napari_smil_mv.demo.synthetic_session import write_synthetic_session
    from napari_smil_mv.fitting import FitConfig
    from napari_smil_mv.napari.jobs.fit_job import prepare_fit, run_fit_job
    from napari_smil_mv.sessions import load_session

    root = tmp_path_factory.mktemp("recorded")
    folder = write_synthetic_session(root / "session", n_cameras=2, n_frames=4, image_size=(160, 120))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        session = load_session(folder)
    pkl = save_smil_model(load_smil_model(None), root / "model.pkl")
    cfg = FitConfig()
    cfg.stages[-1].iterations = 10
    gen = run_fit_job(prepare_fit(session, model=str(pkl)), cfg, build_layers=False)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            outcome = stop.value
            break
    path = write_results(outcome.results, root / "fit.smilmv.h5")
    return SimpleNamespace(session=session, pkl=pkl, path=path, model=outcome.model)


def _roles(layer_data) -> list[str]:
    return [kw["metadata"]["napari_smil_mv"]["role"] for _, kw, _ in layer_data]


def test_results_record_the_file_and_its_hash(fitted):
    results = read_results(fitted.path)
    assert results.model_source == str(fitted.pkl)
    assert results.model_sha256 == hashlib.sha256(fitted.pkl.read_bytes()).hexdigest()


def test_reader_does_not_load_a_named_model(fitted, unpickled):
    from napari_smil_mv.napari.readers.results_reader import read_results_layers

    with pytest.warns(UserWarning, match="loaded only when you choose it"):
        layers = read_results_layers(fitted.path)
    assert "mesh_proj" not in _roles(layers) and "kp_pred" in _roles(layers)
    assert unpickled == []


def test_recorded_model_loads_only_with_its_hash(fitted, unpickled, tmp_path):
    results = read_results(fitted.path)
    model = model_for_results(results, RECORDED_MODEL)
    assert model is not None and model.sha256 == results.model_sha256 and len(unpickled) == 1
    # the recorded path now holds something else (here: a pickle that would run a command)
    evil_dir = tmp_path / "moved"
    evil_dir.mkdir()
    evil = evil_dir / "model.pkl"
    evil.write_bytes(_evil_pickle(tmp_path / "PWNED"))
    results.model_source = str(evil)
    with pytest.warns(UserWarning, match="not the file the results was made with|it was not loaded"):
        assert model_for_results(results, RECORDED_MODEL) is None
    results.model_sha256 = ""
    with pytest.warns(UserWarning, match="records no SHA-256"):
        assert model_for_results(results, RECORDED_MODEL) is None
    assert len(unpickled) == 1 and not (tmp_path / "PWNED").exists()


def test_checkpoint_and_dataset_hash_before_unpickling(tmp_path, unpickled):
    from napari_smil_mv.network import NetworkSpec
    from napari_smil_mv.training.checkpoint import resolve_body_model
    from napari_smil_mv.training.config import TrainConfig
    from napari_smil_mv.training.setup import resolve_training_body_model

    evil = tmp_path / "model.pkl"
    evil.write_bytes(_evil_pickle(tmp_path / "PWNED"))
    spec = NetworkSpec()
    spec.body_model_source, spec.body_model_sha256 = str(evil), "0" * 64
    with pytest.raises(ValueError, match="checkpoint.*it was not loaded"):
        resolve_body_model(spec)
    spec.body_model_sha256 = ""
    with pytest.raises(ValueError, match="records no SHA-256"):
        resolve_body_model(spec)
    for sha, message in (("0" * 64, "it was not loaded"), ("", "records no SHA-256")):
        info = SimpleNamespace(
            path=tmp_path / "d.h5", attrs={"body_model_source": str(evil), "body_model_sha256": sha}
        )
        with pytest.raises(ValueError, match=message):
            resolve_training_body_model(TrainConfig(), info)
    assert unpickled == [] and not (tmp_path / "PWNED").exists()


@pytest.fixture(scope="module")
def viewer(qapp):
    with hidden_viewer() as v:
        yield v


@pytest.mark.gui
def test_fit_widget_asks_before_loading(viewer, fitted, unpickled, monkeypatch):
    from napari_smil_mv.napari.scripting import meta
    from napari_smil_mv.napari.widgets import fit_widget
    from napari_smil_mv.napari.widgets.fit_widget import FitWidget

    widget = FitWidget(viewer)
    asked: list[str] = []
    monkeypatch.setattr(fit_widget, "ask_yes_no", lambda parent, title, text: asked.append(text) or False)
    viewer.layers.clear()
    widget.show_results_file(fitted.path)
    assert asked and str(fitted.pkl) in asked[0] and unpickled == []
    assert "not loaded" in widget.status.text()
    assert not any(meta(la).get("role") == "mesh_proj" for la in viewer.layers)
    viewer.layers.clear()
    layers = widget.show_results_file(fitted.path, load_model=True)
    assert sum(meta(la).get("role") == "mesh_proj" for la in layers) == 2 and len(unpickled) == 1
    viewer.layers.clear()
