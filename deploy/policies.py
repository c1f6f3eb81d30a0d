"""Least privilege: one IAM role per function, granted what that function needs and nothing else.

:data:`FUNCTION_NEEDS` is the table every grant comes from: for each function (by its
logical id) the IAM actions it needs, on which resource, under which condition, why,
and who makes the calls:

- ``CODE``: the function's own boto3 calls (``chalicelib``). ``tests/deploy/test_policies.py``
  runs every code path of every function against moto, records each call with the
  resource it touched, and fails when a role grants an action, resource or key range the
  code does not use, or the code calls something not granted.
- ``ATHENA``: Athena acting with the caller's credentials. A query the API starts reads
  the Glue catalogue and the lake and writes its result; ``GetQueryResults`` reads the
  result from S3. Each such need names the call it serves and the AWS documentation
  that says so; the test checks that the function makes that call.
- ``LAMBDA``: Lambda acting with the function's role: the event-source mapping that
  polls the stream or a queue, an on-failure destination, the function's logs. The test
  checks these against the app's event sources.

The lake's objects are granted by layer (``chalicelib.lake.layers``): live files under
``tables/``, compacted files under ``compacted/``, tombstones under ``deleted/``. The
stream function writes live files and tombstones, compaction folds both into compacted
files, Athena reads all three.

Roles are rendered from the table and from nothing else (:func:`function_policies`,
:func:`function_role`): a grant exists only because a need says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from chalicelib import keys
from chalicelib.settings import Settings
from deploy.names import API_FUNCTION, log_group_name
from deploy.resources import (
    CASCADE_QUEUE,
    DELETION_QUEUE,
    LAKE_BUCKET,
    RESULTS_BUCKET,
    STREAM_FAILURES,
    TABLE,
    TRACKER_FAILURES,
    WORKGROUP,
    assumed_by,
)

# Chalice's logical ids: the API function (``deploy.names``), and one per event handler
# in app.py (``chalice.utils.to_cfn_resource_name`` of the handler's name).
STREAM_FUNCTION, CASCADE_FUNCTION = "OnTableChange", "OnCascadeMessage"
DELETION_FUNCTION, TRACKER_FUNCTION = "OnDeletionMessage", "OnAthenaStateChange"
COMPACTION_FUNCTION = "CompactLake"
# The WebSocket API's functions (GraphQL subscriptions), as Chalice names them
# (``deploy.names.WEBSOCKET_HANDLER_NAMES``).
WS_CONNECT_FUNCTION, WS_MESSAGE_FUNCTION = "WebsocketConnect", "WebsocketMessage"
WS_DISCONNECT_FUNCTION = "WebsocketDisconnect"
WEBSOCKET_FUNCTIONS = (WS_CONNECT_FUNCTION, WS_MESSAGE_FUNCTION, WS_DISCONNECT_FUNCTION)
FUNCTIONS = (
    API_FUNCTION,
    STREAM_FUNCTION,
    CASCADE_FUNCTION,
    DELETION_FUNCTION,
    TRACKER_FUNCTION,
    COMPACTION_FUNCTION,
    *WEBSOCKET_FUNCTIONS,
)
# The functions that push to WebSocket clients through the Management API: each gets
# the endpoint (``OCG_WEBSOCKET_ENDPOINT``) in its environment.
PUSHING_FUNCTIONS = (WS_MESSAGE_FUNCTION, STREAM_FUNCTION, TRACKER_FUNCTION, DELETION_FUNCTION)
# The functions that read or write Parquet: they alone get the pyarrow layer.
PYARROW_FUNCTIONS = (STREAM_FUNCTION, COMPACTION_FUNCTION)

# The partition keys of task items (``task#<id>``), and the keys of each layer's lake
# objects: live files, compacted files, tombstones.
TASK_KEYS = f"{keys.TASK_PREFIX}#"
LIVE_KEYS = f"{keys.LAKE_PREFIX}/"
COMPACTED_KEYS = f"{keys.COMPACTED_PREFIX}/"
DELETED_KEYS = f"{keys.DELETED_PREFIX}/"
# The partition keys of WebSocket connections and their subscriptions (``wsConnection#``).
WS_CONNECTION_KEYS = f"{keys.WS_CONNECTION_PREFIX}#"
MANAGE_CONNECTIONS = "execute-api:ManageConnections"
# The WebSocket API in path (a)'s template (Chalice's logical id), as Fn::Sub text.
WEBSOCKET_API = "WebsocketAPI"


@dataclass(frozen=True)
class WebSocketApi:
    """The WebSocket API whose connections the functions manage: its id as ``Fn::Sub``
    text (``${WebsocketAPI}`` in path (a)'s template, the id ``chalice deploy`` gave it
    on path (b)) and its stage."""

    api_id: str
    stage: str


# Path (a)'s: the template's API, on Chalice's default stage name.
TEMPLATE_WEBSOCKET_API = WebSocketApi(f"${{{WEBSOCKET_API}}}", "api")


class Target(Enum):
    """What a grant is on; :func:`target_resources` gives each its ARNs."""

    TABLE = "the table"
    GSI1 = f"index {keys.GSI1}"
    GSI2 = f"index {keys.GSI2}"
    STREAM = "the table's stream"
    LAKE_BUCKET = "the lake bucket"
    LIVE_OBJECTS = f"live lake files under {LIVE_KEYS}"
    COMPACTED_OBJECTS = f"compacted lake files under {COMPACTED_KEYS}"
    TOMBSTONES = f"lake tombstones under {DELETED_KEYS}"
    RESULTS_BUCKET = "the bucket of the Athena output location"
    RESULTS_OBJECTS = "objects under the Athena output location"
    CASCADE_QUEUE = "the cascade queue"
    DELETION_QUEUE = "the deletion queue"
    STREAM_FAILURES = "the stream's failure queue"
    TRACKER_FAILURES = "the tracker's failure queue"
    WORKGROUP = "the Athena workgroup"
    GLUE_CATALOG = "the Glue catalogue"
    GLUE_DATABASE = "the Glue database"
    GLUE_TABLES = "the Glue database's tables"
    LOG_GROUP = "the function's own log group"
    WS_POST = "POST @connections/* of the stage's WebSocket API (send to a client)"
    WS_DELETE = "DELETE @connections/* of the stage's WebSocket API (close a client)"


# Each layer's key prefix and its objects.
LAYER_OBJECTS = {
    LIVE_KEYS: Target.LIVE_OBJECTS,
    COMPACTED_KEYS: Target.COMPACTED_OBJECTS,
    DELETED_KEYS: Target.TOMBSTONES,
}


class Caller(Enum):
    CODE = "the function's code"
    ATHENA = "Athena, with the caller's credentials"
    LAMBDA = "Lambda, with the function's role"


# What Lambda does with a function's role, by what makes it do it.
STREAM_MAPPING = "the DynamoDB stream event-source mapping"
QUEUE_MAPPING = "the SQS event-source mapping"
STREAM_FAILURE_DESTINATION = "the stream mapping's on-failure destination"
ASYNC_FAILURE_DESTINATION = "the asynchronous-invocation on-failure destination"
FUNCTION_LOGS = "the function's logs"

# Where each grant Athena and Lambda use on a function's behalf is documented.
ATHENA_GLUE_DOC = (
    "https://docs.aws.amazon.com/athena/latest/ug/fine-grained-access-to-glue-resources.html"
)
ATHENA_S3_DOC = "https://docs.aws.amazon.com/athena/latest/ug/s3-permissions.html"
ATHENA_DATA_BUCKET_DOC = (
    "https://docs.aws.amazon.com/athena/latest/ug/cross-account-permissions.html"
)
ATHENA_OUTPUT_BUCKET_DOC = "https://repost.aws/knowledge-center/athena-output-bucket-error"
ATHENA_MANAGED_POLICY_DOC = (
    "https://docs.aws.amazon.com/athena/latest/ug/amazonathenafullaccess-managed-policy.html"
)
ATHENA_PARTITION_PROJECTION_DOC = (
    "https://docs.aws.amazon.com/athena/latest/ug/partition-projection.html"
)
ATHENA_GET_QUERY_RESULTS_DOC = (
    "https://docs.aws.amazon.com/athena/latest/APIReference/API_GetQueryResults.html"
)
LAMBDA_DYNAMODB_DOC = "https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html"
LAMBDA_SQS_DOC = "https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html"
LAMBDA_STREAM_DESTINATION_DOC = (
    "https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html"
)
LAMBDA_ASYNC_DESTINATION_DOC = (
    "https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html"
)
S3_CONDITIONAL_DELETE_DOC = (
    "https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-delete-enforce.html"
)
LAMBDA_LOGS_DOC = "https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs.html"


@dataclass(frozen=True)
class Need:
    """Actions a function needs on some targets, and why.

    ``key_prefix`` narrows the grant: on the table, to items whose partition key starts
    with it (``dynamodb:LeadingKeys``); on a bucket, to listing under it (``s3:prefix``).
    ``because_of`` is, for Athena, the call that makes Athena act, and for Lambda, what
    makes Lambda act (an event-source mapping, a destination, the logs)."""

    actions: tuple[str, ...]
    targets: tuple[Target, ...]
    why: str
    caller: Caller = Caller.CODE
    because_of: str = ""
    source: str = ""
    key_prefix: str | None = None


def _code(
    actions: tuple[str, ...], *targets: Target, why: str, key_prefix: str | None = None
) -> Need:
    return Need(actions, targets, why, key_prefix=key_prefix)


def _athena(
    actions: tuple[str, ...],
    *targets: Target,
    because_of: str,
    why: str,
    source: str,
    key_prefix: str | None = None,
) -> Need:
    return Need(actions, targets, why, Caller.ATHENA, because_of, source, key_prefix)


def _lambda(
    actions: tuple[str, ...], *targets: Target, because_of: str, why: str, source: str
) -> Need:
    return Need(actions, targets, why, Caller.LAMBDA, because_of, source)


_QUEUE_CONSUME = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")
_START = "athena:StartQueryExecution"
_RESULTS = "athena:GetQueryResults"

# What Athena does with the caller's credentials for a query the API starts, and when
# the API or the deletion listener reads a result.
_QUERY_ON_BEHALF = (
    _athena(
        ("glue:GetDatabase",),
        Target.GLUE_CATALOG,
        Target.GLUE_DATABASE,
        because_of=_START,
        why="the query's database (QueryExecutionContext), checked on it and its ancestor, "
        "the catalogue",
        source=ATHENA_GLUE_DOC,
    ),
    _athena(
        ("glue:GetTable",),
        Target.GLUE_CATALOG,
        Target.GLUE_DATABASE,
        Target.GLUE_TABLES,
        because_of=_START,
        why="each table the SQL names, checked on it and its ancestors (database, "
        "catalogue); partition projection means no glue:GetPartitions "
        f"({ATHENA_PARTITION_PROJECTION_DOC})",
        source=ATHENA_GLUE_DOC,
    ),
    _athena(
        ("s3:GetBucketLocation",),
        Target.LAKE_BUCKET,
        because_of=_START,
        why="the region of the bucket holding the tables' data",
        source=ATHENA_DATA_BUCKET_DOC,
    ),
    *(
        _athena(
            ("s3:ListBucket",),
            Target.LAKE_BUCKET,
            because_of=_START,
            why="a lake table is read through its three layers' Glue tables "
            "(chalicelib.lake.layers.merged_select): the Parquet files of each projected "
            f"partition, listed under each layer's location ({prefix}<table>/year=…/"
            "month=…/day=…/)",
            source=ATHENA_S3_DOC,
            key_prefix=prefix,
        )
        for prefix in LAYER_OBJECTS
    ),
    _athena(
        ("s3:GetObject",),
        *LAYER_OBJECTS.values(),
        because_of=_START,
        why="the Parquet files the query scans: live files, compacted files, tombstones",
        source=ATHENA_S3_DOC,
    ),
    _athena(
        ("s3:GetBucketLocation",),
        Target.RESULTS_BUCKET,
        because_of=_START,
        why="Athena verifies the workgroup's output bucket before it runs the query",
        source=ATHENA_OUTPUT_BUCKET_DOC,
    ),
    _athena(
        ("s3:PutObject", "s3:AbortMultipartUpload"),
        Target.RESULTS_OBJECTS,
        because_of=_START,
        why="the query's result and metadata files, written (in parts when large) to the "
        "workgroup's output location",
        source=ATHENA_MANAGED_POLICY_DOC,
    ),
)
_RESULTS_ON_BEHALF = _athena(
    ("s3:GetObject",),
    Target.RESULTS_OBJECTS,
    because_of=_RESULTS,
    why="GetQueryResults streams the result file from the output location, which the "
    "caller must be allowed to read",
    source=ATHENA_GET_QUERY_RESULTS_DOC,
)


def _consume(queue: Target) -> Need:
    return _lambda(
        _QUEUE_CONSUME,
        queue,
        because_of=QUEUE_MAPPING,
        why="Lambda polls the queue, deletes what the function processed and reads the "
        "queue's attributes",
        source=LAMBDA_SQS_DOC,
    )


# What the subscription registry (chalicelib.subscriptions.registry) does on the items of
# a connection, all under its partition wsConnection#<id>.
def _ws_items(actions: tuple[str, ...], why: str) -> Need:
    return _code(actions, Target.TABLE, why=why, key_prefix=WS_CONNECTION_KEYS)


# A push that finds its connection gone removes the connection's items
# (SubscriptionRegistry.disconnect).
_WS_FORGET = _ws_items(
    ("dynamodb:Query", "dynamodb:DeleteItem"),
    why="a connection that is gone (or closes): its subscriptions and itself removed "
    "(chalicelib.subscriptions.registry)",
)
_WS_POST = _code(
    (MANAGE_CONNECTIONS,),
    Target.WS_POST,
    why="sends a client its messages through the Management API (PostToConnection)",
)
_WS_SUBSCRIBERS = _code(
    ("dynamodb:Query",),
    Target.GSI1,
    why="an event's subscribers, found under their topic (wsTopic#…)",
)


# No function needs anything of Cognito: on a stage that signs users in, the API
# function verifies ID tokens against the user pool's public keys (JWKS), fetched over
# HTTPS from the pool's issuer, not through an AWS API; the others only read the pool's
# ids from their environment. So no role is granted a cognito-idp action.
# What each function needs for the data: its work without GraphQL subscriptions.
DATA_NEEDS: Mapping[str, tuple[Need, ...]] = {
    API_FUNCTION: (
        _code(
            ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"),
            Target.TABLE,
            why="entities: read, create, update, delete (chalicelib.store)",
        ),
        _code(
            ("dynamodb:PutItem", "dynamodb:ConditionCheckItem", "dynamodb:GetItem"),
            Target.TABLE,
            why="a join INSERT: TransactWriteItems is authorised item by item, a Put for the "
            "row and each relation item, a ConditionCheck per referenced entity; a "
            "cancelled one reads the row already there (chalicelib.relations.creation)",
        ),
        _code(
            ("dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem"),
            Target.TABLE,
            why="tasks: a trigger records its task, taskResult… reads it and a poll "
            "finishes it or queues a deletion (chalicelib.tasks.service)",
        ),
        _code(
            ("dynamodb:Query",),
            Target.GSI2,
            why="list…: an entity type's page, newest or oldest first (chalicelib.store)",
        ),
        _code(
            (_START, "athena:GetQueryExecution", _RESULTS),
            Target.WORKGROUP,
            why="triggerTask… starts the task's SQL; taskResult… polls a running query and "
            "reads the result (chalicelib.tasks.athena)",
        ),
        _code(
            ("sqs:SendMessage",),
            Target.DELETION_QUEUE,
            why="a poll that finds a deletion task's SELECT succeeded queues the task "
            "(chalicelib.tasks.service)",
        ),
        *_QUERY_ON_BEHALF,
        _RESULTS_ON_BEHALF,
    ),
    STREAM_FUNCTION: (
        _lambda(
            (
                "dynamodb:DescribeStream",
                "dynamodb:GetRecords",
                "dynamodb:GetShardIterator",
                "dynamodb:ListStreams",
            ),
            Target.STREAM,
            because_of=STREAM_MAPPING,
            why="Lambda reads the table's stream and invokes the function with its records",
            source=LAMBDA_DYNAMODB_DOC,
        ),
        _lambda(
            ("sqs:SendMessage",),
            Target.STREAM_FAILURES,
            because_of=STREAM_FAILURE_DESTINATION,
            why="a record still failing after its retries is sent to the failure queue",
            source=LAMBDA_STREAM_DESTINATION_DOC,
        ),
        _code(
            ("s3:PutObject", "s3:DeleteObject"),
            Target.LIVE_OBJECTS,
            why="writes an entity's or join row's live Parquet file, deletes it on REMOVE "
            "(chalicelib.lake.stream)",
        ),
        _code(
            ("s3:PutObject",),
            Target.TOMBSTONES,
            why="a REMOVE first writes the item's tombstone, which hides its compacted row "
            "until compaction folds the removal in",
        ),
        _code(
            ("sqs:SendMessage",),
            Target.CASCADE_QUEUE,
            why="an entity REMOVE asks the cascade listener to remove its relations",
        ),
    ),
    CASCADE_FUNCTION: (
        _consume(Target.CASCADE_QUEUE),
        _code(
            ("dynamodb:Query",),
            Target.TABLE,
            why="the removed entity's relation items, its joinRelation#t#id partition "
            "(chalicelib.relations.removal)",
        ),
        _code(
            ("dynamodb:BatchGetItem", "dynamodb:BatchWriteItem"),
            Target.TABLE,
            why="reads the relations' row items, deletes row and relation items in batches",
        ),
        _code(
            ("dynamodb:Query",),
            Target.GSI1,
            why="a relation whose row item is gone: its items found by relation id",
        ),
    ),
    DELETION_FUNCTION: (
        _consume(Target.DELETION_QUEUE),
        _code(
            ("dynamodb:GetItem", "dynamodb:UpdateItem"),
            Target.TABLE,
            why="reads the deletion task, marks it SUCCEEDED (chalicelib.deletions)",
            key_prefix=TASK_KEYS,
        ),
        _code(
            (_RESULTS,),
            Target.WORKGROUP,
            why="every page of the task's SELECT result",
        ),
        _RESULTS_ON_BEHALF,
        _code(
            ("dynamodb:BatchGetItem", "dynamodb:BatchWriteItem"),
            Target.TABLE,
            why="reads the selected rows' items, deletes row and relation items in batches "
            "(chalicelib.relations.removal)",
        ),
        _code(
            ("dynamodb:Query",),
            Target.GSI1,
            why="a selected relation whose row item is gone: its items found by relation id",
        ),
    ),
    TRACKER_FUNCTION: (
        _lambda(
            ("sqs:SendMessage",),
            Target.TRACKER_FAILURES,
            because_of=ASYNC_FAILURE_DESTINATION,
            why="an event still failing after Lambda's retries is sent to the failure queue",
            source=LAMBDA_ASYNC_DESTINATION_DOC,
        ),
        _code(
            ("dynamodb:GetItem", "dynamodb:UpdateItem"),
            Target.TABLE,
            why="reads the task of a finished query and moves it on (chalicelib.tasks.service)",
            key_prefix=TASK_KEYS,
        ),
        _code(
            ("athena:GetQueryExecution",),
            Target.WORKGROUP,
            why="the query's finish time, failure reason and submission time",
        ),
        _code(
            ("sqs:SendMessage",),
            Target.DELETION_QUEUE,
            why="a deletion task whose SELECT succeeded is queued for the deletion listener",
        ),
    ),
    COMPACTION_FUNCTION: (
        _code(
            ("s3:ListBucket",),
            Target.LAKE_BUCKET,
            why="each lake table's live files, what changed since the last run "
            "(chalicelib.lake.compaction)",
            key_prefix=LIVE_KEYS,
        ),
        _code(
            ("s3:ListBucket",),
            Target.LAKE_BUCKET,
            why="each lake table's tombstones, removals not folded yet",
            key_prefix=DELETED_KEYS,
        ),
        _code(
            ("s3:ListBucket",),
            Target.LAKE_BUCKET,
            why="the compacted generations of each changed partition",
            key_prefix=COMPACTED_KEYS,
        ),
        _code(
            ("s3:GetObject", "s3:DeleteObject"),
            Target.LIVE_OBJECTS,
            Target.TOMBSTONES,
            why="reads each live file, then deletes each folded live file and tombstone "
            "only if it is still the version read: a delete with If-Match (the ETag), "
            "which S3 authorises as s3:DeleteObject and s3:GetObject both "
            f"({S3_CONDITIONAL_DELETE_DOC})",
        ),
        _code(
            ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"),
            Target.COMPACTED_OBJECTS,
            why="reads the partition's newest generation, writes the new one, deletes the "
            "older ones",
        ),
    ),
}

# GraphQL subscriptions (chalicelib.subscriptions): the WebSocket functions keep the
# connections and subscriptions in the table; the message function also runs queries and
# mutations sent over the socket, as the API function does, so it needs what that
# needs. Each event source that makes an event pushes it to its subscribers: the stream
# (entity changes), the tracker and the deletion listener (task states). Sign-in is the
# ID token of ``connection_init``, verified over HTTPS as the API's: nothing of Cognito.
FUNCTION_NEEDS: Mapping[str, tuple[Need, ...]] = {
    **DATA_NEEDS,
    STREAM_FUNCTION: (*DATA_NEEDS[STREAM_FUNCTION], _WS_SUBSCRIBERS, _WS_POST, _WS_FORGET),
    TRACKER_FUNCTION: (
        *DATA_NEEDS[TRACKER_FUNCTION],
        _WS_SUBSCRIBERS,
        _code(
            (_RESULTS,),
            Target.WORKGROUP,
            why="a finished task's subscription runs taskResult… as its subscriber, which "
            "reads the result",
        ),
        _RESULTS_ON_BEHALF,
        _WS_POST,
        _WS_FORGET,
    ),
    DELETION_FUNCTION: (*DATA_NEEDS[DELETION_FUNCTION], _WS_SUBSCRIBERS, _WS_POST, _WS_FORGET),
    WS_CONNECT_FUNCTION: (
        _ws_items(("dynamodb:PutItem",), why="$connect records the connection, not signed in yet"),
    ),
    WS_MESSAGE_FUNCTION: (
        *DATA_NEEDS[API_FUNCTION],
        _ws_items(
            ("dynamodb:UpdateItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"),
            why="connection_init records who signed in; subscribe reads it and records the "
            "subscription; complete removes it",
        ),
        _WS_POST,
        _WS_FORGET,
        _code(
            (MANAGE_CONNECTIONS,),
            Target.WS_DELETE,
            why="closes a connection that broke the protocol or failed to sign in "
            "(DeleteConnection)",
        ),
    ),
    WS_DISCONNECT_FUNCTION: (_WS_FORGET,),
}

# Every function writes its logs; Chalice creates the log group, with the stage's
# retention, on both deployment paths, so no function may create one.
LOG_NEED = _lambda(
    ("logs:CreateLogStream", "logs:PutLogEvents"),
    Target.LOG_GROUP,
    because_of=FUNCTION_LOGS,
    why="Lambda writes the function's output to streams of its own log group",
    source=LAMBDA_LOGS_DOC,
)


def _sub(text: str) -> dict[str, str]:
    return {"Fn::Sub": text}


def _arn(logical_id: str, attribute: str = "Arn") -> dict[str, list[str]]:
    return {"Fn::GetAtt": [logical_id, attribute]}


def athena_output_location(settings: Settings) -> tuple[str, str]:
    """The bucket and key prefix of the workgroup's output location (``s3://b/results/``
    → ``("b", "results/")``)."""
    location = settings.athena_output.removeprefix("s3://")
    bucket, _, prefix = location.partition("/")
    if not bucket or not prefix:
        raise ValueError(
            f"OCG_ATHENA_OUTPUT={settings.athena_output!r} must be s3://<bucket>/<prefix>/: "
            "query results get a prefix of their own"
        )
    return bucket, prefix if prefix.endswith("/") else f"{prefix}/"


def _results_bucket_arn(settings: Settings) -> str:
    """The output bucket's ARN in ``Fn::Sub`` syntax: the stage's results bucket, or the
    bucket ``OCG_ATHENA_OUTPUT`` names."""
    bucket, _ = athena_output_location(settings)
    if bucket == settings.athena_results_bucket:
        return f"${{{RESULTS_BUCKET}.Arn}}"
    return f"arn:${{AWS::Partition}}:s3:::{bucket}"


def target_resources(
    settings: Settings,
    target: Target,
    handler: str = "",
    websocket: WebSocketApi = TEMPLATE_WEBSOCKET_API,
) -> list[Any]:
    """The ARNs of a target; ``handler`` (the function's Chalice name) for its log group,
    ``websocket`` for the connections of the WebSocket API."""
    glue = "arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}"
    database = settings.glue_database
    bucket, results_prefix = athena_output_location(settings)
    arns: dict[Target, Any] = {
        Target.TABLE: _arn(TABLE),
        Target.GSI1: _sub(f"${{{TABLE}.Arn}}/index/{keys.GSI1}"),
        Target.GSI2: _sub(f"${{{TABLE}.Arn}}/index/{keys.GSI2}"),
        Target.STREAM: _arn(TABLE, "StreamArn"),
        Target.LAKE_BUCKET: _arn(LAKE_BUCKET),
        **{
            objects: _sub(f"${{{LAKE_BUCKET}.Arn}}/{prefix}*")
            for prefix, objects in LAYER_OBJECTS.items()
        },
        Target.RESULTS_BUCKET: (
            _arn(RESULTS_BUCKET)
            if bucket == settings.athena_results_bucket
            else _sub(_results_bucket_arn(settings))
        ),
        Target.RESULTS_OBJECTS: _sub(f"{_results_bucket_arn(settings)}/{results_prefix}*"),
        Target.CASCADE_QUEUE: _arn(CASCADE_QUEUE),
        Target.DELETION_QUEUE: _arn(DELETION_QUEUE),
        Target.STREAM_FAILURES: _arn(STREAM_FAILURES),
        Target.TRACKER_FAILURES: _arn(TRACKER_FAILURES),
        Target.WORKGROUP: _sub(
            f"arn:${{AWS::Partition}}:athena:${{AWS::Region}}:${{AWS::AccountId}}:"
            f"workgroup/${{{WORKGROUP}}}"
        ),
        Target.GLUE_CATALOG: _sub(f"{glue}:catalog"),
        Target.GLUE_DATABASE: _sub(f"{glue}:database/{database}"),
        Target.GLUE_TABLES: _sub(f"{glue}:table/{database}/*"),
    }
    if target in (Target.WS_POST, Target.WS_DELETE):
        method = "POST" if target is Target.WS_POST else "DELETE"
        return [
            _sub(
                "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:"
                f"{websocket.api_id}/{websocket.stage}/{method}/@connections/*"
            )
        ]
    if target is Target.LOG_GROUP:
        if not handler:
            raise ValueError("a log group grant needs the function's handler name")
        return [
            _sub(
                "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:"
                f"log-group:{log_group_name(settings, handler)}:*"
            )
        ]
    return [arns[target]]


def need_condition(need: Need) -> dict[str, Any] | None:
    """The IAM condition that narrows a need to its key prefix, if it has one.

    ``dynamodb:LeadingKeys`` holds the partition keys of the items a request touches
    (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/specifying-conditions.html),
    ``s3:prefix`` the prefix a listing asks for
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/amazon-s3-policy-keys.html)."""
    if need.key_prefix is None:
        return None
    if need.targets == (Target.TABLE,):
        return {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{need.key_prefix}*"]}}
    if need.targets == (Target.LAKE_BUCKET,) and need.actions == ("s3:ListBucket",):
        return {"StringLike": {"s3:prefix": [f"{need.key_prefix}*"]}}
    raise ValueError(f"a key prefix narrows the table, or s3:ListBucket on a bucket: {need}")


def statements(
    settings: Settings,
    needs: tuple[Need, ...],
    handler: str = "",
    websocket: WebSocketApi = TEMPLATE_WEBSOCKET_API,
) -> list[Any]:
    """IAM statements granting exactly ``needs``: those on the same resources under the
    same condition share a statement, in the order the table gives them."""
    grouped: dict[str, dict[str, Any]] = {}
    for need in needs:
        resources = [
            arn
            for target in need.targets
            for arn in target_resources(settings, target, handler, websocket)
        ]
        condition = need_condition(need)
        key = repr((resources, condition))
        statement = grouped.setdefault(
            key, {"Effect": "Allow", "Action": [], "Resource": resources}
        )
        if condition is not None:
            statement["Condition"] = condition
        statement["Action"] = sorted({*statement["Action"], *need.actions})
    return list(grouped.values())


def function_policies(
    settings: Settings, websocket: WebSocketApi | None = TEMPLATE_WEBSOCKET_API
) -> dict[str, list[dict[str, Any]]]:
    """The policy statements of each function, by its logical id (its logs aside:
    :func:`function_role` adds them).

    ``websocket`` is the WebSocket API whose connections they manage; ``None`` before it
    exists (path b, before the first ``chalice deploy``): no function is granted
    anything on it then, and none pushes, having no endpoint yet."""
    api = websocket or TEMPLATE_WEBSOCKET_API  # unused when None: no need names it
    return {
        function: statements(settings, websocket_needs(needs, websocket), "", api)
        for function, needs in FUNCTION_NEEDS.items()
    }


def websocket_needs(needs: tuple[Need, ...], websocket: WebSocketApi | None) -> tuple[Need, ...]:
    """``needs``, without those on the WebSocket API's connections when it does not exist."""
    if websocket is not None:
        return needs
    on_connections = {Target.WS_POST, Target.WS_DELETE}
    return tuple(need for need in needs if not on_connections & set(need.targets))


def function_role(
    settings: Settings, handler: str, function_statements: list[dict[str, Any]]
) -> dict[str, Any]:
    """The role Lambda assumes for the function Chalice names ``handler`` (``api_handler``,
    ``on_table_change``, …): its statements, and its own log group's streams."""
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": assumed_by("lambda.amazonaws.com"),
            "Policies": [
                {
                    "PolicyName": "least-privilege",
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            *statements(settings, (LOG_NEED,), handler),
                            *function_statements,
                        ],
                    },
                }
            ],
        },
    }
