"""Registry of the sessions shown in napari: session id -> :class:`~napari_smil_mv.sessions.Session`.

Layers carry only the id (``layer.metadata["napari_smil_mv"]["session"]``); :func:`get_session` returns the
Session object behind them. The id is the session name, made unique with ``#2``, ``#3``, ... when another
session of the same name is already registered. Plain Python: no Qt or napari imports.
"""

from __future__ import annotations

import threading

from napari_smil_mv.sessions import Session

_LOCK = threading.Lock()
_SESSIONS: dict[str, Session] = {}


def register_session(session: Session) -> str:
    """Register ``session`` (idempotent for the same object) and return its id."""
    with _LOCK:
        for key, value in _SESSIONS.items():
            if value is session:
                return key
        key, k = session.name, 1
        while key in _SESSIONS:
            k += 1
            key = f"{session.name}#{k}"
        _SESSIONS[key] = session
        return key


def get_session(session_id: str) -> Session:
    """The registered session with this id; KeyError listing the registered ids otherwise."""
    with _LOCK:
        try:
            return _SESSIONS[session_id]
        except KeyError:
            raise KeyError(
                f"no session {session_id!r} is registered (registered: {sorted(_SESSIONS)}); load it with "
                "napari_smil_mv.api.load_session(viewer, path)"
            ) from None


def session_id_of(session: Session) -> str | None:
    """The id of a registered session object, or None."""
    with _LOCK:
        for key, value in _SESSIONS.items():
            if value is session:
                return key
    return None


def forget_session(session_id: str) -> None:
    """Drop a session from the registry (its layers then no longer resolve to it). Unknown ids are ignored."""
    with _LOCK:
        _SESSIONS.pop(session_id, None)


def registered_sessions() -> dict[str, Session]:
    """A copy of the registry."""
    with _LOCK:
        return dict(_SESSIONS)
