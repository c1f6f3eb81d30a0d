"""No argument value, and no caller's identity, changes a statement's structure: a
property test with hostile values.

For each ``@sql_query`` statement, hostile values are rendered and parsed with sqlglot's
Trino dialect; the syntax tree must be the tree of a benign rendering except for the
literals' values, and each literal must hold exactly the value that was sent. The
benign rendering uses the same nulls, signs and list lengths (they are structure:
``NULL``, ``-3``, ``ARRAY[a, b]``), with marker values that say which literal is which.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlglot import exp

from chalicelib.auth.identity import PUBLIC, Identity
from chalicelib.lake.columns import ColumnType, column_type
from chalicelib.schema import load_schema
from chalicelib.schema.model import INTEGER_RANGE, Argument, TypeKind, TypeRef
from chalicelib.sql.render import render

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES_PER_STATEMENT = 250  # x 6 statements: 1,500 examples

PAYLOADS = (
    "' OR 1=1 --",
    "'); DROP TABLE user; --",
    "\\'",
    "\\",
    "'",
    "''",
    "$args.city",
    "$args.namePrefix",
    "$join_table(user_favorite_products)",
    "*/",
    "/*",
    "--",
    "\n",
    "\r\n",
    "\u0000",
    "\u02bc",  # modifier letter apostrophe
    "\u2019",  # right single quotation mark
    '"',
    "%",
    "_",
    ";",
    "U&'\\0027'",
    "' || (SELECT 1) || '",
)
MINIMUM_INT, MAXIMUM_INT = INTEGER_RANGE[0], INTEGER_RANGE[-1]


@dataclass(frozen=True)
class Statement:
    name: str
    sql: str
    arguments: tuple[Argument, ...]


def example_statements() -> list[Statement]:
    model = load_schema(ROOT / "schema.graphql", check_sql=True)
    return [Statement(t.name, t.sql, t.arguments) for t in model.query_tasks] + [
        Statement(d.name, d.sql, d.arguments) for d in model.delete_mutations
    ]


def scalar(name: str, *, non_null: bool = False, is_list: bool = False) -> TypeRef:
    return TypeRef(name, TypeKind.SCALAR, non_null=non_null, is_list=is_list)


# Every type, values in code and in literals, and literals next to operators they could
# fuse with ("5-" and "-3" make a comment).
EVERY_TYPE = Statement(
    "everyType",
    """
    SELECT t.id, 'echo $args.s|$args.i|$args.f|$args.b|$args.ts|$args.color end' AS echo
    FROM $join_table(things) t
    WHERE t.s = $args.s AND t.id = $args.id
      AND t.n = 5-$args.i AND t.n < $args.i*2 AND t.x > $args.f
      AND t.flag = $args.b AND t.at <= $args.ts AND t.color = $args.color
      AND contains($args.tags, t.s) AND t.name LIKE '%$args.s%' -- $args.s
      /* $args.id */ ORDER BY t.id
    """,
    (
        Argument("s", scalar("String")),
        Argument("id", scalar("ID", non_null=True)),
        Argument("i", scalar("Int")),
        Argument("f", scalar("Float")),
        Argument("b", scalar("Boolean")),
        Argument("ts", scalar("AWSDateTime")),
        Argument("color", TypeRef("Color", TypeKind.ENUM)),
        Argument("tags", scalar("String", is_list=True)),
    ),
)
# The caller's identity in code and in a literal, beside an argument.
IDENTITY = Statement(
    "identity",
    """
    SELECT o.id, 'by $identity.username of $identity.sub' AS who FROM orders o
    WHERE o.owner = $identity.sub AND o.name LIKE '%$identity.username%'
      AND (contains($identity.groups, o.team) OR o.owner=$identity.sub) AND o.s = $args.s
    """,
    (Argument("s", scalar("String")),),
)
STATEMENTS = [*example_statements(), EVERY_TYPE, IDENTITY]


def strings() -> st.SearchStrategy[str]:
    payload = st.sampled_from(PAYLOADS)
    return st.one_of(
        st.text(),
        payload,
        st.lists(st.one_of(payload, st.text(max_size=3)), max_size=6).map("".join),
    )


def scalar_values(ref: TypeRef) -> st.SearchStrategy[Any]:
    """Hostile values of one item of the argument's type."""
    if ref.kind is TypeKind.ENUM:
        return st.sampled_from(("RED", "GREEN"))
    kind = column_type(ref)
    if kind is ColumnType.STRING:
        return strings()
    if kind is ColumnType.BIGINT:
        extremes = st.sampled_from((0, -1, MINIMUM_INT, MAXIMUM_INT, -MAXIMUM_INT))
        return st.one_of(extremes, st.integers(MINIMUM_INT, MAXIMUM_INT))
    if kind is ColumnType.DOUBLE:
        extremes = st.sampled_from((0.0, -0.0, 5e-324, -1.7976931348623157e308, 1e16))
        floats = st.floats(allow_nan=False, allow_infinity=False)
        return st.one_of(extremes, floats, st.integers(-(2**60), 2**60))
    if kind is ColumnType.BOOLEAN:
        return st.booleans()
    moments = st.datetimes(datetime(1, 1, 2), datetime(9999, 12, 30))
    return moments.map(lambda moment: moment.isoformat() + "Z")


def argument_values(argument: Argument) -> st.SearchStrategy[Any]:
    item = scalar_values(argument.type)
    value = st.lists(st.one_of(st.none(), item), max_size=4) if argument.type.is_list else item
    return value if argument.type.non_null else st.one_of(st.none(), value)


# ---- the benign twin of a hostile rendering ------------------------------------------


class Markers:
    """Benign values that identify their literal, and what the hostile literal must hold."""

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}  # benign text in a string literal -> hostile text
        self.numbers: dict[float, int | float] = {}  # |benign number| -> |hostile number|
        self._count = 0

    def benign(self, ref: TypeRef, hostile: Any) -> Any:
        if hostile is None:
            return None
        if ref.is_list:
            item = TypeRef(ref.name, ref.kind)
            return [self.benign(item, value) for value in hostile]
        self._count += 1
        if ref.kind is TypeKind.ENUM or column_type(ref) is ColumnType.STRING:
            # Zero-padded: markers sort as they were made, as ``$identity.groups`` sorts.
            marker = f"benign{self._count:04d}q"
            self.texts[marker] = str(hostile)
            return marker
        kind = column_type(ref)
        if kind is ColumnType.BIGINT:
            marker_int = 7_000_000 + self._count
            self.numbers[marker_int] = abs(hostile)
            self.texts[str(int(math.copysign(marker_int, hostile)))] = str(hostile)
            return int(math.copysign(marker_int, hostile))
        if kind is ColumnType.DOUBLE:
            marker_float = 7_000_000.5 + self._count
            self.numbers[marker_float] = abs(float(hostile))
            signed = math.copysign(marker_float, hostile)
            self.texts[repr(signed)] = repr(float(hostile))
            return signed
        if kind is ColumnType.BOOLEAN:
            return hostile  # TRUE and FALSE carry no text; both are fine here
        # In code the literal holds "2000-01-01 00:00:00.001", in a literal ISO text.
        marker_moment = datetime(2000, 1, 1, tzinfo=UTC).replace(microsecond=self._count * 1000)
        moment = datetime.fromisoformat(hostile).astimezone(UTC)
        for benign_text, hostile_text in (
            (_iso(marker_moment), _iso(moment)),
            (_sql_timestamp(marker_moment), _sql_timestamp(moment)),
        ):
            self.texts[benign_text] = hostile_text
        return _iso(marker_moment)

    def hostile_text(self, benign_text: str) -> str:
        """A benign literal's text with each marker replaced, in one pass."""
        if not self.texts:
            return benign_text
        pattern = "|".join(re.escape(m) for m in sorted(self.texts, key=len, reverse=True))
        return re.sub(pattern, lambda match: self.texts[match.group()], benign_text)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _sql_timestamp(moment: datetime) -> str:
    return moment.replace(tzinfo=None).isoformat(sep=" ", timespec="milliseconds")


def parse(sql: str) -> exp.Expr:
    statements = [s for s in sqlglot.parse(sql, read="trino") if s is not None]
    assert len(statements) == 1, sql
    return statements[0]


def shape(tree: exp.Expr) -> exp.Expr:
    """The tree with every literal replaced by a fixed one of the same kind, comments kept."""

    def fixed(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.Literal):
            return node
        literal = exp.Literal.string("s") if node.is_string else exp.Literal.number(0)
        literal.comments = node.comments
        return literal

    return tree.copy().transform(fixed)


def check_same_structure(
    statement: Statement,
    hostile: Mapping[str, Any],
    benign: Mapping[str, Any],
    markers: Markers,
    identities: tuple[Identity, Identity] = (PUBLIC, PUBLIC),
) -> None:
    """``identities``: the hostile caller and its benign twin."""
    hostile_sql = render(statement.sql, statement.arguments, hostile, identities[0])
    benign_sql = render(statement.sql, statement.arguments, benign, identities[1])
    hostile_tree, benign_tree = parse(hostile_sql), parse(benign_sql)
    assert shape(hostile_tree).sql(dialect="trino") == shape(benign_tree).sql(dialect="trino")
    assert shape(hostile_tree) == shape(benign_tree), hostile_sql
    # Same structure, so the walks pair each hostile literal with its benign twin.
    pairs = list(zip(hostile_tree.walk(), benign_tree.walk(), strict=True))
    for hostile_node, benign_node in pairs:
        assert type(hostile_node) is type(benign_node)
        if not isinstance(benign_node, exp.Literal):
            continue
        if benign_node.is_string:
            assert hostile_node.this == markers.hostile_text(benign_node.this), hostile_sql
        elif float(benign_node.this) in markers.numbers:
            expected = markers.numbers[float(benign_node.this)]
            number = int if isinstance(expected, int) else float
            assert number(hostile_node.this) == expected, hostile_sql


def values_for(arguments: Sequence[Argument]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({a.name: argument_values(a) for a in arguments})


TEXT = scalar("String")


def identities() -> st.SearchStrategy[Identity]:
    """Callers whose name and groups are as hostile as any argument (a pool may let users
    pick names; an operator names groups): not signed in, or signed in with any texts."""
    signed_in = st.builds(
        Identity,
        strings(),
        st.one_of(st.none(), strings()),
        st.frozensets(strings(), max_size=3),
    )
    return st.one_of(st.just(PUBLIC), signed_in)


def benign_identity(identity: Identity, markers: Markers) -> Identity:
    """The twin of a caller, its markers made in the order its groups are rendered."""
    return Identity(
        markers.benign(TEXT, identity.sub),
        markers.benign(TEXT, identity.username),
        frozenset(markers.benign(TEXT, group) for group in sorted(identity.groups)),
    )


@pytest.mark.parametrize("statement", STATEMENTS, ids=[s.name for s in STATEMENTS])
@settings(
    max_examples=EXAMPLES_PER_STATEMENT,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=st.data())
def test_no_value_changes_the_structure(statement: Statement, data: st.DataObject) -> None:
    hostile = data.draw(values_for(statement.arguments), label="values")
    caller = data.draw(identities(), label="identity")
    markers = Markers()
    benign = {a.name: markers.benign(a.type, hostile[a.name]) for a in statement.arguments}
    twin = benign_identity(caller, markers)
    check_same_structure(statement, hostile, benign, markers, (caller, twin))


def test_the_example_schema_is_covered() -> None:
    """Every @sql_query with arguments, the placeholder inside a literal included."""
    names = [s.name for s in STATEMENTS]
    assert names == [
        "usersByCity",
        "favoriteProducts",
        "brandPopularity",
        "removeFavoritesOfProduct",
        "removeFavoritesOfBrand",
        "everyType",
        "identity",
    ]
    assert len(STATEMENTS) * EXAMPLES_PER_STATEMENT >= 1000
    (popularity,) = [s for s in STATEMENTS if s.name == "brandPopularity"]
    assert "'$args.namePrefix%'" in popularity.sql


@pytest.mark.parametrize("payload", PAYLOADS)
def test_each_payload_stays_in_its_literal(payload: str) -> None:
    """The payloads one by one, in the example's prefix search."""
    (statement,) = [s for s in STATEMENTS if s.name == "brandPopularity"]
    markers = Markers()
    hostile = {"namePrefix": payload, "minFavorites": -1}
    benign = {a.name: markers.benign(a.type, hostile[a.name]) for a in statement.arguments}
    check_same_structure(statement, hostile, benign, markers)
    tree = parse(render(statement.sql, statement.arguments, hostile))
    texts = sorted(literal.this for literal in tree.find_all(exp.Literal) if literal.is_string)
    assert texts == sorted([payload, payload + "%"])
