"""CRUD and list through real GraphQL requests to the Chalice app, on emulated DynamoDB."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from tests.conftest import LoadedApp

USER_FIELDS = "id name email age vip createdAt updatedAt"
CREATE_USER = f"""
mutation ($input: CreateUserInput!) {{ createUser(input: $input) {{ {USER_FIELDS} }} }}
"""
READ_USER = f"query ($id: ID!) {{ readUser(id: $id) {{ {USER_FIELDS} }} }}"
UPDATE_USER = f"""
mutation ($id: ID!, $input: UpdateUserInput!) {{
  updateUser(id: $id, input: $input) {{ {USER_FIELDS} }}
}}
"""
DELETE_USER = "mutation ($id: ID!) { deleteUser(id: $id) { id deleted } }"
LIST_USER = """
query ($limit: Int, $nextToken: String, $order: SortOrder) {
  listUser(limit: $limit, nextToken: $nextToken, order: $order) { items { id name } nextToken }
}
"""
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def create_user(shop: LoadedApp, **values: Any) -> dict[str, Any]:
    given = {"name": "Ada", "email": "ada@example.com", **values}
    user: dict[str, Any] = shop.data(CREATE_USER, {"input": given})["createUser"]
    return user


def raw_items(shop: LoadedApp) -> list[dict[str, Any]]:
    client = shop.services.client("dynamodb")
    items: list[dict[str, Any]] = client.scan(TableName=shop.services.settings.table_name)["Items"]
    return items


def test_create_then_read_returns_the_stored_entity(shop: LoadedApp) -> None:
    created = create_user(shop, age=36, vip=True)

    assert uuid.UUID(created["id"]).version == 4
    assert TIMESTAMP.match(created["createdAt"])
    assert created["updatedAt"] == created["createdAt"]
    assert created | {"id": None, "createdAt": None, "updatedAt": None} == {
        "id": None,
        "name": "Ada",
        "email": "ada@example.com",
        "age": 36,
        "vip": True,
        "createdAt": None,
        "updatedAt": None,
    }
    assert shop.data(READ_USER, {"id": created["id"]})["readUser"] == created


def test_entities_use_the_single_table_key_formats(shop: LoadedApp) -> None:
    created = create_user(shop)

    (item,) = raw_items(shop)
    assert item["PK"] == {"S": f"user#{created['id']}"}
    assert item["SK"] == item["PK"]
    assert item["GSI2-PK"] == {"S": "user"}
    assert item["GSI2-SK"] == {"S": f"{created['createdAt']}#{created['id']}"}
    assert item["entityType"] == {"S": "user"}


def test_read_of_an_absent_id_is_null(shop: LoadedApp) -> None:
    assert shop.data(READ_USER, {"id": "nope"}) == {"readUser": None}


def test_update_is_partial_and_returns_the_whole_item(shop: LoadedApp) -> None:
    created = create_user(shop, age=36, vip=True)

    updated = shop.data(UPDATE_USER, {"id": created["id"], "input": {"age": 37, "vip": None}})[
        "updateUser"
    ]

    assert updated["name"] == "Ada"
    assert updated["age"] == 37
    assert updated["vip"] is None
    assert updated["createdAt"] == created["createdAt"]
    assert updated["updatedAt"] >= created["updatedAt"]
    assert shop.data(READ_USER, {"id": created["id"]})["readUser"] == updated


def test_update_of_an_unknown_id_is_an_error_and_creates_nothing(shop: LoadedApp) -> None:
    messages = shop.error_messages(UPDATE_USER, {"id": "missing", "input": {"age": 1}})

    assert messages == ["User with id 'missing' does not exist"]
    assert raw_items(shop) == []


def test_setting_a_non_null_field_to_null_is_an_error_and_writes_nothing(
    shop: LoadedApp,
) -> None:
    created = create_user(shop)

    messages = shop.error_messages(UPDATE_USER, {"id": created["id"], "input": {"name": None}})

    assert messages == ["User.name is non-null and cannot be set to null"]
    assert shop.data(READ_USER, {"id": created["id"]})["readUser"] == created


def test_create_without_a_non_null_field_is_refused_by_graphql(shop: LoadedApp) -> None:
    messages = shop.error_messages(CREATE_USER, {"input": {"name": "Ada"}})

    assert "email" in messages[0]
    assert raw_items(shop) == []


@pytest.mark.parametrize("price", ["Infinity", "NaN", "1e400"])
def test_non_finite_floats_are_refused(shop: LoadedApp, price: str) -> None:
    product = f'{{name: "x", brandId: "b", price: {price}}}'
    query = f"mutation {{ createProduct(input: {product}) {{ id }} }}"
    result = shop.graphql(query)

    assert result.get("errors")
    assert raw_items(shop) == []


def test_non_finite_float_in_variables_is_a_bad_request(shop: LoadedApp) -> None:
    body = (
        '{"query": "mutation ($p: Float!) { createProduct(input: {name: \\"x\\", '
        'brandId: \\"b\\", price: $p}) { id } }", "variables": {"p": Infinity}}'
    )
    response = shop.post(body)

    assert response.status_code == 400
    assert "Infinity is not a JSON value" in response.body.decode()
    assert raw_items(shop) == []


def test_an_item_over_400_kb_is_refused_and_nothing_is_written(shop: LoadedApp) -> None:
    messages = shop.error_messages(
        CREATE_USER, {"input": {"name": "x" * 420_000, "email": "big@example.com"}}
    )

    assert re.fullmatch(
        r"item for User would be [\d,]+ bytes; DynamoDB's limit is 400 KB", messages[0]
    )
    assert raw_items(shop) == []


def test_delete_reports_whether_the_item_existed(shop: LoadedApp) -> None:
    created = create_user(shop)

    first = shop.data(DELETE_USER, {"id": created["id"]})["deleteUser"]
    second = shop.data(DELETE_USER, {"id": created["id"]})["deleteUser"]

    assert first == {"id": created["id"], "deleted": True}
    assert second == {"id": created["id"], "deleted": False}
    assert shop.data(READ_USER, {"id": created["id"]})["readUser"] is None


def test_list_pages_newest_first_through_every_item_once(shop: LoadedApp) -> None:
    ids = [create_user(shop, name=f"user {n}")["id"] for n in range(25)]

    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = shop.data(LIST_USER, {"limit": 10, "nextToken": token})["listUser"]
        seen += [item["id"] for item in page["items"]]
        pages += 1
        token = page["nextToken"]
        if token is None:
            break

    assert pages == 3
    assert seen == list(reversed(ids))
    ascending = shop.data(LIST_USER, {"limit": 100, "order": "ASC"})["listUser"]
    assert [item["id"] for item in ascending["items"]] == ids


def test_list_uses_gsi2_and_leaves_other_types_out(shop: LoadedApp) -> None:
    create_user(shop)
    shop.data('mutation { createBrand(input: {name: "Acme"}) { id } }')

    page = shop.data(LIST_USER, {})["listUser"]

    assert [item["name"] for item in page["items"]] == ["Ada"]
    assert page["nextToken"] is None


def test_a_forged_next_token_is_an_error(shop: LoadedApp) -> None:
    for n in range(3):
        create_user(shop, name=f"user {n}")
    token = shop.data(LIST_USER, {"limit": 1})["listUser"]["nextToken"]
    forged = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]

    for bad in (forged, "not-a-token", ""):
        messages = shop.error_messages(LIST_USER, {"limit": 1, "nextToken": bad})
        assert messages[0].startswith("nextToken is"), messages
    other_list = "query ($t: String) { listBrand(nextToken: $t) { items { id } } }"
    assert shop.error_messages(other_list, {"t": token})[0].startswith("nextToken is not valid")


def test_list_limit_is_capped_and_must_be_positive(shop: LoadedApp) -> None:
    for n in range(3):
        create_user(shop, name=f"user {n}")

    assert len(shop.data(LIST_USER, {"limit": 1000})["listUser"]["items"]) == 3
    assert shop.error_messages(LIST_USER, {"limit": 0}) == ["limit must be at least 1, got 0"]


def test_aws_datetime_input_is_validated(load_app: Any) -> None:
    app = load_app(
        """
        type Event { id: ID! at: AWSDateTime! createdAt: AWSDateTime! updatedAt: AWSDateTime! }
        """
    )
    create = "mutation ($at: AWSDateTime!) { createEvent(input: {at: $at}) { at } }"

    assert app.data(create, {"at": "2026-11-23T20:00:00+01:00"}) == {
        "createEvent": {"at": "2026-11-23T19:00:00.000Z"}
    }
    assert (
        "AWSDateTime must be a valid date and time"
        in app.error_messages(create, {"at": "tomorrow"})[0]
    )


def test_an_explicit_null_limit_or_order_means_the_default(shop: LoadedApp) -> None:
    ids = [create_user(shop, name=f"user {n}")["id"] for n in range(25)]

    page = shop.data(LIST_USER, {"limit": None, "order": None})["listUser"]

    assert [item["id"] for item in page["items"]] == list(reversed(ids))[:20]


class BrokenStore:
    def read(self, entity: Any, entity_id: str, **conditions: Any) -> None:
        raise RuntimeError("secret internal detail")


def test_an_unexpected_failure_is_reported_without_its_details(
    shop: LoadedApp, caplog: pytest.LogCaptureFixture
) -> None:
    shop.services.store = BrokenStore()

    messages = shop.error_messages(READ_USER, {"id": "x"})

    assert messages == ["Internal server error; the request was not completed"]
    assert "secret internal detail" in caplog.text


def test_bad_input_is_not_logged_as_a_server_fault(
    shop: LoadedApp, caplog: pytest.LogCaptureFixture
) -> None:
    shop.error_messages(UPDATE_USER, {"id": "missing", "input": {"age": 1}})

    assert "does not exist" not in caplog.text
