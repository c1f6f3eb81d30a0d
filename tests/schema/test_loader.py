"""Schemas that load: the example, AppSync-style files, and omitted return types."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.schema import SchemaError, load_schema
from chalicelib.schema.model import (
    AWS_SCALARS,
    Argument,
    Field,
    JoinColumn,
    JoinTable,
    SchemaModel,
    TypeKind,
    TypeRef,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "schema.graphql"

ID = TypeRef("ID", TypeKind.SCALAR, non_null=True)
STRING = TypeRef("String", TypeKind.SCALAR)
TIMESTAMP = TypeRef("AWSDateTime", TypeKind.SCALAR, non_null=True)


@pytest.fixture(scope="module")
def example() -> SchemaModel:
    return load_schema(EXAMPLE)


def write(tmp_path: Path, sdl: str) -> Path:
    path = tmp_path / "schema.graphql"
    path.write_text(sdl)
    return path


def test_example_entities_in_source_order(example: SchemaModel) -> None:
    assert [e.name for e in example.entities] == ["User", "Address", "Brand", "Product"]
    assert [e.key for e in example.entities] == ["user", "address", "brand", "product"]


def test_example_fields_keep_their_types(example: SchemaModel) -> None:
    user = example.entities[0]
    assert user.fields == (
        Field("id", ID),
        Field("name", TypeRef("String", TypeKind.SCALAR, non_null=True)),
        Field("email", TypeRef("String", TypeKind.SCALAR, non_null=True)),
        Field("age", TypeRef("Int", TypeKind.SCALAR)),
        Field("vip", TypeRef("Boolean", TypeKind.SCALAR)),
        Field("createdAt", TIMESTAMP),
        Field("updatedAt", TIMESTAMP),
    )
    tags = example.entities[3].field("tags")
    assert tags == Field(
        "tags", TypeRef("String", TypeKind.SCALAR, is_list=True, item_non_null=True)
    )
    assert [f.name for f in user.input_fields] == ["name", "email", "age", "vip"]


def test_example_task_responses_and_scalars(example: SchemaModel) -> None:
    names = [t.name for t in example.task_responses]
    assert names == ["UserInCity", "FavoriteProduct", "BrandPopularity"]
    assert example.task_responses[2].fields[2] == Field(
        "averagePrice", TypeRef("Float", TypeKind.SCALAR)
    )
    assert example.scalars == ("AWSDateTime",)
    assert example.enums == {}


def test_example_query_tasks(example: SchemaModel) -> None:
    by_name = {t.name: t for t in example.query_tasks}
    assert list(by_name) == ["usersByCity", "favoriteProducts", "brandPopularity"]
    users = by_name["usersByCity"]
    assert users.arguments == (Argument("city", TypeRef("String", TypeKind.SCALAR, non_null=True)),)
    assert users.result == TypeRef("UserInCity", TypeKind.OBJECT, True, True, True)
    assert users.sql.startswith("SELECT u.id, u.name")
    assert "$args.city" in users.sql
    popularity = by_name["brandPopularity"]
    assert popularity.arguments == (
        Argument("minFavorites", TypeRef("Int", TypeKind.SCALAR), has_default=True, default=1),
        Argument("namePrefix", STRING),
    )


def test_example_join_table_and_mutations(example: SchemaModel) -> None:
    assert example.join_tables == (
        JoinTable(
            "user_favorite_products",
            (JoinColumn("userId", "User"), JoinColumn("productId", "Product")),
        ),
    )
    assert example.join_tables[0].column("productId") == JoinColumn("productId", "Product")
    (insert,) = example.insert_mutations
    assert insert.name == "addFavorite"
    assert insert.table == "user_favorite_products"
    assert insert.values == (("userId", "userId"), ("productId", "productId"))
    assert [a.name for a in insert.arguments] == ["userId", "productId"]
    assert [d.name for d in example.delete_mutations] == [
        "removeFavoritesOfProduct",
        "removeFavoritesOfBrand",
    ]
    brand = example.delete_mutations[1]
    assert brand.table == "user_favorite_products"
    assert brand.arguments == (Argument("brandId", ID),)
    assert brand.sql.startswith("DELETE f FROM $join_table(user_favorite_products) f JOIN")


def test_without_sql_checks_the_model_is_the_same(example: SchemaModel) -> None:
    assert load_schema(EXAMPLE, check_sql=False) == example


APPSYNC = '''
"""AppSync declares its scalars; this file also declares the directives."""
scalar AWSDateTime
scalar AWSEmail
scalar AWSJSON
directive @sql_query(query: String!) on FIELD_DEFINITION
directive @task_response on OBJECT

schema {
  query: Query
}

enum Plan {
  FREE
  PRO
}

"A customer."
type Customer {
  id: ID!
  "How to reach them."
  email: AWSEmail!
  plan: Plan
  settings: AWSJSON
  plans: [Plan!]!
}

type Query {
  byPlan(plan: Plan = PRO): [Customer!]! @sql_query(query: "SELECT 1")
}
'''


def test_appsync_style_schema_with_declarations(tmp_path: Path) -> None:
    (customer,) = load_schema(
        write(tmp_path, APPSYNC.replace("[Customer!]!", "[String!]!"))
    ).entities
    assert [f.name for f in customer.fields] == [
        "id",
        "email",
        "plan",
        "settings",
        "plans",
        "createdAt",
        "updatedAt",
    ]
    assert customer.field("plan") == Field("plan", TypeRef("Plan", TypeKind.ENUM))
    assert customer.field("createdAt") == Field("createdAt", TIMESTAMP)


def test_appsync_style_schema_enums_scalars_and_enum_defaults(tmp_path: Path) -> None:
    model = load_schema(write(tmp_path, APPSYNC.replace("[Customer!]!", "[Plan!]!")))
    assert model.enums == {"Plan": ("FREE", "PRO")}
    assert model.scalars == ("AWSDateTime", "AWSEmail", "AWSJSON")
    (task,) = model.query_tasks
    assert task.result == TypeRef("Plan", TypeKind.ENUM, True, True, True)
    assert task.arguments == (
        Argument("plan", TypeRef("Plan", TypeKind.ENUM), has_default=True, default="PRO"),
    )


ODD_LINE_BREAKS = '''
type User { id: ID! }
type Product { id: ID! }

type Mutation {
  "Arguments over several lines, the directive on its own line."
  addFavorite(
    userId: ID!,
    productId: ID!
  )
    @sql_query(
      query: """
        INSERT INTO $join_table(favorites)
          (userId:User, productId:Product)
        VALUES ($args.userId, $args.productId)
      """
    )
  # a comment between fields
  clear(userId: ID!)# a comment before the directive
  @sql_query(query: "DELETE f FROM $join_table(favorites) f WHERE f.userId = $args.userId")
  unfavorite(userId: ID!, productId: ID!): Boolean!
    @sql_query(query: """DELETE f FROM $join_table(favorites) f
      WHERE f.userId = $args.userId AND f.productId = $args.productId""")
}

extend type Mutation {
  again(userId: ID!, productId: ID!) @sql_query(query: """
    INSERT INTO $join_table(favorites) (userId:User, productId:Product)
    VALUES ($args.userId, $args.productId)""")
}
'''


def test_omitted_return_types_across_odd_line_breaks(tmp_path: Path) -> None:
    text = ODD_LINE_BREAKS.replace(
        "unfavorite(userId: ID!, productId: ID!): Boolean!",
        "unfavorite(userId: ID!, productId: ID!)",
    )
    model = load_schema(write(tmp_path, text))
    assert [m.name for m in model.insert_mutations] == ["addFavorite", "again"]
    assert [m.name for m in model.delete_mutations] == ["clear", "unfavorite"]
    assert model.join_tables == (
        JoinTable("favorites", (JoinColumn("userId", "User"), JoinColumn("productId", "Product"))),
    )


def test_a_delete_with_an_explicit_return_type_is_reported_on_its_line(tmp_path: Path) -> None:
    with pytest.raises(SchemaError) as caught:
        load_schema(write(tmp_path, ODD_LINE_BREAKS))
    (problem,) = caught.value.problems
    assert (problem.rule, problem.field, problem.line, problem.column) == (
        "mutation-return-type",
        "Mutation.unfavorite",
        21,
        44,
    )


def test_schema_without_query_or_mutation_is_only_entities(tmp_path: Path) -> None:
    model = load_schema(write(tmp_path, "type Note {\n  id: ID!\n  text: String\n}\n"))
    assert [e.name for e in model.entities] == ["Note"]
    assert (model.query_tasks, model.insert_mutations, model.delete_mutations) == ((), (), ())


def test_a_schema_declaring_every_scalar_and_directive_itself_loads(tmp_path: Path) -> None:
    declarations = "\n".join(
        [f"scalar {name}" for name in AWS_SCALARS]
        + [
            "directive @sql_query(query: String!) on FIELD_DEFINITION",
            "directive @task_response on OBJECT",
            "directive @auth(rules: [AuthRule!]!) on OBJECT | FIELD_DEFINITION",
        ]
    )
    with_query = 'type Query { n: Int @sql_query(query: "SELECT COUNT(*) FROM customer") }'
    for body in ("type Customer { id: ID! }", f"type Customer {{ id: ID! }}\n{with_query}"):
        (customer,) = load_schema(write(tmp_path, f"{declarations}\n{body}\n")).entities
        assert customer.name == "Customer"
