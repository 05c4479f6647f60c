"""Where the tests find the real sample data: ``../shared`` next to the repository, else (opt-in) a fetched copy.

A fresh clone has no ``../shared``. With ``SMILMV_FETCH_SAMPLE_DATA=1`` the public recordings and body models are
downloaded once from their upstream repositories (pinned commits, SHA-256 checked; see
:mod:`napari_smil_mv.sample_data_fetch`) into ``$SMILMV_SAMPLE_DATA_DIR`` or the user cache, and the tests read
them there. Without the variable nothing is downloaded and the tests that need the data skip with a reason.
"""

from __future__ import annotations

import functools
import os
import warnings
from pathlib import Path

LOCAL_SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def resolve_shared(local: Path, environ: dict | None = None) -> Path:
    """``local`` when it holds the sample data; else the fetched cache when opted in; else ``local``."""
    environ = os.environ if environ is None else environ
    if (local / "external").is_dir() or (local / "models").is_dir():
        return local
    from napari_smil_mv import sample_data_fetch

    if environ.get(sample_data_fetch.FETCH_ENV, "") not in ("1", "true", "yes"):
        return local  # tests skip: "real sample data not available"
    try:
        return sample_data_fetch.fetch_sample_data()
    except Exception as exc:  # no network, no pooch, checksum mismatch: skip rather than fail the whole run
        warnings.warn(f"could not fetch the sample data ({exc}); the tests that need it skip", stacklevel=1)
        return local


@functools.cache
def shared_root() -> Path:
    """The folder the tests read the sample data from (computed once per run)."""
    return resolve_shared(LOCAL_SHARED)


SHARED = shared_root()
