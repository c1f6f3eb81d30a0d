"""Run-time rendering of a ``@sql_query`` statement: its placeholders replaced by values.

This runs in the GraphQL function every time a task is started, so it is plain Python:
no sqlglot (slow to import), no engine round trip. Athena's ``?`` parameters cannot
replace it either: they are only allowed in a SELECT's ``WHERE`` (FIELD-NOTES).

Why no value can change the statement's structure (DESIGN §6):

- Every placeholder is replaced in one pass over the user's text (``placeholders``), so
  text inside a value (``$args.x``, ``--``, ``/*``) is never scanned again.
- In code, a value becomes exactly one literal token of its argument's type, or
  ``NULL``. Only strings carry free text, and their ``'`` is doubled; Trino has no
  backslash escapes, so nothing else can end the literal. Numbers are checked to be
  numbers. A literal that would touch a neighbouring character and fuse with it
  (``5-$args.n`` with ``-3`` is ``5--3``, a comment) is set apart with a space.
- Inside a ``'...'`` literal, the value's text is placed with ``'`` doubled, so it stays
  in that literal; a null value turns the whole literal into ``NULL``.

``$identity.sub`` and ``$identity.username`` are rendered as string arguments would be,
``$identity.groups`` as a list of strings (``ARRAY['admin']``, ``ARRAY[]`` for none); a
caller who is not signed in has ``NULL`` for the first two, so ``owner = $identity.sub``
matches nothing for them.

Literals follow the lake's column type of the argument's GraphQL type
(``lake.columns.column_type``), so a value compares with the lake's columns as stored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from chalicelib import keys
from chalicelib.auth.identity import PUBLIC, Identity
from chalicelib.lake.columns import ColumnType, LakeSchemaError, column_type, parse_timestamp
from chalicelib.schema.model import INTEGER_RANGE, Argument, TypeKind, TypeRef
from chalicelib.sql.placeholders import (
    Context,
    Kind,
    Placeholder,
    PlaceholderSyntaxError,
    find_placeholders,
    in_unicode_literal,
)

# Neighbours a literal cannot fuse with: a space, brackets, and operators that form no
# longer token with a literal's first or last character (a quote, digit, letter or ``-``).
_SAFE_NEIGHBOURS = frozenset(" \t\r\n\f\v(),[]=<>+*/%|;")
_SHOWN_LENGTH = 60
_TEXT = TypeRef("String", TypeKind.SCALAR)
_IDENTITY_ARGUMENTS = {
    "$identity.sub": Argument("$identity.sub", _TEXT),
    "$identity.username": Argument("$identity.username", _TEXT),
    "$identity.groups": Argument(
        "$identity.groups",
        TypeRef("String", TypeKind.SCALAR, non_null=True, is_list=True, item_non_null=True),
    ),
}


class RenderError(ValueError):
    """A value that cannot be rendered, or a statement that cannot take values.

    The message names the argument and is meant for the GraphQL client.
    """


def render(
    sql: str,
    arguments: Sequence[Argument],
    values: Mapping[str, Any],
    identity: Identity = PUBLIC,
) -> str:
    """``sql`` with every placeholder replaced: the Trino SQL the task runs.

    ``values`` are the field's coerced GraphQL arguments; an argument missing from them
    takes its default, else ``NULL``. ``$join_table(name)`` becomes ``name``, and
    ``$identity.…`` the caller's ``identity``.
    """
    try:
        placeholders = find_placeholders(sql)
    except PlaceholderSyntaxError as error:
        raise RenderError(error.message) from None
    identity_values = {
        "$identity.sub": identity.sub,
        "$identity.username": identity.username,
        "$identity.groups": sorted(identity.groups),
    }
    renderer = _Renderer(
        sql,
        placeholders,
        {**{a.name: a for a in arguments}, **_IDENTITY_ARGUMENTS},
        {**values, **identity_values},
    )
    parts, position = [], 0
    for placeholder in placeholders:
        if placeholder.start < position:
            continue  # inside a literal already rendered as NULL
        start, end, text = renderer.replacement(placeholder)
        parts += [sql[position:start], text]
        position = end
    return "".join(parts) + sql[position:]


class _Renderer:
    """Renders each placeholder once its argument's value is known; values are converted
    once per argument, however often it appears."""

    def __init__(
        self,
        sql: str,
        placeholders: Sequence[Placeholder],
        arguments: Mapping[str, Argument],
        values: Mapping[str, Any],
    ) -> None:
        self._sql = sql
        # The arguments standing in each string literal, by the literal's span.
        self._in_literals: dict[tuple[int, int], list[str]] = {}
        for placeholder in placeholders:
            if placeholder.enclosing is not None and placeholder.kind is not Kind.JOIN_TABLE:
                self._in_literals.setdefault(placeholder.enclosing, []).append(_key(placeholder))
        self._arguments = arguments
        self._values = values
        self._code: dict[str, str] = {}
        self._text: dict[str, str | None] = {}

    def replacement(self, placeholder: Placeholder) -> tuple[int, int, str]:
        """The span to replace (the placeholder, or its whole literal) and its new text."""
        if placeholder.context is Context.IDENTIFIER:
            raise RenderError(
                f"{placeholder.text} inside a quoted identifier: a value cannot name a column"
            )
        if placeholder.kind is Kind.JOIN_TABLE:
            if placeholder.context is Context.STRING:
                raise RenderError(f"{placeholder.text} inside a string literal")
            return placeholder.start, placeholder.end, placeholder.name
        if placeholder.context is Context.CODE:
            text = self._separated(
                placeholder.start, placeholder.end, self._code_literal(_key(placeholder))
            )
            return placeholder.start, placeholder.end, text
        return self._in_literal(placeholder)

    def _in_literal(self, placeholder: Placeholder) -> tuple[int, int, str]:
        """Inside ``'...'``: the value's text with ``'`` doubled, or the literal is NULL.

        NULL as soon as any placeholder of that literal is null: the literal stands for
        a concatenation, and SQL's ``'a' || NULL`` is NULL.
        """
        assert placeholder.enclosing is not None  # find_placeholders sets it for strings
        start, end = placeholder.enclosing
        if in_unicode_literal(self._sql, placeholder):
            raise RenderError(
                f"{placeholder.text} inside a U&'...' literal, whose escapes would change "
                "the value: use a plain '...' literal"
            )
        if any(self._literal_text(name) is None for name in self._in_literals[start, end]):
            return start, end, self._separated(start, end, "NULL")
        text = self._literal_text(_key(placeholder))
        assert text is not None
        return placeholder.start, placeholder.end, text.replace("'", "''")

    def _separated(self, start: int, end: int, text: str) -> str:
        """``text`` for ``sql[start:end]``, with a space on a side where it would fuse
        with the neighbouring character."""
        before = self._sql[start - 1 : start]
        after = self._sql[end : end + 1]
        space_before = " " if before and before not in _SAFE_NEIGHBOURS else ""
        space_after = " " if after and after not in _SAFE_NEIGHBOURS else ""
        return f"{space_before}{text}{space_after}"

    def _argument(self, name: str) -> tuple[Argument, Any]:
        argument = self._arguments.get(name)
        if argument is None:
            raise RenderError(f"$args.{name}: the field has no argument {name!r}")
        if name in self._values:
            return argument, self._values[name]
        return argument, argument.default if argument.has_default else None

    def _code_literal(self, name: str) -> str:
        if name not in self._code:
            argument, value = self._argument(name)
            self._code[name] = "NULL" if value is None else _Value(argument).literal(value)
        return self._code[name]

    def _literal_text(self, name: str) -> str | None:
        if name not in self._text:
            argument, value = self._argument(name)
            self._text[name] = None if value is None else _Value(argument).text(value)
        return self._text[name]


def _key(placeholder: Placeholder) -> str:
    """What a placeholder's value is kept under: an argument's name, or ``$identity.x``
    (which no argument name can be)."""
    return placeholder.name if placeholder.kind is Kind.ARGUMENT else placeholder.text


class _Value:
    """One argument's values: checked against its type, then written as SQL."""

    def __init__(self, argument: Argument) -> None:
        self._argument = argument
        try:
            self._type = column_type(argument.type)
        except LakeSchemaError as error:
            raise self._error(str(error)) from None

    def literal(self, value: Any) -> str:
        """A Trino literal of the argument's type: ``ARRAY[...]`` for a list."""
        if not self._argument.type.is_list:
            return self._scalar_literal(value)
        items = ("NULL" if v is None else self._scalar_literal(v) for v in self._items(value))
        return f"ARRAY[{', '.join(items)}]"

    def text(self, value: Any) -> str | None:
        """The value as text inside a string literal; a list's items joined by ``,``.

        ``None`` when a list holds a null item: the literal then is NULL, like the value.
        """
        if not self._argument.type.is_list:
            return self._scalar_text(value)
        texts = [None if v is None else self._scalar_text(v) for v in self._items(value)]
        return None if None in texts else ",".join(t for t in texts if t is not None)

    def _scalar_literal(self, value: Any) -> str:
        if self._type is ColumnType.STRING:
            return "'" + self._string(value).replace("'", "''") + "'"
        if self._type is ColumnType.BIGINT:
            return str(self._integer(value))
        if self._type is ColumnType.DOUBLE:
            # Scientific notation: Trino reads 1.5 as a DECIMAL, 1.5E0 as the DOUBLE it is.
            number = repr(self._double(value)).upper()
            return number if "E" in number else f"{number}E0"
        if self._type is ColumnType.BOOLEAN:
            return "TRUE" if self._boolean(value) else "FALSE"
        # Lake timestamps are UTC with milliseconds (lake.columns); so is the literal.
        moment = self._timestamp(value).replace(tzinfo=None)
        return f"TIMESTAMP '{moment.isoformat(sep=' ', timespec='milliseconds')}'"

    def _scalar_text(self, value: Any) -> str:
        if self._type is ColumnType.STRING:
            return self._string(value)
        if self._type is ColumnType.BIGINT:
            return str(self._integer(value))
        if self._type is ColumnType.DOUBLE:
            return repr(self._double(value))
        if self._type is ColumnType.BOOLEAN:
            return "true" if self._boolean(value) else "false"
        return keys.timestamp_text(self._timestamp(value))

    def _items(self, value: Any) -> Sequence[Any]:
        if not isinstance(value, list | tuple):
            raise self._error(f"expected a list, got {_shown(value)}")
        return value

    def _string(self, value: Any) -> str:
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as error:
                # A lone surrogate: JSON can carry one, no SQL engine can read it.
                raise self._error(
                    f"is not valid Unicode: a lone surrogate at character {error.start}"
                ) from None
            return value
        if self._argument.type.kind is TypeKind.ENUM and isinstance(value, Enum):
            return value.name
        raise self._error(f"expected a string, got {_shown(value)}")

    def _integer(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._error(f"expected an integer, got {_shown(value)}")
        if value not in INTEGER_RANGE:
            raise self._error(f"{_shown(value)} does not fit in a 64-bit integer")
        return value

    def _double(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._error(f"expected a number, got {_shown(value)}")
        try:
            number = float(value)
        except OverflowError:
            raise self._error(f"{_shown(value)} is too large for a Float") from None
        if not math.isfinite(number):
            raise self._error(f"{_shown(value)} is not a finite number")
        return number

    def _boolean(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise self._error(f"expected a boolean, got {_shown(value)}")
        return value

    def _timestamp(self, value: Any) -> datetime:
        """In UTC; text without a zone is taken as UTC, as the store does."""
        try:
            if isinstance(value, str):
                return parse_timestamp(value)
            if isinstance(value, datetime):
                return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        except (ValueError, OverflowError):
            pass
        raise self._error(
            f"expected a date and time such as 2026-11-23T19:22:14.123Z, got {_shown(value)}"
        )

    def _error(self, detail: str) -> RenderError:
        return RenderError(
            f"argument {self._argument.name} ({self._argument.type.sdl()}): {detail}"
        )


def _shown(value: Any) -> str:
    """The value for a message, cut short: a client may send megabytes."""
    text = repr(value)
    return text if len(text) <= _SHOWN_LENGTH else text[: _SHOWN_LENGTH - 3] + "..."
