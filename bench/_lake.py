"""What the lake benchmarks share: the example schema's User, and its stream records.

The model is built from the dataclasses (as the shop's ``schema.graphql`` declares
User), so the benchmarks measure the lake alone, whatever the schema loader costs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chalicelib import keys
from chalicelib.schema.model import Entity, Field, SchemaModel, TypeKind, TypeRef


def _scalar(name: str, *, non_null: bool = False) -> TypeRef:
    return TypeRef(name, TypeKind.SCALAR, non_null=non_null)


USER = Entity(
    "User",
    (
        Field("id", _scalar("ID", non_null=True)),
        Field("name", _scalar("String", non_null=True)),
        Field("email", _scalar("String", non_null=True)),
        Field("age", _scalar("Int")),
        Field("vip", _scalar("Boolean")),
        Field("createdAt", _scalar("AWSDateTime", non_null=True)),
        Field("updatedAt", _scalar("AWSDateTime", non_null=True)),
    ),
)
MODEL = SchemaModel(
    source=Path("schema.graphql"),
    entities=(USER,),
    enums={},
    scalars=("AWSDateTime",),
    task_responses=(),
    query_tasks=(),
    insert_mutations=(),
    delete_mutations=(),
    join_tables=(),
)


def user_image(number: int, *, name: str = "Ada Lovelace") -> dict[str, Any]:
    """A User item as the stream delivers it (DynamoDB wire format)."""
    user_id = f"00000000-0000-4000-8000-{number:012d}"
    created_at = "2026-11-23T19:22:14.123Z"
    item_keys = keys.entity_item_keys(USER.key, user_id)
    list_keys = keys.entity_list_keys(USER.key, user_id, created_at)
    plain = {**item_keys, **list_keys, keys.ENTITY_TYPE: USER.key, "id": user_id}
    return {
        **{attribute: {"S": value} for attribute, value in plain.items()},
        "name": {"S": name},
        "email": {"S": f"user{number}@example.com"},
        "age": {"N": str(20 + number % 60)},
        "vip": {"BOOL": number % 2 == 0},
        "createdAt": {"S": created_at},
        "updatedAt": {"S": created_at},
    }


def insert_record(number: int) -> dict[str, Any]:
    """A Lambda stream record inserting user ``number``."""
    return stream_record(number, user_image(number))


def stream_record(number: int, image: dict[str, Any]) -> dict[str, Any]:
    """A Lambda stream record inserting ``image`` (DynamoDB wire format)."""
    return {
        "eventID": f"{number:032x}",
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/OCG-shop/stream/x",
        "dynamodb": {
            "ApproximateCreationDateTime": 1795461734.0,
            "Keys": {keys.PK: image[keys.PK], keys.SK: image[keys.SK]},
            "NewImage": image,
            "SequenceNumber": f"{4421584500000000000000000000 + number}",
            "SizeBytes": 300,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    }
