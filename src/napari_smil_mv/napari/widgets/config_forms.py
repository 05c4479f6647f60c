"""magicgui forms generated from the config dataclasses (FitConfig, PreprocessOptions, TrainConfig, InferOptions).

:class:`ConfigForm` walks the fields of a dataclass and picks one editor per field from its type hint:

==============================  ==========================================================================
field type                      editor
==============================  ==========================================================================
``bool``                        check box
``int``                         spin box
``float``                       text field (any float, ``1e-4`` too; errors shown inline)
``str``                         text field, or a combo box when the field has choices
``Enum`` / ``Literal``          combo box
``Path`` (or a path hint)       file/folder picker
``X | None``                    the editor of ``X``; empty text means None (tuples/lists: a "set" box)
``int | str`` etc.              text field, parsed as the first type that accepts it
``tuple[X, ...]``/``list[X]``   comma-separated text
``dict[str, float]`` (keys in   one float field per key
the default)
other ``dict``                  JSON text
nested dataclass                a titled group of its fields
``list[dataclass]``             one titled group per element
==============================  ==========================================================================

Help text (tooltips) comes from ``field.metadata["help"]`` or the class's numpydoc ``Parameters``/``Attributes``.
What a field type cannot say (choices of a ``str``, paths, which fields are "advanced") comes from
``field.metadata`` (``choices``, ``path``, ``advanced``) or a :class:`FormHints` (dotted field paths such as
``"data.batch_size"``). Advanced fields sit in a collapsed section. :meth:`ConfigForm.value` builds the dataclass
instance (and runs its ``validate()``); a bad value is named in a red line under the form, which is re-checked on
every change.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import re
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from magicgui import widgets as mw

from napari_smil_mv.napari.widgets.form_editors import (
    Check,
    Choice,
    Editor,
    FieldError,
    Group,
    Json,
    PathEdit,
    Sequence_,
    Spin,
    Text,
    split_optional,
)

__all__ = ["ConfigForm", "FieldError", "FormHints", "doc_help"]


@dataclass
class FormHints:
    """What the field types do not say. Keys are dotted field paths (``"stages"``, ``"data.batch_size"``).

    Attributes
    ----------
    advanced
        Fields shown in the collapsed "Advanced" section (a nested dataclass path moves its whole group).
    basic
        Exceptions inside an advanced group (shown in the main section).
    choices
        Allowed values of ``str`` fields (combo box).
    paths
        Path fields: ``"r"`` (existing file), ``"w"`` (file to write) or ``"d"`` (folder).
    hidden
        Fields not shown; their value comes from the last :meth:`ConfigForm.set_value` (default: the default).
    labels
        Labels other than the field name.
    dict_as
        ``dict`` fields edited as some fields of a dataclass: ``{path: (cls, field names)}``; the value holds the
        fields that differ from ``cls()`` plus the keys the set value had.
    """

    advanced: set[str] = field(default_factory=set)
    basic: set[str] = field(default_factory=set)
    choices: dict[str, Sequence[Any]] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)
    hidden: set[str] = field(default_factory=set)
    labels: dict[str, str] = field(default_factory=dict)
    dict_as: dict[str, tuple[type, Sequence[str]]] = field(default_factory=dict)


def doc_help(cls: type) -> dict[str, str]:
    """Field descriptions from a numpydoc class docstring (``name`` + indented text, or ``name : text``)."""
    doc = inspect.cleandoc(cls.__doc__ or "")
    out: dict[str, str] = {}
    names: list[str] = []
    for line in doc.splitlines():
        if not line.strip() or set(line.strip()) <= {"-"}:
            names = [] if not line.strip() else names
            continue
        if line[0].isspace():
            for n in names:
                out[n] = (out.get(n, "") + " " + line.strip()).strip()
            continue
        head, _, text = line.partition(" : ")
        candidates = [n.strip() for n in head.split(",")]
        if all(re.fullmatch(r"[A-Za-z_]\w*", n) for n in candidates):
            names = candidates
            for n in names:
                out[n] = text.strip()
        else:
            names = []
    return out


class ConfigForm:
    """A magicgui form for the dataclass ``cls`` (see the module docstring).

    Parameters
    ----------
    cls
        The config dataclass.
    value
        Initial instance (default ``cls()``).
    hints
        :class:`FormHints` for what the types do not say.
    on_change
        Called after every valid change with the new instance.

    Attributes
    ----------
    native
        The Qt widget to add to a layout: main fields, a collapsed "Advanced" section, a red error line.
    """

    def __init__(
        self,
        cls: type,
        value: Any = None,
        hints: FormHints | None = None,
        on_change: Callable[[Any], None] | None = None,
    ) -> None:
        from qtpy.QtWidgets import QLabel, QVBoxLayout, QWidget
        from superqt import QCollapsible

        self.cls, self.hints, self.on_change = cls, hints or FormHints(), on_change
        self._base = value if value is not None else cls()
        self.main = mw.Container(labels=True)
        self.advanced = mw.Container(labels=True)
        self.editors: dict[str, Editor] = {}  # top-level field -> editor
        self.leaves: dict[str, Editor] = {}  # dotted path -> editor (every field shown)
        self._groups: dict[str, tuple[mw.Container, mw.Container]] = {}
        for f in self._fields(cls, ""):
            self.editors[f.name] = self._editor(f, cls, f.name)
        self.native = QWidget()
        lay = QVBoxLayout(self.native)
        lay.setContentsMargins(0, 0, 0, 0)
        self.main.margins = (0, 0, 0, 0)
        lay.addWidget(self.main.native)
        self.collapsible = QCollapsible("Advanced")
        self.collapsible.addWidget(self.advanced.native)
        self.collapsible.setVisible(len(self.advanced) > 0)
        lay.addWidget(self.collapsible)
        self.error_label = QLabel("")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #ff6060;")
        self.error_label.setVisible(False)
        lay.addWidget(self.error_label)
        self.set_value(self._base)
        for e in self.leaves.values():
            for w in _value_widgets(e.widget):
                w.changed.connect(self._changed)

    # ------------------------------------------------------------------------------------------ building
    def _fields(self, cls: type, prefix: str) -> list[dataclasses.Field]:
        return [
            f
            for f in dataclasses.fields(cls)
            if f.init and not f.name.startswith("_") and f"{prefix}{f.name}" not in self.hints.hidden
        ]

    def _meta(self, f: dataclasses.Field, path: str, key: str, table: dict) -> Any:
        return table.get(path, f.metadata.get(key))

    def _place(self, path: str, widget: mw.Widget, f: dataclasses.Field | None) -> None:
        """Put ``widget`` in the main or advanced container of its parent group."""
        parent = path.rpartition(".")[0]
        advanced = self._is_advanced(path, f)
        if parent in self._groups:
            main, adv = self._groups[parent]
            (adv if advanced else main).append(widget)
        else:
            (self.advanced if advanced else self.main).append(widget)

    def _is_advanced(self, path: str, f: dataclasses.Field | None) -> bool:
        if path in self.hints.basic:
            return False
        if path in self.hints.advanced or (f is not None and f.metadata.get("advanced")):
            return True
        parts = path.split(".")
        ancestors = {".".join(parts[:i]) for i in range(1, len(parts))}
        return bool(ancestors & self.hints.advanced) and not ancestors & self.hints.basic

    def _editor(self, f: dataclasses.Field, owner: type, path: str) -> Editor:
        hints = typing.get_type_hints(owner)
        tp = hints[f.name]
        label = self.hints.labels.get(path, f.name.replace("_", " "))
        help_text = f.metadata.get("help") or doc_help(owner).get(f.name, "")
        editor = self._make(tp, f, owner, path, label)
        if editor.widget is None:  # nested groups: their fields are placed already
            return editor
        editor.widget.label = label
        tip = f"{path} ({_type_name(tp)}, default {_default_text(f)})"
        editor.widget.tooltip = f"{help_text}\n\n{tip}" if help_text else tip
        self.leaves[path] = editor
        self._place(path, editor.widget, f)
        return editor

    def _make(self, tp: Any, f: dataclasses.Field, owner: type, path: str, label: str) -> Editor:
        inner, optional = split_optional(tp)
        origin = typing.get_origin(inner)
        choices = self._meta(f, path, "choices", self.hints.choices)
        mode = self._meta(f, path, "path", self.hints.paths)
        if path in self.hints.dict_as:
            spec_cls, names = self.hints.dict_as[path]
            return self._dict_as(spec_cls, names, path, label)
        if origin is typing.Literal:
            return Choice(typing.get_args(inner))
        if isinstance(inner, type) and issubclass(inner, enum.Enum):
            return Choice(list(inner), inner)
        if choices is not None and not optional:
            return Choice(choices)
        if mode is not None or inner is Path:
            return PathEdit(inner, optional, mode or "r")
        if inner is bool and not optional:
            return Check(label)
        if inner is int and not optional:
            return Spin()
        if inner in (int, float, str, bool) or origin in (typing.Union, types.UnionType):
            return Text(inner, optional, path)
        if origin in (tuple, list) and _flat_items(inner):
            item = typing.get_args(inner)[0]
            return Sequence_(origin, item, optional, path)
        if dataclasses.is_dataclass(inner) and not optional:
            return self._dataclass_group(inner, path, label)
        if origin is list and dataclasses.is_dataclass(typing.get_args(inner)[0]):
            return self._list_group(typing.get_args(inner)[0], f, path, label)
        if _is_str_float_dict(inner, f):
            keys = list(f.default_factory())  # type: ignore[misc]
            editors = {k: Text(float, False, f"{path}.{k}") for k in keys}
            for k, e in editors.items():
                e.widget.label = k
            return Group(label, editors, dict)
        return Json(tp, path)

    def _dataclass_group(self, cls: type, path: str, label: str) -> Group:
        main, adv = self._new_group(path, label)
        editors = {f.name: self._editor(f, cls, f"{path}.{f.name}") for f in self._fields(cls, f"{path}.")}
        for container, advanced in ((main, False), (adv, True)):
            if len(container) > 1:
                self._place_group(path, container, advanced)
        return Group(label, editors, lambda values: _replace(self._base_at(path), cls, values), box=False)

    def _new_group(self, path: str, label: str) -> tuple[mw.Container, mw.Container]:
        """The main and advanced containers of a nested group, each starting with a bold title."""
        pair = []
        for _ in range(2):
            c = mw.Container(labels=True, label="")
            c.margins = (0, 4, 0, 0)
            c.append(mw.Label(value=f"<b>{label}</b>", label=""))
            pair.append(c)
        self._groups[path] = (pair[0], pair[1])
        return pair[0], pair[1]

    def _place_group(self, path: str, container: mw.Container, advanced: bool) -> None:
        parent = path.rpartition(".")[0]
        if parent in self._groups:
            self._groups[parent][1 if advanced else 0].append(container)
        else:
            (self.advanced if advanced else self.main).append(container)

    def _list_group(self, item_cls: type, f: dataclasses.Field, path: str, label: str) -> Group:
        items = list(getattr(self._base, f.name)) if path == f.name else list(f.default_factory())  # type: ignore[misc]
        editors: dict[str, Editor] = {}
        for i, item in enumerate(items):
            name = getattr(item, "name", "")
            editors[str(i)] = self._dataclass_group(item_cls, f"{path}.{i}", f"{label}[{i}] {name}".strip())
        return Group(label, editors, lambda values: [values[k] for k in sorted(values, key=int)], box=False)

    def _dict_as(self, spec_cls: type, names: Sequence[str], path: str, label: str) -> Editor:
        form = self
        defaults = spec_cls()

        class _DictAs(Group):
            def set(self, value: Any) -> None:
                self.given = set(value or {})
                for k, e in self.editors.items():
                    e.set((value or {}).get(k, getattr(defaults, k)))

        fields = {f.name: f for f in dataclasses.fields(spec_cls)}
        main, adv = self._new_group(path, label)
        editors = {n: form._editor(fields[n], spec_cls, f"{path}.{n}") for n in names}
        for container, advanced in ((main, False), (adv, True)):
            if len(container) > 1:
                self._place_group(path, container, advanced)
        editor = _DictAs(label, editors, dict, box=False)
        editor.given = set()
        editor.build = lambda values: {
            k: v for k, v in values.items() if k in editor.given or v != getattr(defaults, k)
        }
        return editor

    def _base_at(self, path: str) -> Any:
        obj = self._base
        for part in path.split("."):
            obj = obj[int(part)] if part.isdigit() else getattr(obj, part)
        return obj

    # ------------------------------------------------------------------------------------------ values
    def set_value(self, value: Any) -> None:
        """Show the fields of ``value`` (an instance of the form's class)."""
        if type(value) is not self.cls:
            raise TypeError(f"expected a {self.cls.__name__}, got {type(value).__name__}")
        self._base = value
        for name, editor in self.editors.items():
            current = getattr(value, name)
            if isinstance(editor, Group) and isinstance(current, list):
                if len(current) != len(editor.editors):
                    raise ValueError(
                        f"{self.cls.__name__}.{name}: the form shows {len(editor.editors)} entries, the value "
                        f"has {len(current)}; build a new form for it"
                    )
                for i, item in enumerate(current):
                    self._set_dataclass(editor.editors[str(i)], item)
            elif isinstance(editor, Group) and dataclasses.is_dataclass(current):
                self._set_dataclass(editor, current)
            else:
                editor.set(current)
        self._show_error(None)

    def _set_dataclass(self, editor: Editor, value: Any) -> None:
        for name, sub in editor.editors.items():  # type: ignore[attr-defined]
            current = getattr(value, name)
            if isinstance(sub, Group) and dataclasses.is_dataclass(current):
                self._set_dataclass(sub, current)
            else:
                sub.set(current)

    def value(self) -> Any:
        """The dataclass instance of the form (validated); ValueError names the bad field (shown inline too)."""
        for e in self.leaves.values():
            e.mark(False)
        try:
            values = {k: e.get() for k, e in self.editors.items()}
            out = _replace(self._base, self.cls, values)
            validate = getattr(out, "validate", None)
            if callable(validate):
                validate()
        except FieldError as exc:
            if exc.path in self.leaves:
                self.leaves[exc.path].mark(True)
            self._show_error(str(exc))
            raise
        except (ValueError, TypeError) as exc:
            self._show_error(str(exc))
            raise ValueError(str(exc)) from None
        self._show_error(None)
        return out

    def scroll_area(self, min_height: int = 240) -> Any:
        """The form in a vertical scroll area (a docked widget is squeezed to the window height otherwise)."""
        from qtpy.QtCore import Qt
        from qtpy.QtWidgets import QFrame, QScrollArea

        area = QScrollArea()
        area.setWidgetResizable(True)
        area.setFrameShape(QFrame.Shape.NoFrame)
        area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        area.setWidget(self.native)
        area.setMinimumHeight(min(min_height, self.native.sizeHint().height() + 4))
        return area

    def set_field(self, path: str, value: Any) -> None:
        """Show ``value`` in the editor of the field at dotted ``path`` (``"data.batch_size"``, ``"stages.2.lr"``;
        a key of a weights dict: ``"weights.smooth_acc"``)."""
        head, _, key = path.rpartition(".")
        if path not in self.leaves and head in self.leaves and isinstance(self.leaves[head], Group):
            self.leaves[head].editors[key].set(value)
        else:
            self.leaves[path].set(value)

    def widget(self, path: str) -> mw.Widget:
        """The magicgui widget of the field at dotted ``path``."""
        return self.leaves[path].widget

    def error(self) -> str | None:
        """The message of the current values' problem, or None when they make a valid instance."""
        try:
            self.value()
        except ValueError as exc:
            return str(exc)
        return None

    def _changed(self, *_args: Any) -> None:
        try:
            value = self.value()
        except ValueError:
            return
        if self.on_change is not None:
            self.on_change(value)

    def _show_error(self, text: str | None) -> None:
        self.error_label.setText(text or "")
        self.error_label.setVisible(bool(text))


def _replace(base: Any, cls: type, values: dict[str, Any]) -> Any:
    """``cls(**values)`` with the fields the form does not show taken from ``base``."""
    kwargs = {
        f.name: values[f.name] if f.name in values else getattr(base, f.name)
        for f in dataclasses.fields(cls)
        if f.init
    }
    return cls(**kwargs)


def _value_widgets(widget: mw.Widget) -> list[mw.Widget]:
    if isinstance(widget, mw.Container):
        return [w for child in widget for w in _value_widgets(child)]
    return [widget]


def _flat_items(tp: Any) -> bool:
    args = typing.get_args(tp)
    return bool(args) and args[0] in (str, int, float, Path) and (len(args) == 1 or args[1] is Ellipsis)


def _is_str_float_dict(tp: Any, f: dataclasses.Field) -> bool:
    tp, _ = split_optional(tp)
    if typing.get_origin(tp) is not dict or typing.get_args(tp) != (str, float):
        return False
    return f.default_factory is not dataclasses.MISSING and bool(f.default_factory())  # type: ignore[misc]


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) if isinstance(tp, type) else str(tp).replace("typing.", "")


def _default_text(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        return repr(f.default)
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        value = f.default_factory()  # type: ignore[misc]
        return "…" if dataclasses.is_dataclass(value) or isinstance(value, list) and value else repr(value)
    return "required"
