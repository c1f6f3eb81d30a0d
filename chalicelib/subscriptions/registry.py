"""Who listens to what: WebSocket connections and their subscriptions in the single table.

A connection item (``wsConnection#id``) holds who signed in on it; each subscription is
an item under the connection's partition, so a disconnect removes them all with one
query, and in GSI1 under its topic (``wsTopic#<t>#create``, ``wsTopic#task#<id>``), so an
event finds its subscribers without a scan. Every item expires (DynamoDB's TTL) a while
after API Gateway's two-hour limit on a connection, so a lost ``$disconnect`` leaves
nothing behind for good.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from chalicelib import keys
from chalicelib.auth.identity import Identity

# API Gateway closes a WebSocket connection after two hours at most.
CONNECTION_LIFETIME = timedelta(hours=3)
CONNECTION_ID, ACKNOWLEDGED, IDENTITY = "connectionId", "acknowledged", "identity"
SUBSCRIPTION_ID, TOPIC, REQUEST, ARGUMENTS = "subscriptionId", "topic", "request", "arguments"


@dataclass(frozen=True)
class Subscription:
    """One ``subscribe`` of one connection: the operation to run for each event of its
    topic, as its subscriber (``identity``)."""

    connection_id: str
    subscription_id: str
    topic: str
    request: Mapping[str, Any]  # query, variables, operationName
    arguments: Mapping[str, Any]  # the root field's coerced arguments: its filters
    identity: Identity


def _identity_text(identity: Identity) -> str:
    return json.dumps(
        {"sub": identity.sub, "username": identity.username, "groups": sorted(identity.groups)}
    )


def _identity_of(text: str) -> Identity:
    plain = json.loads(text)
    return Identity(plain["sub"], plain["username"], frozenset(plain["groups"]))


class SubscriptionRegistry:
    def __init__(
        self, client: Any, table_name: str, *, clock: Callable[[], datetime] = keys.utc_now
    ) -> None:
        self._client = client
        self._table = table_name
        self._clock = clock
        self._serializer = TypeSerializer()
        self._deserializer = TypeDeserializer()

    def connect(self, connection_id: str) -> None:
        self._put({**keys.ws_connection_item_keys(connection_id), ACKNOWLEDGED: False})

    def acknowledge(self, connection_id: str, identity: Identity) -> bool:
        """Record who signed in on the connection; False when it already was (a second
        ``connection_init``) or the connection is unknown."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._key(keys.ws_connection_item_keys(connection_id)),
                UpdateExpression="SET #a = :true, #i = :identity",
                ConditionExpression="#a = :false",
                ExpressionAttributeNames={"#a": ACKNOWLEDGED, "#i": IDENTITY},
                ExpressionAttributeValues=self._plain(
                    {":true": True, ":false": False, ":identity": _identity_text(identity)}
                ),
            )
        except ClientError as error:
            if _conditional(error):
                return False
            raise
        return True

    def identity(self, connection_id: str) -> Identity | None:
        """Who signed in on the connection; None before its ``connection_init``."""
        response = self._client.get_item(
            TableName=self._table,
            Key=self._key(keys.ws_connection_item_keys(connection_id)),
            ConsistentRead=True,
        )
        item = response.get("Item")
        if item is None or IDENTITY not in item:
            return None
        return _identity_of(item[IDENTITY]["S"])

    def subscribe(self, subscription: Subscription) -> bool:
        """Register it; False when the connection already has a subscription of that id."""
        item = {
            **keys.ws_subscription_item_keys(
                subscription.connection_id, subscription.subscription_id, subscription.topic
            ),
            CONNECTION_ID: subscription.connection_id,
            SUBSCRIPTION_ID: subscription.subscription_id,
            TOPIC: subscription.topic,
            REQUEST: json.dumps(subscription.request),
            ARGUMENTS: json.dumps(subscription.arguments),
            IDENTITY: _identity_text(subscription.identity),
        }
        try:
            self._put(item, condition="attribute_not_exists(#pk)")
        except ClientError as error:
            if _conditional(error):
                return False
            raise
        return True

    def unsubscribe(self, connection_id: str, subscription_id: str) -> bool:
        """Remove it; False when it was not there (already removed)."""
        key = keys.ws_subscription_item_keys(connection_id, subscription_id, "")
        response = self._client.delete_item(
            TableName=self._table,
            Key=self._key({k: key[k] for k in (keys.PK, keys.SK)}),
            ReturnValues="ALL_OLD",
        )
        return "Attributes" in response

    def subscribers(self, topic: str) -> Iterator[Subscription]:
        """Every subscription of ``topic``, page by page."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": keys.GSI1,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": keys.GSI1_PK},
            "ExpressionAttributeValues": self._plain({":pk": keys.ws_topic_partition(topic)}),
        }
        while True:
            response = self._client.query(**request)
            for item in response["Items"]:
                yield self._subscription(item)
            if "LastEvaluatedKey" not in response:
                return
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def disconnect(self, connection_id: str) -> None:
        """Remove the connection and every subscription it had."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": keys.PK},
            "ExpressionAttributeValues": self._plain(
                {":pk": keys.ws_connection_partition(connection_id)}
            ),
            "ProjectionExpression": f"{keys.PK}, {keys.SK}",
            "ConsistentRead": True,
        }
        while True:
            response = self._client.query(**request)
            for item in response["Items"]:
                self._client.delete_item(TableName=self._table, Key=item)
            if "LastEvaluatedKey" not in response:
                return
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _put(self, item: Mapping[str, Any], condition: str | None = None) -> None:
        expires = int((self._clock() + CONNECTION_LIFETIME).timestamp())
        request: dict[str, Any] = {
            "TableName": self._table,
            "Item": self._plain({**item, keys.EXPIRES_AT: expires}),
        }
        if condition is not None:
            request["ConditionExpression"] = condition
            request["ExpressionAttributeNames"] = {"#pk": keys.PK}
        self._client.put_item(**request)

    def _subscription(self, item: Mapping[str, Any]) -> Subscription:
        plain = {name: self._deserializer.deserialize(value) for name, value in item.items()}
        return Subscription(
            connection_id=str(plain[CONNECTION_ID]),
            subscription_id=str(plain[SUBSCRIPTION_ID]),
            topic=str(plain[TOPIC]),
            request=json.loads(plain[REQUEST]),
            arguments=json.loads(plain[ARGUMENTS]),
            identity=_identity_of(plain[IDENTITY]),
        )

    def _key(self, key: Mapping[str, str]) -> dict[str, Any]:
        return self._plain(key)

    def _plain(self, values: Mapping[str, Any]) -> dict[str, Any]:
        return {name: self._serializer.serialize(value) for name, value in values.items()}


def _conditional(error: ClientError) -> bool:
    code: object = error.response.get("Error", {}).get("Code")
    return code == "ConditionalCheckFailedException"
