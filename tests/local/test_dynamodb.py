"""The embedded DynamoDB at bounded cost (chalicelib.local.dynamodb).

The bounded implementation must answer exactly as moto does: the differential tests run
the same random writes and queries against a table in the embedded AWS's region and one
in a region where moto's own code answers, and compare every response.
"""

from __future__ import annotations

import gc
import itertools
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from chalice.app import Chalice, DynamoDBEvent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import StreamRecord, Table

from chalicelib.local import EmbeddedAWS, LocalEventRuntime
from chalicelib.local import dynamodb as bounded
from chalicelib.settings import Settings
from chalicelib.table import table_definition

REFERENCE_REGION = "eu-west-1"
_table_numbers = itertools.count()


# -- two worlds, one bounded and one moto's own ---------------------------------------


@dataclass
class World:
    dynamodb: Any
    streams: Any
    account: str
    region: str


@pytest.fixture
def worlds(aws: EmbeddedAWS, settings: Settings) -> Iterator[tuple[World, World]]:
    config = Config(account_id_endpoint_mode="disabled")

    def world(region: str) -> World:
        session = boto3.session.Session(region_name=region)
        return World(
            session.client("dynamodb", config=config),
            session.client("dynamodbstreams", config=config),
            settings.account_id,
            region,
        )

    with bounded.reference_region(settings.account_id, REFERENCE_REGION):
        yield world(settings.region), world(REFERENCE_REGION)


def n_keyed_definition(name: str) -> dict[str, Any]:
    """A table whose sort keys are numbers: ordered by value, not as text."""
    return {
        "TableName": name,
        "AttributeDefinitions": [
            {"AttributeName": "PK", "AttributeType": "S"},
            {"AttributeName": "SK", "AttributeType": "N"},
            {"AttributeName": "GSI1-PK", "AttributeType": "S"},
            {"AttributeName": "GSI1-SK", "AttributeType": "N"},
        ],
        "KeySchema": [
            {"AttributeName": "PK", "KeyType": "HASH"},
            {"AttributeName": "SK", "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": "GSI1",
                "KeySchema": [
                    {"AttributeName": "GSI1-PK", "KeyType": "HASH"},
                    {"AttributeName": "GSI1-SK", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        "BillingMode": "PAY_PER_REQUEST",
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    }


def answer(call: Callable[[], dict[str, Any]]) -> Any:
    """A response without its metadata, or the error as DynamoDB reports it."""
    try:
        response = call()
    except ClientError as error:
        return (
            "error",
            error.response["Error"].get("Code"),
            error.response["Error"].get("Message"),
            error.response.get("CancellationReasons"),
        )
    response.pop("ResponseMetadata", None)
    return response


def stream_records(world: World, table: str) -> list[dict[str, Any]]:
    """Every record of the table's stream, without what differs between any two runs."""
    arn = world.dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    shard = world.streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]
    iterator = world.streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records = world.streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]
    for record in records:
        record.pop("eventID")
        # moto counts the time's text in the size: its length varies too.
        record["dynamodb"].pop("ApproximateCreationDateTime")
        record["dynamodb"].pop("SizeBytes")
    return list(records)


# -- random operations ----------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """What one kind of table holds: its definition and how its key values are drawn."""

    definition: Callable[[str], dict[str, Any]]
    sort_type: str
    sort_values: st.SearchStrategy[str]
    indexes: tuple[str, ...]


TEXT = st.text(alphabet="abc", min_size=1, max_size=2)
NUMBER = st.sampled_from(["1", "2", "9", "10", "10.0", "-3", "0.5", "100"])
SHAPES = {
    "project": Shape(table_definition, "S", TEXT, ("GSI1", "GSI2")),
    "numbers": Shape(n_keyed_definition, "N", NUMBER, ("GSI1",)),
}
PARTITIONS = ("a", "b")
INDEX_PARTITIONS = {"GSI1": ("g", "h"), "GSI2": ("u", "v")}


@st.composite
def items(draw: st.DrawFn, shape: Shape) -> dict[str, Any]:
    item: dict[str, Any] = {
        "PK": {"S": draw(st.sampled_from(PARTITIONS))},
        "SK": {shape.sort_type: draw(shape.sort_values)},
    }
    # Mostly both keys of an index, sometimes one only (then not in the index).
    for index in shape.indexes:
        present = draw(st.sampled_from(("both", "both", "both", "partition", "sort", "none")))
        if present in ("both", "partition"):
            item[f"{index}-PK"] = {"S": draw(st.sampled_from(INDEX_PARTITIONS[index]))}
        if present in ("both", "sort"):
            sort_type = "S" if index == "GSI2" else shape.sort_type
            values = TEXT if index == "GSI2" else shape.sort_values
            item[f"{index}-SK"] = {sort_type: draw(values)}
    if draw(st.booleans()):
        item["n"] = {"N": str(draw(st.integers(0, 3)))}
    if draw(st.integers(0, 9)) == 0:
        item["big"] = {"S": "x" * 150_000}
    return item


def key_of(item: dict[str, Any]) -> dict[str, Any]:
    return {"PK": item["PK"], "SK": item["SK"]}


CONDITIONS = (None, "attribute_exists(PK)", "attribute_not_exists(PK)", "n = :zero")


def with_condition(request: dict[str, Any], condition: str | None) -> dict[str, Any]:
    if condition is not None:
        request["ConditionExpression"] = condition
        if ":zero" in condition:
            values = request.setdefault("ExpressionAttributeValues", {})
            values[":zero"] = {"N": "0"}
    return request


@st.composite
def updates(draw: st.DrawFn, shape: Shape) -> dict[str, Any]:
    """An UpdateItem request (without TableName) that may move the item in its indexes."""
    key = key_of(draw(items(shape)))
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    sets: list[str] = []
    removes: list[str] = []
    for number, attr in enumerate(("GSI1-PK", "GSI1-SK", "GSI2-PK", "GSI2-SK", "n")):
        if attr.startswith("GSI2") and "GSI2" not in shape.indexes:
            continue
        action = draw(st.sampled_from(("keep", "keep", "set", "remove")))
        if action == "keep":
            continue
        names[f"#a{number}"] = attr
        if action == "remove":
            removes.append(f"#a{number}")
            continue
        if attr == "n":
            value = {"N": str(draw(st.integers(0, 3)))}
        elif attr.endswith("-PK"):
            value = {"S": draw(st.sampled_from(INDEX_PARTITIONS[attr[:4]]))}
        else:
            value = {"S" if attr == "GSI2-SK" else shape.sort_type: draw(shape.sort_values)}
        values[f":v{number}"] = value
        sets.append(f"#a{number} = :v{number}")
    if not sets and not removes:
        names["#n"] = "n"
        values[":one"] = {"N": "1"}
        sets.append("#n = :one")
    expression = " ".join(
        part
        for part in (
            "SET " + ", ".join(sets) if sets else "",
            "REMOVE " + ", ".join(removes) if removes else "",
        )
        if part
    )
    request: dict[str, Any] = {"Key": key, "UpdateExpression": expression}
    if names:
        request["ExpressionAttributeNames"] = names
    if values:
        request["ExpressionAttributeValues"] = values
    return with_condition(request, draw(st.sampled_from(CONDITIONS)))


@st.composite
def queries(draw: st.DrawFn, shape: Shape) -> dict[str, Any]:
    """A Query request (without TableName) on the table or one of its GSIs."""
    index = draw(st.sampled_from((None, *shape.indexes)))
    if index is None:
        partition_attr, sort_attr, sort_type = "PK", "SK", shape.sort_type
        partition = draw(st.sampled_from((*PARTITIONS, "zz")))
    else:
        partition_attr, sort_attr = f"{index}-PK", f"{index}-SK"
        sort_type = "S" if index == "GSI2" else shape.sort_type
        partition = draw(st.sampled_from((*INDEX_PARTITIONS[index], "zz")))
    names = {"#p": partition_attr, "#s": sort_attr}
    values: dict[str, Any] = {":p": {"S": partition}}
    condition = "#p = :p"
    sort_values = shape.sort_values if sort_type == shape.sort_type else TEXT
    comparison = draw(st.sampled_from((None, "=", "<", "<=", ">", ">=", "BETWEEN", "begins_with")))
    if comparison == "begins_with" and sort_type != "S":
        comparison = None
    if comparison is None:
        del names["#s"]
    elif comparison == "BETWEEN":
        low, high = sorted(
            (draw(sort_values), draw(sort_values)),
            key=(lambda v: float(v)) if sort_type == "N" else (lambda v: v),
        )
        values |= {":low": {sort_type: low}, ":high": {sort_type: high}}
        condition += " AND #s BETWEEN :low AND :high"
    elif comparison == "begins_with":
        values[":s"] = {"S": draw(st.text(alphabet="abc", min_size=1, max_size=2))}
        condition += " AND begins_with(#s, :s)"
    else:
        values[":s"] = {sort_type: draw(sort_values)}
        condition += f" AND #s {comparison} :s"
    request: dict[str, Any] = {
        "KeyConditionExpression": condition,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
        "ScanIndexForward": draw(st.booleans()),
    }
    if index is not None:
        request["IndexName"] = index
    limit = draw(st.sampled_from((None, 1, 2, 3, 5, 5)))
    if limit is not None:
        request["Limit"] = limit
    if draw(st.booleans()):
        request["FilterExpression"] = "attribute_not_exists(#f) OR #f < :f"
        names["#f"] = "n"
        values[":f"] = {"N": "2"}
    extra = draw(st.sampled_from(("all", "projection", "count")))
    if extra == "projection":
        request["ProjectionExpression"] = "#p, #k, #x"
        names |= {"#k": "SK", "#x": "n"}
    elif extra == "count":
        request["Select"] = "COUNT"
    return request


@st.composite
def operations(draw: st.DrawFn, shape: Shape) -> tuple[str, Any]:
    kind = draw(
        st.sampled_from(
            ("put", "update", "delete", "transact", "transact", "batch", "get", "query", "query")
        )
    )
    if kind == "put":
        request = {"Item": draw(items(shape))}
        return kind, with_condition(request, draw(st.sampled_from(CONDITIONS)))
    if kind == "update":
        return kind, draw(updates(shape))
    if kind in ("delete", "get"):
        request = {"Key": key_of(draw(items(shape)))}
        if kind == "delete":
            request = with_condition(request, draw(st.sampled_from(CONDITIONS)))
        return kind, request
    if kind == "transact":
        actions = []
        for _ in range(draw(st.integers(1, 4))):
            action = draw(st.sampled_from(("Put", "Update", "Delete", "ConditionCheck")))
            condition = draw(st.sampled_from(CONDITIONS))
            if action == "Put":
                body = with_condition({"Item": draw(items(shape))}, condition)
            elif action == "Update":
                body = draw(updates(shape))
            else:
                body = with_condition({"Key": key_of(draw(items(shape)))}, condition)
                if action == "ConditionCheck" and condition is None:
                    body = with_condition(body, "attribute_exists(PK)")
            if draw(st.booleans()):
                body["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
            actions.append({action: body})
        return kind, actions
    if kind == "batch":
        requests = []
        for _ in range(draw(st.integers(1, 4))):
            if draw(st.booleans()):
                requests.append({"PutRequest": {"Item": draw(items(shape))}})
            else:
                requests.append({"DeleteRequest": {"Key": key_of(draw(items(shape)))}})
        return kind, requests
    return kind, draw(queries(shape))


def run(world: World, table: str, kind: str, request: Any) -> list[Any]:
    """The answers to one operation; a query is followed page by page to its end."""
    client = world.dynamodb
    if kind == "put":
        return [answer(lambda: client.put_item(TableName=table, **request))]
    if kind == "update":
        return [
            answer(lambda: client.update_item(TableName=table, ReturnValues="ALL_NEW", **request))
        ]
    if kind == "delete":
        return [
            answer(lambda: client.delete_item(TableName=table, ReturnValues="ALL_OLD", **request))
        ]
    if kind == "get":
        return [answer(lambda: client.get_item(TableName=table, ConsistentRead=True, **request))]
    if kind == "transact":
        actions = [
            {name: {**body, "TableName": table}}
            for action in request
            for name, body in action.items()
        ]
        return [answer(lambda: client.transact_write_items(TransactItems=actions))]
    if kind == "batch":
        return [answer(lambda: client.batch_write_item(RequestItems={table: request}))]
    pages = []
    query = {**request, "TableName": table}
    for _ in range(40):
        page = answer(lambda: client.query(**query))
        pages.append(page)
        if not isinstance(page, dict) or "LastEvaluatedKey" not in page:
            break
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return pages


def assert_sorted_partitions_follow(world: World, table_name: str) -> None:
    """The sorted partitions, kept up to date write after write, are what building them
    afresh from the stored items gives."""
    table = dynamodb_backends[world.account][world.region].tables[table_name]
    kept = bounded._indexes.get(table)
    if kept is None:
        return
    fresh = bounded._TableIndex(table)
    for name, gsi in fresh.gsis.items():
        partitions = kept.gsis[name].partitions
        assert {key: (p.keys, p.refs) for key, p in partitions.items()} == {
            key: (p.keys, p.refs) for key, p in gsi.partitions.items()
        }, name
    for hash_key, partition in kept.base.items():
        assert (partition.keys, partition.refs) == (
            (rebuilt := fresh.base_partition(table, hash_key)).keys,
            rebuilt.refs,
        )


def everything(world: World, table: str) -> Any:
    """The table's items (Scan is moto's own in both worlds) and its stream."""
    items = world.dynamodb.scan(TableName=table)["Items"]
    return sorted(items, key=repr), stream_records(world, table)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_random_writes_and_queries_answer_as_moto_does(
    worlds: tuple[World, World], data: st.DataObject
) -> None:
    bounded_world, reference = worlds
    shape = SHAPES[data.draw(st.sampled_from(sorted(SHAPES)))]
    table = f"differential-{next(_table_numbers)}"
    size = data.draw(st.integers(8, 40))
    seed = {
        repr(key_of(item)): item
        for item in data.draw(st.lists(items(shape), min_size=size, max_size=size))
    }
    for world in worlds:
        world.dynamodb.create_table(**shape.definition(table))
        for item in seed.values():
            world.dynamodb.put_item(TableName=table, Item=item)
    try:
        for kind, request in data.draw(st.lists(operations(shape), min_size=3, max_size=30)):
            expected = run(reference, table, kind, request)
            assert run(bounded_world, table, kind, request) == expected, (kind, request)
            assert_sorted_partitions_follow(bounded_world, table)
        assert everything(bounded_world, table) == everything(reference, table)
    finally:
        for world in worlds:
            world.dynamodb.delete_table(TableName=table)


def test_pages_of_a_large_list_match_moto_in_both_directions(
    worlds: tuple[World, World],
) -> None:
    """The app's list query (GSI2, newest first) over 300 items, with equal sort keys
    broken by the table's keys, paged to the end both ways, and started mid-list."""
    table = f"list-{next(_table_numbers)}"
    for world in worlds:
        world.dynamodb.create_table(**table_definition(table))
        for number in range(300):
            world.dynamodb.put_item(
                TableName=table,
                Item={
                    "PK": {"S": f"user#{number % 97:03d}-{number}"},
                    "SK": {"S": f"user#{number % 97:03d}-{number}"},
                    "GSI2-PK": {"S": "user" if number % 10 else "product"},
                    "GSI2-SK": {"S": f"2026-01-{1 + number % 28:02d}"},
                    "n": {"N": str(number)},
                },
            )
    for forward, limit in itertools.product((True, False), (1, 7, 21, 1000)):
        request = {
            "IndexName": "GSI2",
            "KeyConditionExpression": "#p = :p",
            "ExpressionAttributeNames": {"#p": "GSI2-PK"},
            "ExpressionAttributeValues": {":p": {"S": "user"}},
            "ScanIndexForward": forward,
            "Limit": limit,
        }
        expected = run(worlds[1], table, "query", request)
        assert run(worlds[0], table, "query", request) == expected
        middle = expected[len(expected) // 2]
        if "LastEvaluatedKey" in middle:
            start = {**request, "ExclusiveStartKey": middle["LastEvaluatedKey"]}
            assert run(worlds[0], table, "query", start) == run(worlds[1], table, "query", start)


def test_pages_of_big_items_end_at_one_megabyte_as_in_moto(
    worlds: tuple[World, World],
) -> None:
    """moto ends a page before the item that would take it over 1 MB, even an item past
    the key condition's range: six matching 150 kB items, a small one, then a big one.
    Table partition "p" is read with its sort key, GSI1 partition "g" (items "q") with
    GSI1-SK (three items per value)."""
    table = f"big-{next(_table_numbers)}"
    for world in worlds:
        world.dynamodb.create_table(**table_definition(table))
        for number in range(20):
            for partition, small in (("p", (6, 13)), ("q", (6, 11))):
                item = {
                    "PK": {"S": partition},
                    "SK": {"S": f"{number:03d}"},
                    "big": {"S": "x" * (10 if number in small else 150_000)},
                }
                if partition == "q":
                    item |= {"GSI1-PK": {"S": "g"}, "GSI1-SK": {"S": f"{number // 3:03d}"}}
                world.dynamodb.put_item(TableName=table, Item=item)
    conditions = {
        None: {"<=": ["005"], ">=": ["014"], "BETWEEN": ["007", "012"]},
        "GSI1": {"<=": ["001"], ">=": ["005"], "BETWEEN": ["004", "005"]},
    }
    for index, forward, limit in itertools.product((None, "GSI1"), (True, False), (None, 4)):
        partition_attr, sort_attr = ("PK", "SK") if index is None else ("GSI1-PK", "GSI1-SK")
        for comparison, values in [(None, []), *conditions[index].items()]:
            request: dict[str, Any] = {
                "KeyConditionExpression": "#p = :p",
                "ExpressionAttributeNames": {"#p": partition_attr},
                "ExpressionAttributeValues": {":p": {"S": "p" if index is None else "g"}},
                "ScanIndexForward": forward,
            }
            if index is not None:
                request["IndexName"] = index
            if limit is not None:
                request["Limit"] = limit
            if comparison is not None:
                request["ExpressionAttributeNames"]["#s"] = sort_attr
                for name, value in zip((":a", ":b"), values, strict=False):
                    request["ExpressionAttributeValues"][name] = {"S": value}
                request["KeyConditionExpression"] += (
                    " AND #s BETWEEN :a AND :b"
                    if comparison == "BETWEEN"
                    else f" AND #s {comparison} :a"
                )
            expected = run(worlds[1], table, "query", request)
            assert run(worlds[0], table, "query", request) == expected, request


# -- transactions ---------------------------------------------------------------------


def entity(number: int) -> dict[str, Any]:
    return {"PK": {"S": f"user#{number}"}, "SK": {"S": f"user#{number}"}}


def join(settings: Settings, user: int, product: int) -> list[dict[str, Any]]:
    """The shape of the join INSERT: a row on condition that it is new, a relation item
    per entity, and a check that each entity exists."""
    row = f"joinTableData#{user}-{product}"
    exists = {"ConditionExpression": "attribute_exists(PK)"}
    return [
        {
            "Put": {
                "TableName": settings.table_name,
                "Item": {"PK": {"S": row}, "SK": {"S": row}},
                "ConditionExpression": "attribute_not_exists(PK)",
            }
        },
        *(
            {
                "Put": {
                    "TableName": settings.table_name,
                    "Item": {
                        "PK": {"S": f"joinRelation#{side}"},
                        "SK": {"S": f"joinRelation#{user}-{product}"},
                        "GSI1-PK": {"S": f"joinRelation#{user}-{product}"},
                        "GSI1-SK": {"S": f"joinRelation#{side}"},
                    },
                }
            }
            for side in (f"user#{user}", f"product#{product}")
        ),
        {"ConditionCheck": {"TableName": settings.table_name, "Key": entity(user), **exists}},
        {"ConditionCheck": {"TableName": settings.table_name, "Key": entity(product), **exists}},
    ]


def moto_table(settings: Settings) -> Table:
    table: Table = dynamodb_backends[settings.account_id][settings.region].tables[
        settings.table_name
    ]
    return table


def test_a_transaction_never_copies_a_table(
    aws: EmbeddedAWS, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = aws.client("dynamodb")
    for number in (1, 2):
        client.put_item(TableName=settings.table_name, Item=entity(number))

    def refuse(self: Table, memo: Any) -> Table:
        raise AssertionError("a table was copied")

    monkeypatch.setattr(Table, "__deepcopy__", refuse, raising=False)
    client.transact_write_items(TransactItems=join(settings, 1, 2))
    with pytest.raises(ClientError, match="TransactionCanceled"):
        client.transact_write_items(TransactItems=join(settings, 1, 3))


def test_a_failed_transaction_leaves_items_indexes_and_stream_as_they_were(
    aws: EmbeddedAWS, settings: Settings
) -> None:
    client = aws.client("dynamodb")
    for number in (1, 2, 3):
        client.put_item(TableName=settings.table_name, Item=entity(number))
    client.transact_write_items(TransactItems=join(settings, 1, 2))
    relations = {
        "TableName": settings.table_name,
        "IndexName": "GSI1",
        "KeyConditionExpression": "#p = :p",
        "ExpressionAttributeNames": {"#p": "GSI1-PK"},
        "ExpressionAttributeValues": {":p": {"S": "joinRelation#1-2"}},
    }
    related = client.query(**relations)["Items"]
    assert len(related) == 2
    items_before = sorted(map(repr, client.scan(TableName=settings.table_name)["Items"]))
    shard = moto_table(settings).stream_shard
    assert shard is not None
    records_before = [record.to_json() for record in shard.items]

    # Overwrites relation items of 1-2 and updates user 3, then fails on product 4.
    failing = [
        *join(settings, 1, 2)[1:3],
        {
            "Update": {
                "TableName": settings.table_name,
                "Key": entity(3),
                "UpdateExpression": "SET #g = :g, #h = :h",
                "ExpressionAttributeNames": {"#g": "GSI1-PK", "#h": "GSI1-SK"},
                "ExpressionAttributeValues": {
                    ":g": {"S": "joinRelation#1-2"},
                    ":h": {"S": "joinRelation#user#3"},
                },
            }
        },
        {
            "ConditionCheck": {
                "TableName": settings.table_name,
                "Key": entity(4),
                "ConditionExpression": "attribute_exists(PK)",
            }
        },
    ]
    failing[0]["Put"]["Item"]["GSI1-PK"] = {"S": "joinRelation#elsewhere"}
    with pytest.raises(ClientError) as raised:
        client.transact_write_items(TransactItems=failing)
    reasons = [reason["Code"] for reason in raised.value.response["CancellationReasons"]]
    assert reasons == ["None", "None", "None", "ConditionalCheckFailed"]

    assert sorted(map(repr, client.scan(TableName=settings.table_name)["Items"])) == items_before
    assert client.query(**relations)["Items"] == related
    assert [record.to_json() for record in shard.items] == records_before
    # The next write's record follows on from the last one kept.
    client.put_item(TableName=settings.table_name, Item=entity(5))
    sequence = [int(record.to_json()["dynamodb"]["SequenceNumber"]) for record in shard.items]
    assert sequence == list(range(sequence[0], sequence[0] + len(sequence)))


# -- nothing kept per request ---------------------------------------------------------


def live_objects() -> Counter[str]:
    gc.collect()
    return Counter(type(thing).__name__ for thing in gc.get_objects())


def test_repeated_transactions_and_queries_keep_no_objects(
    aws: EmbeddedAWS, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the stream holds as many records as it keeps, more of the same requests
    (a join INSERT that succeeds, one that fails, a no-op one, updates and overwrites,
    reads of absent items and list pages) leave the process's objects as they were."""
    monkeypatch.setattr(bounded, "STREAM_RETENTION", bounded.StreamRetention(max_records=40))
    client = aws.client("dynamodb")
    for number in range(1, 30):
        client.put_item(TableName=settings.table_name, Item=entity(number))
    page = {
        "TableName": settings.table_name,
        "IndexName": "GSI1",
        "KeyConditionExpression": "#p = :p",
        "ExpressionAttributeNames": {"#p": "GSI1-PK"},
        "ExpressionAttributeValues": {":p": {"S": "joinRelation#1-2"}},
        "Limit": 1,
    }

    def requests(rounds: int) -> None:
        for round_number in range(rounds):
            user = 1 + round_number % 10
            client.transact_write_items(TransactItems=join(settings, user, 20))
            client.delete_item(
                TableName=settings.table_name,
                Key={
                    "PK": {"S": f"joinTableData#{user}-20"},
                    "SK": {"S": f"joinTableData#{user}-20"},
                },
            )
            with pytest.raises(ClientError):
                client.transact_write_items(TransactItems=join(settings, user, 99))
            with pytest.raises(ClientError):
                # Already there: the no-op of a repeated INSERT.
                client.transact_write_items(TransactItems=join(settings, 1, 2))
            client.get_item(TableName=settings.table_name, Key=entity(1000 + round_number))
            client.update_item(
                TableName=settings.table_name,
                Key=entity(user),
                UpdateExpression="SET #n = :n",
                ExpressionAttributeNames={"#n": "name"},
                ExpressionAttributeValues={":n": {"S": f"name {round_number}"}},
                ReturnValues="ALL_NEW",
            )
            client.put_item(TableName=settings.table_name, Item=entity(user + 10))
            client.query(**page)
            client.query(
                TableName=settings.table_name,
                KeyConditionExpression="PK = :p",
                ExpressionAttributeValues={":p": {"S": f"absent#{round_number}"}},
            )

    client.transact_write_items(TransactItems=join(settings, 1, 2))
    requests(100)
    partitions = len(moto_table(settings).items)
    before = live_objects()
    requests(300)
    after = live_objects()
    grown = {name: after[name] - before[name] for name in after if after[name] > before[name]}
    # 2,700 requests: growing per request would be thousands; a cache filling up, a few.
    assert sum(grown.values()) < 100, grown
    for model in (Item, StreamRecord, Table):
        assert len(getattr(model, "instances_tracked")) == 0  # noqa: B009 (set by a metaclass)
    assert len(moto_table(settings).items) == partitions


def test_reading_absent_items_adds_no_partition(aws: EmbeddedAWS, settings: Settings) -> None:
    client = aws.client("dynamodb")
    for number in range(100):
        client.get_item(TableName=settings.table_name, Key=entity(number))
        client.delete_item(TableName=settings.table_name, Key=entity(number))
        client.transact_write_items(
            TransactItems=[
                {
                    "ConditionCheck": {
                        "TableName": settings.table_name,
                        "Key": entity(number),
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                }
            ]
        )
    assert len(moto_table(settings).items) == 0


# -- the stream -----------------------------------------------------------------------


def shard_sequence_numbers(settings: Settings) -> list[int]:
    shard = moto_table(settings).stream_shard
    assert shard is not None
    return [int(record.to_json()["dynamodb"]["SequenceNumber"]) for record in shard.items]


def read_stream(aws: EmbeddedAWS, **position: str) -> list[str]:
    streams = aws.client("dynamodbstreams")
    arn = aws.table_stream_arn
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], **position)
    records = streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
    return [record["dynamodb"]["Keys"]["PK"]["S"] for record in records]


def test_the_stream_keeps_at_most_its_bound_of_records(
    aws: EmbeddedAWS, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bounded, "STREAM_RETENTION", bounded.StreamRetention(max_records=16))
    client = aws.client("dynamodb")
    first = None
    for number in range(100):
        client.put_item(TableName=settings.table_name, Item=entity(number))
        first = first if first is not None else shard_sequence_numbers(settings)[0]
        assert len(shard_sequence_numbers(settings)) <= 16
    kept = shard_sequence_numbers(settings)
    assert first is not None
    # Numbered on from the first record, trimmed from the oldest.
    assert kept == list(range(first + 100 - len(kept), first + 100))
    assert read_stream(aws, ShardIteratorType="TRIM_HORIZON") == [
        f"user#{number}" for number in range(100 - len(kept), 100)
    ]
    assert read_stream(aws, ShardIteratorType="LATEST") == []


def test_records_older_than_a_day_are_trimmed(
    aws: EmbeddedAWS, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1_000_000.0]
    monkeypatch.setattr(bounded, "clock", lambda: now[0])
    client = aws.client("dynamodb")
    for number in range(5):
        client.put_item(TableName=settings.table_name, Item=entity(number))
    now[0] += 23 * 3600
    client.put_item(TableName=settings.table_name, Item=entity(5))
    assert read_stream(aws, ShardIteratorType="TRIM_HORIZON") == [
        f"user#{number}" for number in range(6)
    ]
    now[0] += 3600 + 1
    client.put_item(TableName=settings.table_name, Item=entity(6))
    assert read_stream(aws, ShardIteratorType="TRIM_HORIZON") == ["user#5", "user#6"]


def test_a_reader_behind_the_trimmed_records_reads_on_from_the_oldest_kept(
    aws: EmbeddedAWS,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(bounded, "STREAM_RETENTION", bounded.StreamRetention(max_records=8))
    client = aws.client("dynamodb")
    client.put_item(TableName=settings.table_name, Item=entity(0))
    first = shard_sequence_numbers(settings)[0]
    for number in range(1, 30):
        client.put_item(TableName=settings.table_name, Item=entity(number))
    kept = shard_sequence_numbers(settings)
    with caplog.at_level(logging.WARNING, logger=bounded.__name__):
        read = read_stream(
            aws, ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=str(first)
        )
    assert read == [f"user#{number}" for number in range(30 - len(kept), 30)]
    assert "were trimmed before they were read" in caplog.text


def test_local_delivery_sees_every_record_while_the_stream_is_trimmed(
    aws: EmbeddedAWS, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bounded, "STREAM_RETENTION", bounded.StreamRetention(max_records=24))
    app = Chalice(app_name="t")
    seen: list[str] = []

    @app.on_dynamodb_record(stream_arn=settings.table_stream_arn, batch_size=5)
    def on_change(event: DynamoDBEvent) -> None:
        seen.extend(record.keys["PK"]["S"] for record in event)

    runtime = LocalEventRuntime(app, aws, settings, poll_interval=0.01)
    client = aws.client("dynamodb")
    for number in range(100):
        client.put_item(TableName=settings.table_name, Item=entity(number))
        if number % 10 == 9:
            runtime.wait_until_idle()
    assert seen == [f"user#{number}" for number in range(100)]
    assert len(shard_sequence_numbers(settings)) <= 24


def test_stream_records_read_as_moto_answers_them(aws: EmbeddedAWS, settings: Settings) -> None:
    """GetRecords is answered without moto's response serializer: what a reader gets
    (every attribute type, the timestamps, sizes and iterators) is what moto's own
    serializer gives for the same records."""
    client = aws.client("dynamodb")
    item = {
        **entity(1),
        "text": {"S": 'é\u2028"quoted"'},
        "number": {"N": "1.50"},
        "binary": {"B": b"\x00\xff"},
        "flag": {"BOOL": False},
        "nothing": {"NULL": True},
        "texts": {"SS": ["a", "b"]},
        "numbers": {"NS": ["1", "-2.5"]},
        "binaries": {"BS": [b"1", b"\x02"]},
        "nested": {"L": [{"M": {"deep": {"L": [{"N": "3"}, {"S": ""}]}}}]},
    }
    client.put_item(TableName=settings.table_name, Item=item)
    client.update_item(
        TableName=settings.table_name,
        Key=entity(1),
        UpdateExpression="SET #n = :n",
        ExpressionAttributeNames={"#n": "number"},
        ExpressionAttributeValues={":n": {"N": "2"}},
    )
    client.delete_item(TableName=settings.table_name, Key=entity(1))
    streams = aws.client("dynamodbstreams")
    shard = streams.describe_stream(StreamArn=aws.table_stream_arn)["StreamDescription"]
    iterator = streams.get_shard_iterator(
        StreamArn=aws.table_stream_arn,
        ShardId=shard["Shards"][0]["ShardId"],
        ShardIteratorType="TRIM_HORIZON",
    )["ShardIterator"]

    def read() -> dict[str, Any]:
        response = streams.get_records(ShardIterator=iterator)
        response.pop("ResponseMetadata")
        response.pop("NextShardIterator")  # a new random iterator on every read
        return dict(response)

    fast = read()
    with bounded.reference_region(settings.account_id, settings.region):
        assert read() == fast
    assert [record["eventName"] for record in fast["Records"]] == ["INSERT", "MODIFY", "REMOVE"]
    assert fast["Records"][0]["dynamodb"]["NewImage"] == item


# -- the version check ----------------------------------------------------------------


def test_another_moto_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bounded, "MOTO_VERSION", "0.0.1")
    with pytest.raises(bounded.UnsupportedMoto, match=r"moto is 5\.2\.5, not 0\.0\.1"):
        bounded._check_moto()


def test_changed_internals_are_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    name = "moto.dynamodb.models.table.Table.query"
    monkeypatch.setitem(bounded.VERIFIED_SOURCES, name, "0" * 64)
    monkeypatch.setattr(
        bounded, "_verified_functions", lambda: {name: bounded._original(bounded._query)}
    )
    with pytest.raises(bounded.UnsupportedMoto, match=r"Table\.query differs"):
        bounded._check_moto()


def test_keys_of_every_kind_sort_as_moto_sorts_them() -> None:
    values = [DynamoType({"N": n}) for n in ("10", "9", "-1", "0.5", "1e2")]
    keys = [key for value in values if (key := bounded._key_of({"v": value}, ("v",)))]
    assert [key[1] for key in sorted(keys)] == [value.cast_value for value in sorted(values)]
