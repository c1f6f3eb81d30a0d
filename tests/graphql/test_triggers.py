"""The cap on task triggers per operation, as a validation rule over the document."""

from __future__ import annotations

import json
from typing import Any

import pytest
from graphql import ASTValidationRule, GraphQLSchema, parse, specified_rules, validate

from chalicelib.graphql import GraphQLEndpoint, build_executable_schema
from chalicelib.graphql.limits import ApiLimits
from chalicelib.graphql.triggers import TriggerFields, trigger_limit
from chalicelib.schema import load_schema
from chalicelib.schema.model import SchemaModel
from tests.conftest import EXAMPLE_SCHEMA
from tests.graphql.test_limits import NoServices

TASK = "triggerTaskUsersByCity"
DELETION = "triggerTaskRemoveFavoritesOfProduct"


@pytest.fixture(scope="module")
def model() -> SchemaModel:
    return load_schema(EXAMPLE_SCHEMA, check_sql=False)


@pytest.fixture(scope="module")
def schema(model: SchemaModel) -> GraphQLSchema:
    return build_executable_schema(model)


@pytest.fixture(scope="module")
def rule(model: SchemaModel) -> type[ASTValidationRule]:
    return trigger_limit(model, max_tasks=5, max_deletions=1)


def selections(count: int, field: str = TASK, prefix: str = "t") -> str:
    arguments = 'city: "x"' if field == TASK else 'productId: "p"'
    return " ".join(f"{prefix}{i}: {field}({arguments}) {{ taskId }}" for i in range(count))


def messages(schema: GraphQLSchema, rule: type[ASTValidationRule], query: str) -> list[str]:
    return [error.message for error in validate(schema, parse(query), [*specified_rules, rule])]


def test_the_trigger_fields_are_those_the_schema_publishes(
    model: SchemaModel, schema: GraphQLSchema
) -> None:
    fields = TriggerFields.of(model)

    assert fields.tasks == {
        "triggerTaskUsersByCity",
        "triggerTaskFavoriteProducts",
        "triggerTaskBrandPopularity",
    }
    assert fields.deletions == {
        "triggerTaskRemoveFavoritesOfProduct",
        "triggerTaskRemoveFavoritesOfBrand",
    }
    assert schema.mutation_type is not None
    assert fields.tasks | fields.deletions <= set(schema.mutation_type.fields)


def test_five_aliased_triggers_pass_and_six_are_refused_at_the_operation(
    schema: GraphQLSchema, rule: type[ASTValidationRule]
) -> None:
    assert messages(schema, rule, f"mutation {{ {selections(5)} }}") == []

    (error,) = validate(
        schema, parse(f"\n  mutation {{ {selections(6)} }}"), [*specified_rules, rule]
    )
    assert error.message == "this operation triggers 6 tasks; at most 5 are allowed per request"
    assert [(location.line, location.column) for location in error.locations or ()] == [(2, 3)]


def test_triggers_are_counted_through_fragments_inline_fragments_and_directives(
    schema: GraphQLSchema, rule: type[ASTValidationRule]
) -> None:
    query = f"""
      mutation Hidden($no: Boolean = false) {{
        {selections(1, prefix="a")}
        ...Outer
        ... on Mutation {{ {selections(1, prefix="b")} }}
        ... @include(if: $no) {{ {selections(1, prefix="c")} }}
      }}
      fragment Outer on Mutation {{
        ...Inner
        ... {{ d: {TASK}(city: "x") @skip(if: true) {{ taskId }} }}
      }}
      fragment Inner on Mutation {{ {selections(2, prefix="e")} }}
    """

    assert messages(schema, rule, query) == [
        "operation Hidden triggers 6 tasks; at most 5 are allowed per request"
    ]


def test_a_response_key_selected_twice_runs_once_and_counts_once(
    schema: GraphQLSchema, rule: type[ASTValidationRule]
) -> None:
    query = f"""
      mutation {{ ...Five ...Five ... on Mutation {{ ...Five }} {selections(1)} }}
      fragment Five on Mutation {{ {selections(5)} }}
    """

    assert messages(schema, rule, query) == []


def test_each_operation_of_a_document_is_counted_on_its_own(
    schema: GraphQLSchema, rule: type[ASTValidationRule]
) -> None:
    query = f"""
      mutation A {{ {selections(4)} }}
      mutation B {{ {selections(4)} ...Two }}
      fragment Two on Mutation {{ {selections(2, prefix="x")} }}
      query C {{ listUser {{ items {{ id }} }} }}
    """

    (error,) = validate(schema, parse(query), [*specified_rules, rule])

    assert error.message == "operation B triggers 6 tasks; at most 5 are allowed per request"
    assert [(location.line, location.column) for location in error.locations or ()] == [(3, 7)]


def test_deletion_triggers_have_their_own_cap(
    schema: GraphQLSchema, rule: type[ASTValidationRule]
) -> None:
    one_each = f"mutation {{ {selections(5)} {selections(1, DELETION, 'd')} }}"
    assert messages(schema, rule, one_each) == []

    both = f"""mutation {{
      {selections(6)}
      {selections(1, DELETION, "d")}
      other: triggerTaskRemoveFavoritesOfBrand(brandId: "b") {{ taskId }}
    }}"""
    assert messages(schema, rule, both) == [
        "this operation triggers 6 tasks; at most 5 are allowed per request",
        "this operation triggers 2 deletion tasks; at most 1 is allowed per request",
    ]


def test_other_mutations_and_queries_are_not_counted(
    schema: GraphQLSchema, model: SchemaModel
) -> None:
    rule = trigger_limit(model, max_tasks=1, max_deletions=1)
    creates = " ".join(
        f'c{i}: createBrand(input: {{name: "b"}}) {{ id }} d{i}: deleteBrand(id: "b") {{ id }}'
        for i in range(3)
    )
    results = " ".join(
        f'r{i}: taskResultUsersByCity(taskId: "t") {{ taskStatus }}' for i in range(3)
    )

    assert messages(schema, rule, f"mutation {{ {creates} }}") == []
    assert messages(schema, rule, f"{{ {results} }}") == []


def test_cyclic_and_unknown_fragments_are_left_to_the_other_rules(
    schema: GraphQLSchema, rule: type[ASTValidationRule]
) -> None:
    query = f"""
      mutation {{ ...A ...Missing }}
      fragment A on Mutation {{ {selections(6)} ...B }}
      fragment B on Mutation {{ ...A }}
    """

    found = messages(schema, rule, query)

    assert "this operation triggers 6 tasks; at most 5 are allowed per request" in found
    assert any("Missing" in message for message in found)
    assert any("Cannot spread fragment 'A' within itself" in message for message in found)


def test_the_endpoint_refuses_every_time_without_running_a_resolver(
    schema: GraphQLSchema, rule: type[ASTValidationRule]
) -> None:
    endpoint = GraphQLEndpoint(schema, document_rules=(rule,))
    body = json.dumps({"query": f"mutation {{ {selections(6)} }}"})

    for _ in range(2):  # the second time, the outcome kept with the document
        response = endpoint.execute(body, NoServices())
        result: dict[str, Any] = json.loads(response.body)
        assert [error["message"] for error in result["errors"]] == [
            "this operation triggers 6 tasks; at most 5 are allowed per request"
        ]
        assert result.get("data") is None
    assert len(endpoint.documents) == 1


def test_the_review_findings_500_triggers_pass_the_cost_limit_but_not_the_cap(
    schema: GraphQLSchema, model: SchemaModel, rule: type[ASTValidationRule]
) -> None:
    endpoint = GraphQLEndpoint(schema, ApiLimits(model), document_rules=(rule,))
    query = f"mutation {{ {selections(500)} }}"
    assert len(query) > 20_000  # longer than a kept document: validated in full

    response = endpoint.execute(json.dumps({"query": query}), NoServices())

    assert [error["message"] for error in json.loads(response.body)["errors"]] == [
        "this operation triggers 500 tasks; at most 5 are allowed per request"
    ]
