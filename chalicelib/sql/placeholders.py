"""The placeholder syntax of ``@sql_query``: ``$args.name``, ``$identity.sub`` (also
``.username`` and ``.groups``: the caller's, docs/auth.md) and ``$join_table(name)``.

This module is the one definition of that syntax: the loader checks placeholders with
it and the task runner renders them with it, so both always agree on what is replaced.

Scanning follows SQL's lexical rules only as far as needed to know where a placeholder
stands: in code, inside a ``'...'`` string literal (its value is then rendered inside
that literal, DESIGN §6), or inside a ``"..."`` quoted identifier. Comments are plain
text and never replaced: a rendered value containing a newline would otherwise end a
``--`` comment and turn the rest of the value into SQL.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_ARGUMENT = re.compile(rf"\$args\.({_NAME})")
_JOIN_TABLE = re.compile(rf"\$join_table\(\s*({_NAME})\s*\)")
# What a request's identity offers SQL: its Cognito subject, username and groups.
IDENTITY_FIELDS = ("sub", "username", "groups")
_IDENTITY = re.compile(rf"\$identity\.({'|'.join(IDENTITY_FIELDS)})(?![A-Za-z0-9_])")
# Where a placeholder starts; if the full syntax does not follow, it is a mistake, not text.
_START = re.compile(r"\$(?:args|join_table|identity)")
_PATTERNS = (("args", _ARGUMENT), ("identity", _IDENTITY), ("join_table", _JOIN_TABLE))
_LEXICAL = re.compile(r"'|\"|--|/\*")


class Kind(StrEnum):
    ARGUMENT = "args"
    IDENTITY = "identity"
    JOIN_TABLE = "join_table"


class Context(StrEnum):
    CODE = "code"
    STRING = "string"
    IDENTIFIER = "identifier"


@dataclass(frozen=True)
class Placeholder:
    """One occurrence; ``start``/``end`` are offsets in the SQL text (end exclusive).

    ``enclosing`` is the span of the string literal or quoted identifier the placeholder
    stands in, quotes included (``None`` in code). Rendering needs it because a null
    value turns the whole enclosing literal into ``NULL``, as SQL's ``'a' || NULL`` does.
    """

    kind: Kind
    name: str
    start: int
    end: int
    context: Context
    enclosing: tuple[int, int] | None = None

    @property
    def text(self) -> str:
        """The placeholder as users write it, for messages."""
        if self.kind is Kind.JOIN_TABLE:
            return f"$join_table({self.name})"
        return f"${self.kind.value}.{self.name}"


class PlaceholderSyntaxError(ValueError):
    """``$args``, ``$identity`` or ``$join_table`` not followed by what they take."""

    def __init__(self, offset: int, message: str) -> None:
        super().__init__(message)
        self.offset = offset
        self.message = message


def find_placeholders(sql: str) -> tuple[Placeholder, ...]:
    """Every placeholder outside comments, in text order."""
    found = []
    for context, start, end in _spans(sql):
        enclosing = None if context is Context.CODE else (start, end)
        for match in _START.finditer(sql, start, end):
            found.append(_placeholder_at(sql, match.start(), end, context, enclosing))
    return tuple(found)


def in_unicode_literal(sql: str, placeholder: Placeholder) -> bool:
    """Whether the placeholder stands in a ``U&'...'`` literal, whose ``\\XXXX`` escapes
    would turn a value's text into other characters (a quote among them)."""
    if placeholder.context is not Context.STRING or placeholder.enclosing is None:
        return False
    start = placeholder.enclosing[0]
    return sql[max(start - 2, 0) : start].upper() == "U&"


def substitute(sql: str, replacement: Callable[[Placeholder], str]) -> str:
    """Replace every placeholder in one pass, so a replaced value is never scanned again."""
    parts, position = [], 0
    for placeholder in find_placeholders(sql):
        parts += [sql[position : placeholder.start], replacement(placeholder)]
        position = placeholder.end
    return "".join(parts) + sql[position:]


def _placeholder_at(
    sql: str, start: int, limit: int, context: Context, enclosing: tuple[int, int] | None
) -> Placeholder:
    for kind, pattern in _PATTERNS:
        match = pattern.match(sql, start, limit)
        if match:
            return Placeholder(Kind(kind), match.group(1), start, match.end(), context, enclosing)
    snippet = sql[start:limit].split(None, 1)[0][:40]
    raise PlaceholderSyntaxError(
        start,
        f"malformed placeholder {snippet!r}: write $args.name, $join_table(name) or "
        f"$identity.{', $identity.'.join(IDENTITY_FIELDS)}",
    )


def _spans(sql: str) -> Iterator[tuple[Context, int, int]]:
    """The code, string-literal and quoted-identifier spans of ``sql``, skipping comments.

    An unterminated literal or comment runs to the end: the statement is broken anyway,
    and the parser that runs it reports that.
    """
    position = 0
    while position < len(sql):
        match = _LEXICAL.search(sql, position)
        if match is None:
            yield Context.CODE, position, len(sql)
            return
        if match.start() > position:
            yield Context.CODE, position, match.start()
        opener = match.group()
        if opener in ("'", '"'):
            end = _closing_quote(sql, match.end(), opener)
            yield (Context.STRING if opener == "'" else Context.IDENTIFIER), match.start(), end
        elif opener == "--":
            newline = sql.find("\n", match.end())
            end = len(sql) if newline < 0 else newline
        else:
            close = sql.find("*/", match.end())
            end = len(sql) if close < 0 else close + 2
        position = end


def _closing_quote(sql: str, position: int, quote: str) -> int:
    """The offset just past the closing quote; a doubled quote is an escaped one."""
    while True:
        found = sql.find(quote, position)
        if found < 0:
            return len(sql)
        if sql.startswith(quote, found + 1):
            position = found + 2
            continue
        return found + 1
