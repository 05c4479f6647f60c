"""One progress line per event, the same for every command that runs a generator of events."""

from __future__ import annotations

from typing import Any


def print_progress(event: Any) -> None:
    """Print ``[ 42.0%] stage    message`` for an event with ``progress`` (0..1), ``stage`` and ``message``."""
    print(f"[{100.0 * event.progress:5.1f}%] {event.stage:<8} {event.message}", flush=True)
