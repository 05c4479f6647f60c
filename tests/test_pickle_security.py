"""Adversarial body-model pickles: every one is refused with our error and none creates a file or runs a command.

The pickles are written opcode by opcode (protocols 0, 2, 4 and 5; ``GLOBAL``, ``INST`` and ``STACK_GLOBAL`` with
dotted names), the way an attacker would, plus ``__reduce__`` tricks written by :func:`pickle.dumps`. Each one,
if it were executed, would create the sentinel file in ``tmp_path``.
"""

from __future__ import annotations

import collections
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from napari_smil_mv.body import load_smil_model
from napari_smil_mv.body._pickle_io import UnsafePickleError, unpickle_model_bytes
from napari_smil_mv.body.demo_model import build_demo_model_dict
from napari_smil_mv.body.model_file import save_smil_model
from napari_smil_mv.body.recorded_model import load_recorded_model

SHARED_MODELS = sorted((Path(__file__).resolve().parents[2] / "shared" / "models").glob("*.pkl"))


def _s(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw  # BINUNICODE


def _args(*items) -> bytes:
    out = b"("  # MARK
    for item in items:
        if isinstance(item, str):
            out += _s(item)
        else:  # a list of str
            out += b"](" + b"".join(_s(x) for x in item) + b"e"  # EMPTY_LIST MARK ... APPENDS
    return out + b"t"  # TUPLE


def stack_global_call(module: str, name: str, args: bytes, proto: int) -> bytes:
    """``module.name(*args)`` through ``STACK_GLOBAL`` + ``REDUCE`` (protocol 4/5)."""
    return b"\x80" + bytes([proto]) + _s(module) + _s(name) + b"\x93" + args + b"R."


def global_call(module: str, name: str, args: bytes, proto: int = 2) -> bytes:
    """``module.name(*args)`` through ``GLOBAL`` + ``REDUCE``."""
    head = b"\x80" + bytes([proto]) if proto >= 2 else b""
    return head + b"c" + f"{module}\n{name}\n".encode() + args + b"R."


def inst_call(module: str, name: str, arg: str) -> bytes:
    """Protocol 0 ``INST`` (calls ``module.name(arg)``)."""
    return b"(S" + repr(arg).encode() + b"\ni" + f"{module}\n{name}\n".encode() + b"."


def _cases(sentinel: Path) -> dict[str, bytes]:
    s = str(sentinel)
    touch_cmd = f"touch {s}"
    py = f"open({s!r}, 'w').close()"
    cases: dict[str, bytes] = {}
    for proto in (4, 5):
        cases[f"extbuild-Popen-p{proto}"] = stack_global_call(
            "numpy.testing._private.extbuild", "subprocess.Popen", _args(["touch", s]), proto
        )
        cases[f"format_impl-FileIO-p{proto}"] = stack_global_call(
            "numpy.lib._format_impl", "io.FileIO", _args(s, "w"), proto
        )
        cases[f"ctypeslib-CDLL-p{proto}"] = stack_global_call(
            "numpy.ctypeslib", "ctypes.CDLL", _args("libc.so.6"), proto
        )
        cases[f"numpy-dotted-os-p{proto}"] = stack_global_call(
            "numpy", "testing._private.extbuild.subprocess.Popen", _args(["touch", s]), proto
        )
        cases[f"scipy-dotted-p{proto}"] = stack_global_call(
            "scipy.sparse", "_base.np.lib._format_impl.io.FileIO", _args(s, "w"), proto
        )
        cases[f"chumpy-dotted-p{proto}"] = stack_global_call(
            "chumpy.ch", "os.system", _args(touch_cmd), proto
        )
        cases[f"os-system-p{proto}"] = stack_global_call("os", "system", _args(touch_cmd), proto)
        cases[f"builtins-exec-p{proto}"] = stack_global_call("builtins", "exec", _args(py), proto)
        cases[f"builtins-eval-p{proto}"] = stack_global_call("builtins", "eval", _args(py), proto)
        cases[f"builtins-getattr-p{proto}"] = stack_global_call(
            "builtins", "getattr", _args("os", "system"), proto
        )
        cases[f"numpy-memmap-p{proto}"] = stack_global_call("numpy", "memmap", _args(s, "uint8", "w+"), proto)
        cases[f"numpy-save-p{proto}"] = stack_global_call("numpy", "save", _args(s, "x"), proto)
        cases[f"numpy-module-attr-p{proto}"] = stack_global_call(
            "numpy.lib._format_impl", "io", _args(), proto
        )
        cases[f"subprocess-p{proto}"] = stack_global_call("subprocess", "Popen", _args(["touch", s]), proto)
        cases[f"codecs-encode-p{proto}"] = stack_global_call("_codecs", "encode", _args("x", "rot13"), proto)
    for proto in (0, 2):
        cases[f"os-system-global-p{proto}"] = global_call("os", "system", _args(touch_cmd), proto)
        cases[f"posix-system-global-p{proto}"] = global_call("posix", "system", _args(touch_cmd), proto)
        cases[f"builtin-eval-global-p{proto}"] = global_call("__builtin__", "eval", _args(py), proto)
        cases[f"numpy-dotted-global-p{proto}"] = global_call(
            "numpy.lib._format_impl", "io.FileIO", _args(s, "w"), proto
        )
    cases["inst-os-system-p0"] = inst_call("os", "system", touch_cmd)
    cases["inst-subprocess-p0"] = inst_call("subprocess", "getoutput", touch_cmd)

    class Evil:
        def __reduce__(self):
            return (os.system, (touch_cmd,))

    class EvilEval:
        def __reduce__(self):
            return (eval, (py,))

    for proto in (2, 4, 5):  # a model dict with one poisoned entry, written by pickle itself
        d = build_demo_model_dict()
        d["sym_verts"] = Evil()
        cases[f"reduce-os-system-in-model-p{proto}"] = pickle.dumps(d, protocol=proto)
        cases[f"reduce-eval-p{proto}"] = pickle.dumps([EvilEval()], protocol=proto)
    return cases


def _all_cases(tmp_path: Path) -> dict[str, bytes]:
    return _cases(tmp_path / "PWNED")


CASE_NAMES = sorted(_cases(Path("/nonexistent/PWNED")))


@pytest.mark.parametrize("case", CASE_NAMES)
def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path, case):
    sentinel = tmp_path / "PWNED"
    blob = _all_cases(tmp_path)[case]
    path = tmp_path / f"{case}.pkl"
    path.write_bytes(blob)
    with pytest.raises(UnsafePickleError):
        unpickle_model_bytes(blob)
    with pytest.raises(ValueError, match="refused as a body-model file") as info:
        load_smil_model(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value.__cause__, UnsafePickleError)
    assert not sentinel.exists(), f"{case} ran code"
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_a_pickle_cannot_patch_the_chumpy_shim(tmp_path):
    """BUILD onto the shim class object only changes this load's private subclass."""
    from napari_smil_mv.body._pickle_io import _ChumpyShim

    blob = b"\x80\x04" + _s("chumpy.ch") + _s("Ch") + b"\x93" + b"N}" + _s("to_array") + b"N" + b"s\x86b."
    try:
        unpickle_model_bytes(blob)
    except Exception:  # noqa: BLE001 - only the side effect matters here
        pass
    assert callable(_ChumpyShim.to_array)


# ------------------------------------------------------------------------------------------- legit files still load


@pytest.mark.parametrize("path", SHARED_MODELS or [None], ids=[p.name for p in SHARED_MODELS] or ["absent"])
def test_real_models_load(path):
    if path is None:
        pytest.skip("../shared/models/*.pkl not available")
    data = load_smil_model(path)
    assert data.n_vertices > 1000 and data.n_joints > 10


@pytest.mark.parametrize("proto", [2, 4, 5])
def test_demo_model_and_legacy_layouts_load(tmp_path, proto):
    d = build_demo_model_dict()
    d["J_regressor"] = sp.csc_matrix(np.asarray(d["J_regressor"]))
    d["sym_verts"] = collections.OrderedDict(a=np.arange(3), b={1, 2}, c=b"bytes", d=frozenset([1]))
    d["bs_style"] = np.float32(1.5)
    path = tmp_path / "m.pkl"
    path.write_bytes(pickle.dumps(d, protocol=proto))
    data = load_smil_model(path)
    assert data.J_regressor.shape == (data.n_joints, data.n_vertices)
    if proto == 2:  # numpy 1.x and Python 2 module names
        legacy = (
            path.read_bytes()
            .replace(b"numpy._core.", b"numpy.core.")
            .replace(b"cbuiltins\n", b"c__builtin__\n")
        )
        path.write_bytes(legacy)
        assert load_smil_model(path).n_joints == data.n_joints
    save_smil_model(load_smil_model(None), tmp_path / "saved.pkl")
    assert load_smil_model(tmp_path / "saved.pkl").n_joints == data.n_joints


# ------------------------------------------------------------------------------------------- recorded model paths


def test_recorded_model_is_hashed_before_unpickling(tmp_path, monkeypatch):
    import hashlib

    good = save_smil_model(load_smil_model(None), tmp_path / "good.pkl")
    sha = hashlib.sha256(good.read_bytes()).hexdigest()
    assert load_recorded_model(good, sha, "results r.smilmv.h5").sha256 == sha
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(global_call("os", "system", _args(f"touch {tmp_path / 'PWNED'}")))
    calls = []
    monkeypatch.setattr(
        "napari_smil_mv.body.model_file.unpickle_model_bytes", lambda raw: calls.append(raw) or {}
    )
    with pytest.raises(ValueError, match="not the file results r.smilmv.h5 was made with"):
        load_recorded_model(evil, sha, "results r.smilmv.h5")
    with pytest.raises(ValueError, match="records no SHA-256"):
        load_recorded_model(good, "", "checkpoint c.pt")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_recorded_model(tmp_path / "gone.pkl", sha, "dataset d.h5")
    assert calls == []  # nothing was unpickled
    assert not (tmp_path / "PWNED").exists()
