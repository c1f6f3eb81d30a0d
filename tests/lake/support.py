"""The lake tests' schema model, captured events and readers of the lake's state.

The model is built from the dataclasses, not compiled from SDL, so these tests pin the
lake's behaviour independently of the schema loader. Nothing here imports moto or
pandas: a subprocess uses it to check what the stream path imports.
"""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from boto3.dynamodb.types import TypeSerializer

from chalicelib.schema.model import (
    Entity,
    Field,
    JoinColumn,
    JoinTable,
    SchemaModel,
    TypeKind,
    TypeRef,
)

EVENTS = Path(__file__).resolve().parent.parent / "events"
REGION = "us-east-1"
BUCKET = "ocg-shop-123456789012"
USER_ID = "3f1c2a9e-7b4d-4e58-9a61-0c2d8e5b7f14"
PRODUCT_ID = "b7e4d1c0-2a3f-4c59-8e6d-91f0a2b3c4d5"
RELATION_ID = "5c4e80d4fbf05578930bef369eb7d83b"
USER_KEY = f"tables/user/year=2026/month=11/day=23/{USER_ID}.parquet"
JOIN_ROW_KEY = f"tables/user_favorite_products/year=2026/month=12/day=31/{RELATION_ID}.parquet"


def scalar(name: str, *, non_null: bool = False) -> TypeRef:
    return TypeRef(name, TypeKind.SCALAR, non_null=non_null)


def scalar_list(name: str, *, item_non_null: bool = False) -> TypeRef:
    return TypeRef(name, TypeKind.SCALAR, is_list=True, item_non_null=item_non_null)


def managed(*fields: Field) -> tuple[Field, ...]:
    return (
        Field("id", scalar("ID", non_null=True)),
        *fields,
        Field("createdAt", scalar("AWSDateTime", non_null=True)),
        Field("updatedAt", scalar("AWSDateTime", non_null=True)),
    )


USER = Entity(
    "User",
    managed(
        Field("name", scalar("String", non_null=True)),
        Field("email", scalar("AWSEmail", non_null=True)),
        Field("age", scalar("Int")),
        Field("vip", scalar("Boolean")),
        Field("score", scalar("Float")),
        Field("role", TypeRef("Role", TypeKind.ENUM)),
        Field("tags", scalar_list("String", item_non_null=True)),
        Field("luckyNumbers", scalar_list("Int")),
        Field("birthday", scalar("AWSDate")),
        Field("wakeUpAt", scalar("AWSTime")),
        Field("lastSeenAt", scalar("AWSTimestamp")),
        Field("preferences", scalar("AWSJSON")),
        Field("website", scalar("AWSURL")),
        Field("phone", scalar("AWSPhone")),
        Field("lastIp", scalar("AWSIPAddress")),
        Field("logins", scalar_list("AWSDateTime", item_non_null=True)),
    ),
)
PRODUCT = Entity(
    "Product",
    managed(
        Field("name", scalar("String", non_null=True)),
        Field("brandId", scalar("ID", non_null=True)),
        Field("price", scalar("Float", non_null=True)),
        Field("tags", scalar_list("String", item_non_null=True)),
    ),
)
FAVORITES = JoinTable(
    "user_favorite_products",
    (JoinColumn("userId", "User"), JoinColumn("productId", "Product")),
)


def make_model(
    entities: tuple[Entity, ...] = (USER, PRODUCT),
    join_tables: tuple[JoinTable, ...] = (FAVORITES,),
) -> SchemaModel:
    return SchemaModel(
        source=Path("schema.graphql"),
        entities=entities,
        enums={"Role": ("ADMIN", "MEMBER")},
        scalars=("AWSDateTime",),
        task_responses=(),
        query_tasks=(),
        insert_mutations=(),
        delete_mutations=(),
        join_tables=join_tables,
    )


def load_event(name: str) -> dict[str, Any]:
    """A captured stream event from ``tests/events``, parsed afresh: free to modify."""
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))
    return event


def captured(name: str) -> dict[str, Any]:
    """The one record of a captured event."""
    record: dict[str, Any] = load_event(name)["Records"][0]
    return record


def batch(*records: dict[str, Any]) -> dict[str, Any]:
    """One event of these records, renumbered in order as a shard would number them."""
    copies = [copy.deepcopy(record) for record in records]
    for number, record in enumerate(copies, start=1):
        record["dynamodb"]["SequenceNumber"] = f"{5000000000000000000000 + number}"
    return {"Records": copies}


def received(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Every message body waiting in the queue."""
    bodies: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        if not messages:
            return bodies
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def files_under(root: Path) -> dict[str, bytes]:
    """Every file of a directory store by key: the lake's whole state, byte for byte."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def product_record(
    event_name: str, product_id: str, created_at: str, **fields: Any
) -> dict[str, Any]:
    """A stream record of a Product item, shaped like the captured events.

    INSERT and MODIFY carry the item as NewImage, REMOVE as OldImage.
    """
    serializer = TypeSerializer()
    key = f"product#{product_id}"
    item = {
        "PK": key,
        "SK": key,
        "entityType": "product",
        "id": product_id,
        "name": f"Product {product_id}",
        "brandId": "brand-1",
        "price": Decimal("9.99"),
        "createdAt": created_at,
        "updatedAt": created_at,
        **fields,
    }
    image = {name: serializer.serialize(value) for name, value in item.items()}
    template = captured("stream_insert_user")
    template["eventName"] = event_name
    template["dynamodb"] = {
        "ApproximateCreationDateTime": 1795461734.0,
        "Keys": {"PK": {"S": key}, "SK": {"S": key}},
        "OldImage" if event_name == "REMOVE" else "NewImage": image,
        "SequenceNumber": "1",
        "SizeBytes": 200,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    return template


def product_key(product_id: str, day: str = "2026/11/23") -> str:
    year, month, date = day.split("/")
    return f"tables/product/year={year}/month={month}/day={date}/{product_id}.parquet"
