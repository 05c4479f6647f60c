"""Loading a body model that another file (results, checkpoint, dataset) records by path and SHA-256.

The recorded file's bytes are hashed *before* anything is unpickled, so such a file cannot make the program
unpickle a file other than the model it was made with (see also the allow-listed unpickler in ``_pickle_io``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from napari_smil_mv.body.model_file import SMILModelData, _model_from_bytes

__all__ = ["load_recorded_model"]


def load_recorded_model(
    path: str | os.PathLike, sha256: str, recorded_in: str, fix: str = "pass the model file"
) -> SMILModelData:
    """Load the model ``.pkl`` that another file (results, checkpoint, dataset) records, hash first.

    The file's bytes are read and their SHA-256 compared with ``sha256`` *before* anything is unpickled, so a
    results/checkpoint/dataset file cannot make the program unpickle a file other than the model it was made
    with.

    Parameters
    ----------
    path
        The recorded model path.
    sha256
        The recorded SHA-256 of the model file's bytes (hex). Empty: refused (nothing to check against).
    recorded_in
        What recorded the path (for messages), e.g. ``"the checkpoint run/best.pt"``.
    fix
        How to give the model instead (for messages).

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        No hash is recorded, the hash differs (the file is not loaded), or the file is not a valid model.
    """
    path = Path(path)
    if not sha256:
        raise ValueError(
            f"{recorded_in} names body model {path} but records no SHA-256, so it is not loaded automatically; "
            f"{fix}"
        )
    if not path.is_file():
        raise FileNotFoundError(
            f"{recorded_in} was made with body model {path}, which does not exist here; {fix}"
        )
    raw = path.read_bytes()
    found = hashlib.sha256(raw).hexdigest()
    if found != sha256:
        raise ValueError(
            f"body model {path} (SHA-256 {found[:12]}...) is not the file {recorded_in} was made with (SHA-256 "
            f"{sha256[:12]}...); it was not loaded; {fix}"
        )
    return _model_from_bytes(raw, path)
