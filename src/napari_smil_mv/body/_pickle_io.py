"""Restricted unpickling of body-model files (no chumpy needed, no arbitrary classes).

Legacy SMPL/SMAL files store arrays as ``chumpy`` objects; every chumpy class is mapped to a small shim that is
turned back into a numpy array. Only an explicit allow-list of exact ``(module, name)`` pairs (numpy array/dtype
reconstruction, scipy.sparse matrix classes, a few builtins) may be referenced; anything else, dotted names
included, is refused with :class:`UnsafePickleError` before anything is imported or called.
"""

from __future__ import annotations

import collections
import copyreg as _copyreg
import io
import pickle
import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = ["UnsafePickleError", "unpickle_model_bytes"]


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


def _latin1_encode(obj: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode`` as Python 3 pickles of ``bytes`` (protocol < 3) use it: text codecs only."""
    if not isinstance(obj, str) or encoding.lower().replace("_", "-") not in (
        "latin1",
        "latin-1",
        "utf-8",
        "utf8",
    ):
        raise UnsafePickleError(f"the file calls _codecs.encode with {type(obj).__name__!r} / {encoding!r}")
    return obj.encode(encoding, errors)


def _allowed_globals() -> dict[tuple[str, str], Any]:
    """The exact ``(module, name)`` pairs a body-model pickle may reference, mapped to the objects returned.

    Nothing is imported by name from the file: every object comes from this table (numpy array/dtype
    reconstruction for numpy 1.x and 2.x layouts, scipy.sparse matrix classes, a few builtins and the pickle
    helpers of Python 2/3). ``chumpy`` classes are handled separately (a shim).
    """
    try:
        from numpy._core import multiarray, numeric
    except ImportError:  # numpy < 2
        from numpy.core import multiarray, numeric

    table: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for core in ("numpy.core", "numpy._core"):
        table[(f"{core}.multiarray", "_reconstruct")] = multiarray._reconstruct
        table[(f"{core}.multiarray", "scalar")] = multiarray.scalar
        table[(f"{core}.numeric", "_frombuffer")] = numeric._frombuffer
    for kind in ("csr", "csc", "coo", "lil", "dok", "bsr", "dia"):
        for suffix in ("matrix", "array"):
            cls = getattr(sp, f"{kind}_{suffix}", None)
            if cls is None:
                continue
            for module in ("scipy.sparse", f"scipy.sparse.{kind}", f"scipy.sparse._{kind}"):
                table[(module, f"{kind}_{suffix}")] = cls
    for builtins in ("builtins", "__builtin__"):
        for name, obj in (
            ("set", set),
            ("frozenset", frozenset),
            ("slice", slice),
            ("complex", complex),
            ("object", object),
            ("list", list),
            ("dict", dict),
            ("tuple", tuple),
            ("bytearray", bytearray),
            ("bytes", bytes),
        ):
            table[(builtins, name)] = obj
    for copyreg in ("copyreg", "copy_reg"):
        table[(copyreg, "_reconstructor")] = _copyreg._reconstructor
    table[("collections", "OrderedDict")] = collections.OrderedDict
    table[("_codecs", "encode")] = _latin1_encode
    return table


_ALLOWED: dict[tuple[str, str], Any] = {}


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle references something that is not on the allow-list of a body-model file."""


class _ModelUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the allow-listed globals (exact module and name) and maps chumpy to a shim.

    ``find_class`` never imports a module or follows an attribute path named by the file: a dotted name (the
    protocol-4 ``STACK_GLOBAL`` path ``numpy.something`` + ``subprocess.Popen``) or any pair not in the table is
    refused with :class:`UnsafePickleError`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # a class of this load only: a pickle that BUILDs onto the class object cannot alter the shared shim
        self._shim = type("ChumpyObject", (_ChumpyShim,), {})

    def find_class(self, module: str, name: str) -> Any:
        if not _ALLOWED:
            _ALLOWED.update(_allowed_globals())
        if not isinstance(module, str) or not isinstance(name, str) or "." in name or not name.isidentifier():
            raise UnsafePickleError(
                f"the file references {module!s}.{name!s}: dotted or non-identifier names are not allowed in a "
                "body-model file"
            )
        if (module == "chumpy" or module.startswith("chumpy.")) and all(
            part.isidentifier() for part in module.split(".")
        ):
            return self._shim
        obj = _ALLOWED.get((module, name))
        if obj is None:
            raise UnsafePickleError(
                f"the file references {module}.{name}, which is not on the allow-list of a body-model file "
                "(numpy arrays, scipy.sparse matrices, chumpy arrays and plain containers only)"
            )
        return obj


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
    UnsafePickleError
        If the data references anything but the allow-listed array classes (nothing named by the file is imported
        or called).
    pickle.UnpicklingError
        If the data is not a valid pickle.
    """
    unpickler = _ModelUnpickler(io.BytesIO(raw), encoding="latin1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        obj = unpickler.load()
    if isinstance(obj, dict):
        return {k: _resolve(v) for k, v in obj.items()}
    return obj
