"""A protected stage's limits: introspection off, depth and cost bounded, before execution."""

from __future__ import annotations

import json
from typing import Any

import pytest
from graphql import GraphQLSchema

from chalicelib.graphql import GraphQLEndpoint, build_executable_schema
from chalicelib.graphql.limits import ApiLimits
from chalicelib.schema import load_schema
from chalicelib.schema.model import SchemaModel
from tests.conftest import EXAMPLE_SCHEMA


class NoServices:
    """A context whose every use fails: refused requests must never reach a resolver."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"a refused request used the context ({name})")


@pytest.fixture(scope="module")
def model() -> SchemaModel:
    return load_schema(EXAMPLE_SCHEMA, check_sql=False)


@pytest.fixture(scope="module")
def schema(model: SchemaModel) -> GraphQLSchema:
    return build_executable_schema(model)


def errors(endpoint: GraphQLEndpoint, query: str, **variables: Any) -> list[str]:
    body = json.dumps({"query": query, "variables": variables})
    response = endpoint.execute(body, NoServices())
    assert response.status == 200
    return [error["message"] for error in json.loads(response.body).get("errors", [])]


def test_introspection_is_refused_on_a_protected_stage(
    schema: GraphQLSchema, model: SchemaModel
) -> None:
    query = "{ __schema { queryType { name } } }"

    (message,) = errors(GraphQLEndpoint(schema, ApiLimits(model)), query)

    assert "introspection is disabled" in message.lower()
    assert errors(GraphQLEndpoint(schema), query) == []


def test_a_selection_deeper_than_the_limit_is_refused_through_fragments(
    schema: GraphQLSchema, model: SchemaModel
) -> None:
    query = """
      query Deep { listUser { ...Page } }
      fragment Page on UserConnection { items { ...Names } }
      fragment Names on User { id name }
    """

    assert errors(GraphQLEndpoint(schema, ApiLimits(model, max_depth=2)), query) == [
        "Deep nests 3 levels deep; at most 2 are allowed"
    ]


def test_a_page_costs_its_selection_times_its_limit(
    schema: GraphQLSchema, model: SchemaModel
) -> None:
    endpoint = GraphQLEndpoint(schema, ApiLimits(model, max_cost=100))
    query = "query ($n: Int) { listUser(limit: $n) { items { id name } } }"

    assert errors(endpoint, query, n=98) == [
        "The query exceeds the maximum cost of 100. Actual cost is 101"
    ]
    # The same document again, validated once already: its cost is still per request.
    assert errors(endpoint, query, n=97) == [
        "Internal server error; the request was not completed"  # it ran: NoServices
    ]
