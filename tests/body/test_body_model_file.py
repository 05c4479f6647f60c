"""Loading, validating, reordering and writing SMIL model files."""

from __future__ import annotations

import hashlib
import pickle
import sys
import types
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from fixtures.body import MODEL_NAMES, random_params, shared_model, tiny_model_dict
from napari_smil_mv.body import SMILModel, load_smil_model, save_smil_model, smil_model_from_dict


def _write(path, obj):
    with open(path, "wb") as fh:
        pickle.dump(obj, fh)
    return path


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # plain pickle.load of numpy.core references
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_real_models_load(name):
    path = shared_model(name)
    data = load_smil_model(path)
    raw = pickle.load(open(path, "rb"), encoding="latin1")
    assert data.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert data.v_template.shape == raw["v_template"].shape and data.v_template.dtype == np.float64
    assert data.faces.dtype == np.int64 and data.faces.shape == raw["f"].shape
    assert data.n_joints == len(raw["J_names"]) and data.joint_names == list(raw["J_names"])
    assert data.parents[0] == -1 and all(data.parents[i] < i for i in range(1, data.n_joints))
    assert sp.isspmatrix_csr(data.J_regressor) and data.J_regressor.shape == (data.n_joints, data.n_vertices)
    assert data.shapedirs.shape == raw["shapedirs"].shape
    assert data.posedirs is None
    if name == "SMILy_STICK":
        assert not data.static_joint_locs
        assert data.scaledirs.shape == (55, 3, 5) and data.transdirs.shape == (55, 3, 5)
        np.testing.assert_array_equal(data.scaledirs[:, :, 2], raw["scaledirs"][2])
        assert data.shape_cov.shape == (5, 5) and data.shape_mean_betas.shape == (5,)
    else:
        assert data.static_joint_locs and data.scaledirs is None and data.transdirs is None
        assert data.J_regressor.nnz == 0
        np.testing.assert_allclose(data.J, raw["J"])


def test_demo_model_loads_with_none():
    data = load_smil_model(None)
    assert data.source == "<demo model>"
    assert len(data.sha256) == 64
    assert data.n_joints > 1 and data.n_vertices > 100 and data.n_betas >= 1


def test_tiny_dict_round_trip(tmp_path):
    d = tiny_model_dict()
    data = smil_model_from_dict(d, source="tiny")
    assert (data.n_vertices, data.n_joints, data.n_betas) == (30, 5, 3)
    assert data.scaledirs.shape == (5, 3, 2)
    out = save_smil_model(data, tmp_path / "tiny.pkl")
    again = load_smil_model(out)
    for key in (
        "v_template",
        "faces",
        "weights",
        "J",
        "parents",
        "shapedirs",
        "scaledirs",
        "transdirs",
        "shape_cov",
    ):
        np.testing.assert_allclose(getattr(again, key), getattr(data, key), err_msg=key)
    assert again.joint_names == data.joint_names
    assert (again.J_regressor != data.J_regressor).nnz == 0
    assert again.extras["bs_style"] == "lbs"
    raw = pickle.load(open(out, "rb"))
    assert type(raw) is dict and isinstance(raw["v_template"], np.ndarray)
    with pytest.raises(FileExistsError):
        save_smil_model(data, out, overwrite=False)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("v_template", None, r"'v_template' is missing.*\(\?, 3\)"),
        ("weights", np.ones((30, 4)), r"'weights' has shape \(30, 4\).*\(30, 5\)"),
        ("shapedirs", np.ones((29, 3, 2)), r"'shapedirs' has shape \(29, 3, 2\)"),
        ("J_regressor", np.ones((5, 31)), r"'J_regressor' has shape \(5, 31\).*\(5, 30\)"),
        ("f", np.array([[0, 1, 99]]), r"'f' indexes vertices"),
        ("J_names", ["a", "b"], r"'J_names' has 2 names; expected 5"),
        ("scaledirs", np.ones((2, 4, 3)), r"'scaledirs' has shape \(2, 4, 3\)"),
        ("shape_cov", np.ones((2, 2)), r"'shape_cov' has shape"),
    ],
)
def test_bad_keys_are_named(tmp_path, key, value, message):
    d = tiny_model_dict()
    if value is None:
        del d[key]
    else:
        d[key] = value
    path = _write(tmp_path / "bad.pkl", d)
    with pytest.raises(ValueError, match=message) as info:
        load_smil_model(path)
    assert str(path) in str(info.value)


def test_missing_file_and_non_model_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_smil_model(tmp_path / "nope.pkl")
    (tmp_path / "text.pkl").write_text("not a pickle")
    with pytest.raises(ValueError, match="not a readable SMIL model pickle"):
        load_smil_model(tmp_path / "text.pkl")
    with pytest.raises(ValueError, match="expected a pickled dict"):
        load_smil_model(_write(tmp_path / "list.pkl", [1, 2]))


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_refuses_non_array_classes(tmp_path):
    d = tiny_model_dict()
    d["payload"] = _Evil()
    with pytest.raises(ValueError, match=r"builtins\.print"):
        load_smil_model(_write(tmp_path / "evil.pkl", d))


@pytest.mark.parametrize(
    ("parents", "message"),
    [
        ([-1, 0, 1, -1, 3], "exactly one root"),
        ([1, 2, 0, 0, 3], "exactly one root"),
        ([-1, 2, 1, 0, 3], "cycle"),
        ([-1, 0, 7, 0, 3], "not a joint id"),
        ([-1, 1, 1, 0, 3], "its own parent"),
    ],
)
def test_bad_parent_tables(tmp_path, parents, message):
    d = tiny_model_dict()
    d["kintree_table"] = np.stack([parents, np.arange(5)])
    with pytest.raises(ValueError, match=message):
        load_smil_model(_write(tmp_path / "bad.pkl", d))


def test_unordered_parents_are_reordered_with_identical_outputs():
    d = tiny_model_dict()
    data = smil_model_from_dict(d, source="ordered")
    # Shuffle the joints so that children come before their parents.
    perm = np.array([2, 4, 1, 0, 3])  # new column c holds old joint perm[c]
    old_to_new = np.argsort(perm)
    parents = np.array([-1, 0, 1, 0, 3])[perm]
    shuffled = dict(d)
    shuffled["kintree_table"] = np.stack(
        [np.where(parents >= 0, old_to_new[np.maximum(parents, 0)], -1), np.arange(5)]
    )
    shuffled["weights"] = d["weights"][:, perm]
    shuffled["J_regressor"] = d["J_regressor"][perm]
    shuffled["J"] = d["J"][perm]
    shuffled["J_names"] = [d["J_names"][i] for i in perm]
    shuffled["scaledirs"] = d["scaledirs"][:, perm]
    shuffled["transdirs"] = d["transdirs"][:, perm]
    with pytest.warns(UserWarning, match="not in topological order"):
        reordered = smil_model_from_dict(shuffled, source="shuffled")
    assert reordered.parents[0] == -1 and all(reordered.parents[i] < i for i in range(1, 5))
    # Map the reordered joints back to the original ones by name and compare the model outputs.
    index = [reordered.joint_names.index(n) for n in data.joint_names]
    p = random_params(5, 3, batch=2)
    ref = SMILModel(data, dtype=torch.float64)
    new = SMILModel(reordered, dtype=torch.float64)
    out_ref = ref(p["pose"], p["betas"], p["log_beta_scales"], p["betas_trans"], p["trans"], p["mesh_scale"])
    inv = np.argsort(index)
    out_new = new(
        p["pose"][:, inv],
        p["betas"],
        p["log_beta_scales"][:, inv],
        p["betas_trans"][:, inv],
        p["trans"],
        p["mesh_scale"],
    )
    torch.testing.assert_close(out_new.vertices, out_ref.vertices)
    torch.testing.assert_close(out_new.joints[:, index], out_ref.joints)
    sw = torch.as_tensor([[0.3, -0.2]], dtype=torch.float64)
    ls_ref, tr_ref = ref.pca_scale_trans(sw, sw)
    ls_new, tr_new = new.pca_scale_trans(sw, sw)
    torch.testing.assert_close(ls_new[:, index], ls_ref)
    torch.testing.assert_close(tr_new[:, index], tr_ref)


def test_sparse_regressor_and_dirs_in_jk3_order(tmp_path):
    d = tiny_model_dict()
    dense = smil_model_from_dict(d, source="dense")
    d2 = dict(d)
    d2["J_regressor"] = sp.csc_matrix(d["J_regressor"])
    d2["scaledirs"] = np.transpose(d["scaledirs"], (1, 2, 0))  # already (J, 3, K)
    data = load_smil_model(_write(tmp_path / "sparse.pkl", d2))
    assert (data.J_regressor != dense.J_regressor).nnz == 0
    np.testing.assert_allclose(data.scaledirs, dense.scaledirs)


def test_static_model_needs_J_and_allows_missing_regressor():
    d = tiny_model_dict(static=True)
    del d["J_regressor"]
    data = smil_model_from_dict(d, source="static")
    assert data.static_joint_locs and data.J_regressor.nnz == 0
    del d["J"]
    with pytest.raises(ValueError, match="'J' is missing"):
        smil_model_from_dict(d, source="static")


def test_chumpy_pickle_loads_without_chumpy(tmp_path, monkeypatch):
    """A legacy file whose arrays are chumpy ``Ch`` objects loads as plain numpy arrays."""
    fake_pkg = types.ModuleType("chumpy")
    fake_ch = types.ModuleType("chumpy.ch")

    class Ch:  # mimics chumpy: the array lives in the instance dict under 'x'
        def __init__(self, x):
            self.x = np.asarray(x)
            self._dirty_vars = set()

    Ch.__module__ = "chumpy.ch"
    Ch.__qualname__ = "Ch"
    fake_ch.Ch = Ch
    fake_pkg.ch = fake_ch
    monkeypatch.setitem(sys.modules, "chumpy", fake_pkg)
    monkeypatch.setitem(sys.modules, "chumpy.ch", fake_ch)
    d = tiny_model_dict()
    legacy = dict(d)
    for key in ("v_template", "shapedirs", "weights", "J"):
        legacy[key] = Ch(d[key])
    legacy["J_regressor"] = sp.csc_matrix(d["J_regressor"])
    blob = pickle.dumps(legacy, protocol=2)
    assert b"chumpy.ch" in blob
    monkeypatch.delitem(sys.modules, "chumpy.ch")
    monkeypatch.delitem(sys.modules, "chumpy")
    path = tmp_path / "legacy.pkl"
    path.write_bytes(blob)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = load_smil_model(path)
    assert isinstance(data.v_template, np.ndarray)
    np.testing.assert_allclose(data.v_template, d["v_template"])
    np.testing.assert_allclose(data.shapedirs, d["shapedirs"])
    np.testing.assert_allclose(data.weights, d["weights"])
    assert "chumpy" not in sys.modules
