"""Cancellation flags of long jobs (fit, training, inference): a ``threading.Event`` or a callable."""

from __future__ import annotations

import threading
from collections.abc import Callable

#: What long jobs accept as ``cancel``: an Event (set it to stop), a callable returning True to stop, or None.
CancelFlag = threading.Event | Callable[[], bool] | None


def is_cancelled(cancel: CancelFlag) -> bool:
    """True when the ``threading.Event`` is set or the callable returns True (False for None)."""
    if cancel is None:
        return False
    if isinstance(cancel, threading.Event):
        return cancel.is_set()
    return bool(cancel())
