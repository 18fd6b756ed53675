"""Load spec files into protobuf messages, with errors that name ``file:line:column`` and the field.

Two syntaxes, as in the manuals: protobuf text format (``.txt``, ``.prototxt``, anything else) and
YAML (``.yaml``/``.yml``, the TAO classification spec). YAML is walked node by node against the
message descriptor so that its errors carry line numbers too. Unknown field names get a
"did you mean" suggestion from the message's real field names.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from google.protobuf import text_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from libtlt.errors import SpecError, location
from libtlt.spec.locate import _plain, canonical, scan_text_positions

M = TypeVar("M", bound=Message)

YAML_SUFFIXES = (".yaml", ".yml")


@dataclass
class LoadedSpec(Generic[M]):
    """A parsed spec plus where each field was written, for error messages."""

    message: M
    path: str
    positions: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: "text" (protobuf text format, the 000 prototxt form) or "yaml" (the 003 form): some defaults
    #: depend on it (an unwritten prototxt scalar is proto3's zero in the original toolkit).
    syntax: str = "text"

    def locate(self, field_path: str) -> str:
        """``file:line:column`` of ``field_path`` (or of its closest written ancestor, or the file)."""
        exact = canonical(field_path).split(".")
        plain = _plain(field_path).split(".")
        candidates = [".".join(exact)]
        candidates += [".".join(exact[:n]) for n in range(len(exact) - 1, 0, -1)]
        candidates += [".".join(plain[:n]) for n in range(len(plain), 0, -1)]
        for candidate in candidates:
            if candidate in self.positions:
                line, column = self.positions[candidate]
                return location(self.path, line, column)
        return location(self.path)

    def error(self, field_path: str, message: str) -> SpecError:
        """A ``SpecError`` pointing at ``field_path``; raise it."""
        return SpecError(message, location=self.locate(field_path), field=field_path)


def load_spec(path: str | Path, message_type: type[M]) -> LoadedSpec[M]:
    """Read ``path`` (text format or YAML by suffix) into a new ``message_type``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError("spec file not found", location=path) from None
    except IsADirectoryError:
        raise SpecError("expected a spec file, got a directory", location=path) from None
    except UnicodeDecodeError as err:
        raise SpecError(f"spec file is not UTF-8 text ({err.reason})", location=path) from None
    syntax = "yaml" if path.suffix.lower() in YAML_SUFFIXES else "text"
    return load_spec_text(text, message_type, name=str(path), syntax=syntax)


def load_spec_text(text: str, message_type: type[M], *, name: str = "<spec>", syntax: str = "text") -> LoadedSpec[M]:
    """Parse spec ``text``; ``name`` is used in error locations."""
    if syntax == "yaml":
        return _load_yaml(text, message_type, name)
    return _load_text(text, message_type, name)


# ---------------------------------------------------------------------------------------------- text


_UNKNOWN_FIELD = re.compile(r'Message type "(?P<type>[\w.]+)" has no field named "(?P<field>[^"]+)"')
_UNKNOWN_ENUM = re.compile(r'Enum type "(?P<type>[\w.]+)" has no value named (?P<value>\S+?)\.?$')
_POSITION_PREFIX = re.compile(r"^\d+:\d+\s*:\s*")


def _load_text(text: str, message_type: type[M], name: str) -> LoadedSpec[M]:
    message = message_type()
    positions = scan_text_positions(text)
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as err:
        line, column = err.GetLine(), err.GetColumn()
        raw = _POSITION_PREFIX.sub("", str(err))
        context = positions.enclosing(line or 0, column or 0)
        raise SpecError(_explain(raw, message_type.DESCRIPTOR, context), location=location(name, line, column)) from None
    return LoadedSpec(message, name, positions.positions)


def _explain(raw: str, root: Any, context: list[str]) -> str:
    """Rewrite protobuf's parse error in the user's terms (field path, suggestion, valid values)."""
    where = ".".join(context) if context else "the top level"
    unknown = _UNKNOWN_FIELD.search(raw)
    if unknown:
        desc = _find_descriptor(root, unknown.group("type"))
        return _unknown_field_message(unknown.group("field"), desc, where)
    enum = _UNKNOWN_ENUM.search(raw)
    if enum:
        values = _enum_values(root, enum.group("type"))
        hint = f" (valid: {', '.join(values)})" if values else ""
        return f"unknown value {enum.group('value')} in {where}{hint}"
    return f"{raw} (in {where})"


def _unknown_field_message(name: str, desc: Any, where: str) -> str:
    text = f"unknown field '{name}' in {where}"
    if desc is not None:
        close = difflib.get_close_matches(name, [f.name for f in desc.fields], n=1, cutoff=0.6)
        if close:
            text += f"; did you mean '{close[0]}'?"
    return text


def _all_descriptors(root: Any) -> list[Any]:
    seen: dict[str, Any] = {}
    todo = [root]
    while todo:
        desc = todo.pop()
        if desc.full_name in seen:
            continue
        seen[desc.full_name] = desc
        todo.extend(f.message_type for f in desc.fields if f.message_type is not None)
        todo.extend(desc.nested_types)
    return list(seen.values())


def _find_descriptor(root: Any, full_name: str) -> Any:
    return next((d for d in _all_descriptors(root) if d.full_name == full_name), None)


def _enum_values(root: Any, full_name: str) -> list[str]:
    for desc in _all_descriptors(root):
        for fld in desc.fields:
            if fld.enum_type is not None and fld.enum_type.full_name == full_name:
                return [v.name for v in fld.enum_type.values]
    return []


# ---------------------------------------------------------------------------------------------- YAML


def _load_yaml(text: str, message_type: type[M], name: str) -> LoadedSpec[M]:
    import yaml

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = location(name, mark.line + 1, mark.column + 1) if mark else location(name)
        problem = getattr(err, "problem", None) or str(err)
        raise SpecError(f"invalid YAML: {problem}", location=where) from None
    message = message_type()
    positions: dict[str, tuple[int, int]] = {}
    if node is not None:
        _YamlWalker(name, positions).fill(message, node, data, [])
    return LoadedSpec(message, name, positions, syntax="yaml")


_INT_RANGES = {
    FieldDescriptor.CPPTYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.CPPTYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.CPPTYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.CPPTYPE_UINT64: (0, 2**64 - 1),
}


class _YamlWalker:
    """Fill a message from a composed YAML node tree (for positions) and its loaded values."""

    def __init__(self, name: str, positions: dict[str, tuple[int, int]]):
        self.name = name
        self.positions = positions

    def _loc(self, node: Any) -> str:
        return location(self.name, node.start_mark.line + 1, node.start_mark.column + 1)

    def fill(self, message: Message, node: Any, data: Any, path: list[str]) -> None:
        import yaml

        desc = message.DESCRIPTOR
        where = ".".join(path) if path else "the top level"
        if not isinstance(node, yaml.MappingNode) or not isinstance(data, dict):
            raise SpecError(f"expected a mapping for {where}", location=self._loc(node))
        for (key_node, value_node), (key, value) in zip(node.value, data.items(), strict=True):
            fld = desc.fields_by_name.get(str(key))
            if fld is None:
                raise SpecError(_unknown_field_message(str(key), desc, where), location=self._loc(key_node))
            field_path = path + [fld.name]
            mark = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            self.positions.setdefault(canonical(".".join(field_path)), mark)
            self.positions.setdefault(_plain(".".join(field_path)), mark)
            self._set(message, fld, value_node, value, field_path)

    def _set(self, message: Message, fld: Any, node: Any, value: Any, path: list[str]) -> None:
        import yaml

        if value is None:
            return  # "key:" with nothing after it: leave the default
        if fld.message_type is not None and fld.message_type.GetOptions().map_entry:
            if not isinstance(node, yaml.MappingNode):
                raise SpecError(f"expected a mapping for {'.'.join(path)}", location=self._loc(node))
            target = getattr(message, fld.name)
            value_fld = fld.message_type.fields_by_name["value"]
            for (k_node, v_node), (k, v) in zip(node.value, value.items(), strict=True):
                if value_fld.message_type is not None:
                    self.fill(target[k], v_node, v, path + [str(k)])
                else:
                    target[self._scalar(fld.message_type.fields_by_name["key"], k, k_node, path)] = self._scalar(
                        value_fld, v, v_node, path + [str(k)]
                    )
            return
        if fld.is_repeated:
            items = list(zip(node.value, value, strict=True)) if isinstance(node, yaml.SequenceNode) else [(node, value)]
            container = getattr(message, fld.name)
            for index, (item_node, item) in enumerate(items):
                if fld.message_type is not None:
                    self.fill(container.add(), item_node, item, path[:-1] + [f"{path[-1]}[{index}]"])
                else:
                    container.append(self._scalar(fld, item, item_node, path))
            return
        if fld.message_type is not None:
            sub = getattr(message, fld.name)
            sub.SetInParent()
            self.fill(sub, node, value, path)
            return
        setattr(message, fld.name, self._scalar(fld, value, node, path))

    def _scalar(self, fld: Any, value: Any, node: Any, path: list[str]) -> Any:
        name = ".".join(path)
        kind = fld.cpp_type
        try:
            if kind == FieldDescriptor.CPPTYPE_BOOL:
                if isinstance(value, bool):
                    return value
                raise ValueError
            if kind in (FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_INT64,
                        FieldDescriptor.CPPTYPE_UINT32, FieldDescriptor.CPPTYPE_UINT64):
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError
                low, high = _INT_RANGES[kind]
                if not low <= value <= high:
                    raise SpecError(f"{value} is out of range [{low}, {high}]", location=self._loc(node), field=name)
                return value
            if kind in (FieldDescriptor.CPPTYPE_FLOAT, FieldDescriptor.CPPTYPE_DOUBLE):
                if isinstance(value, bool):
                    raise ValueError
                return float(value)  # YAML 1.1 reads "1e-3" as a string; accept it as a number
            if kind == FieldDescriptor.CPPTYPE_ENUM:
                enum_type: Any = fld.enum_type
                names = [v.name for v in enum_type.values]
                if isinstance(value, str) and value in names:
                    return enum_type.values_by_name[value].number
                raise SpecError(f"unknown value {value!r} (valid: {', '.join(names)})",
                                location=self._loc(node), field=name)
            if kind == FieldDescriptor.CPPTYPE_STRING:
                if isinstance(value, (dict, list)):
                    raise ValueError
                text = value if isinstance(value, str) else str(value)
                return text.encode("utf-8") if fld.type == FieldDescriptor.TYPE_BYTES else text
        except (ValueError, TypeError):
            pass
        expected = {FieldDescriptor.CPPTYPE_BOOL: "true or false", FieldDescriptor.CPPTYPE_STRING: "a string",
                    FieldDescriptor.CPPTYPE_FLOAT: "a number", FieldDescriptor.CPPTYPE_DOUBLE: "a number"}.get(kind, "an integer")
        raise SpecError(f"expected {expected}, got {value!r}", location=self._loc(node), field=name)
