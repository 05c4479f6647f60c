"""The field editors of :mod:`napari_smil_mv.napari.widgets.config_forms`: one magicgui widget per dataclass field, with
``get()`` (parse and check the widget's value; :class:`FieldError` names the field) and ``set()``."""

from __future__ import annotations

import enum
import json
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from magicgui import widgets as mw

_NONE = type(None)


class FieldError(ValueError):
    """A value that cannot be read from its editor; ``path`` names the field."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


def split_optional(tp: Any) -> tuple[Any, bool]:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not _NONE]
        optional = len(args) < len(typing.get_args(tp))
        inner = args[0] if len(args) == 1 else typing.Union[tuple(args)]  # noqa: UP007
        return inner, optional
    return tp, False


def parse_scalar(tp: Any, text: str, path: str) -> Any:
    """Parse ``text`` as ``tp`` (str, int, float, bool, Path or a union of them, tried in order)."""
    text = text.strip()
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            try:
                return parse_scalar(arg, text, path)
            except FieldError:
                continue
        raise FieldError(path, f"{text!r} is not a {' or '.join(a.__name__ for a in typing.get_args(tp))}")
    if tp is bool:
        if text.lower() in ("true", "1", "yes"):
            return True
        if text.lower() in ("false", "0", "no"):
            return False
        raise FieldError(path, f"{text!r} is not true/false")
    if tp in (int, float):
        try:
            return tp(text.replace(",", ".") if tp is float else text)
        except ValueError:
            raise FieldError(path, f"{text!r} is not {'an integer' if tp is int else 'a number'}") from None
    if tp is Path:
        return Path(text)
    return text


def as_text(value: Any) -> str:
    return "" if value is None else repr(value) if isinstance(value, float) else str(value)


class Editor:
    """One field's widget: ``get()`` reads the value (FieldError names the field), ``set()`` shows one."""

    widget: mw.Widget

    def get(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def set(self, value: Any) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def mark(self, bad: bool) -> None:
        self.widget.native.setStyleSheet("border: 1px solid #e05050;" if bad else "")


class Check(Editor):
    def __init__(self, label: str) -> None:
        self.widget = mw.CheckBox(text=label)

    def get(self) -> bool:
        return bool(self.widget.value)

    def set(self, value: Any) -> None:
        self.widget.value = bool(value)


class Spin(Editor):
    def __init__(self) -> None:
        self.widget = mw.SpinBox(min=-(2**31) + 1, max=2**31 - 1)

    def get(self) -> int:
        return int(self.widget.value)

    def set(self, value: Any) -> None:
        self.widget.value = int(value)


class Choice(Editor):
    def __init__(self, choices: Sequence[Any], kind: Any = None) -> None:
        self.kind = kind
        self.choices = list(choices)
        self.widget = mw.ComboBox(choices=self._pairs())

    def _pairs(self) -> list[tuple[str, Any]]:
        return [(c.name if isinstance(c, enum.Enum) else str(c), c) for c in self.choices]

    def get(self) -> Any:
        return self.widget.value

    def set(self, value: Any) -> None:
        if value not in self.choices:  # a value from a config file that the list does not know: offer it
            self.choices.append(value)
            self.widget.choices = self._pairs()
        self.widget.value = value


class Text(Editor):
    """Text parsed as ``tp``; empty text is None when ``optional``."""

    def __init__(self, tp: Any, optional: bool, path: str) -> None:
        self.tp, self.optional, self.path = tp, optional, path
        self.widget = mw.LineEdit()
        if optional:
            self.widget.native.setPlaceholderText("none")

    def get(self) -> Any:
        text = str(self.widget.value)
        if not text.strip() and self.optional:
            return None
        if not text.strip() and self.tp is not str:
            raise FieldError(self.path, "a value is required")
        return text if self.tp is str else parse_scalar(self.tp, text, self.path)

    def set(self, value: Any) -> None:
        self.widget.value = as_text(value)


class PathEdit(Editor):
    def __init__(self, tp: Any, optional: bool, mode: str) -> None:
        self.tp, self.optional = tp, optional
        self.widget = mw.FileEdit(mode=mode)

    def get(self) -> Any:
        text = str(self.widget.line_edit.value).strip()
        if not text:
            return None if self.optional else ("" if self.tp is str else Path())
        return Path(text) if self.tp is Path else text

    def set(self, value: Any) -> None:
        self.widget.line_edit.value = "" if value is None else str(value)


class Sequence_(Editor):
    """Comma-separated items of ``item`` type, as ``container`` (tuple or list)."""

    def __init__(self, container: type, item: Any, optional: bool, path: str) -> None:
        self.container, self.item, self.path = container, item, path
        self.text = mw.LineEdit()
        self.text.native.setPlaceholderText("comma-separated")
        self.optional = optional
        if optional:
            self.enabled = mw.CheckBox(text="set", value=False)
            self.enabled.changed.connect(lambda v: setattr(self.text, "enabled", bool(v)))
            self.text.enabled = False
            self.widget = mw.Container(widgets=[self.enabled, self.text], layout="horizontal", labels=False)
            self.widget.margins = (0, 0, 0, 0)
        else:
            self.widget = self.text

    def get(self) -> Any:
        if self.optional and not self.enabled.value:
            return None
        parts = [p.strip() for p in str(self.text.value).split(",") if p.strip()]
        return self.container(parse_scalar(self.item, p, self.path) for p in parts)

    def set(self, value: Any) -> None:
        if self.optional:
            self.enabled.value = value is not None
        self.text.value = ", ".join(as_text(v) for v in value or ())


class Json(Editor):
    """Any JSON-able value (dicts with int keys, e.g. epochs, come back as ints)."""

    def __init__(self, tp: Any, path: str) -> None:
        self.tp, self.path = tp, path
        self.widget = mw.LineEdit()
        self.widget.native.setPlaceholderText("JSON, e.g. {}")

    def get(self) -> Any:
        text = str(self.widget.value).strip() or "null"
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise FieldError(self.path, f"not valid JSON ({exc})") from None
        tp, optional = split_optional(self.tp)
        if value is None:
            if optional:
                return None
            value = typing.get_origin(tp)() if typing.get_origin(tp) in (dict, list) else value
        if typing.get_origin(tp) is dict and isinstance(value, dict):
            key_tp = typing.get_args(tp)[0]
            if key_tp in (int, float):
                value = {parse_scalar(key_tp, str(k), self.path): v for k, v in value.items()}
        return value

    def set(self, value: Any) -> None:
        if isinstance(value, dict):
            value = {str(k): v for k, v in value.items()}
        self.widget.value = json.dumps(value)


class Group(Editor):
    """Several editors under one name; ``build(values)`` makes the field's value."""

    def __init__(
        self, label: str, editors: dict[str, Editor], build: Callable[[dict], Any], box: bool = True
    ) -> None:
        self.editors, self.build = editors, build
        # box=False: the editors were placed in the form's sections already (nested dataclasses)
        self.widget = mw.Container(widgets=[e.widget for e in editors.values()], label=label) if box else None

    def get(self) -> Any:
        return self.build({k: e.get() for k, e in self.editors.items()})

    def set(self, value: Any) -> None:
        for k, e in self.editors.items():
            e.set(value[k])
