"""The public SDL: a golden copy for the example, and what a GraphQL server makes of it."""

from __future__ import annotations

from pathlib import Path

import pytest
from ariadne import make_executable_schema
from graphql import GraphQLEnumType, GraphQLInputObjectType, GraphQLObjectType, GraphQLSchema
from syrupy.assertion import SnapshotAssertion

from chalicelib.schema import load_schema, public_sdl

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sdl() -> str:
    return public_sdl(load_schema(ROOT / "schema.graphql"))


@pytest.fixture(scope="module")
def schema(sdl: str) -> GraphQLSchema:
    return make_executable_schema(sdl)


def test_example_public_sdl_is_stable(sdl: str, snapshot: SnapshotAssertion) -> None:
    assert sdl == snapshot
    assert sdl.endswith("}\n")


def test_public_sdl_has_no_directives_nor_original_query_fields(sdl: str) -> None:
    assert "@" not in sdl
    assert "usersByCity(" not in sdl


def test_query_fields(schema: GraphQLSchema) -> None:
    query = schema.query_type
    assert query is not None
    assert list(query.fields) == [
        "readUser",
        "listUser",
        "readAddress",
        "listAddress",
        "readBrand",
        "listBrand",
        "readProduct",
        "listProduct",
        "taskResultUsersByCity",
        "taskResultFavoriteProducts",
        "taskResultBrandPopularity",
        "taskResultRemoveFavoritesOfProduct",
        "taskResultRemoveFavoritesOfBrand",
    ]
    listing = query.fields["listUser"]
    assert {name: str(arg.type) for name, arg in listing.args.items()} == {
        "limit": "Int",
        "nextToken": "String",
        "order": "SortOrder",
    }
    assert str(listing.type) == "UserConnection!"
    assert str(query.fields["readUser"].type) == "User"
    assert str(query.fields["taskResultUsersByCity"].type) == "TaskResultUsersByCity!"


def test_mutation_fields(schema: GraphQLSchema) -> None:
    mutation = schema.mutation_type
    assert mutation is not None
    types = {name: str(field.type) for name, field in mutation.fields.items()}
    assert types["createUser"] == "User!"
    assert types["updateProduct"] == "Product!"
    assert types["deleteBrand"] == "DeleteResult!"
    assert types["triggerTaskBrandPopularity"] == "TaskTriggerResult!"
    assert types["addFavorite"] == "Boolean!"
    assert types["triggerTaskRemoveFavoritesOfBrand"] == "TaskTriggerResult!"
    assert len(types) == 4 * 3 + 3 + 1 + 2
    args = mutation.fields["triggerTaskBrandPopularity"].args
    assert str(args["minFavorites"].type) == "Int"
    assert args["minFavorites"].default is not None
    update = mutation.fields["updateUser"].args
    assert [str(a.type) for a in update.values()] == ["ID!", "UpdateUserInput!"]


def test_generated_types(schema: GraphQLSchema) -> None:
    def fields(name: str) -> dict[str, str]:
        named = schema.type_map[name]
        assert isinstance(named, GraphQLObjectType | GraphQLInputObjectType)
        return {n: str(f.type) for n, f in named.fields.items()}

    assert fields("CreateProductInput") == {
        "name": "String!",
        "brandId": "ID!",
        "price": "Float!",
        "tags": "[String!]",
    }
    assert fields("UpdateProductInput") == {
        "name": "String",
        "brandId": "ID",
        "price": "Float",
        "tags": "[String!]",
    }
    assert fields("UserConnection") == {"items": "[User!]!", "nextToken": "String"}
    assert fields("TaskResultUsersByCity") == {
        "taskStatus": "TaskStatus!",
        "result": "[UserInCity!]",
        "startDate": "AWSDateTime!",
        "finishDate": "AWSDateTime",
        "errorMessage": "String",
        "statistics": "TaskStatistics",
        "nextToken": "String",
    }
    assert "result" not in fields("DeletionTaskResult")
    assert fields("DeletionTaskResult")["statistics"] == "TaskStatistics"
    assert fields("TaskStatistics") == {
        "dataScannedBytes": "Float",
        "engineMillis": "Int",
        "queueMillis": "Int",
        "resultReused": "Boolean!",
    }
    status = schema.type_map["TaskStatus"]
    assert isinstance(status, GraphQLEnumType)
    assert list(status.values) == ["RUNNING", "SUCCEEDED", "FAILED"]


SCALAR_TASK = """
enum Color { RED GREEN }
type Paint {
  id: ID!
  color: Color!
  site: AWSURL
}
type Query {
  count(color: Color = GREEN, note: String = "a \\"quoted\\" note", ratio: Float = 0.5): Int
    @sql_query(query: "SELECT COUNT(*) FROM paint")
}
"""


def test_scalar_result_enums_aws_scalars_and_defaults(tmp_path: Path) -> None:
    path = tmp_path / "schema.graphql"
    path.write_text(SCALAR_TASK)
    sdl = public_sdl(load_schema(path))
    assert sdl.startswith(
        "scalar AWSDateTime\n\nscalar AWSURL\n\nenum Color {\n  RED\n  GREEN\n}\n"
    )
    assert "  result: Int\n" in sdl
    assert (
        'triggerTaskCount(color: Color = GREEN, note: String = "a \\"quoted\\" note", '
        "ratio: Float = 0.5): TaskTriggerResult!"
    ) in sdl
    assert "DeletionTaskResult" not in sdl
    make_executable_schema(sdl)
