"""DynamoDB's wire format for the relation modules: boto3's serializers, once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

serialize = TypeSerializer().serialize
deserialize = TypeDeserializer().deserialize


def wire(values: Mapping[str, str]) -> dict[str, Any]:
    return {name: serialize(value) for name, value in values.items()}
