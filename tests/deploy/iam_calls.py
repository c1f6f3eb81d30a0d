"""What IAM authorises when a function's code calls AWS, and how that compares with a role.

A botocore ``provide-client-params`` hook on every client a function uses records each
call it makes (service, operation, parameters). :func:`iam_calls` turns one call into the
IAM action(s) AWS checks for it and the resource each one touches, named as
:class:`deploy.policies.Target` names it: the table or the index a Query names, lake
objects of each layer (``tables/``, ``compacted/``, ``deleted/``), results under the
output prefix, a queue, the workgroup, the WebSocket API's POST or DELETE of a
connection. For the table it also keeps the partition keys the call touches, which
``dynamodb:LeadingKeys`` conditions on, and for a listing of the lake bucket the prefix
listed, which ``s3:prefix`` conditions on. Anything it cannot
place is named as it is, so it never matches a grant by accident.

:func:`problems` compares what a function called with what its role's needs grant, and
:func:`role_grants`/:func:`need_grants` compare a rendered role with the needs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib import keys
from chalicelib.settings import Settings
from deploy.policies import (
    LAYER_OBJECTS,
    MANAGE_CONNECTIONS,
    TASK_KEYS,
    Caller,
    Need,
    Target,
    athena_output_location,
    need_condition,
    target_resources,
)

# A call IAM authorises as other actions than ``<service>:<operation>``.
_S3_ACTIONS = {
    "HeadObject": "s3:GetObject",
    "ListObjects": "s3:ListBucket",
    "ListObjectsV2": "s3:ListBucket",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "CopyObject": "s3:PutObject",
}
_SQS_ACTIONS = {
    "SendMessageBatch": "sqs:SendMessage",
    "DeleteMessageBatch": "sqs:DeleteMessage",
    "ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
}
# TransactWriteItems and TransactGetItems are authorised item by item.
_TRANSACT_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
    "Get": "dynamodb:GetItem",
}
_ITEM_OPERATIONS = ("GetItem", "PutItem", "UpdateItem", "DeleteItem")
# The Management API is authorised as execute-api:ManageConnections on the method and
# path of the call (@connections/<id>); a GET of a connection is granted to nobody.
_CONNECTION_METHODS = {"PostToConnection": Target.WS_POST, "DeleteConnection": Target.WS_DELETE}


@dataclass(frozen=True)
class Call:
    """One IAM action a call needs, on what, and the keys its grant's condition is held
    against: the partition keys of the items it touches (table calls), or the prefix it
    lists (lake bucket listings)."""

    action: str
    target: Target | str
    partition_keys: tuple[str, ...] = ()


@dataclass
class Recorder:
    """Records every call made through the clients it is attached to."""

    settings: Settings
    execution_workgroup: Callable[[str], str]
    calls: list[Call]

    def attach(self, client: Any) -> None:
        client.meta.events.register("provide-client-params.*.*", self._record)

    def _record(self, params: Mapping[str, Any], model: Any, **_: Any) -> None:
        service = model.service_model.service_name
        self.calls.extend(iam_calls(self.settings, service, model.name, params, self))


def iam_calls(
    settings: Settings,
    service: str,
    operation: str,
    params: Mapping[str, Any],
    recorder: Recorder | None = None,
) -> list[Call]:
    """What IAM checks for one call, each action with the resource it touches."""
    if service == "dynamodb":
        return _dynamodb(settings, operation, params)
    if service == "s3":
        return _s3(settings, operation, params)
    if service == "sqs":
        queue = _queue(settings, str(params.get("QueueUrl", "")))
        return [Call(_SQS_ACTIONS.get(operation, f"sqs:{operation}"), queue)]
    if service == "athena":
        return [Call(f"athena:{operation}", _workgroup(settings, operation, params, recorder))]
    if service == "apigatewaymanagementapi" and operation in _CONNECTION_METHODS:
        return [Call(MANAGE_CONNECTIONS, _CONNECTION_METHODS[operation])]
    return [Call(f"{service}:{operation}", f"{service} {json.dumps(params, default=str)}")]


def _table(settings: Settings, name: str, index: str | None = None) -> Target | str:
    if name != settings.table_name:
        return f"table {name}"
    if index is None:
        return Target.TABLE
    return {keys.GSI1: Target.GSI1, keys.GSI2: Target.GSI2}.get(index, f"index {index}")


def _partition(item: Mapping[str, Any]) -> str:
    value: str = item[keys.PK]["S"]
    return value


def _queried_partition(params: Mapping[str, Any]) -> str:
    """The partition a base-table Query reads, from ``#pk = :pk``."""
    names = params.get("ExpressionAttributeNames", {})
    values = params.get("ExpressionAttributeValues", {})
    for name, value in re.findall(r"([#\w-]+)\s*=\s*(:\w+)", params["KeyConditionExpression"]):
        if names.get(name, name) == keys.PK:
            partition: str = values[value]["S"]
            return partition
    raise ValueError(f"a Query without a condition on {keys.PK}: {params}")


def _dynamodb(settings: Settings, operation: str, params: Mapping[str, Any]) -> list[Call]:
    if operation in _ITEM_OPERATIONS:
        item = params.get("Key") or params["Item"]
        table = _table(settings, params["TableName"])
        return [Call(f"dynamodb:{operation}", table, (_partition(item),))]
    if operation == "Query":
        index = params.get("IndexName")
        table = _table(settings, params["TableName"], index)
        # On an index, dynamodb:LeadingKeys is not the table's partition key: none kept.
        queried: tuple[str, ...] = () if index else (_queried_partition(params),)
        return [Call("dynamodb:Query", table, queried)]
    if operation in ("BatchGetItem", "BatchWriteItem"):
        calls = []
        for name, request in params["RequestItems"].items():
            if operation == "BatchGetItem":
                items = request["Keys"]
            else:
                items = [
                    entry.get("PutRequest", {}).get("Item") or entry["DeleteRequest"]["Key"]
                    for entry in request
                ]
            partitions = tuple(_partition(item) for item in items)
            calls.append(Call(f"dynamodb:{operation}", _table(settings, name), partitions))
        return calls
    if operation in ("TransactWriteItems", "TransactGetItems"):
        calls = []
        for entry in params["TransactItems"]:
            ((kind, request),) = entry.items()
            item = request.get("Key") or request["Item"]
            table = _table(settings, request["TableName"])
            calls.append(Call(_TRANSACT_ACTIONS[kind], table, (_partition(item),)))
        return calls
    table_name = params.get("TableName", "")
    return [Call(f"dynamodb:{operation}", _table(settings, table_name), ())]


def _s3(settings: Settings, operation: str, params: Mapping[str, Any]) -> list[Call]:
    bucket = params.get("Bucket", "")
    action = _S3_ACTIONS.get(operation, f"s3:{operation}")
    results_bucket, results_prefix = athena_output_location(settings)
    if action == "s3:ListBucket":
        prefix = str(params.get("Prefix", ""))
        if bucket == settings.lake_bucket and prefix.startswith(tuple(LAYER_OBJECTS)):
            return [Call(action, Target.LAKE_BUCKET, (prefix,))]
        return [Call(action, f"listing s3://{bucket}/{prefix}")]
    if "Key" not in params:
        return [Call(action, f"bucket {bucket}")]
    key = str(params["Key"])
    # A delete only if the object is still the version an ETag names is authorised as
    # s3:GetObject too (deploy.policies.S3_CONDITIONAL_DELETE_DOC).
    actions = [action]
    if operation == "DeleteObject" and params.get("IfMatch", "*") != "*":
        actions.append("s3:GetObject")
    target: Target | str = f"s3://{bucket}/{key}"
    if bucket == settings.lake_bucket:
        for prefix, objects in LAYER_OBJECTS.items():
            if key.startswith(prefix):
                target = objects
    elif bucket == results_bucket and key.startswith(results_prefix):
        target = Target.RESULTS_OBJECTS
    return [Call(each, target) for each in actions]


def _queue(settings: Settings, url: str) -> Target | str:
    queues = {
        settings.cascade_queue_url: Target.CASCADE_QUEUE,
        settings.deletion_queue_url: Target.DELETION_QUEUE,
    }
    return queues.get(url, f"queue {url}")


def _workgroup(
    settings: Settings, operation: str, params: Mapping[str, Any], recorder: Recorder | None
) -> Target | str:
    if operation == "StartQueryExecution":
        workgroup = params.get("WorkGroup", "primary")
        database = params.get("QueryExecutionContext", {}).get("Database")
        if database != settings.glue_database:
            # Athena would read another database's catalogue: no grant covers that.
            return f"workgroup {workgroup}, database {database}"
    elif "QueryExecutionId" in params and recorder is not None:
        workgroup = recorder.execution_workgroup(params["QueryExecutionId"])
    else:
        return f"athena {json.dumps(params, default=str)}"
    return Target.WORKGROUP if workgroup == settings.athena_workgroup else f"workgroup {workgroup}"


def _describe(target: Target | str) -> str:
    return target.value if isinstance(target, Target) else target


def problems(calls: Iterable[Call], needs: Iterable[Need]) -> list[str]:
    """How a function's calls and its needs disagree; empty when every grant is used and
    every call granted, each within its key range.

    The code's needs must be exactly what it calls (an action on a target); needs with
    key prefixes must cover every item the calls touch or prefix they list, and each
    prefix must be used; a grant on the table whose calls touch only task items must say
    so (``dynamodb:LeadingKeys``), and a listing of the lake bucket must name its
    prefixes (``s3:prefix``). A grant Athena uses on the caller's behalf needs the call
    that makes Athena act."""
    calls, needs = list(calls), list(needs)
    called: dict[tuple[str, Target | str], list[str]] = {}
    for call in calls:
        called.setdefault((call.action, call.target), []).extend(call.partition_keys)
    granted: dict[tuple[str, Target | str], set[str | None]] = {}
    for need in needs:
        if need.caller is Caller.CODE:
            for action in need.actions:
                for target in need.targets:
                    granted.setdefault((action, target), set()).add(need.key_prefix)
    found = [
        f"calls {action} on {_describe(target)}, which its role does not grant"
        for action, target in called
        if (action, target) not in granted
    ]
    found += [
        f"is granted {action} on {_describe(target)}, which its code never calls"
        for action, target in granted
        if (action, target) not in called
    ]
    for (action, granted_on), prefixes in granted.items():
        partitions = called.get((action, granted_on), [])
        narrowed = tuple(sorted(p for p in prefixes if p is not None))
        condition = "s3:prefix" if action.startswith("s3:") else "dynamodb:LeadingKeys"
        if None not in prefixes:
            outside = sorted({p for p in partitions if not p.startswith(narrowed)})
            if outside:
                found.append(
                    f"calls {action} on items {outside}, outside its {condition} "
                    f"{[f'{p}*' for p in narrowed]}"
                )
            found += [
                f"is granted {action} on {_describe(granted_on)} with {condition} {prefix}*, "
                "which its code never uses"
                for prefix in narrowed
                if partitions and not any(p.startswith(prefix) for p in partitions)
            ]
        elif granted_on is Target.LAKE_BUCKET and action == "s3:ListBucket" and partitions:
            found.append(
                f"lists the lake only under {sorted(set(partitions))}: grant it with s3:prefix"
            )
        elif (
            granted_on is Target.TABLE
            and partitions
            and all(p.startswith(TASK_KEYS) for p in partitions)
        ):
            found.append(
                f"calls {action} on task items only: grant it with dynamodb:LeadingKeys "
                f"{TASK_KEYS}*"
            )
    actions = {call.action for call in calls}
    found += [
        f"is granted {', '.join(need.actions)} for Athena on behalf of {need.because_of}, "
        "which its code never calls"
        for need in needs
        if need.caller is Caller.ATHENA and need.because_of not in actions
    ]
    return found


Grant = tuple[str, str, str]


def _grant(action: str, resource: Any, condition: Any) -> Grant:
    return action, json.dumps(resource, sort_keys=True), json.dumps(condition, sort_keys=True)


def need_grants(settings: Settings, needs: Iterable[Need], handler: str) -> list[Grant]:
    """Every (action, resource, condition) the needs call for."""
    return [
        _grant(action, resource, need_condition(need))
        for need in needs
        for action in need.actions
        for target in need.targets
        for resource in target_resources(settings, target, handler)
    ]


def role_grants(role: Mapping[str, Any]) -> list[Grant]:
    """Every (action, resource, condition) a rendered role allows."""
    grants = []
    for policy in role["Properties"]["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow", statement
            actions, resources = statement["Action"], statement["Resource"]
            for action in [actions] if isinstance(actions, str) else actions:
                for resource in [resources] if isinstance(resources, str) else resources:
                    grants.append(_grant(action, resource, statement.get("Condition")))
    return grants
