"""Collects problems and warnings while the loader walks the schema, each placed in the
user's file."""

from __future__ import annotations

from graphql import DocumentNode, GraphQLError, Node, StringValueNode

from chalicelib.schema.errors import Problem, SchemaError
from chalicelib.schema.source import UserSource

# Where a problem is: an AST node of the user's document, an offset in the patched text,
# or None for the file as a whole.
At = Node | int | None


class Report:
    def __init__(self, source: UserSource) -> None:
        self.source = source
        self.problems: list[Problem] = []
        # What the author should know but may mean: the load goes on (SchemaModel.warnings).
        self.warnings: list[str] = []

    def add(self, at: At, subject: str, rule: str, message: str) -> None:
        line, column = self.location(at)
        self.problems.append(Problem(line, column, self.source.name, subject, rule, message))

    def warn(self, at: At, subject: str, message: str) -> None:
        """A warning in the ``file:line:column: warning:`` form editors and CI logs know."""
        line, column = self.location(at)
        self.warnings.append(f"{self.source.name}:{line}:{column}: warning: {subject} {message}")

    def location(self, at: At) -> tuple[int, int]:
        """1-based line and column in the user's file; the file's start if ``at`` is not in it."""
        offset = self.offset(at)
        return (1, 1) if offset is None else self.source.location(offset)

    def add_sql(
        self, sql: StringValueNode, offset: int, subject: str, rule: str, message: str
    ) -> None:
        """A problem at character ``offset`` of the SQL held by string ``sql``."""
        self.add(self.source.string_offset(sql, offset), subject, rule, message)

    def add_graphql(self, error: GraphQLError, rule: str, document: DocumentNode | None) -> None:
        """A graphql-core error, placed at its first node in the user's file."""
        offsets = [self.offset(node) for node in error.nodes or ()]
        if error.source is self.source.patched:
            offsets += error.positions or []
        offset = next((o for o in offsets if o is not None), None)
        subject = _subject(document, offset) if document and offset is not None else ""
        self.add(offset, subject, rule, error.message)

    def offset(self, at: At) -> int | None:
        if isinstance(at, Node):
            loc = at.loc
            return loc.start if loc is not None and loc.source is self.source.patched else None
        return at

    def raise_if_any(self) -> None:
        if self.problems:
            raise SchemaError(self.problems)


def _subject(document: DocumentNode, offset: int) -> str:
    """``Type.field`` (or ``Type``, ``@directive``) of the definition around ``offset``."""
    for definition in document.definitions:
        if not _contains(definition, offset):
            continue
        if definition.kind == "schema_definition":
            return "schema"
        prefix = "@" if definition.kind == "directive_definition" else ""
        name = prefix + _name(definition)
        members = [
            m for a in ("fields", "values", "arguments") for m in getattr(definition, a, None) or ()
        ]
        member = next((m for m in members if _contains(m, offset)), None)
        return f"{name}.{_name(member)}" if member is not None else name
    return ""


def _contains(node: Node, offset: int) -> bool:
    return node.loc is not None and node.loc.start <= offset < node.loc.end


def _name(node: Node) -> str:
    name = getattr(node, "name", None)
    return str(name.value) if name is not None else ""
