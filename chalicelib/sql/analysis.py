"""SQL checks that need a real parser: sqlglot with the Trino dialect, which Athena runs.

sqlglot takes ~75 ms to import, so only code that parses SQL imports this module.
Placeholders are not SQL; before parsing they are replaced with neutral SQL of the same
length (``$args.x`` in code by ``NULL``, ``$join_table(t)`` by ``t``, padded with spaces),
so every offset sqlglot reports is an offset in the user's text. Inside a string
literal a placeholder is just text and stays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import OptimizeError, ParseError, TokenError
from sqlglot.optimizer.scope import Scope, traverse_scope

from chalicelib import keys
from chalicelib.sql.placeholders import Context, Kind, Placeholder, substitute

DIALECT = "trino"


class SqlSyntaxError(ValueError):
    def __init__(self, offset: int, message: str) -> None:
        super().__init__(message)
        self.offset = offset
        self.message = message


@dataclass(frozen=True)
class TableRef:
    """A table the statement reads, as written (Athena compares names case-insensitively)."""

    name: str
    offset: int
    qualified: bool


@dataclass(frozen=True)
class ColumnRef:
    """``alias.column`` where ``alias`` stands for table ``table``."""

    table: str
    column: str
    offset: int


@dataclass(frozen=True)
class Analysis:
    kind: str  # "SELECT" for any query (UNION, WITH ...), "DELETE", or the statement's keyword
    tables: tuple[TableRef, ...]
    columns: tuple[ColumnRef, ...]
    # The result's column names, lower-cased as Athena returns them ("_col<n>" for an
    # unnamed expression, as Trino names it); None when a ``*`` makes them unknown.
    outputs: tuple[str, ...] | None = None


def analyze(sql: str) -> Analysis:
    """Parse one statement and list what it reads; raises :class:`SqlSyntaxError`."""
    statement = _parse_one(substitute(sql, _neutral))
    query: exp.Expr
    if isinstance(statement, exp.Query):
        kind, query = "SELECT", statement
    elif isinstance(statement, exp.Delete):
        kind, query = "DELETE", _select_for_delete(statement)
    else:
        return Analysis(statement.key.upper(), (), ())
    return Analysis(kind, _tables(query), _columns(query), _outputs(query))


@dataclass(frozen=True)
class OwnedColumn:
    """A join table's column whose rows a caller may delete only where it references
    ``owner``'s items: those of ``table`` whose ``owner_field`` is ``owner``."""

    column: str
    table: str
    owner_field: str
    owner: str


def delete_to_select(sql: str, owned: Sequence[OwnedColumn] = ()) -> str:
    """The SELECT a deletion task runs (DESIGN §6): ``DELETE a FROM t a [JOIN ...] WHERE ...``
    becomes ``SELECT a.s3Key, a.relationId FROM t a [JOIN ...] WHERE ...``, narrowed by
    ``AND a.c IN (SELECT id FROM e WHERE owner = '…')`` for each of ``owned``, so a caller
    held to their own items deletes no relation of anyone else's (docs/auth.md).

    ``sql`` is a rendered statement (no placeholders left). Generating the DELETE itself
    for Trino would silently drop its joins (FIELD-NOTES), so the SELECT is built from the
    syntax tree; the owner is a literal of that tree, never text spliced in.
    """
    statement = _parse_one(sql)
    if not isinstance(statement, exp.Delete):
        raise SqlSyntaxError(0, f"expected a DELETE statement, found {statement.key.upper()}")
    select = _select_for_delete(statement)
    alias = statement.args["tables"][0].name
    for restriction in owned:
        select = select.where(_owned_by(alias, restriction), append=True)
    return select.sql(dialect=DIALECT)


def _owned_by(alias: str, owned: OwnedColumn) -> exp.Expr:
    items = (
        exp.select(exp.column("id", quoted=True))
        .from_(exp.Table(this=exp.to_identifier(owned.table, quoted=True)))
        .where(exp.column(owned.owner_field, quoted=True).eq(exp.Literal.string(owned.owner)))
    )
    return exp.column(owned.column, alias, quoted=True).isin(query=items)


def read_through(sql: str, tables: Mapping[str, str]) -> str:
    """``sql`` with each table of ``tables`` (lower-cased name -> query) it reads replaced
    by that query, under the table's name or its alias.

    ``sql`` is a rendered query (no placeholders left). Only the table names are
    replaced, at the offsets sqlglot read them from: the rest of the text, literals
    included, runs exactly as rendered. A name a WITH clause defines, or one qualified
    by a database, is not the lake's table and stays.
    """
    statement = _parse_one(sql)
    ctes = {cte.alias_or_name.lower() for cte in statement.find_all(exp.CTE)}
    replacements = []
    for table in statement.find_all(exp.Table):
        name = table.name.lower()
        if (
            not isinstance(table.this, exp.Identifier)
            or table.args.get("db")
            or table.args.get("catalog")
            or name in ctes
            or name not in tables
        ):
            continue
        start, end = table.this.meta["start"], table.this.meta["end"] + 1
        alias = "" if table.alias else f" AS {exp.to_identifier(table.name, quoted=True).sql()}"
        replacements.append((start, end, f"({tables[name]}){alias}"))
    for start, end, text in sorted(replacements, reverse=True):
        sql = sql[:start] + text + sql[end:]
    return sql


def _neutral(placeholder: Placeholder) -> str:
    if placeholder.context is not Context.CODE:
        return placeholder.text
    neutral = placeholder.name if placeholder.kind is Kind.JOIN_TABLE else "NULL"
    return neutral.ljust(placeholder.end - placeholder.start)


def _parse_one(sql: str) -> exp.Expr:
    try:
        statements = [s for s in sqlglot.parse(sql, read=DIALECT) if s is not None]
    except ParseError as error:
        raise _syntax_error(sql, error) from None
    except TokenError as error:
        raise SqlSyntaxError(0, f"cannot read the SQL: {error}") from None
    if len(statements) != 1:
        raise SqlSyntaxError(0, f"expected one SQL statement, found {len(statements)}")
    return statements[0]


def _syntax_error(sql: str, error: ParseError) -> SqlSyntaxError:
    """sqlglot reports the line and the column where the offending token ends."""
    if not error.errors:
        return SqlSyntaxError(0, str(error))
    first = error.errors[0]
    line, column = first.get("line") or 1, first.get("col") or 1
    line_start = sum(len(text) + 1 for text in sql.split("\n")[: line - 1])
    offset = line_start + max(column - len(first.get("highlight") or ""), 0)
    near = first.get("highlight") or ""
    description = first.get("description") or str(error)
    return SqlSyntaxError(
        min(offset, len(sql)), f"cannot parse the SQL near {near!r}: {description}"
    )


def _select_for_delete(statement: exp.Delete) -> exp.Select:
    targets = statement.args.get("tables") or []
    unsupported = [k for k in ("using", "returning", "order", "limit") if statement.args.get(k)]
    if len(targets) != 1 or unsupported:
        what = ", ".join(u.upper() for u in unsupported) or "several targets"
        raise SqlSyntaxError(0, f"DELETE with {what} is not supported")
    alias = targets[0].name
    table = statement.this.copy()
    joins = table.args.pop("joins", None) or []
    select = exp.select(
        exp.column(keys.LAKE_S3_KEY, alias), exp.column(keys.JOIN_ROW_RELATION_ID, alias)
    ).from_(table)
    for join in joins:
        select = select.join(join)
    where = statement.args.get("where")
    return select.where(where.this.copy()) if where else select


def _outputs(query: exp.Query) -> tuple[str, ...] | None:
    names = []
    for position, (name, projection) in enumerate(
        zip(query.named_selects, query.selects, strict=False)
    ):
        if name == "*" or isinstance(projection, exp.Star):
            return None
        names.append(name.lower() if name else f"_col{position}")
    return tuple(names)


def _tables(query: exp.Expr) -> tuple[TableRef, ...]:
    ctes = {cte.alias_or_name.lower() for cte in query.find_all(exp.CTE)}
    refs = []
    for table in query.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            continue  # a table function such as TABLE(sequence(...))
        qualified = bool(table.args.get("db") or table.args.get("catalog"))
        if qualified or table.name.lower() not in ctes:
            refs.append(TableRef(table.name, table.this.meta.get("start", 0), qualified))
    return tuple(sorted(refs, key=lambda r: r.offset))


def _columns(query: exp.Expr) -> tuple[ColumnRef, ...]:
    """Qualified columns whose qualifier is a table's alias; unqualified ones are skipped
    (they may name an output column, which only a full resolver would tell)."""
    try:
        scopes = traverse_scope(query)
    except OptimizeError:
        return ()
    refs = []
    for scope in scopes:
        for column in scope.columns:
            start = column.this.meta.get("start")
            if not column.table or not isinstance(start, int):
                continue  # unqualified, or one of the SELECT's own columns for a DELETE
            source = _source(scope, column.table)
            if isinstance(source, exp.Table) and isinstance(source.this, exp.Identifier):
                refs.append(ColumnRef(source.name, column.name, start))
    return tuple(sorted(set(refs), key=lambda r: r.offset))


def _source(scope: Scope | None, alias: str) -> object:
    while scope is not None:
        if alias in scope.sources:
            return scope.sources[alias]
        scope = scope.parent
    return None
