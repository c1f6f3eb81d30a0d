"""Resolvers of the SQL task fields: ``triggerTask…`` and ``taskResult…`` (DESIGN §2, §5).

A trigger renders the field's SQL with the request's arguments (``sql.render``: literals,
never spliced text), reads each lake table through its layers
(``chalicelib.lake.layers``: what compaction has folded and what it has not, as one
table) and starts it; sqlglot, which finds the tables, is imported by the first trigger,
not at start-up. A result read returns the task's state and, once it
SUCCEEDED, its rows typed by the field's result type.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from graphql import GraphQLError, GraphQLResolveInfo

from chalicelib.auth.identity import Identity
from chalicelib.graphql.access import caller_of, owned_references
from chalicelib.graphql.context import RequestContext
from chalicelib.messages import shown
from chalicelib.schema import naming
from chalicelib.schema.model import AuthRules, DeleteMutation, QueryTask, SchemaModel
from chalicelib.sql.render import RenderError, render
from chalicelib.tasks.engine import MAX_PAGE_ROWS, InvalidPageToken
from chalicelib.tasks.results import ResultConversionError, RowReader
from chalicelib.tasks.service import Task, TaskNotFound, TaskStatus, TaskType

if TYPE_CHECKING:
    from chalicelib.tasks.service import TaskService

Resolver = Callable[..., Any]
Info = GraphQLResolveInfo[Any]


def _tasks(info: Info) -> TaskService:
    context: RequestContext = info.context
    return context.tasks


def _caller(info: Info, rules: AuthRules, field: str) -> Identity:
    context: RequestContext = info.context
    return caller_of(context, rules, field)


def _task_of(service: TaskService, task_id: str, field_name: str, caller: Identity) -> Task:
    """The task, if ``caller`` triggered it: someone else's is as unknown as a wrong id."""
    try:
        return service.task(task_id, field_name, owner=caller.sub)
    except TaskNotFound as error:
        raise GraphQLError(f"{error}: use the taskId its trigger returned") from None


def _task_fields(task: Task) -> dict[str, Any]:
    return {
        "taskStatus": task.status.value,
        "startDate": task.start_date,
        "finishDate": task.finish_date,
        "errorMessage": task.error_message,
        "statistics": None
        if task.statistics is None
        else {
            "dataScannedBytes": task.statistics.data_scanned_bytes,
            "engineMillis": task.statistics.engine_millis,
            "queueMillis": task.statistics.queue_millis,
            "resultReused": task.statistics.result_reused,
        },
    }


def query_task_resolvers(
    model: SchemaModel, task: QueryTask, lake: Mapping[str, str]
) -> tuple[Resolver, Resolver]:
    """The trigger (Mutation) and the result read (Query) of one ``@sql_query`` field;
    ``lake`` is :func:`chalicelib.lake.layers.merged_tables` of the model."""
    fields = next((t.fields for t in model.task_responses if t.name == task.result.name), ())
    rows = RowReader(task.result, fields, f"Query.{task.name}")
    result_field = naming.task_result_field(task.name)

    trigger_field = naming.trigger_task_field(task.name)

    def trigger(_: Any, info: Info, **arguments: Any) -> dict[str, str]:
        from chalicelib.sql.analysis import read_through

        caller = _caller(info, task.auth, trigger_field)
        try:
            sql = read_through(render(task.sql, task.arguments, arguments, caller), lake)
        except RenderError as error:
            raise GraphQLError(str(error)) from None
        started = _tasks(info).trigger(TaskType.QUERY, task.name, sql, owner=caller.sub)
        return {"taskId": started.task_id}

    def result(
        _: Any, info: Info, taskId: str, limit: int | None = None, nextToken: str | None = None
    ) -> dict[str, Any]:
        if limit is not None and not 1 <= limit <= MAX_PAGE_ROWS:
            # Named as asked: taskResult…, or the onTaskResult… subscription that runs it.
            raise GraphQLError(
                f"{info.field_name}: limit must be between 1 and {MAX_PAGE_ROWS}, got {limit}"
            )
        caller = _caller(info, task.auth, result_field)
        service = _tasks(info)
        current = _task_of(service, taskId, task.name, caller)
        answer = {**_task_fields(current), "result": None, "nextToken": None}
        if current.status is not TaskStatus.SUCCEEDED:
            return answer
        try:
            pages, token = service.results(current, next_token=nextToken, limit=limit)
            values = [value for page in pages for value in rows.read(page)]
        except InvalidPageToken:
            raise GraphQLError(
                f"{result_field}: nextToken {shown(nextToken)} was not issued for the result of "
                f"task {taskId}"
            ) from None
        except ResultConversionError as error:
            raise GraphQLError(f"{result_field}: {error}") from None
        if task.result.is_list:
            answer["result"] = values
        else:
            answer["result"] = values[0] if values else None
        answer["nextToken"] = token
        return answer

    return trigger, result


def deletion_task_resolvers(
    model: SchemaModel, delete: DeleteMutation, lake: Mapping[str, str]
) -> tuple[Resolver, Resolver]:
    """The trigger (Mutation) and the result read (Query) of one DELETE mutation.

    The DELETE runs as the SELECT of what it deletes (DESIGN §6), built from the
    rendered statement's syntax tree; sqlglot is imported by the first deletion
    trigger only, so the function's cold start stays without it. A caller held to their
    own items of a type the join table references deletes only rows referencing those.
    """

    trigger_field = naming.trigger_task_field(delete.name)
    result_field = naming.task_result_field(delete.name)
    join_table = next(t for t in model.join_tables if t.name == delete.table)
    entities = {e.name: e for e in model.entities}

    def trigger(_: Any, info: Info, **arguments: Any) -> dict[str, str]:
        from chalicelib.sql.analysis import OwnedColumn, delete_to_select, read_through

        caller = _caller(info, delete.auth, trigger_field)
        owned = [
            OwnedColumn(column, entity.key, entity.owner_field or "", owner)
            for column, entity, owner in owned_references(info.context, join_table, entities)
        ]
        try:
            rendered = render(delete.sql, delete.arguments, arguments, caller)
            sql = read_through(delete_to_select(rendered, owned), lake)
        except RenderError as error:
            raise GraphQLError(str(error)) from None
        started = _tasks(info).trigger(TaskType.DELETION, delete.name, sql, owner=caller.sub)
        return {"taskId": started.task_id}

    def result(_: Any, info: Info, taskId: str) -> dict[str, Any]:
        caller = _caller(info, delete.auth, result_field)
        current = _task_of(_tasks(info), taskId, delete.name, caller)
        return {**_task_fields(current), "deletedCount": current.deleted_count}

    return trigger, result
