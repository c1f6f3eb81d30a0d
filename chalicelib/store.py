"""Entity items of the single table: the CRUD and list operations of DESIGN §2 and §3.

Every write is validated against the entity's field types before anything is sent, so
a bad input writes nothing and the error names the field. Numbers go through
``Decimal`` built from ``repr`` so that the value a client sent is the value stored.
List pages are served by GSI2; their ``nextToken`` is signed, because it is handed to
API users and fed back into ``ExclusiveStartKey``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import reprlib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, DecimalException
from typing import Any, Literal

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from chalicelib import keys
from chalicelib.lake.columns import ColumnType, column_type
from chalicelib.messages import shown
from chalicelib.schema.model import (
    CREATED_AT_FIELD,
    ID_FIELD,
    INTEGER_RANGE,
    MANAGED_FIELDS,
    UPDATED_AT_FIELD,
    Entity,
    TypeRef,
)
from chalicelib.schema.naming import DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT

Order = Literal["ASC", "DESC"]
# One value in DynamoDB's wire format, e.g. ``{"S": "abc"}``, as the low-level client speaks.
AttributeValue = dict[str, Any]

# DynamoDB's documented limit: 400 KB, counted in binary kilobytes.
ITEM_SIZE_LIMIT = 400 * 1024

# The magnitudes DynamoDB numbers can have: from 1E-130 to below 1E+126.
_SMALLEST_NUMBER = 1e-130
_NUMBER_BOUND = 1e126
_TOKEN_MAC_SIZE = hashlib.sha256().digest_size


class StoreError(Exception):
    """A request the store refuses; the message is written for the API user."""


class InvalidValue(StoreError):
    """An input value (or list argument) that the entity's schema does not allow."""


class ItemTooLarge(StoreError):
    """The item would not fit in DynamoDB's 400 KB item limit."""


class EntityNotFound(StoreError):
    """An update named an id that does not exist: updates never create items."""


class InvalidNextToken(StoreError):
    """A ``nextToken`` that this store did not issue for this list and order."""


def _uuid4() -> str:
    return str(uuid.uuid4())


class EntityStore:
    """CRUD over entity items, speaking plain Python values in the GraphQL shape.

    The client is injected so that the same code runs against AWS and against moto;
    ``clock`` and ``new_id`` are injectable so tests can control ordering and ids.
    ``clock`` must return timezone-aware datetimes.
    """

    def __init__(
        self,
        client: Any,
        table_name: str,
        token_secret: bytes,
        *,
        clock: Callable[[], datetime] | None = None,
        new_id: Callable[[], str] | None = None,
    ) -> None:
        self._client = client
        self._table_name = table_name
        self._token_secret = token_secret
        self._clock = clock or keys.utc_now
        self._new_id = new_id or _uuid4
        self._serializer = TypeSerializer()
        self._deserializer = TypeDeserializer()

    def read(
        self, entity: Entity, entity_id: str, *, owner: str | None = None
    ) -> dict[str, Any] | None:
        """The item, or None; read consistently so a read right after a write sees it.

        With ``owner``, an item someone else owns is None too: a caller who may read only
        their own items cannot tell it from a missing one.
        """
        response = self._client.get_item(
            TableName=self._table_name,
            Key=self._item_key(entity, entity_id),
            ConsistentRead=True,
        )
        item = response.get("Item")
        if item is None or not _owned_by(entity, item, owner):
            return None
        return self.api_item(entity, item)

    def create(self, entity: Entity, values: Mapping[str, Any]) -> dict[str, Any]:
        """Store a new item; null for a nullable field is stored as an absent attribute."""
        missing = [f.name for f in entity.input_fields if f.type.non_null and f.name not in values]
        if missing:
            raise InvalidValue(f"{entity.name}.{missing[0]} is non-null and must be given")
        fields = _non_null(self._validate(entity, values))
        entity_id = self._new_id()
        now = self._now()
        owner = values.get(entity.owner_field) if entity.owner_field else None
        item = {
            **self._serialize_plain(
                {
                    **keys.entity_item_keys(entity.key, entity_id),
                    **keys.entity_list_keys(entity.key, entity_id, now),
                    **(keys.owner_list_keys(entity.key, owner, entity_id, now) if owner else {}),
                    keys.ENTITY_TYPE: entity.key,
                    ID_FIELD: entity_id,
                    CREATED_AT_FIELD: now,
                    UPDATED_AT_FIELD: now,
                }
            ),
            **fields,
        }
        size = _item_size(item)
        if size > ITEM_SIZE_LIMIT:
            raise ItemTooLarge(
                f"item for {entity.name} would be {size:,} bytes; DynamoDB's limit is 400 KB"
            )
        try:
            # A uuid4 collision is not expected; the condition makes sure it never overwrites.
            self._client.put_item(
                TableName=self._table_name,
                Item=item,
                ConditionExpression="attribute_not_exists(#pk)",
                ExpressionAttributeNames={"#pk": keys.PK},
            )
        except ClientError as error:
            _raise_if_item_too_large(entity, error)
            raise
        return self.api_item(entity, item)

    def update(
        self,
        entity: Entity,
        entity_id: str,
        values: Mapping[str, Any],
        *,
        owner: str | None = None,
    ) -> dict[str, Any]:
        """Change only the given fields; null removes a nullable field.

        With ``owner``, an item someone else owns is :class:`EntityNotFound` too, checked
        by DynamoDB with the write. A new owner moves the item to their list (GSI1).
        """
        changes = self._validate(entity, values)
        changes[UPDATED_AT_FIELD] = self._serializer.serialize(self._now())
        names = {"#pk": keys.PK}
        expression_values: dict[str, AttributeValue] = {}
        sets: list[str] = []
        removes: list[str] = []
        for index, (name, value) in enumerate(changes.items()):
            names[f"#n{index}"] = name
            if value is None:
                removes.append(f"#n{index}")
            else:
                expression_values[f":v{index}"] = value
                sets.append(f"#n{index} = :v{index}")
        condition = "attribute_exists(#pk)"
        if entity.owner_field is not None and entity.owner_field in changes:
            new_owner = values[entity.owner_field]
            names.update({"#o1": keys.GSI1_PK, "#o2": keys.GSI1_SK, "#ls": keys.GSI2_SK})
            if new_owner is None:
                removes += ["#o1", "#o2"]
            else:
                partition = keys.owner_list_partition(entity.key, new_owner)
                expression_values[":o1"] = self._serializer.serialize(partition)
                # Sorted as the type's list is: GSI2's sort key is createdAt#id.
                sets += ["#o1 = :o1", "#o2 = #ls"]
        if owner is not None:
            names["#owner"] = entity.owner_field or ""
            expression_values[":owner"] = self._serializer.serialize(owner)
            condition += " AND #owner = :owner"
        key = self._item_key(entity, entity_id)
        # Without reading the item only a lower bound is known; DynamoDB checks the rest.
        size = _item_size({**key, **_non_null(changes)})
        if size > ITEM_SIZE_LIMIT:
            raise ItemTooLarge(
                f"item for {entity.name} would be at least {size:,} bytes; "
                "DynamoDB's limit is 400 KB"
            )
        expression = "SET " + ", ".join(sets)
        if removes:
            expression += " REMOVE " + ", ".join(removes)
        try:
            response = self._client.update_item(
                TableName=self._table_name,
                Key=key,
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=expression_values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise EntityNotFound(
                    f"{entity.name} with id {shown(entity_id)} does not exist"
                ) from None
            _raise_if_item_too_large(entity, error)
            raise
        return self.api_item(entity, response["Attributes"])

    def delete(self, entity: Entity, entity_id: str, *, owner: str | None = None) -> bool:
        """True when an item was there: deleting twice is not an error. With ``owner``,
        an item someone else owns is not there either (DynamoDB checks it)."""
        request: dict[str, Any] = {
            "TableName": self._table_name,
            "Key": self._item_key(entity, entity_id),
            "ReturnValues": "ALL_OLD",
        }
        if owner is not None:
            request["ConditionExpression"] = "#owner = :owner"
            request["ExpressionAttributeNames"] = {"#owner": entity.owner_field or ""}
            request["ExpressionAttributeValues"] = {":owner": self._serializer.serialize(owner)}
        try:
            response = self._client.delete_item(**request)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return "Attributes" in response

    def list(
        self,
        entity: Entity,
        limit: int = DEFAULT_LIST_LIMIT,
        next_token: str | None = None,
        order: Order = "DESC",
        *,
        owner: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page by ``createdAt``, and the token of the next page when there is one.

        One item more than asked is read, so that a full last page comes without a
        token instead of leading the client to an empty page. With ``owner``, the page
        is of that owner's items only, read from their own partition of GSI1.
        """
        if order not in ("ASC", "DESC"):
            raise InvalidValue(f"order must be ASC or DESC, got {shown(order)}")
        if limit < 1:
            raise InvalidValue(f"limit must be at least 1, got {limit}")
        limit = min(limit, MAX_LIST_LIMIT)
        index = _ListIndex.of(entity, owner)
        query: dict[str, Any] = {
            "TableName": self._table_name,
            "IndexName": index.name,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": index.partition_attribute},
            "ExpressionAttributeValues": {":pk": self._serializer.serialize(index.partition)},
            "ScanIndexForward": order == "ASC",
            "Limit": limit + 1,
        }
        if next_token is not None:
            start = self._decode_token(entity, index, order, next_token)
            query["ExclusiveStartKey"] = self._serialize_plain(start)
        response = self._client.query(**query)
        items = response["Items"]
        if len(items) > limit:
            items = items[:limit]
            last_key = {name: items[-1][name] for name in index.key_attributes}
        else:
            # Fewer items than asked with a LastEvaluatedKey: DynamoDB's 1 MB page ended.
            last_key = response.get("LastEvaluatedKey")
        token = None if last_key is None else self._encode_token(index, order, last_key)
        return [self.api_item(entity, item) for item in items], token

    def _now(self) -> str:
        """ISO-8601 UTC with milliseconds: sorts as text, which GSI2's sort key relies on."""
        return keys.timestamp_text(self._clock())

    def _item_key(self, entity: Entity, entity_id: str) -> dict[str, AttributeValue]:
        return self._serialize_plain(keys.entity_item_keys(entity.key, entity_id))

    def _serialize_plain(self, values: Mapping[str, Any]) -> dict[str, AttributeValue]:
        return {name: self._serializer.serialize(value) for name, value in values.items()}

    def _validate(
        self, entity: Entity, values: Mapping[str, Any]
    ) -> dict[str, AttributeValue | None]:
        """Each given field serialised, None standing for null; raises on the first bad one."""
        checked: dict[str, AttributeValue | None] = {}
        for name, value in values.items():
            field = entity.field(name)
            if field is None:
                raise InvalidValue(f"{entity.name} has no field {name!r}")
            where = f"{entity.name}.{name}"
            if field.managed:
                raise InvalidValue(f"{where} is managed by the API and cannot be set")
            if value is None:
                if field.type.non_null:
                    raise InvalidValue(f"{where} is non-null and cannot be set to null")
                checked[name] = None
                continue
            storable = _storable(where, field.type, value)
            try:
                checked[name] = self._serializer.serialize(storable)
            except DecimalException:
                raise InvalidValue(
                    f"{where} = {reprlib.repr(value)} is outside DynamoDB's number range "
                    "(38 significant digits, magnitude from 1E-130 to below 1E+126)"
                ) from None
        return checked

    def api_item(self, entity: Entity, item: Mapping[str, AttributeValue]) -> dict[str, Any]:
        """The item as the API shows it: managed and declared fields only, GraphQL types."""
        shown = {
            name: self._deserializer.deserialize(item[name])
            for name in MANAGED_FIELDS
            if name in item
        }
        for field in entity.input_fields:
            if field.name in item:
                shown[field.name] = _from_stored(
                    field.type, self._deserializer.deserialize(item[field.name])
                )
        return shown

    def _token_mac(self, index: _ListIndex, order: Order, payload: bytes) -> bytes:
        """Signs the list's partition and order too, so a token only resumes its own list
        (one type's, or one owner's items of it)."""
        message = f"{index.partition}\n{order}\n".encode() + payload
        return hmac.new(self._token_secret, message, hashlib.sha256).digest()

    def _encode_token(
        self, index: _ListIndex, order: Order, last_key: Mapping[str, AttributeValue]
    ) -> str:
        plain = {name: self._deserializer.deserialize(value) for name, value in last_key.items()}
        payload = json.dumps(plain, sort_keys=True, separators=(",", ":")).encode()
        return _b64encode(self._token_mac(index, order, payload) + payload)

    def _decode_token(
        self, entity: Entity, index: _ListIndex, order: Order, token: str
    ) -> dict[str, str]:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except ValueError:
            raw = b""
        # Only the exact text this store issued is accepted: base64 alone tolerates
        # stray characters and unused bits, so compare against the canonical encoding.
        if len(raw) <= _TOKEN_MAC_SIZE or _b64encode(raw) != token:
            raise InvalidNextToken(
                "nextToken is malformed: pass back the nextToken of the previous page unchanged"
            )
        mac, payload = raw[:_TOKEN_MAC_SIZE], raw[_TOKEN_MAC_SIZE:]
        if not hmac.compare_digest(mac, self._token_mac(index, order, payload)):
            raise InvalidNextToken(
                f"nextToken is not valid for the list of {entity.name} in {order} order: "
                "it was altered, or it was issued for another type, order or caller"
            )
        start = json.loads(payload)
        if not index.is_position(entity, start):
            raise InvalidNextToken(f"nextToken does not point into the list of {entity.name}")
        return dict(start)


@dataclass(frozen=True)
class _ListIndex:
    """Where a list is read: the type's partition of GSI2, or one owner's of GSI1."""

    name: str
    partition_attribute: str
    sort_attribute: str
    partition: str

    @classmethod
    def of(cls, entity: Entity, owner: str | None) -> _ListIndex:
        if owner is None:
            return cls(keys.GSI2, keys.GSI2_PK, keys.GSI2_SK, entity.key)
        partition = keys.owner_list_partition(entity.key, owner)
        return cls(keys.GSI1, keys.GSI1_PK, keys.GSI1_SK, partition)

    @property
    def key_attributes(self) -> tuple[str, ...]:
        """The attributes of its LastEvaluatedKey: the table's keys plus the index's."""
        return (keys.PK, keys.SK, self.partition_attribute, self.sort_attribute)

    def is_position(self, entity: Entity, start: object) -> bool:
        """Whether a decoded token is a key of this list, whoever signed it."""
        if not isinstance(start, dict) or set(start) != set(self.key_attributes):
            return False
        if not all(isinstance(value, str) for value in start.values()):
            return False
        entity_id = str(start[self.sort_attribute]).rpartition("#")[2]
        item_key = keys.entity_key(entity.key, entity_id)
        return bool(
            start[self.partition_attribute] == self.partition
            and start[keys.PK] == start[keys.SK] == item_key
        )


def _owned_by(entity: Entity, item: Mapping[str, AttributeValue], owner: str | None) -> bool:
    """Whether a caller restricted to ``owner``'s items (None: not restricted) may see it."""
    if owner is None:
        return True
    return entity.owner_field is not None and item.get(entity.owner_field) == {"S": owner}


def _non_null(values: Mapping[str, AttributeValue | None]) -> dict[str, AttributeValue]:
    return {name: value for name, value in values.items() if value is not None}


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _raise_if_item_too_large(entity: Entity, error: ClientError) -> None:
    """DynamoDB measures the final item (an update adds to what is stored): map its verdict."""
    details = error.response.get("Error", {})
    message = str(details.get("Message", ""))
    if details.get("Code") == "ValidationException" and "item size" in message.lower():
        raise ItemTooLarge(
            f"item for {entity.name} would exceed DynamoDB's limit of 400 KB ({message})"
        ) from error


def _storable(where: str, type_ref: TypeRef, value: object) -> Any:
    """The value as TypeSerializer takes it, after checking it against the field's type.

    The GraphQL layer has already coerced inputs; this guards every other caller. What
    is accepted follows the lake's column type, so nothing stored can fail to reach it.
    """
    kind = column_type(type_ref)
    if not type_ref.is_list:
        return _storable_scalar(where, type_ref.name, kind, value)
    if not isinstance(value, list):
        raise InvalidValue(
            f"{where} must be a list ({type_ref.sdl()}), got {type(value).__name__} "
            f"{reprlib.repr(value)}"
        )
    items: list[Any] = []
    for index, item in enumerate(value):
        if item is None:
            if type_ref.item_non_null:
                raise InvalidValue(f"{where}[{index}] is non-null and cannot be null")
            items.append(None)
        else:
            items.append(_storable_scalar(f"{where}[{index}]", type_ref.name, kind, item))
    return items


def _storable_scalar(where: str, type_name: str, kind: ColumnType, value: object) -> Any:
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind is ColumnType.DOUBLE:
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidValue(f"{where} must be a finite number, got {value!r}")
        if isinstance(value, int | float) and is_number:
            if value != 0 and not _SMALLEST_NUMBER <= abs(value) < _NUMBER_BOUND:
                raise InvalidValue(
                    f"{where} = {value!r} is outside DynamoDB's number range "
                    "(magnitude from 1E-130 to below 1E+126)"
                )
            # repr is the shortest text that reads back as the same float.
            return Decimal(repr(value))
        expected = "a number"
    elif kind is ColumnType.BIGINT:
        if is_number and isinstance(value, int):
            if value not in INTEGER_RANGE:
                raise InvalidValue(f"{where} must fit in 64 bits, got {value}")
            return value
        expected = "an integer"
    elif kind is ColumnType.BOOLEAN:
        if isinstance(value, bool):
            return value
        expected = "true or false"
    else:
        # Strings, enums and the AWS string scalars; AWSDateTime is kept as its text.
        if isinstance(value, str):
            if not _is_encodable(value):
                raise InvalidValue(f"{where} is not valid Unicode text (a lone surrogate)")
            return value
        expected = "a string"
    raise InvalidValue(
        f"{where} must be {expected} ({type_name}), got {type(value).__name__} "
        f"{reprlib.repr(value)}"
    )


def _is_encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _from_stored(type_ref: TypeRef, value: Any) -> Any:
    kind = column_type(type_ref)
    if isinstance(value, list):
        return [_from_stored_scalar(kind, item) for item in value]
    return _from_stored_scalar(kind, value)


def _from_stored_scalar(kind: ColumnType, value: Any) -> Any:
    """DynamoDB returns every number as Decimal; GraphQL wants int or float by type."""
    if isinstance(value, Decimal):
        return float(value) if kind is ColumnType.DOUBLE else int(value)
    return value


def _item_size(item: Mapping[str, AttributeValue]) -> int:
    """The item's size by DynamoDB's documented rules: attribute names plus values."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: AttributeValue) -> int:
    ((kind, content),) = value.items()
    if kind == "S":
        return len(content.encode())
    if kind == "N":
        # About one byte per two significant digits, plus one.
        digits = "".join(map(str, Decimal(content).as_tuple().digits)).strip("0")
        return (len(digits) + 1) // 2 + 1
    if kind == "L":
        # Three bytes for the list, one more per element.
        return 3 + sum(1 + _value_size(element) for element in content)
    return 1  # BOOL and NULL
