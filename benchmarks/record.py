"""The base of every record of results.json: written from its dataclass fields, read back
by one reader driven by the fields and their types.

Reading is strict: a missing field, an unknown field or a value of the wrong type raises
`RowFormatError` naming where (`latency.rows[2]: unknown field(s) median`), so a section
that starts writing other fields cannot drift away from its readers silently. The types
are the schema: `Literal[...]` fields take only their values, `X | None` fields take null.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

R = TypeVar("R", bound="Record")
SectionStatus = Literal["ok", "skipped", "failed"]  # a section ran, was not chosen, or failed
_OMIT = {"omit_when_none": True}


class RowFormatError(ValueError):
    """A results.json value does not have the fields or types its record has."""


def optional(default: Any = None) -> Any:
    """A field that results.json leaves out when it is None (figures that only an "ok"
    section has, or the reason only a skipped one has)."""
    return dataclasses.field(default=default, metadata=_OMIT)


class Record:
    """A dataclass whose JSON form is its fields, in order (see `omitted`)."""

    def omitted(self) -> set[str]:
        """Fields left out of the JSON form beyond the optional ones that are None (a
        record's short form, e.g. a failed row's)."""
        return set()

    def to_json(self) -> dict[str, Any]:
        skip = self.omitted()
        out = {}
        for spec in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, spec.name)
            if spec.name in skip or (value is None and spec.metadata.get("omit_when_none")):
                continue
            out[spec.name] = dump(value)
        return out

    @classmethod
    def from_json(cls: type[R], data: Any, where: str = "") -> R:
        """The record from its JSON object; refuses missing, unknown and mistyped fields."""
        return typing.cast(R, read(cls, data, where))


def dump(value: Any) -> Any:
    """A record, or a list or dict of them, as JSON values."""
    if isinstance(value, Record):
        return value.to_json()
    if isinstance(value, (list, tuple)):
        return [dump(item) for item in value]
    if isinstance(value, dict):
        return {key: dump(item) for key, item in value.items()}
    return value


def _child(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _kind_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


_SCALARS: dict[type, tuple[type, ...]] = {
    str: (str,),
    bool: (bool,),
    int: (int,),
    float: (int, float),
}


def read(kind: Any, value: Any, where: str) -> Any:
    """`value` checked against the type `kind` (records read recursively)."""
    origin = get_origin(kind)
    if kind is Any:
        return value
    if origin in (Union, types.UnionType):
        options = get_args(kind)
        if value is None and type(None) in options:
            return None
        return read(next(o for o in options if o is not type(None)), value, where)
    if origin is Literal:
        if value not in get_args(kind):
            raise RowFormatError(f"{where}: {value!r} is not one of {list(get_args(kind))}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise RowFormatError(f"{where}: expected a list, found {_kind_name(value)}")
        (item,) = get_args(kind)
        return [read(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise RowFormatError(f"{where}: expected an object, found {_kind_name(value)}")
        item = get_args(kind)[1]
        return {k: read(item, v, _child(where, str(k))) for k, v in value.items()}
    if isinstance(kind, type) and issubclass(kind, Record):
        return _read_record(kind, value, where)
    allowed = _SCALARS[kind]
    if not isinstance(value, allowed) or (kind is not bool and isinstance(value, bool)):
        raise RowFormatError(f"{where}: expected {kind.__name__}, found {_kind_name(value)}")
    return value


def _read_record(kind: type[Record], data: Any, where: str) -> Record:
    if not isinstance(data, dict):
        raise RowFormatError(f"{where or 'results'}: expected an object, found {_kind_name(data)}")
    fields = {f.name: f for f in dataclasses.fields(kind)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise RowFormatError(f"{where or 'results'}: unknown field(s) {', '.join(unknown)}")
    missing = [
        name
        for name, spec in fields.items()
        if name not in data
        and spec.default is dataclasses.MISSING
        and spec.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise RowFormatError(f"{where or 'results'}: missing field(s) {', '.join(missing)}")
    hints = typing.get_type_hints(kind)
    return kind(**{k: read(hints[k], v, _child(where, k)) for k, v in data.items()})
