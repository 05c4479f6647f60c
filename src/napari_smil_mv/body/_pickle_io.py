"""Restricted unpickling of body-model files (no chumpy needed, no arbitrary classes).

Legacy SMPL/SMAL files store arrays as ``chumpy`` objects; every chumpy class is mapped to a small shim that is
turned back into a numpy array. Only numpy / scipy.sparse classes and a few builtins may be referenced; anything
else (for example a function that would run code while loading) is refused with an ``UnpicklingError``.
"""

from __future__ import annotations

import io
import pickle
import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = ["unpickle_model_bytes"]


class _ChumpyShim:
    """Stand-in for any ``chumpy`` class: remembers its constructor arguments and pickled state."""

    _args: tuple = ()
    _state: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._args = args
        self._state: Any = None

    def __setstate__(self, state: Any) -> None:
        self._state = state

    def to_array(self) -> np.ndarray:
        state = self._state
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
            state = state[1] if state[0] is None else state[0]
        if isinstance(state, dict):
            if "x" in state:
                return np.asarray(_resolve(state["x"]))
            for value in state.values():
                if isinstance(value, np.ndarray):
                    return value
        if self._args and not isinstance(self._args[0], type):
            return np.asarray(_resolve(self._args[0]))
        raise ValueError("a chumpy object in the file holds no array (no 'x' state)")


_NUMPY_FUNCTIONS = {"_reconstruct", "scalar", "_frombuffer"}
_SAFE_BUILTINS = {
    "set",
    "frozenset",
    "slice",
    "complex",
    "object",
    "list",
    "dict",
    "tuple",
    "bytearray",
    "bytes",
}


class _ModelUnpickler(pickle.Unpickler):
    """Unpickler that maps chumpy classes to a shim and refuses non-array classes."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "chumpy" or module.startswith("chumpy."):
            return _ChumpyShim
        if module.startswith("numpy.core") and np.lib.NumpyVersion(np.__version__) >= "2.0.0":
            module = "numpy._core" + module[len("numpy.core") :]
        if module == "numpy" or module.startswith("numpy."):
            obj = super().find_class(module, name)
            if (isinstance(obj, type) and obj is not np.memmap) or name in _NUMPY_FUNCTIONS:
                return obj
        elif module.startswith("scipy.sparse"):
            obj = getattr(sp, name) if hasattr(sp, name) else super().find_class(module, name)
            if isinstance(obj, type):
                return obj
        if (module, name) in {
            ("copyreg", "_reconstructor"),
            ("collections", "OrderedDict"),
            ("_codecs", "encode"),
        }:
            return super().find_class(module, name)
        if module in ("builtins", "__builtin__") and name in _SAFE_BUILTINS:
            return super().find_class("builtins", name)
        raise pickle.UnpicklingError(
            f"the file references {module}.{name}, which is not an array type a body-model file may contain"
        )


def _resolve(obj: Any) -> Any:
    """Replace chumpy shims (recursively in lists/tuples) by numpy arrays."""
    if isinstance(obj, _ChumpyShim):
        return obj.to_array()
    if isinstance(obj, list):
        return [_resolve(o) for o in obj]
    if isinstance(obj, tuple):
        return tuple(_resolve(o) for o in obj)
    return obj


def unpickle_model_bytes(raw: bytes) -> Any:
    """Unpickle ``raw`` (latin1 for Python 2 pickles) and replace chumpy objects by numpy arrays.

    Raises
    ------
    pickle.UnpicklingError
        If the data references a class that a model file may not contain.
    """
    unpickler = _ModelUnpickler(io.BytesIO(raw), encoding="latin1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        obj = unpickler.load()
    if isinstance(obj, dict):
        return {k: _resolve(v) for k, v in obj.items()}
    return obj
