"""Documents kept across requests: parsed once, request-independent rules run once."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import (
    ASTValidationRule,
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    parse,
    specified_rules,
)

from chalicelib.graphql import build_executable_schema
from chalicelib.graphql.documents import DocumentCache
from chalicelib.schema import load_schema
from tests.conftest import EXAMPLE_SCHEMA

READ = "query ($id: ID!) { readUser(id: $id) { id name } }"


@pytest.fixture(scope="module")
def schema() -> GraphQLSchema:
    return build_executable_schema(load_schema(EXAMPLE_SCHEMA, check_sql=False))


def counting_rule(visits: list[str]) -> type[ASTValidationRule]:
    """A rule noting every field it validates, so a test sees when it ran."""

    class Counting(ASTValidationRule):
        def enter_field(self, node: FieldNode, *_: Any) -> None:
            visits.append(node.name.value)

    return Counting


def request(query: str) -> dict[str, Any]:
    return {"query": query}


def test_a_repeated_query_is_parsed_once(schema: GraphQLSchema) -> None:
    cache = DocumentCache()

    first = cache.parse(None, request(READ))

    assert cache.parse(None, request(READ)) is first
    assert cache.parse(None, request(READ + " ")) is not first


def test_request_independent_rules_run_once_per_document_and_others_every_time(
    schema: GraphQLSchema,
) -> None:
    once: list[str] = []
    every_time: list[str] = []
    document_rule, request_rule = counting_rule(once), counting_rule(every_time)
    cache = DocumentCache((document_rule,))
    rules = (*specified_rules, document_rule, request_rule)

    for _ in range(3):
        document = cache.parse(None, request(READ))
        assert cache.validate(schema, document, rules) == []

    assert once == ["readUser", "id", "name"]
    assert every_time == ["readUser", "id", "name"] * 3


def test_an_invalid_document_reports_its_errors_every_time_and_skips_the_rest(
    schema: GraphQLSchema,
) -> None:
    every_time: list[str] = []
    cache = DocumentCache()
    query = "{ readUser(id: 1) { id nosuchfield } }"
    rules = (*specified_rules, counting_rule(every_time))

    reports = [
        [
            error.message
            for error in cache.validate(schema, cache.parse(None, request(query)), rules)
        ]
        for _ in range(2)
    ]

    assert reports[0] == reports[1]
    assert reports[0] == ["Cannot query field 'nosuchfield' on type 'User'."]
    assert every_time == []


def test_a_kept_outcome_belongs_to_its_schema(schema: GraphQLSchema) -> None:
    other = build_executable_schema(load_schema(EXAMPLE_SCHEMA, check_sql=False))
    other.query_type.fields.pop("readUser")  # type: ignore[union-attr]
    cache = DocumentCache()
    document = cache.parse(None, request(READ))

    assert cache.validate(schema, document) == []
    [error] = cache.validate(other, document)
    assert "Cannot query field 'readUser'" in error.message


def test_a_document_from_elsewhere_is_validated_in_full(schema: GraphQLSchema) -> None:
    once: list[str] = []
    document_rule = counting_rule(once)
    cache = DocumentCache((document_rule,))
    cache.parse(None, request(READ))

    for _ in range(2):
        assert cache.validate(schema, parse(READ), (*specified_rules, document_rule)) == []

    assert len(once) == 6


def test_a_syntax_error_raises_and_is_not_kept() -> None:
    cache = DocumentCache()

    with pytest.raises(GraphQLError, match="Syntax Error"):
        cache.parse(None, request("{ readUser("))

    assert len(cache) == 0


def test_the_cache_is_bounded_in_entries_in_text_and_in_query_length() -> None:
    by_entries = DocumentCache(max_entries=2)
    for n in range(3):
        by_entries.parse(None, request(f"{{ q{n}: __typename }}"))
    oldest = by_entries.parse(None, request("{ q0: __typename }"))

    assert len(by_entries) == 2
    assert by_entries.parse(None, request("{ q0: __typename }")) is oldest

    by_text = DocumentCache(max_cached_text=40)
    for n in range(3):
        by_text.parse(None, request(f"{{ q{n}: __typename }}"))
    assert len(by_text) == 2

    by_length = DocumentCache(max_query_length=10)
    long_query = "{ __typename }"
    assert by_length.parse(None, request(long_query)) is not by_length.parse(
        None, request(long_query)
    )
    assert len(by_length) == 0


def test_kept_errors_point_at_the_query_the_client_sent(
    schema: GraphQLSchema,
) -> None:
    class RefuseName(ASTValidationRule):
        def enter_field(self, node: FieldNode, *_: Any) -> None:
            if node.name.value == "name":
                self.report_error(GraphQLError("no names", node))

    cache = DocumentCache((RefuseName,))
    for _ in range(2):
        document = cache.parse(None, request(READ))
        [error] = cache.validate(schema, document, (*specified_rules, RefuseName))
        assert error.locations is not None
        assert (error.locations[0].line, error.locations[0].column) == (1, READ.index("name") + 1)
