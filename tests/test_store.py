"""EntityStore against moto's DynamoDB (and a stubbed client where moto's limits differ)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber
from moto import mock_aws

from chalicelib.schema.model import Entity, Field, TypeKind, TypeRef
from chalicelib.store import (
    EntityNotFound,
    EntityStore,
    InvalidNextToken,
    InvalidValue,
    ItemTooLarge,
    StoreError,
)
from chalicelib.table import TTL_ATTRIBUTE, table_definition

TABLE = "OCG-test"
SECRET = b"test-secret"
START = datetime(2026, 11, 23, 19, 22, 14, 123000, tzinfo=UTC)
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
LIMIT = 400 * 1024


def scalar(name: str, *, non_null: bool = False) -> TypeRef:
    return TypeRef(name, TypeKind.SCALAR, non_null=non_null)


def list_of(name: str, *, item_non_null: bool = False) -> TypeRef:
    return TypeRef(name, TypeKind.SCALAR, is_list=True, item_non_null=item_non_null)


MANAGED = (
    Field("id", scalar("ID", non_null=True)),
    Field("createdAt", scalar("AWSDateTime", non_null=True)),
    Field("updatedAt", scalar("AWSDateTime", non_null=True)),
)
USER = Entity(
    "User",
    (
        *MANAGED,
        Field("name", scalar("String", non_null=True)),
        Field("age", scalar("Int")),
        Field("score", scalar("Float")),
        Field("vip", scalar("Boolean")),
        Field("tags", list_of("String", item_non_null=True)),
        Field("role", TypeRef("Role", TypeKind.ENUM)),
        Field("lastLogin", scalar("AWSDateTime")),
    ),
)
PRODUCT = Entity(
    "Product",
    (
        *MANAGED,
        Field("name", scalar("String", non_null=True)),
        Field("price", scalar("Float", non_null=True)),
        Field("ratings", list_of("Int")),
    ),
)
BLOB = Entity(
    "Blob",
    (
        *MANAGED,
        Field("name", scalar("String", non_null=True)),
        Field("tags", list_of("String")),
        Field("counts", list_of("Int")),
        Field("ratio", scalar("Float")),
        Field("flag", scalar("Boolean")),
    ),
)

FULL_USER: dict[str, Any] = {
    "name": "Ada",
    "age": 36,
    "score": 0.1,
    "vip": True,
    "tags": ["math", "engines"],
    "role": "ADMIN",
    "lastLogin": "2026-11-01T08:00:00.000Z",
}


class TickingClock:
    """One second later on every call, so creation order is the order lists show."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> datetime:
        self.calls += 1
        return START + timedelta(seconds=self.calls - 1)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def client(aws_env: None) -> Iterator[Any]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb")
        dynamodb.create_table(**table_definition(TABLE))
        yield dynamodb


@pytest.fixture
def store(client: Any) -> EntityStore:
    return EntityStore(client, TABLE, SECRET, clock=TickingClock())


def raw_item(client: Any, entity: Entity, entity_id: str) -> dict[str, Any]:
    key = {"S": f"{entity.key}#{entity_id}"}
    item: dict[str, Any] = client.get_item(TableName=TABLE, Key={"PK": key, "SK": key})["Item"]
    return item


def item_count(client: Any) -> int:
    count: int = client.scan(TableName=TABLE, Select="COUNT")["Count"]
    return count


# --- table -------------------------------------------------------------------------


def test_table_definition_gives_keys_indexes_stream_and_billing(client: Any) -> None:
    table = client.describe_table(TableName=TABLE)["Table"]
    assert table["KeySchema"] == [
        {"AttributeName": "PK", "KeyType": "HASH"},
        {"AttributeName": "SK", "KeyType": "RANGE"},
    ]
    indexes = {gsi["IndexName"]: gsi for gsi in table["GlobalSecondaryIndexes"]}
    assert set(indexes) == {"GSI1", "GSI2"}
    for name in ("GSI1", "GSI2"):
        assert indexes[name]["KeySchema"] == [
            {"AttributeName": f"{name}-PK", "KeyType": "HASH"},
            {"AttributeName": f"{name}-SK", "KeyType": "RANGE"},
        ]
        assert indexes[name]["Projection"] == {"ProjectionType": "ALL"}
    assert table["StreamSpecification"] == {
        "StreamEnabled": True,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert TTL_ATTRIBUTE == "expiresAt"


# --- create / read -----------------------------------------------------------------


def test_create_then_read_round_trips_every_field_type(store: EntityStore) -> None:
    created = store.create(USER, FULL_USER)

    assert uuid.UUID(created["id"]).version == 4
    assert str(uuid.UUID(created["id"])) == created["id"]
    assert TIMESTAMP.match(created["createdAt"])
    assert created["createdAt"] == created["updatedAt"] == "2026-11-23T19:22:14.123Z"
    assert created == {
        **FULL_USER,
        "id": created["id"],
        "createdAt": created["createdAt"],
        "updatedAt": created["updatedAt"],
    }
    read = store.read(USER, created["id"])
    assert read == created
    assert read is not None
    assert type(read["age"]) is int
    assert type(read["score"]) is float
    assert read["score"] == 0.1


def test_create_writes_the_documented_keys(client: Any, store: EntityStore) -> None:
    created = store.create(USER, {"name": "Ada", "vip": None, "score": 0.1})
    entity_id, created_at = created["id"], created["createdAt"]

    item = raw_item(client, USER, entity_id)
    assert item["PK"] == item["SK"] == {"S": f"user#{entity_id}"}
    assert item["GSI2-PK"] == {"S": "user"}
    assert item["GSI2-SK"] == {"S": f"{created_at}#{entity_id}"}
    assert item["entityType"] == {"S": "user"}
    assert item["id"] == {"S": entity_id}
    assert item["score"] == {"N": "0.1"}
    assert "vip" not in item  # null is an absent attribute, not a NULL value
    assert "GSI1-PK" not in item
    assert not {"PK", "SK", "GSI2-PK", "GSI2-SK", "entityType"} & set(created)


def test_numbers_come_back_typed_by_field(store: EntityStore) -> None:
    created = store.create(PRODUCT, {"name": "Pen", "price": 3, "ratings": [5, None, 3]})
    read = store.read(PRODUCT, created["id"])

    assert read is not None
    assert read["price"] == 3.0
    assert type(read["price"]) is float
    assert read["ratings"] == [5, None, 3]
    assert [type(r) for r in read["ratings"]] == [int, type(None), int]


def test_read_of_unknown_id_is_none(store: EntityStore) -> None:
    assert store.read(USER, str(uuid.uuid4())) is None


def test_create_never_overwrites_an_existing_id(client: Any) -> None:
    fixed_id = "00000000-0000-4000-8000-000000000001"
    store = EntityStore(client, TABLE, SECRET, new_id=lambda: fixed_id)
    store.create(USER, {"name": "first"})

    with pytest.raises(ClientError, match="ConditionalCheckFailed"):
        store.create(USER, {"name": "second"})
    read = store.read(USER, fixed_id)
    assert read is not None
    assert read["name"] == "first"


def test_create_without_a_non_null_field_writes_nothing(client: Any, store: EntityStore) -> None:
    with pytest.raises(InvalidValue, match=r"^User\.name is non-null and must be given$"):
        store.create(USER, {"age": 3})
    assert item_count(client) == 0


# --- validation ----------------------------------------------------------------------


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_floats_are_refused(client: Any, store: EntityStore, bad: float) -> None:
    with pytest.raises(InvalidValue, match=rf"^Product\.price must be a finite number, got {bad}$"):
        store.create(PRODUCT, {"name": "Pen", "price": bad})
    assert item_count(client) == 0

    product = store.create(PRODUCT, {"name": "Pen", "price": 1.5})
    with pytest.raises(InvalidValue, match=r"Product\.price must be a finite number"):
        store.update(PRODUCT, product["id"], {"price": bad})
    assert store.read(PRODUCT, product["id"]) == product


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"name": "A", "nmae": "B"}, r"^User has no field 'nmae'$"),
        ({"name": "A", "id": "mine"}, r"^User\.id is managed by the API and cannot be set$"),
        ({"name": "A", "createdAt": "x"}, r"^User\.createdAt is managed"),
        ({"name": 5}, r"^User\.name must be a string \(String\), got int 5$"),
        ({"name": "A", "age": "12"}, r"^User\.age must be an integer \(Int\), got str '12'$"),
        ({"name": "A", "age": True}, r"^User\.age must be an integer"),
        ({"name": "A", "age": 1.5}, r"^User\.age must be an integer"),
        ({"name": "A", "score": "1.5"}, r"^User\.score must be a number \(Float\)"),
        ({"name": "A", "vip": 1}, r"^User\.vip must be true or false \(Boolean\)"),
        ({"name": "A", "role": 2}, r"^User\.role must be a string \(Role\)"),
        ({"name": "A", "tags": "math"}, r"^User\.tags must be a list \(\[String!\]\), got str"),
        ({"name": "A", "tags": ["a", None]}, r"^User\.tags\[1\] is non-null and cannot be null$"),
        ({"name": "A", "tags": ["a", 2]}, r"^User\.tags\[1\] must be a string"),
        ({"name": "A", "score": 1e200}, r"^User\.score = 1e\+200 is outside DynamoDB's number"),
        ({"name": "A", "age": 10**40}, r"^User\.age must fit in 64 bits, got 1000"),
        ({"name": "A", "age": 2**63}, r"^User\.age must fit in 64 bits, got 9223372036854775808$"),
        ({"name": "A", "age": -(2**63) - 1}, r"^User\.age must fit in 64 bits"),
        ({"name": "A", "score": 1e-131}, r"^User\.score = 1e-131 is outside DynamoDB's number"),
        ({"name": "A", "score": -5e126}, r"^User\.score = -5e\+126 is outside DynamoDB's number"),
        ({"name": "A\ud800"}, r"^User\.name is not valid Unicode text"),
    ],
)
def test_invalid_values_are_refused_before_writing(
    client: Any, store: EntityStore, values: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidValue, match=message):
        store.create(USER, values)
    assert item_count(client) == 0


def test_store_errors_share_a_base_class() -> None:
    for error in (InvalidValue, ItemTooLarge, EntityNotFound, InvalidNextToken):
        assert issubclass(error, StoreError)


# --- update --------------------------------------------------------------------------


def test_update_sets_and_removes_only_the_given_fields(client: Any, store: EntityStore) -> None:
    created = store.create(USER, FULL_USER)

    updated = store.update(USER, created["id"], {"age": 37, "vip": None, "tags": []})

    expected = {**created, "age": 37, "tags": [], "updatedAt": "2026-11-23T19:22:15.123Z"}
    del expected["vip"]
    assert updated == expected
    assert updated["createdAt"] == created["createdAt"]
    assert TIMESTAMP.match(updated["updatedAt"])
    assert store.read(USER, created["id"]) == updated
    item = raw_item(client, USER, created["id"])
    assert "vip" not in item
    assert item["GSI2-SK"] == {"S": f"{created['createdAt']}#{created['id']}"}


def test_update_with_no_fields_only_bumps_updated_at(store: EntityStore) -> None:
    created = store.create(USER, {"name": "Ada"})
    updated = store.update(USER, created["id"], {})
    assert updated == {**created, "updatedAt": "2026-11-23T19:22:15.123Z"}


def test_update_of_unknown_id_raises_and_creates_nothing(client: Any, store: EntityStore) -> None:
    missing = str(uuid.uuid4())
    with pytest.raises(EntityNotFound, match=rf"^User with id '{missing}' does not exist$"):
        store.update(USER, missing, {"name": "Ghost"})
    assert item_count(client) == 0


def test_update_to_null_of_a_non_null_field_writes_nothing(store: EntityStore) -> None:
    created = store.create(USER, FULL_USER)
    with pytest.raises(InvalidValue, match=r"^User\.name is non-null and cannot be set to null$"):
        store.update(USER, created["id"], {"age": 50, "name": None})
    assert store.read(USER, created["id"]) == created


# --- item size -----------------------------------------------------------------------

FIXED_ID = "00000000-0000-4000-8000-000000000000"
FIXED_NOW = "2026-11-23T19:22:14.123Z"


def blob_overhead() -> int:
    """Bytes of a Blob with an empty name: attribute names plus string values."""
    strings = {
        "PK": f"blob#{FIXED_ID}",
        "SK": f"blob#{FIXED_ID}",
        "GSI2-PK": "blob",
        "GSI2-SK": f"{FIXED_NOW}#{FIXED_ID}",
        "entityType": "blob",
        "id": FIXED_ID,
        "createdAt": FIXED_NOW,
        "updatedAt": FIXED_NOW,
        "name": "",
    }
    return sum(len(name) + len(value) for name, value in strings.items())


@pytest.fixture
def stubbed(aws_env: None) -> Iterator[tuple[EntityStore, Stubber]]:
    """A client that never leaves the process: proves whether PutItem was sent at all."""
    dynamodb = boto3.client("dynamodb")
    store = EntityStore(dynamodb, TABLE, SECRET, clock=lambda: START, new_id=lambda: FIXED_ID)
    with Stubber(dynamodb) as stubber:
        yield store, stubber


@pytest.mark.parametrize(
    ("extra", "documented_size"),
    [
        ({}, 0),
        ({"tags": ["", "ab"]}, len("tags") + 3 + (1 + 0) + (1 + 2)),
        ({"counts": [100, 12345, 0, None]}, len("counts") + 3 + (1 + 2) + (1 + 4) + 2 + 2),
        ({"ratio": 0.125}, len("ratio") + 3),
        ({"flag": True}, len("flag") + 1),
    ],
)
def test_item_size_follows_dynamodb_rules_to_the_byte(
    stubbed: tuple[EntityStore, Stubber], extra: dict[str, Any], documented_size: int
) -> None:
    store, stubber = stubbed
    name_length = LIMIT - blob_overhead() - documented_size

    stubber.add_response("put_item", {})
    store.create(BLOB, {"name": "x" * name_length, **extra})
    stubber.assert_no_pending_responses()

    with pytest.raises(ItemTooLarge, match=r"^item for Blob would be 409,601 bytes; "):
        store.create(BLOB, {"name": "x" * (name_length + 1), **extra})


def test_item_size_counts_utf8_bytes(stubbed: tuple[EntityStore, Stubber]) -> None:
    store, _ = stubbed
    characters = (LIMIT - blob_overhead()) // 2 + 1
    with pytest.raises(ItemTooLarge, match=r"DynamoDB's limit is 400 KB$"):
        store.create(BLOB, {"name": "é" * characters})


def test_dynamodb_size_verdict_is_item_too_large(stubbed: tuple[EntityStore, Stubber]) -> None:
    store, stubber = stubbed
    stubber.add_client_error(
        "put_item",
        service_error_code="ValidationException",
        service_message="Item size has exceeded the maximum allowed size",
        http_status_code=400,
    )
    with pytest.raises(ItemTooLarge, match=r"^item for Blob would exceed DynamoDB's limit"):
        store.create(BLOB, {"name": "x"})


def test_item_under_the_limit_is_stored(store: EntityStore) -> None:
    # moto refuses items above 405,000 bytes (not 409,600); stay under both.
    created = store.create(BLOB, {"name": "x" * (400_000 - blob_overhead())})
    assert store.read(BLOB, created["id"]) == created


def test_item_over_the_limit_writes_nothing(client: Any, store: EntityStore) -> None:
    size = LIMIT + blob_overhead()
    with pytest.raises(ItemTooLarge, match=rf"^item for Blob would be {size:,} bytes; "):
        store.create(BLOB, {"name": "x" * LIMIT})
    assert item_count(client) == 0


def test_update_that_grows_the_item_too_large_changes_nothing(store: EntityStore) -> None:
    created = store.create(BLOB, {"name": "x" * 300_000, "tags": ["small"]})

    with pytest.raises(ItemTooLarge, match=r"^item for Blob would exceed DynamoDB's limit"):
        store.update(BLOB, created["id"], {"tags": ["y" * 150_000]})
    with pytest.raises(ItemTooLarge, match=r"^item for Blob would be at least 409,\d{3} bytes"):
        store.update(BLOB, created["id"], {"tags": ["y" * LIMIT]})
    assert store.read(BLOB, created["id"]) == created


# --- delete --------------------------------------------------------------------------


def test_delete_reports_whether_the_item_existed(store: EntityStore) -> None:
    created = store.create(USER, {"name": "Ada"})

    assert store.delete(USER, created["id"]) is True
    assert store.read(USER, created["id"]) is None
    assert store.delete(USER, created["id"]) is False


# --- list ----------------------------------------------------------------------------


def create_users(store: EntityStore, count: int) -> list[str]:
    return [store.create(USER, {"name": f"user {n}"})["id"] for n in range(count)]


def test_list_is_newest_first_by_default_and_oldest_first_ascending(store: EntityStore) -> None:
    ids = create_users(store, 3)
    store.create(PRODUCT, {"name": "Pen", "price": 1.0})

    newest_first, token = store.list(USER)
    assert [item["id"] for item in newest_first] == ids[::-1]
    assert token is None
    assert newest_first[0] == store.read(USER, ids[-1])

    oldest_first, _ = store.list(USER, order="ASC")
    assert [item["id"] for item in oldest_first] == ids


@pytest.mark.parametrize("order", ["DESC", "ASC"])
def test_paging_returns_every_item_once(store: EntityStore, order: Any) -> None:
    ids = create_users(store, 45)

    pages: list[list[str]] = []
    token: str | None = None
    while True:
        items, token = store.list(USER, limit=20, next_token=token, order=order)
        pages.append([item["id"] for item in items])
        if token is None:
            break

    assert [len(page) for page in pages] == [20, 20, 5]
    seen = [entity_id for page in pages for entity_id in page]
    assert seen == (ids[::-1] if order == "DESC" else ids)


def test_a_full_last_page_has_no_token(store: EntityStore) -> None:
    create_users(store, 40)
    first, token = store.list(USER, limit=20)
    assert token is not None
    second, token = store.list(USER, limit=20, next_token=token)
    assert (len(first), len(second), token) == (20, 20, None)


def test_limit_is_capped_at_100(store: EntityStore) -> None:
    create_users(store, 101)
    items, token = store.list(USER, limit=1000)
    assert len(items) == 100
    assert token is not None
    rest, token = store.list(USER, limit=1000, next_token=token)
    assert (len(rest), token) == (1, None)


@pytest.mark.parametrize("limit", [0, -1])
def test_limit_below_one_is_refused(store: EntityStore, limit: int) -> None:
    with pytest.raises(InvalidValue, match=rf"^limit must be at least 1, got {limit}$"):
        store.list(USER, limit=limit)


def test_unknown_order_is_refused(store: EntityStore) -> None:
    with pytest.raises(InvalidValue, match=r"^order must be ASC or DESC, got 'UP'$"):
        store.list(USER, order="UP")  # type: ignore[arg-type]


def test_a_token_works_in_a_fresh_store_with_the_same_secret(
    client: Any, store: EntityStore
) -> None:
    ids = create_users(store, 3)
    _, token = store.list(USER, limit=2)
    items, _ = EntityStore(client, TABLE, SECRET).list(USER, limit=2, next_token=token)
    assert [item["id"] for item in items] == [ids[0]]


def stubbed_user(n: int) -> dict[str, Any]:
    entity_id = f"00000000-0000-4000-8000-{n:012d}"
    created_at = f"2026-11-23T19:22:{n:02d}.000Z"
    return {
        "PK": {"S": f"user#{entity_id}"},
        "SK": {"S": f"user#{entity_id}"},
        "GSI2-PK": {"S": "user"},
        "GSI2-SK": {"S": f"{created_at}#{entity_id}"},
        "entityType": {"S": "user"},
        "id": {"S": entity_id},
        "createdAt": {"S": created_at},
        "updatedAt": {"S": created_at},
        "name": {"S": f"user {n}"},
    }


def list_key(item: dict[str, Any]) -> dict[str, Any]:
    return {name: item[name] for name in ("PK", "SK", "GSI2-PK", "GSI2-SK")}


def test_paging_follows_real_dynamodb_last_evaluated_keys(
    stubbed: tuple[EntityStore, Stubber],
) -> None:
    """Unlike moto, DynamoDB returns a LastEvaluatedKey whenever Limit was reached, and
    ends a page early at 1 MB: the token must come from the item, not blindly from it."""
    store, stubber = stubbed
    users = [stubbed_user(n) for n in range(5)]
    query = {
        "TableName": TABLE,
        "IndexName": "GSI2",
        "KeyConditionExpression": ANY,
        "ExpressionAttributeNames": ANY,
        "ExpressionAttributeValues": ANY,
        "ScanIndexForward": False,
        "Limit": 3,
    }
    stubber.add_response(
        "query", {"Items": users[0:3], "LastEvaluatedKey": list_key(users[2])}, query
    )
    stubber.add_response(  # cut short by the 1 MB page size
        "query",
        {"Items": users[2:3], "LastEvaluatedKey": list_key(users[2])},
        {**query, "ExclusiveStartKey": list_key(users[1])},
    )
    stubber.add_response(
        "query", {"Items": users[3:5]}, {**query, "ExclusiveStartKey": list_key(users[2])}
    )

    names: list[list[str]] = []
    token: str | None = None
    for _ in range(3):
        items, token = store.list(USER, limit=2, next_token=token)
        names.append([item["name"] for item in items])
    assert names == [["user 0", "user 1"], ["user 2"], ["user 3", "user 4"]]
    assert token is None
    stubber.assert_no_pending_responses()


def flip_byte(token: str, index: int) -> str:
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[index] ^= 0x01
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


def test_forged_tokens_are_refused(client: Any, store: EntityStore) -> None:
    create_users(store, 3)
    store.create(PRODUCT, {"name": "Pen", "price": 1.0})
    store.create(PRODUCT, {"name": "Ink", "price": 2.0})
    _, token = store.list(USER, limit=1)
    _, product_token = store.list(PRODUCT, limit=1)
    _, other_secret_token = EntityStore(client, TABLE, b"another secret").list(USER, limit=1)
    assert token is not None
    assert product_token is not None
    assert other_secret_token is not None
    assert len(store.list(USER, limit=1, next_token=token)[0]) == 1  # the genuine one works

    altered = [flip_byte(token, 3), flip_byte(token, 40), flip_byte(token, -1)]
    for forged in [*altered, product_token, other_secret_token]:
        with pytest.raises(InvalidNextToken, match=r"not valid for the list of User in DESC"):
            store.list(USER, limit=1, next_token=forged)
    with pytest.raises(InvalidNextToken, match=r"not valid for the list of User in ASC"):
        store.list(USER, limit=1, next_token=token, order="ASC")

    last = "A" if token[-1] != "A" else "B"
    for forged in [token[:-1] + last, token + "A", token[:-5], token.upper()]:
        with pytest.raises(InvalidNextToken):
            store.list(USER, limit=1, next_token=forged)
    for garbage in ["not a token", "", "é", "QUJD", token + "="]:
        with pytest.raises(InvalidNextToken, match=r"^nextToken is malformed"):
            store.list(USER, limit=1, next_token=garbage)


def signed_token(entity_key: str, order: str, position: object) -> str:
    """A token signed with the store's own secret: what a leaked secret would allow."""
    payload = json.dumps(position, sort_keys=True, separators=(",", ":")).encode()
    mac = hmac.new(SECRET, f"{entity_key}\n{order}\n".encode() + payload, hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest() + payload).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "position",
    [
        ["not", "a", "key"],
        {"PK": "user#1", "SK": "user#1", "GSI2-PK": "user"},
        {"PK": "task#1", "SK": "task#1", "GSI2-PK": "user", "GSI2-SK": "2026#1"},
        {"PK": "product#1", "SK": "product#1", "GSI2-PK": "product", "GSI2-SK": "2026#1"},
        {"PK": "user#1", "SK": "user#1", "GSI2-PK": "user", "GSI2-SK": 5},
    ],
)
def test_a_validly_signed_token_must_still_point_into_the_list(
    store: EntityStore, position: object
) -> None:
    with pytest.raises(InvalidNextToken, match=r"^nextToken does not point into the list of User"):
        store.list(USER, next_token=signed_token("user", "DESC", position))


def test_a_validly_signed_list_position_is_accepted(store: EntityStore) -> None:
    ids = create_users(store, 3)
    _, token = store.list(USER, limit=1)
    assert token is not None
    first = store.read(USER, ids[-1])
    assert first is not None
    position = {
        "PK": f"user#{ids[-1]}",
        "SK": f"user#{ids[-1]}",
        "GSI2-PK": "user",
        "GSI2-SK": f"{first['createdAt']}#{ids[-1]}",
    }

    assert signed_token("user", "DESC", position) == token


@pytest.mark.parametrize("edge", [2**63 - 1, -(2**63)])
def test_integers_at_the_64_bit_edges_are_kept(store: EntityStore, edge: int) -> None:
    assert store.create(USER, {"name": "A", "age": edge})["age"] == edge
