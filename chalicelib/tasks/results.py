"""A task's rows as GraphQL values: Athena's text, typed by the ``@task_response`` fields.

Athena returns every value as text and lower-cases column names, so a column is matched
to the field of the same name in any case, and its text is read by the lake type of the
field's GraphQL type (``lake.columns.column_type``: the one type mapping), which is the
type the SQL computed it in. The text formats are those of ``tasks.engine``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from chalicelib import keys
from chalicelib.lake.columns import ColumnType, column_type
from chalicelib.schema.model import INTEGER_RANGE, Field, TypeKind, TypeRef
from chalicelib.tasks.engine import ResultPage


class ResultConversionError(ValueError):
    """A value or column the result type cannot take; the message names both."""


def _integer(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        number = float(text)  # a double column read into an Int field: whole numbers only
        if not number.is_integer():
            raise ValueError(f"{text!r} is not a whole number") from None
        value = int(number)
    if value not in INTEGER_RANGE:
        raise ValueError(f"{text} does not fit in 64 bits")
    return value


def _double(text: str) -> float:
    return float(text)


def _boolean(text: str) -> bool:
    if text not in ("true", "false"):
        raise ValueError(f"{text!r} is not true or false")
    return text == "true"


def _timestamp(text: str) -> str:
    """``2026-11-23 19:22:14.123`` (or with `` UTC``, or ISO) → ``2026-11-23T19:22:14.123Z``."""
    moment = datetime.fromisoformat(text.removesuffix(" UTC").replace(" ", "T", 1))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return keys.timestamp_text(moment)


_READERS: dict[ColumnType, Callable[[str], Any]] = {
    ColumnType.STRING: str,
    ColumnType.BIGINT: _integer,
    ColumnType.DOUBLE: _double,
    ColumnType.BOOLEAN: _boolean,
    ColumnType.TIMESTAMP: _timestamp,
}


def split_array(text: str) -> list[str | None]:
    """The elements of Athena's ``[a, b, c]``; ``null`` elements are None.

    Athena does not quote elements, so an element containing ``", "`` cannot be told
    apart from two: arrays of free text are best returned with ``array_join`` or
    ``json_format(CAST(x AS JSON))`` into a String field.
    """
    if not (text.startswith("[") and text.endswith("]")):
        raise ValueError(f"{text!r} is not an array")
    inner = text[1:-1]
    if not inner:
        return []
    elements: list[str | None] = []
    depth, start = 0, 0
    for index, char in enumerate(inner):
        if char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0 and inner.startswith(", ", index):
            elements.append(inner[start:index])
            start = index + 2
    elements.append(inner[start:])
    return [None if element == "null" else element for element in elements]


def _reader(ref: TypeRef) -> Callable[[str], Any]:
    item = _READERS[column_type(TypeRef(ref.name, ref.kind))]
    if not ref.is_list:
        return item
    return lambda text: [None if e is None else item(e) for e in split_array(text)]


class RowReader:
    """Reads rows of one result shape: a ``@task_response`` type's fields, or one scalar."""

    def __init__(self, result: TypeRef, fields: Sequence[Field], where: str) -> None:
        self._result = result
        self._fields = tuple(fields) if result.kind is TypeKind.OBJECT else ()
        self._where = where

    def read(self, page: ResultPage) -> list[Any]:
        """Every row of the page: a dict per row for an object type, else a scalar."""
        if not page.rows:
            return []  # columns matter only for rows (an empty result may describe none)
        if self._result.kind is not TypeKind.OBJECT:
            read = _reader(self._result)
            label = f"the first column as {self._result.sdl()}"
            return [self._value(read, row[0] if row else None, label) for row in page.rows]
        positions = {name: index for index, name in enumerate(page.columns)}
        columns = []
        for field in self._fields:
            position = positions.get(field.name.lower())
            if position is None and field.type.non_null:
                raise ResultConversionError(
                    f"{self._where}: the query returns no column {field.name.lower()} for the "
                    f"non-null field {self._result.name}.{field.name} "
                    f"(columns: {', '.join(page.columns) or 'none'})"
                )
            label = f"column {field.name.lower()} as {field.type.sdl()}"
            columns.append((field.name, position, _reader(field.type), label))
        return [
            {
                name: None if position is None else self._value(read, row[position], label)
                for name, position, read, label in columns
            }
            for row in page.rows
        ]

    def _value(self, read: Callable[[str], Any], text: str | None, label: str) -> Any:
        if text is None:
            return None
        try:
            return read(text)
        except ValueError as error:
            raise ResultConversionError(
                f"{self._where}: cannot read {text!r} of {label}: {error}"
            ) from None
