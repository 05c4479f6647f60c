"""Helpers for long jobs written as generators of events that *return* their result (``return value``).

The CLI consumes such a generator with a callback (:func:`drain`); another generator passes its events on,
converted, and takes the result (:func:`relay`, with ``yield from``).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, TypeVar

E = TypeVar("E")
R = TypeVar("R")
T = TypeVar("T")

__all__ = ["drain", "relay"]


def drain(events: Generator[E, Any, R], on_event: Callable[[E], None] | None = None) -> R:
    """Run ``events`` to the end, calling ``on_event`` with every event; returns the generator's return value."""
    while True:
        try:
            event = next(events)
        except StopIteration as stop:
            return stop.value
        if on_event is not None:
            on_event(event)


def relay(events: Generator[E, Any, R], convert: Callable[[E], T | None]) -> Generator[T, None, R]:
    """Yield ``convert(event)`` for every event of ``events`` (None: nothing); return its return value.

    Use it as ``result = yield from relay(job(), to_my_event)``.
    """
    while True:
        try:
            event = next(events)
        except StopIteration as stop:
            return stop.value
        item = convert(event)
        if item is not None:
            yield item
