"""The user's SDL as graphql-core parses it, and the way back to positions in the file.

Mutation fields with ``@sql_query`` may omit their return type, which GraphQL's grammar
does not allow. Such fields are found on graphql-core's tokens and given a placeholder
type before parsing; every reported offset is mapped back through those insertions, so
line and column always point into the file as the user wrote it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from graphql import GraphQLSyntaxError, Source, StringValueNode, get_location
from graphql.language import Lexer, Token, TokenKind

from chalicelib.schema.errors import Problem, SchemaError

# What an omitted return type reads as until the SQL decides: INSERT mutations return
# Boolean!, DELETE mutations become deletion tasks and drop it.
_INSERTED_TYPE = ": Boolean "
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


@dataclass(frozen=True)
class UserSource:
    """The file's text, the patched text graphql-core parses, and the mapping between them."""

    name: str
    original: Source
    patched: Source
    insertions: tuple[int, ...]  # offsets in the original where a placeholder type went in

    @classmethod
    def read(cls, path: Path) -> UserSource:
        text = _decode(path)
        insertions = tuple(_omitted_return_types(Source(text)))
        patched = text
        for offset in reversed(insertions):
            patched = patched[:offset] + _INSERTED_TYPE + patched[offset:]
        return cls(str(path), Source(text, str(path)), Source(patched, str(path)), insertions)

    def is_inserted(self, offset: int) -> bool:
        """Whether a patched-text offset lies in an inserted placeholder type."""
        return self._original(offset)[1]

    def location(self, offset: int) -> tuple[int, int]:
        """1-based line and column in the user's file of a patched-text offset."""
        where = get_location(self.original, self._original(offset)[0])
        return where.line, where.column

    def string_offset(self, node: StringValueNode, value_offset: int) -> int:
        """The patched-text offset of character ``value_offset`` of a string's value.

        Block strings are dedented and may contain escapes, so the mapping is rebuilt
        from the raw token and checked against graphql-core's value; should they ever
        disagree, the string's opening quote is the position.
        """
        assert node.loc is not None
        start, end = node.loc.start, node.loc.end
        raw = self.patched.body
        offsets = (_block_offsets if node.block else _string_offsets)(raw, start, end, node.value)
        if offsets is None:
            return start
        return offsets[min(max(value_offset, 0), len(offsets) - 1)]

    def _original(self, offset: int) -> tuple[int, bool]:
        shift = 0
        for inserted_at in self.insertions:
            patched_at = inserted_at + shift
            if offset < patched_at:
                break
            if offset < patched_at + len(_INSERTED_TYPE):
                return inserted_at, True
            shift += len(_INSERTED_TYPE)
        return offset - shift, False


def _omitted_return_types(source: Source) -> Iterator[int]:
    """Offsets of the ``@`` that directly follows a Mutation field's name or arguments.

    Only ``type Mutation``/``extend type Mutation`` bodies at the top level are read; at
    anything unexpected the scan stops and the parser reports the error in its own words.
    """
    cursor = _Cursor(source)
    depth = 0
    while (token := cursor.next()).kind is not TokenKind.EOF:
        if token.kind is TokenKind.BRACE_L:
            depth += 1
        elif token.kind is TokenKind.BRACE_R:
            depth -= 1
        elif depth == 0 and token.value == "type" and cursor.peek().value == "Mutation":
            cursor.next()
            if cursor.skip_directives() and cursor.peek().kind is TokenKind.BRACE_L:
                cursor.next()
                yield from _omitted_in_fields(cursor)


def _omitted_in_fields(cursor: _Cursor) -> Iterator[int]:
    while True:
        token = cursor.next()
        if token.kind in (TokenKind.STRING, TokenKind.BLOCK_STRING):
            continue  # a description
        if token.kind is not TokenKind.NAME:
            return  # the closing brace, or something the parser will report
        if cursor.peek().kind is TokenKind.PAREN_L and not cursor.skip_parentheses():
            return
        following = cursor.peek()
        if following.kind is TokenKind.AT:
            yield following.start
        elif following.kind is TokenKind.COLON:
            cursor.next()
            if not cursor.skip_type():
                return
        else:
            return
        if not cursor.skip_directives():
            return


class _Cursor:
    """graphql-core's tokens (comments skipped) with one token of lookahead."""

    def __init__(self, source: Source) -> None:
        self._tokens: list[Token] = []
        lexer = Lexer(source)
        try:
            while (token := lexer.advance()).kind is not TokenKind.EOF:
                self._tokens.append(token)
        except GraphQLSyntaxError:
            pass  # scan what came before; the parser reports the error itself
        end = len(source.body)
        self._end = Token(TokenKind.EOF, end, end, 0, 0)
        self._index = 0

    def peek(self) -> Token:
        return self._tokens[self._index] if self._index < len(self._tokens) else self._end

    def next(self) -> Token:
        token = self.peek()
        self._index += 1
        return token

    def skip_parentheses(self) -> bool:
        """Skip a balanced ``( ... )`` group; False if it never closes."""
        depth = 0
        while (token := self.next()).kind is not TokenKind.EOF:
            depth += {TokenKind.PAREN_L: 1, TokenKind.PAREN_R: -1}.get(token.kind, 0)
            if depth == 0:
                return True
        return False

    def skip_type(self) -> bool:
        token = self.next()
        if token.kind is TokenKind.BRACKET_L:
            if not self.skip_type() or self.next().kind is not TokenKind.BRACKET_R:
                return False
        elif token.kind is not TokenKind.NAME:
            return False
        if self.peek().kind is TokenKind.BANG:
            self.next()
        return True

    def skip_directives(self) -> bool:
        while self.peek().kind is TokenKind.AT:
            self.next()
            if self.next().kind is not TokenKind.NAME:
                return False
            if self.peek().kind is TokenKind.PAREN_L and not self.skip_parentheses():
                return False
        return True


def _block_offsets(body: str, start: int, end: int, value: str) -> list[int] | None:
    """Source offsets of each value character of a block string, plus one for its end.

    Mirrors the spec's BlockStringValue(): split lines, drop the common indentation of
    all lines but the first, drop leading and trailing blank lines.
    """
    lines: list[tuple[list[tuple[str, int]], int]] = []  # (characters, offset of line end)
    chars: list[tuple[str, int]] = []
    position, stop = start + 3, end - 3
    while position < stop:
        if body.startswith('\\"""', position):
            chars += [('"', position + 1 + k) for k in range(3)]
            position += 4
        elif body[position] in "\r\n":
            lines.append((chars, position))
            chars = []
            position += 2 if body.startswith("\r\n", position) else 1
        else:
            chars.append((body[position], position))
            position += 1
    lines.append((chars, stop))
    indents = [_indent(line) for line, _ in lines]
    filled = [i for i, (line, _) in enumerate(lines) if indents[i] < len(line)]
    common = min((indents[i] for i in filled if i), default=0)
    kept: list[tuple[str, int]] = []
    for i in range(filled[0], filled[-1] + 1) if filled else ():
        if i > filled[0]:
            kept.append(("\n", lines[i - 1][1]))
        kept += lines[i][0][common if i else 0 :]
    return _checked(kept, value, stop)


def _indent(line: list[tuple[str, int]]) -> int:
    return next((i for i, (char, _) in enumerate(line) if char not in " \t"), len(line))


def _string_offsets(body: str, start: int, end: int, value: str) -> list[int] | None:
    """Source offsets of each value character of a ``"..."`` string, plus one for its end."""
    chars: list[tuple[str, int]] = []
    position, stop = start + 1, end - 1
    while position < stop:
        char = body[position]
        if char != "\\":
            chars.append((char, position))
            position += 1
        elif body[position + 1] == "u":
            code, width = _unicode_escape(body, position)
            chars.append((chr(code), position))
            position += width
        else:
            chars.append((_ESCAPES.get(body[position + 1], ""), position))
            position += 2
    return _checked(chars, value, stop)


def _unicode_escape(body: str, position: int) -> tuple[int, int]:
    if body[position + 2] == "{":
        close = body.index("}", position)
        return int(body[position + 3 : close], 16), close + 1 - position
    return int(body[position + 2 : position + 6], 16), 6


def _checked(chars: list[tuple[str, int]], value: str, end: int) -> list[int] | None:
    if "".join(c for c, _ in chars) != value:
        return None
    return [offset for _, offset in chars] + [end]


def _decode(path: Path) -> str:
    """The file's text; a file that is not UTF-8 is a schema error at the first bad byte."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        before = raw[: error.start]
        line = before.count(b"\n") + 1
        column = error.start - (before.rfind(b"\n") + 1) + 1
        problem = Problem(
            line, column, str(path), "", "encoding", f"the file is not UTF-8 text ({error.reason})"
        )
        raise SchemaError([problem]) from None
