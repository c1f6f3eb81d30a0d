"""Every IAM grant is used by the code, and nothing else (``deploy.policies``).

Each function runs as Lambda runs it: ``app.py`` imported on its own, in AWS mode (so
the lake is the S3 object store and queries go to Athena), against moto, with its own
clients. A botocore hook on those clients records every call; ``tests.deploy.iam_calls`` turns
each into the IAM actions and resources AWS checks. The scenario walks every code path
of every function: the API's CRUD, lists, join INSERTs (new, repeated, refused), task
triggers with a poll of a running query and the read of a finished one, deletion
triggers; the stream's inserts, updates and removals of entities and join rows; the
cascade and deletion listeners, each also finding a relation whose row item is gone;
the tracker's finished, failed, running and unrecorded queries; the lake's compaction,
once over live files and tombstones alone and once over partitions compacted before;
GraphQL subscriptions: clients connecting, signing in, subscribing to entity changes and
tasks, breaking the protocol, disconnecting, the API's scenario again over a socket, and
every push (the stream's, the tracker's, the deletion listener's), each also finding a
client that dropped without a word.

The test then holds each function's calls against its needs in
``deploy.policies.FUNCTION_NEEDS``: an action granted and never called, a call not
granted, a key range wider than the calls, fail. Grants Athena and Lambda use on a
function's behalf are held against the calls that make Athena act and against the app's
event sources; and each rendered role must grant exactly its needs.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from itertools import count
from types import ModuleType
from typing import Any
from urllib.parse import unquote

import boto3
import pytest
import requests
from botocore.awsrequest import AWSResponse
from botocore.client import BaseClient
from chalice.app import CloudWatchEventConfig, DynamoDBEventConfig, SQSEventConfig
from chalice.test import Client
from chalice.utils import to_cfn_resource_name
from moto import mock_aws
from moto.moto_api import state_manager

from chalicelib import keys
from chalicelib.schema import load_schema
from chalicelib.settings import Settings, load_settings
from chalicelib.table import table_definition
from chalicelib.tasks.service import TaskNotRecorded
from deploy.event_sources import stream_settings, tracker_invoke_settings
from deploy.names import API_FUNCTION, WEBSOCKET_ROUTES, function_names, log_group_name
from deploy.options import StageOptions
from deploy.policies import (
    CASCADE_FUNCTION,
    COMPACTED_KEYS,
    COMPACTION_FUNCTION,
    DELETED_KEYS,
    DELETION_FUNCTION,
    FUNCTION_NEEDS,
    FUNCTIONS,
    LIVE_KEYS,
    LOG_NEED,
    PUSHING_FUNCTIONS,
    STREAM_FUNCTION,
    TASK_KEYS,
    TRACKER_FUNCTION,
    WEBSOCKET_FUNCTIONS,
    WS_CONNECT_FUNCTION,
    WS_DISCONNECT_FUNCTION,
    WS_MESSAGE_FUNCTION,
    Caller,
    Need,
    Target,
    WebSocketApi,
    function_policies,
    function_role,
    target_resources,
)
from tests.conftest import ROOT
from tests.deploy.iam_calls import Call, Recorder, iam_calls, need_grants, problems, role_grants

EVENTS = ROOT / "tests" / "events"
REGION, ACCOUNT, STAGE = "us-east-1", "123456789012", "dev"
# The stage's WebSocket API, as the deployment gives it to the functions.
WS_API, WS_STAGE = "a1b2c3d4e5", "api"
WS_ENDPOINT = f"https://{WS_API}.execute-api.{REGION}.amazonaws.com/{WS_STAGE}"
ADD_FAVORITE = "mutation ($u: ID!, $p: ID!) { addFavorite(userId: $u, productId: $p) }"
USERS_CREATED = "subscription { onCreateUser { id name } }"
USERS_BY_CITY = (
    "subscription ($id: ID!) { onTaskResultUsersByCity(taskId: $id) { taskStatus result { id } } }"
)
PRODUCT_DELETION = (
    "subscription ($id: ID!) { onTaskResultRemoveFavoritesOfProduct(taskId: $id) { taskStatus } }"
)
BRAND_DELETION = (
    "subscription ($id: ID!) { onTaskResultRemoveFavoritesOfBrand(taskId: $id) { taskStatus } }"
)


@dataclass
class Activity:
    """Which function is running now, and any AWS call made meanwhile through a client
    the recorder is not attached to (one the function made without ``Services``)."""

    function: str | None = None
    unrecorded: list[str] = field(default_factory=list)

    @contextlib.contextmanager
    def running(self, function: str) -> Iterator[None]:
        self.function = function
        try:
            yield
        finally:
            self.function = None

    def watch(self, patch: pytest.MonkeyPatch) -> None:
        """Check every botocore call: one made while a function runs must go through a
        recorded client (or be one of this test's own look-ups)."""
        make_api_call = BaseClient._make_api_call

        def checked(client: Any, operation: str, params: Any) -> Any:
            if self.function and not getattr(client, RECORDED, False):
                service = client.meta.service_model.service_name
                self.unrecorded.append(f"{self.function}: {service}.{operation}")
            return make_api_call(client, operation, params)

        patch.setattr(BaseClient, "_make_api_call", checked)


# Marks a client whose calls are recorded, or one of this test's own.
RECORDED = "_ocg_calls_recorded"


def _own(client: Any) -> Any:
    setattr(client, RECORDED, True)
    return client


class GraphQLClient:
    """Sends GraphQL requests: over HTTP to the API, or over a socket."""

    def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        raise NotImplementedError

    def data(self, query: str, **variables: Any) -> Any:
        result = self.graphql(query, **variables)
        assert "errors" not in result, result["errors"]
        return result["data"]

    def refused(self, query: str, **variables: Any) -> list[str]:
        result = self.graphql(query, **variables)
        assert result.get("errors"), result
        return [error["message"] for error in result["errors"]]


@dataclass
class Function(GraphQLClient):
    """One function, as Lambda runs it: the app imported on its own, its calls recorded."""

    logical_id: str
    handler: str
    module: ModuleType
    client: Client
    activity: Activity
    calls: list[Call] = field(default_factory=list)

    def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        with self.activity.running(self.logical_id):
            response = self.client.http.post(
                "/graphql",
                headers={"content-type": "application/json"},
                body=json.dumps({"query": query, "variables": variables}),
            )
        assert response.status_code == 200, response.body
        result: dict[str, Any] = json.loads(response.body)
        return result

    def invoke(self, event: dict[str, Any]) -> Any:
        with self.activity.running(self.logical_id):
            if self.logical_id in WEBSOCKET_FUNCTIONS:
                # Lambda calls the decorated function app.py declares for the route.
                (config,) = [
                    c
                    for c in self.module.app.websocket_handlers.values()
                    if WEBSOCKET_ROUTES.get(c.route_key_handled, WS_MESSAGE_FUNCTION)
                    == self.logical_id
                ]
                handler = getattr(self.module, config.handler_string.rpartition(".")[2])
                return handler(event, None)
            return self.client.lambda_.invoke(self.handler, event).payload


@dataclass
class ManagementApi:
    """What API Gateway's Management API does with the functions' posts, beyond moto: it
    keeps each client's messages, and answers a post to a client that dropped (its
    ``$disconnect`` not delivered yet) with 410 GoneException, as API Gateway does. Moto's
    Management API takes any post, to any connection."""

    received: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    dropped: set[str] = field(default_factory=set)

    def attach(self, client: Any) -> None:
        client.meta.events.register(
            "before-call.apigatewaymanagementapi.PostToConnection", self._post
        )

    def _post(self, params: dict[str, Any], **_: Any) -> Any:
        connection_id = unquote(params["url_path"].rpartition("/")[2])
        if connection_id in self.dropped:
            gone = {"Error": {"Code": "GoneException", "Message": ""}}
            return AWSResponse(params["url"], 410, {}, None), gone
        self.received.setdefault(connection_id, []).append(json.loads(params["body"]))
        return None


@dataclass
class Socket(GraphQLClient):
    """A client of the stage's WebSocket API: API Gateway's events for it, given to the
    WebSocket functions, and what they posted to it."""

    world: World
    connection_id: str
    operations: Iterator[int] = field(default_factory=lambda: count(1))

    def _event(self, name: str, **changes: Any) -> dict[str, Any]:
        event: dict[str, Any] = json.loads((EVENTS / f"websocket_{name}.json").read_text())
        event["requestContext"].update(connectionId=self.connection_id, apiId=WS_API)
        return {**event, **changes}

    def connect(self) -> None:
        answer = self.world.functions[WS_CONNECT_FUNCTION].invoke(self._event("connect"))
        assert answer["statusCode"] == 200, answer
        self.send({"type": "connection_init", "payload": {}})
        assert self.received[-1] == {"type": "connection_ack"}

    def send(self, message: dict[str, Any] | str) -> None:
        body = message if isinstance(message, str) else json.dumps(message)
        self.world.functions[WS_MESSAGE_FUNCTION].invoke(self._event("message", body=body))

    def subscribe(self, subscription_id: str, query: str, **variables: Any) -> None:
        payload = {"query": query, "variables": variables}
        self.send({"id": subscription_id, "type": "subscribe", "payload": payload})

    def disconnect(self) -> None:
        self.world.functions[WS_DISCONNECT_FUNCTION].invoke(self._event("disconnect"))

    def drop(self) -> None:
        """Gone without a word: API Gateway will deliver its $disconnect later."""
        self.world.management.dropped.add(self.connection_id)

    @property
    def received(self) -> list[dict[str, Any]]:
        return self.world.management.received.get(self.connection_id, [])

    def messages(self, subscription_id: str) -> list[dict[str, Any]]:
        return [m for m in self.received if m.get("id") == subscription_id]

    def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        """A query or mutation over the socket: one ``next``, then ``complete``."""
        operation = str(next(self.operations))
        self.subscribe(operation, query, **variables)
        answer, complete = self.messages(operation)
        assert (answer["type"], complete["type"]) == ("next", "complete"), answer
        result: dict[str, Any] = answer["payload"]
        return result


@dataclass
class World:
    settings: Settings
    activity: Activity
    functions: dict[str, Function]
    dynamodb: Any
    streams: Any
    sqs: Any
    athena: Any
    management: ManagementApi
    sockets: dict[str, Socket] = field(default_factory=dict)
    stream_checkpoints: dict[str, str] = field(default_factory=dict)

    @property
    def api(self) -> Function:
        return self.functions[API_FUNCTION]

    def calls(self, function: str) -> list[Call]:
        return self.functions[function].calls

    def socket(self, name: str) -> Socket:
        """A new client, connected and signed in."""
        self.sockets[name] = Socket(self, name)
        self.sockets[name].connect()
        return self.sockets[name]

    def stream_event(self) -> dict[str, Any]:
        """Every stream record not delivered yet, as Lambda delivers them."""
        table = self.dynamodb.describe_table(TableName=self.settings.table_name)["Table"]
        stream_arn = table["LatestStreamArn"]
        shards = self.streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]
        records = []
        for shard in shards:
            shard_id = shard["ShardId"]
            after = self.stream_checkpoints.get(shard_id)
            position: dict[str, str] = (
                {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": after}
                if after
                else {"ShardIteratorType": "TRIM_HORIZON"}
            )
            iterator = self.streams.get_shard_iterator(
                StreamArn=stream_arn, ShardId=shard_id, **position
            )["ShardIterator"]
            while iterator:
                response = self.streams.get_records(ShardIterator=iterator, Limit=100)
                if not response["Records"]:
                    break
                for record in response["Records"]:
                    dynamodb = dict(record["dynamodb"])
                    created = dynamodb["ApproximateCreationDateTime"]
                    dynamodb["ApproximateCreationDateTime"] = int(created.timestamp())
                    records.append(
                        {
                            **record,
                            "eventSource": "aws:dynamodb",
                            "awsRegion": REGION,
                            "eventSourceARN": stream_arn,
                            "dynamodb": dynamodb,
                        }
                    )
                    self.stream_checkpoints[shard_id] = dynamodb["SequenceNumber"]
                iterator = response.get("NextShardIterator")
        return {"Records": records}

    def queue_events(self, url: str, arn: str) -> list[dict[str, Any]]:
        """The queue's messages, one event each (batch size 1 suits both listeners), as
        Lambda delivers them; received and deleted here, as Lambda does."""
        events: list[dict[str, Any]] = []
        while True:
            received = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
            messages = received.get("Messages", [])
            if not messages:
                return events
            for message in messages:
                record = {
                    "messageId": message["MessageId"],
                    "receiptHandle": message["ReceiptHandle"],
                    "body": message["Body"],
                    "attributes": {},
                    "messageAttributes": {},
                    "md5OfBody": message["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": arn,
                    "awsRegion": REGION,
                }
                events.append({"Records": [record]})
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def inject_athena_results(columns: list[str], rows: list[list[str]]) -> None:
    """The result of the next query started, as Athena returns it (header row first)."""

    def row(values: list[str]) -> dict[str, Any]:
        return {"Data": [{"VarCharValue": value} for value in values]}

    body: dict[str, Any] = {
        "region": REGION,
        "results": [
            {
                "rows": [row(columns), *(row(r) for r in rows)],
                "column_info": [{"Name": c, "Label": c, "Type": "varchar"} for c in columns],
            }
        ],
    }
    response = requests.post(
        "http://motoapi.amazonaws.com/moto-api/static/athena/query-results", json=body, timeout=5
    )
    assert response.status_code == 201


def state_change(name: str, execution_id: str, workgroup: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / f"athena_{name}.json").read_text())
    event["detail"].update(queryExecutionId=execution_id, workgroupName=workgroup)
    return event


def _provision(settings: Settings) -> None:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    dynamodb.create_table(**table_definition(settings.table_name))
    s3 = boto3.client("s3", region_name=REGION)
    for bucket in (settings.lake_bucket, settings.athena_results_bucket):
        s3.create_bucket(Bucket=bucket)
    sqs = boto3.client("sqs", region_name=REGION)
    for name, url in (
        (settings.cascade_queue_name, settings.cascade_queue_url),
        (settings.deletion_queue_name, settings.deletion_queue_url),
    ):
        assert sqs.create_queue(QueueName=name)["QueueUrl"] == url
    boto3.client("athena", region_name=REGION).create_work_group(
        Name=settings.athena_workgroup,
        Configuration={"ResultConfiguration": {"OutputLocation": settings.athena_output}},
    )


def _load_function(
    logical_id: str,
    settings: Settings,
    athena: Any,
    activity: Activity,
    management: ManagementApi,
) -> Function:
    """Import ``app.py`` afresh, as a Lambda function's process does, and record every
    call its clients make."""
    sys.modules.pop("app", None)
    module = importlib.import_module("app")
    handler = function_names(module.app)[logical_id]
    client = Client(module.app, stage_name=STAGE, project_dir=str(ROOT))
    function = Function(logical_id, handler, module, client, activity)

    def workgroup(execution_id: str) -> str:
        execution = athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]
        name: str = execution["WorkGroup"]
        return name

    recorder = Recorder(settings, workgroup, function.calls)
    services = module.services
    clients = services.client

    def recorded_client(service_name: str) -> Any:
        client = clients(service_name)
        recorder.attach(client)
        if service_name == "apigatewaymanagementapi":
            management.attach(client)
        return _own(client)

    services.client = functools.cache(recorded_client)
    return function


def _run_api(api: GraphQLClient) -> dict[str, str]:
    """Every API code path; the ids the other functions' scenarios need."""
    create = "mutation ($input: Create{0}Input!) {{ create{0}(input: $input) {{ id }} }}"
    brand = api.data(create.format("Brand"), input={"name": "Acme"})["createBrand"]["id"]
    users = [
        api.data(create.format("User"), input={"name": name, "email": f"{name}@example.com"})[
            "createUser"
        ]["id"]
        for name in ("ann", "bob")
    ]
    products = [
        api.data(create.format("Product"), input={"name": name, "brandId": brand, "price": 2.5})[
            "createProduct"
        ]["id"]
        for name in ("anvil", "axe")
    ]
    ann, bob = users
    anvil, axe = products
    read = "query ($id: ID!) { readUser(id: $id) { id name } }"
    assert api.data(read, id=ann)["readUser"]["name"] == "ann"
    assert api.data(read, id="nobody")["readUser"] is None
    update = (
        "mutation ($id: ID!, $input: UpdateUserInput!) "
        "{ updateUser(id: $id, input: $input) { age } }"
    )
    assert api.data(update, id=ann, input={"age": 30})["updateUser"] == {"age": 30}
    assert api.refused(update, id="nobody", input={"age": 1})
    listing = "query ($t: String) { listUser(limit: 1, nextToken: $t) { items { id } nextToken } }"
    first = api.data(listing, t=None)["listUser"]
    assert api.data(listing, t=first["nextToken"])["listUser"]["items"]
    # Join INSERTs: new, repeated (a no-op), refused (a missing entity).
    assert api.data(ADD_FAVORITE, u=ann, p=anvil) == {"addFavorite": True}
    assert api.data(ADD_FAVORITE, u=ann, p=anvil) == {"addFavorite": True}
    assert api.refused(ADD_FAVORITE, u=ann, p="no-such-product")
    for user, product in ((ann, axe), (bob, anvil), (bob, axe)):
        assert api.data(ADD_FAVORITE, u=user, p=product) == {"addFavorite": True}
    delete = "mutation ($id: ID!) { deleteUser(id: $id) { deleted } }"
    assert api.data(delete, id=ann)["deleteUser"] == {"deleted": True}
    assert api.data(delete, id=ann)["deleteUser"] == {"deleted": False}
    return {"brand": brand, "ann": ann, "bob": bob, "anvil": anvil, "axe": axe}


def _run_socket_protocol(world: World) -> None:
    """The protocol's other paths: a subscription completed by its client, a client that
    breaks the protocol (closed by the function), one that drops before its answer."""
    brands = world.socket("completes")
    brands.subscribe("brands", "subscription { onCreateBrand { id } }")
    brands.send({"id": "brands", "type": "complete"})
    brands.disconnect()
    rude = world.socket("rude")
    rude.send("not a protocol message")
    rude.disconnect()
    hasty = world.socket("dropped-before-its-pong")
    hasty.drop()
    hasty.send({"type": "ping"})


def _relation_id(user: str, product: str) -> str:
    return keys.relation_id("user_favorite_products", [("user", user), ("product", product)])


def _forget_row_item(world: World, relation_id: str) -> None:
    """A relation whose row item is gone (a removal stopped half-way): its relation items
    are then found through GSI1."""
    key = {name: {"S": value} for name, value in keys.join_row_item_keys(relation_id).items()}
    world.dynamodb.delete_item(TableName=world.settings.table_name, Key=key)


@contextlib.contextmanager
def _queries_held() -> Iterator[None]:
    """Athena's queries stay queued meanwhile (moto's run at once)."""
    hold = {"progression": "manual", "times": 1_000_000}
    state_manager.set_transition(model_name="athena::execution", transition=hold)
    try:
        yield
    finally:
        state_manager.unset_transition("athena::execution")


def _run_tasks(world: World, ids: dict[str, str], api: GraphQLClient) -> dict[str, str]:
    """The API's task paths; the tasks the tracker and the deletion listener then hear of
    (a deletion task of a product, queued by a poll)."""
    trigger = "mutation ($city: String!) { triggerTaskUsersByCity(city: $city) { taskId } }"
    result = "query ($id: ID!) { taskResultUsersByCity(taskId: $id) { taskStatus result { id } } }"
    with _queries_held():
        polled = api.data(trigger, city="Paris")["triggerTaskUsersByCity"]["taskId"]
        running = api.data(result, id=polled)["taskResultUsersByCity"]
        assert running["taskStatus"] == "RUNNING"
        for_tracker = {
            name: api.data(trigger, city=name)["triggerTaskUsersByCity"]["taskId"]
            for name in ("succeeded", "failed")
        }
        by_brand = (
            "mutation ($b: ID!) { triggerTaskRemoveFavoritesOfBrand(brandId: $b) { taskId } }"
        )
        for_tracker["deletion"] = api.data(by_brand, b=ids["brand"])[
            "triggerTaskRemoveFavoritesOfBrand"
        ]["taskId"]
    done = api.data(result, id=polled)["taskResultUsersByCity"]
    assert done == {"taskStatus": "SUCCEEDED", "result": []}
    # A deletion task: its SELECT names one relation there and one whose row item is gone.
    gone = _relation_id(ids["bob"], ids["axe"])
    _forget_row_item(world, gone)
    inject_athena_results(
        ["s3key", "relationid"],
        [["tables/user_favorite_products/x.parquet", _relation_id(ids["bob"], ids["anvil"])],
         ["tables/user_favorite_products/y.parquet", gone]],
    )  # fmt: skip
    by_product = (
        "mutation ($p: ID!) { triggerTaskRemoveFavoritesOfProduct(productId: $p) { taskId } }"
    )
    deletion = api.data(by_product, p=ids["anvil"])["triggerTaskRemoveFavoritesOfProduct"]
    read_deletion = (
        "query ($id: ID!) { taskResultRemoveFavoritesOfProduct(taskId: $id) { taskStatus } }"
    )
    queued = api.data(read_deletion, id=deletion["taskId"])["taskResultRemoveFavoritesOfProduct"]
    assert queued == {"taskStatus": "RUNNING"}  # queued for the deletion listener
    return {**for_tracker, "queued": deletion["taskId"]}


def _run_tracker(world: World, tasks: dict[str, str]) -> None:
    tracker, workgroup = world.functions[TRACKER_FUNCTION], world.settings.athena_workgroup
    assert tracker.invoke(state_change("running", tasks["succeeded"], workgroup)) is None
    for name in ("succeeded", "failed"):
        tracker.invoke(state_change(name, tasks[name], workgroup))
    tracker.invoke(state_change("succeeded", tasks["deletion"], workgroup))  # queues it
    stranger = world.athena.start_query_execution(QueryString="SELECT 1", WorkGroup=workgroup)[
        "QueryExecutionId"
    ]
    with pytest.raises(TaskNotRecorded):  # Lambda retries the event
        tracker.invoke(state_change("succeeded", stranger, workgroup))


def _run_stream(world: World) -> int:
    """Deliver the stream's new records to the stream function; how many."""
    event = world.stream_event()
    assert event["Records"]
    response = world.functions[STREAM_FUNCTION].invoke(event)
    assert response == {"batchItemFailures": []}
    return len(event["Records"])


def scheduled_event(function_name: str) -> dict[str, Any]:
    """What EventBridge sends a function on its schedule."""
    return {
        "version": "0",
        "id": "5b3b5e4e-0000-4000-8000-000000000000",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": "2024-05-01T12:00:00Z",
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{function_name}-event"],
        "detail": {},
    }


def _run_compaction(world: World) -> dict[str, Any]:
    """A scheduled compaction run; what it reports."""
    compaction = world.functions[COMPACTION_FUNCTION]
    report: dict[str, Any] = compaction.invoke(scheduled_event(compaction.handler))
    assert report["partitions"], report
    return report


def _run_listener(world: World, function: str, url: str, arn: str) -> None:
    events = world.queue_events(url, arn)
    assert events, f"nothing queued for {function}"
    for event in events:
        assert world.functions[function].invoke(event) == {"batchItemFailures": []}


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        for name, value in {
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
            "OCG_MODE": "aws",
            "OCG_PROJECT": "shop",
            "OCG_STAGE": STAGE,
            "OCG_ACCOUNT_ID": ACCOUNT,
            "OCG_SCHEMA_FILE": str(ROOT / "schema.graphql"),
            "OCG_WEBSOCKET_ENDPOINT": WS_ENDPOINT,
        }.items():
            patch.setenv(name, value)
        settings = load_settings()
        _provision(settings)
        activity = Activity()
        activity.watch(patch)
        athena = _own(boto3.client("athena", region_name=REGION))
        management = ManagementApi()
        world = World(
            settings,
            activity,
            {
                function: _load_function(function, settings, athena, activity, management)
                for function in FUNCTIONS
            },
            _own(boto3.client("dynamodb", region_name=REGION)),
            _own(boto3.client("dynamodbstreams", region_name=REGION)),
            _own(boto3.client("sqs", region_name=REGION)),
            athena,
            management,
        )
        watcher, dropped = world.socket("watcher"), world.socket("dropped-before-the-stream")
        for client in (watcher, dropped):
            client.subscribe("users", USERS_CREATED)
        dropped.drop()
        _run_socket_protocol(world)
        ids = _run_api(world.api)
        _run_api(world.socket("api-client"))  # the same, over a socket
        # An entity's relation whose row item is gone: the cascade finds it through GSI1.
        _forget_row_item(world, _relation_id(ids["ann"], ids["axe"]))
        _run_stream(world)  # entity and join row inserts, an update, removals; pushes
        # Live files and tombstones into the first compacted generation of each partition.
        first = _run_compaction(world)
        assert first["liveFolded"] and first["tombstonesFolded"], first
        _run_listener(
            world, CASCADE_FUNCTION, settings.cascade_queue_url, settings.cascade_queue_arn
        )
        tasks = _run_tasks(world, ids, world.api)
        _run_tasks(world, _run_api(world.sockets["api-client"]), world.sockets["api-client"])
        with _queries_held():  # subscribers of running tasks
            watcher.subscribe("succeeded", USERS_BY_CITY, id=tasks["succeeded"])
            world.socket("dropped-before-the-tracker").subscribe(
                "failed", USERS_BY_CITY, id=tasks["failed"]
            )
        world.sockets["dropped-before-the-tracker"].drop()
        _run_tracker(world, tasks)
        # Subscribers of queued deletion tasks: the product's (queued by a poll) and the
        # brand's (queued by the tracker).
        watcher.subscribe("queued", PRODUCT_DELETION, id=tasks["queued"])
        world.socket("dropped-before-the-deletion").subscribe(
            "deletion", BRAND_DELETION, id=tasks["deletion"]
        )
        world.sockets["dropped-before-the-deletion"].drop()
        _run_listener(
            world, DELETION_FUNCTION, settings.deletion_queue_url, settings.deletion_queue_arn
        )
        for gone in [name for name in world.sockets if name.startswith("dropped")]:
            world.sockets[gone].disconnect()  # API Gateway's $disconnect, late
        watcher.disconnect()
        _run_stream(world)  # the removed join rows
        # Their tombstones, over the partitions compacted before: a new generation
        # replaces the old one.
        again = _run_compaction(world)
        assert again["tombstonesFolded"] and again["filesDeleted"] > again["tombstonesFolded"]
        yield world
    sys.modules.pop("app", None)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_function_calls_exactly_what_its_role_grants(world: World, function: str) -> None:
    assert problems(world.calls(function), FUNCTION_NEEDS[function]) == []


def test_every_call_a_function_made_was_recorded(world: World) -> None:
    assert all(world.calls(function) for function in FUNCTIONS)
    assert world.activity.unrecorded == []


def test_the_stream_function_wrote_and_removed_lake_objects_in_s3(world: World) -> None:
    calls = {(call.action, call.target) for call in world.calls(STREAM_FUNCTION)}

    assert {
        ("s3:PutObject", Target.LIVE_OBJECTS),
        ("s3:DeleteObject", Target.LIVE_OBJECTS),
        ("s3:PutObject", Target.TOMBSTONES),  # a REMOVE leaves its tombstone
        ("sqs:SendMessage", Target.CASCADE_QUEUE),
    } <= calls


def test_compaction_lists_every_layer_and_writes_only_compacted_files(world: World) -> None:
    calls = world.calls(COMPACTION_FUNCTION)

    listed = {
        prefix for call in calls if call.action == "s3:ListBucket" for prefix in call.partition_keys
    }
    assert {prefix.split("/")[0] + "/" for prefix in listed} == {
        LIVE_KEYS,
        DELETED_KEYS,
        COMPACTED_KEYS,
    }
    assert {call.target for call in calls if call.action == "s3:PutObject"} == {
        Target.COMPACTED_OBJECTS
    }
    # Live files and tombstones are only deleted if unchanged: S3 also checks GetObject.
    assert {(call.action, call.target) for call in calls} >= {
        ("s3:DeleteObject", Target.TOMBSTONES),
        ("s3:GetObject", Target.TOMBSTONES),
        ("s3:DeleteObject", Target.COMPACTED_OBJECTS),  # the older generation
        ("s3:GetObject", Target.COMPACTED_OBJECTS),
    }
    assert not any(call.action.startswith(("dynamodb:", "sqs:", "athena:")) for call in calls)


def test_the_compaction_role_lists_the_lake_only_under_its_layers(world: World) -> None:
    settings = world.settings
    statements = function_policies(settings)[COMPACTION_FUNCTION]

    listings = [s for s in statements if s["Action"] == ["s3:ListBucket"]]
    assert [s["Condition"] for s in listings] == [
        {"StringLike": {"s3:prefix": [f"{prefix}*"]}}
        for prefix in (LIVE_KEYS, DELETED_KEYS, COMPACTED_KEYS)
    ]
    writes = [s for s in statements if "s3:PutObject" in s["Action"]]
    assert [s["Resource"] for s in writes] == [[{"Fn::Sub": "${LakeBucket.Arn}/compacted/*"}]]


def test_athena_reads_every_layer_for_the_api(world: World) -> None:
    on_behalf = [n for n in FUNCTION_NEEDS[API_FUNCTION] if n.caller is Caller.ATHENA]

    listed = {n.key_prefix for n in on_behalf if n.actions == ("s3:ListBucket",)}
    read = {t for n in on_behalf if n.actions == ("s3:GetObject",) for t in n.targets}
    assert listed == {LIVE_KEYS, COMPACTED_KEYS, DELETED_KEYS}
    assert {Target.LIVE_OBJECTS, Target.COMPACTED_OBJECTS, Target.TOMBSTONES} <= read


def test_task_grants_are_limited_to_task_items(world: World) -> None:
    for function in (DELETION_FUNCTION, TRACKER_FUNCTION):
        task_calls = [
            call
            for call in world.calls(function)
            if call.action in ("dynamodb:GetItem", "dynamodb:UpdateItem")
        ]
        assert task_calls, function
        assert all(key.startswith(TASK_KEYS) for call in task_calls for key in call.partition_keys)


def _lambda_grants(world: World) -> dict[str, set[tuple[str, Target]]]:
    """What Lambda does with each function's role, from the app's event sources and the
    deployment's event-source settings."""
    app, settings = world.api.module.app, world.settings
    grants: dict[str, set[tuple[str, Target]]] = {
        function: {(action, Target.LOG_GROUP) for action in LOG_NEED.actions}
        for function in FUNCTIONS
    }
    queues = {
        settings.cascade_queue_arn: Target.CASCADE_QUEUE,
        settings.deletion_queue_arn: Target.DELETION_QUEUE,
    }
    for source in app.event_sources:
        function = to_cfn_resource_name(source.name)
        if isinstance(source, DynamoDBEventConfig):
            reads = ("DescribeStream", "GetRecords", "GetShardIterator", "ListStreams")
            grants[function] |= {(f"dynamodb:{action}", Target.STREAM) for action in reads}
            if stream_settings("x")["DestinationConfig"]["OnFailure"]:
                grants[function].add(("sqs:SendMessage", Target.STREAM_FAILURES))
        elif isinstance(source, SQSEventConfig):
            consume = ("ReceiveMessage", "DeleteMessage", "GetQueueAttributes")
            queue = queues[str(source.queue_arn)]
            grants[function] |= {(f"sqs:{action}", queue) for action in consume}
        elif (
            isinstance(source, CloudWatchEventConfig)
            and function == TRACKER_FUNCTION
            and tracker_invoke_settings("x")["DestinationConfig"]["OnFailure"]
        ):
            grants[function].add(("sqs:SendMessage", Target.TRACKER_FAILURES))
    return grants


def test_lambdas_grants_follow_the_apps_event_sources(world: World) -> None:
    declared = {
        function: {
            (action, target)
            for need in (*needs, LOG_NEED)
            if need.caller is Caller.LAMBDA
            for action in need.actions
            for target in need.targets
        }
        for function, needs in FUNCTION_NEEDS.items()
    }

    assert declared == _lambda_grants(world)


def test_every_grant_on_a_functions_behalf_is_documented() -> None:
    for needs in FUNCTION_NEEDS.values():
        for need in (*needs, LOG_NEED):
            if need.caller is not Caller.CODE:
                assert need.source.startswith("https://docs.aws.amazon.com/") or (
                    need.source.startswith("https://repost.aws/knowledge-center/")
                ), need
                assert need.because_of and need.why, need


def test_no_function_is_granted_anything_of_cognito() -> None:
    """Sign-in verifies ID tokens against the pool's public keys, fetched over HTTPS: no
    AWS call, so no grant (a stage that signs users in has the same roles)."""
    actions = {action for needs in FUNCTION_NEEDS.values() for n in needs for action in n.actions}

    assert actions and not any(action.startswith("cognito") for action in actions)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_role_grants_exactly_its_needs(world: World, function: str) -> None:
    settings, handler = world.settings, function_names(world.api.module.app)[function]
    role = function_role(settings, handler, function_policies(settings)[function])

    granted = role_grants(role)
    assert len(granted) == len(set(granted)), "a grant is repeated"
    assert set(granted) == set(
        need_grants(settings, (*FUNCTION_NEEDS[function], LOG_NEED), handler)
    )


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_role_writes_only_to_its_own_log_group(world: World, function: str) -> None:
    settings, handler = world.settings, function_names(world.api.module.app)[function]
    role = function_role(settings, handler, function_policies(settings)[function])

    logs = [grant for grant in role_grants(role) if grant[0].startswith("logs:")]
    group = f"log-group:{log_group_name(settings, handler)}:*"
    assert sorted(action for action, _, _ in logs) == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert all(json.loads(resource)["Fn::Sub"].endswith(group) for _, resource, _ in logs)
    assert group == f"log-group:/aws/lambda/ocg-shop-dev-{handler}:*"


def test_both_deployment_paths_deploy_the_rendered_roles(world: World) -> None:
    from deploy.merge import merge_template
    from deploy.stack import DeployedWebSocket, stack_template

    settings, app = world.settings, world.api.module.app
    model = load_schema(settings.schema_file)
    functions = function_names(app)
    options = StageOptions()
    expected = {
        f"{function}Role": function_role(settings, functions[function], statements)
        for function, statements in function_policies(settings).items()
    }
    layer = "arn:aws:lambda:us-east-1:111111111111:layer:pyarrow:7"
    merged = merge_template(app, settings, model, options, stream_layer=layer)["Resources"]
    # Path (b) once chalice deploy made the WebSocket API: its id where path (a) refers.
    websocket = DeployedWebSocket("${WebsocketAPI}", "api", "wss://example")
    stacked = stack_template(settings, model, options, functions, websocket=websocket)["Resources"]

    for resources in (merged, stacked):
        roles = {k: v for k, v in resources.items() if v.get("Type") == "AWS::IAM::Role"}
        assert {k: roles[k] for k in expected} == expected


# The comparison reports what it should: by construction, each kind of drift.


def _without(needs: tuple[Need, ...], action: str) -> tuple[Need, ...]:
    kept = (replace(n, actions=tuple(a for a in n.actions if a != action)) for n in needs)
    return tuple(need for need in kept if need.actions)


def test_an_unused_grant_is_reported(world: World) -> None:
    extra = Need(("dynamodb:BatchGetItem",), (Target.TABLE,), "not used")

    found = problems(world.calls(API_FUNCTION), (*FUNCTION_NEEDS[API_FUNCTION], extra))

    assert found == ["is granted dynamodb:BatchGetItem on the table, which its code never calls"]


def test_a_call_not_granted_is_reported(world: World) -> None:
    needs = _without(FUNCTION_NEEDS[API_FUNCTION], "dynamodb:DeleteItem")

    found = problems(world.calls(API_FUNCTION), needs)

    assert found == ["calls dynamodb:DeleteItem on the table, which its role does not grant"]


def test_a_grant_on_another_resource_is_reported(world: World) -> None:
    needs = tuple(
        replace(need, targets=(Target.GSI2,)) if need.targets == (Target.GSI1,) else need
        for need in FUNCTION_NEEDS[CASCADE_FUNCTION]
    )

    assert problems(world.calls(CASCADE_FUNCTION), needs) == [
        "calls dynamodb:Query on index GSI1, which its role does not grant",
        "is granted dynamodb:Query on index GSI2, which its code never calls",
    ]


def test_a_task_grant_without_its_leading_keys_is_reported(world: World) -> None:
    needs = tuple(replace(need, key_prefix=None) for need in FUNCTION_NEEDS[TRACKER_FUNCTION])

    assert problems(world.calls(TRACKER_FUNCTION), needs) == [
        "calls dynamodb:GetItem on task items only: grant it with dynamodb:LeadingKeys task#*",
        "calls dynamodb:UpdateItem on task items only: grant it with dynamodb:LeadingKeys task#*",
    ]


def test_calls_outside_the_leading_keys_are_reported(world: World) -> None:
    needs = tuple(
        replace(need, key_prefix=TASK_KEYS) if need.targets == (Target.TABLE,) else need
        for need in FUNCTION_NEEDS[CASCADE_FUNCTION]
    )

    found = problems(world.calls(CASCADE_FUNCTION), needs)

    outside = [problem for problem in found if "outside its" in problem]
    assert len(outside) == 3  # Query, BatchGetItem, BatchWriteItem
    assert all("outside its dynamodb:LeadingKeys ['task#*']" in problem for problem in outside)
    # And none of them touches a task item: the narrowed grants go unused.
    assert sorted(set(found) - set(outside)) == [
        f"is granted dynamodb:{action} on the table with dynamodb:LeadingKeys task#*, which "
        "its code never uses"
        for action in ("BatchGetItem", "BatchWriteItem", "Query")
    ]


def _listings(needs: tuple[Need, ...], *prefixes: str | None) -> tuple[Need, ...]:
    """``needs`` with the lake listings replaced by one per prefix."""
    kept = tuple(n for n in needs if n.actions != ("s3:ListBucket",))
    listing = Need(("s3:ListBucket",), (Target.LAKE_BUCKET,), "lists", key_prefix=None)
    return (*kept, *(replace(listing, key_prefix=prefix) for prefix in prefixes))


def test_a_listing_prefix_the_code_never_lists_is_reported(world: World) -> None:
    needs = _listings(
        FUNCTION_NEEDS[COMPACTION_FUNCTION], LIVE_KEYS, DELETED_KEYS, COMPACTED_KEYS, "results/"
    )

    assert problems(world.calls(COMPACTION_FUNCTION), needs) == [
        "is granted s3:ListBucket on the lake bucket with s3:prefix results/*, which its "
        "code never uses"
    ]


def test_a_listing_outside_the_granted_prefixes_is_reported(world: World) -> None:
    needs = _listings(FUNCTION_NEEDS[COMPACTION_FUNCTION], LIVE_KEYS, DELETED_KEYS)

    (found,) = problems(world.calls(COMPACTION_FUNCTION), needs)

    assert found.startswith("calls s3:ListBucket on items ['compacted/")
    assert found.endswith("outside its s3:prefix ['deleted/*', 'tables/*']")


def test_a_listing_of_the_whole_lake_bucket_is_reported(world: World) -> None:
    needs = _listings(FUNCTION_NEEDS[COMPACTION_FUNCTION], None)

    (found,) = problems(world.calls(COMPACTION_FUNCTION), needs)

    assert found.startswith("lists the lake only under ['compacted/")
    assert found.endswith(": grant it with s3:prefix")


def test_a_conditional_delete_is_authorised_as_a_read_too(world: World) -> None:
    settings = world.settings
    key = {"Bucket": settings.lake_bucket, "Key": "deleted/user/x.parquet"}

    assert iam_calls(settings, "s3", "DeleteObject", {**key, "IfMatch": '"abc"'}) == [
        Call("s3:DeleteObject", Target.TOMBSTONES),
        Call("s3:GetObject", Target.TOMBSTONES),
    ]
    assert iam_calls(settings, "s3", "DeleteObject", key) == [
        Call("s3:DeleteObject", Target.TOMBSTONES)
    ]


def test_a_grant_for_athena_without_the_call_it_serves_is_reported(world: World) -> None:
    on_behalf = next(n for n in FUNCTION_NEEDS[DELETION_FUNCTION] if n.caller is Caller.ATHENA)

    found = problems(world.calls(CASCADE_FUNCTION), (*FUNCTION_NEEDS[CASCADE_FUNCTION], on_behalf))

    assert found == [
        "is granted s3:GetObject for Athena on behalf of athena:GetQueryResults, "
        "which its code never calls"
    ]


def test_an_extra_statement_in_a_role_is_noticed(world: World) -> None:
    settings = world.settings
    statements = function_policies(settings)[CASCADE_FUNCTION]
    extra = {"Effect": "Allow", "Action": ["dynamodb:GetItem"], "Resource": ["*"]}
    role = function_role(settings, "on_cascade_message", [*statements, extra])

    needs = (*FUNCTION_NEEDS[CASCADE_FUNCTION], LOG_NEED)
    granted = set(need_grants(settings, needs, "on_cascade_message"))
    assert set(role_grants(role)) - granted == {("dynamodb:GetItem", '"*"', "null")}


def test_a_transaction_is_authorised_item_by_item(world: World) -> None:
    table = world.settings.table_name
    item = {"PK": {"S": "joinTableData#r"}, "SK": {"S": "joinTableData#r"}}
    entity = {"PK": {"S": "user#u"}, "SK": {"S": "user#u"}}
    params = {
        "TransactItems": [
            {"Put": {"TableName": table, "Item": item}},
            {"ConditionCheck": {"TableName": table, "Key": entity, "ConditionExpression": "x"}},
            {"Delete": {"TableName": "other", "Key": entity}},
        ]
    }

    assert iam_calls(world.settings, "dynamodb", "TransactWriteItems", params) == [
        Call("dynamodb:PutItem", Target.TABLE, ("joinTableData#r",)),
        Call("dynamodb:ConditionCheckItem", Target.TABLE, ("user#u",)),
        Call("dynamodb:DeleteItem", "table other", ("user#u",)),
    ]


def test_objects_outside_their_prefix_match_no_grant(world: World) -> None:
    settings = world.settings

    def target(bucket: str, key: str) -> Any:
        (call,) = iam_calls(settings, "s3", "GetObject", {"Bucket": bucket, "Key": key})
        return call.target

    assert target(settings.lake_bucket, "tables/user/x.parquet") is Target.LIVE_OBJECTS
    assert target(settings.lake_bucket, "compacted/user/x.parquet") is Target.COMPACTED_OBJECTS
    assert target(settings.lake_bucket, "deleted/user/x.parquet") is Target.TOMBSTONES
    assert (
        target(settings.lake_bucket, "other/x.parquet")
        == f"s3://{settings.lake_bucket}/other/x.parquet"
    )
    assert target(settings.athena_results_bucket, "results/x.csv") is Target.RESULTS_OBJECTS
    assert target(settings.athena_results_bucket, "deploy/x.zip") != Target.RESULTS_OBJECTS


def test_a_call_through_a_client_services_did_not_make_is_noticed(world: World) -> None:
    stray = boto3.client("sqs", region_name=REGION)

    with world.activity.running(CASCADE_FUNCTION):
        stray.list_queues()

    assert world.activity.unrecorded.pop() == f"{CASCADE_FUNCTION}: sqs.ListQueues"
    assert world.activity.unrecorded == []


def test_results_are_granted_under_the_output_location_the_stage_sets(world: World) -> None:
    elsewhere = replace(world.settings, athena_output="s3://shared-results/ocg/shop")
    own_bucket = replace(
        world.settings, athena_output=f"s3://{world.settings.athena_results_bucket}/q/"
    )

    assert target_resources(elsewhere, Target.RESULTS_OBJECTS) == [
        {"Fn::Sub": "arn:${AWS::Partition}:s3:::shared-results/ocg/shop/*"}
    ]
    assert target_resources(elsewhere, Target.RESULTS_BUCKET) == [
        {"Fn::Sub": "arn:${AWS::Partition}:s3:::shared-results"}
    ]
    assert target_resources(own_bucket, Target.RESULTS_OBJECTS) == [
        {"Fn::Sub": "${AthenaResultsBucket.Arn}/q/*"}
    ]
    assert target_resources(own_bucket, Target.RESULTS_BUCKET) == [
        {"Fn::GetAtt": ["AthenaResultsBucket", "Arn"]}
    ]
    with pytest.raises(ValueError, match="must be s3://<bucket>/<prefix>/"):
        target_resources(replace(world.settings, athena_output="s3://bucket-only/"), Target.TABLE)


def test_before_the_websocket_api_exists_no_role_is_granted_anything_on_it(
    world: World,
) -> None:
    """Path (b) before its first chalice deploy: no API id to grant on, and no function
    has the endpoint to push to, so the grants come with finish."""
    before = json.dumps(function_policies(world.settings, None))
    after = function_policies(world.settings, WebSocketApi("abc123", "api"))

    assert "execute-api" not in before and "${WebsocketAPI}" not in before
    (grant,) = [
        s for s in after[STREAM_FUNCTION] if s["Action"] == ["execute-api:ManageConnections"]
    ]
    assert grant["Resource"] == [
        {
            "Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:"
            "abc123/api/POST/@connections/*"
        }
    ]
    # Each pushing function and the message function post; nobody else manages a socket.
    managing = sorted(
        function
        for function, statements in after.items()
        if any("execute-api:ManageConnections" in s["Action"] for s in statements)
    )
    assert managing == sorted(PUSHING_FUNCTIONS)


def _pushed(socket: Socket, subscription_id: str) -> list[Any]:
    return [
        (m["type"], *m.get("payload", {}).get("data", {}).values())
        for m in socket.messages(subscription_id)
    ]


def test_subscribers_heard_of_each_event_the_functions_pushed(world: World) -> None:
    watcher = world.sockets["watcher"]

    created = [each["name"] for _, each in _pushed(watcher, "users")]
    assert created == ["ann", "bob", "ann", "bob"]  # over HTTP, then over the socket
    assert _pushed(watcher, "succeeded") == [
        ("next", {"taskStatus": "RUNNING", "result": None}),  # on subscribe
        ("next", {"taskStatus": "SUCCEEDED", "result": []}),  # from the tracker
        ("complete",),
    ]
    assert _pushed(watcher, "queued") == [
        ("next", {"taskStatus": "RUNNING"}),
        ("next", {"taskStatus": "SUCCEEDED"}),  # from the deletion listener
        ("complete",),
    ]
    assert world.sockets["completes"].received == [{"type": "connection_ack"}]


@pytest.mark.parametrize(
    ("function", "client"),
    [
        (STREAM_FUNCTION, "dropped-before-the-stream"),
        (TRACKER_FUNCTION, "dropped-before-the-tracker"),
        (DELETION_FUNCTION, "dropped-before-the-deletion"),
        (WS_MESSAGE_FUNCTION, "dropped-before-its-pong"),
    ],
)
def test_a_push_to_a_client_that_dropped_forgets_it(
    world: World, function: str, client: str
) -> None:
    forgotten = {
        key
        for call in world.calls(function)
        if call.action == "dynamodb:DeleteItem"
        for key in call.partition_keys
    }

    assert keys.ws_connection_partition(client) in forgotten
