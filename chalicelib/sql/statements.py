"""The two statements a ``Mutation`` field's ``@sql_query`` may hold, read without sqlglot.

``INSERT INTO $join_table(t) (col:Type, ...) VALUES ($args.a, ...)`` is not SQL (the
typed column list is ours), and the loader needs the table, columns and alias of both
shapes even when SQL checks are off. A small tokenizer and a reader for exactly these
shapes keep that readable; everything after a DELETE's header is left to sqlglot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from chalicelib.sql.placeholders import Context, Kind, Placeholder, find_placeholders

_TOKEN = re.compile(
    r"""
      (?P<skip>\s+|--[^\n]*|/\*.*?(?:\*/|\Z))
    | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<quoted>"(?:[^"]|"")*"?|'(?:[^']|'')*'?)
    | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
# Words that cannot be a DELETE's table alias: their presence means the alias is missing.
_NOT_ALIASES = frozenset(
    ("WHERE", "JOIN", "INNER", "LEFT", "RIGHT", "FULL", "CROSS", "NATURAL", "USING", "ON")
)

INSERT_SHAPE = "INSERT INTO $join_table(name) (column:Entity, ...) VALUES ($args.a, ...)"
DELETE_SHAPE = "DELETE alias FROM $join_table(name) alias [JOIN ...] [WHERE ...]"
_VALUES_ONLY_ARGUMENTS = "VALUES takes only $args.name placeholders"


@dataclass(frozen=True)
class Token:
    kind: str  # "word", "placeholder", "quoted", "other" or "end"
    text: str
    offset: int
    placeholder: Placeholder | None = None


@dataclass(frozen=True)
class InsertColumn:
    name: str
    entity: str
    offset: int
    entity_offset: int


@dataclass(frozen=True)
class InsertStatement:
    table: Placeholder
    columns: tuple[InsertColumn, ...]
    values: tuple[Placeholder, ...]
    values_offset: int


@dataclass(frozen=True)
class DeleteStatement:
    target: str
    target_offset: int
    table: Placeholder
    alias: str
    alias_offset: int


class StatementSyntaxError(ValueError):
    def __init__(self, offset: int, message: str) -> None:
        super().__init__(message)
        self.offset = offset
        self.message = message


def first_keyword(sql: str) -> str:
    """The statement's first word, upper-cased ("" when it starts with something else)."""
    token = _Reader(sql).peek()
    return token.text.upper() if token.kind == "word" else ""


def parse_insert(sql: str) -> InsertStatement:
    """Raises :class:`StatementSyntaxError` (or ``PlaceholderSyntaxError``) naming the offset."""
    reader = _Reader(sql)
    reader.keyword("INSERT", INSERT_SHAPE)
    reader.keyword("INTO", INSERT_SHAPE)
    table = reader.placeholder(
        Kind.JOIN_TABLE, f"the table must be $join_table(name): {INSERT_SHAPE}"
    )
    reader.punctuation("(", INSERT_SHAPE)
    columns = [_insert_column(reader)]
    while reader.accept(","):
        columns.append(_insert_column(reader))
    reader.punctuation(")", INSERT_SHAPE)
    values_offset = reader.keyword("VALUES", INSERT_SHAPE).offset
    reader.punctuation("(", INSERT_SHAPE)
    values = [reader.placeholder(Kind.ARGUMENT, _VALUES_ONLY_ARGUMENTS)]
    while reader.accept(","):
        values.append(reader.placeholder(Kind.ARGUMENT, _VALUES_ONLY_ARGUMENTS))
    reader.punctuation(")", INSERT_SHAPE)
    reader.accept(";")
    reader.end(INSERT_SHAPE)
    return InsertStatement(table, tuple(columns), tuple(values), values_offset)


def parse_delete(sql: str) -> DeleteStatement:
    """The header ``DELETE alias FROM $join_table(name) [AS] alias``; the rest is not read."""
    reader = _Reader(sql)
    reader.keyword("DELETE", DELETE_SHAPE)
    target = reader.peek()
    if target.kind != "word" or target.text.upper() == "FROM":
        raise StatementSyntaxError(target.offset, f"name the alias to delete: {DELETE_SHAPE}")
    reader.next()
    reader.keyword("FROM", DELETE_SHAPE)
    table = reader.placeholder(
        Kind.JOIN_TABLE, f"the table must be $join_table(name): {DELETE_SHAPE}"
    )
    reader.accept_keyword("AS")
    alias = reader.peek()
    if alias.kind != "word" or alias.text.upper() in _NOT_ALIASES:
        raise StatementSyntaxError(alias.offset, f"the join table needs an alias: {DELETE_SHAPE}")
    return DeleteStatement(target.text, target.offset, table, alias.text, alias.offset)


def _insert_column(reader: _Reader) -> InsertColumn:
    name = reader.word("expected a column name: " + INSERT_SHAPE)
    reader.punctuation(":", f"column {name.text} needs its entity type, e.g. {name.text}:User")
    entity = reader.word(f"expected the entity type of column {name.text}")
    return InsertColumn(name.text, entity.text, name.offset, entity.offset)


class _Reader:
    def __init__(self, sql: str) -> None:
        self._tokens = _tokenize(sql)
        self._index = 0

    def peek(self) -> Token:
        return self._tokens[self._index]

    def next(self) -> Token:
        token = self.peek()
        if token.kind != "end":
            self._index += 1
        return token

    def accept(self, text: str) -> bool:
        if self.peek().kind == "other" and self.peek().text == text:
            self._index += 1
            return True
        return False

    def accept_keyword(self, keyword: str) -> bool:
        if self.peek().kind == "word" and self.peek().text.upper() == keyword:
            self._index += 1
            return True
        return False

    def keyword(self, keyword: str, shape: str) -> Token:
        token = self.peek()
        if not self.accept_keyword(keyword):
            raise self._unexpected(token, f"expected {keyword}: {shape}")
        return token

    def word(self, message: str) -> Token:
        token = self.next()
        if token.kind != "word":
            raise self._unexpected(token, message)
        return token

    def punctuation(self, text: str, message: str) -> None:
        if not self.accept(text):
            raise self._unexpected(self.peek(), f"expected '{text}': {message}")

    def placeholder(self, kind: Kind, message: str) -> Placeholder:
        token = self.next()
        if token.placeholder is None or token.placeholder.kind is not kind:
            raise self._unexpected(token, message)
        return token.placeholder

    def end(self, shape: str) -> None:
        token = self.peek()
        if token.kind != "end":
            raise self._unexpected(token, f"unexpected text after the statement: {shape}")

    @staticmethod
    def _unexpected(token: Token, message: str) -> StatementSyntaxError:
        found = "the end" if token.kind == "end" else repr(token.text)
        return StatementSyntaxError(token.offset, f"{message} (found {found})")


def _tokenize(sql: str) -> list[Token]:
    placeholders = {p.start: p for p in find_placeholders(sql) if p.context is Context.CODE}
    tokens, position = [], 0
    while position < len(sql):
        placeholder = placeholders.get(position)
        if placeholder is not None:
            text = sql[placeholder.start : placeholder.end]
            tokens.append(Token("placeholder", text, position, placeholder))
            position = placeholder.end
            continue
        match = _TOKEN.match(sql, position)
        assert match is not None and match.lastgroup is not None  # "other" matches any char
        if match.lastgroup != "skip":
            tokens.append(Token(match.lastgroup, match.group(), position))
        position = match.end()
    tokens.append(Token("end", "", len(sql)))
    return tokens
