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

from chalicelib.graphql.context import RequestContext
from chalicelib.messages import shown
from chalicelib.schema import naming
from chalicelib.schema.model import DeleteMutation, QueryTask, SchemaModel
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

    def trigger(_: Any, info: Info, **arguments: Any) -> dict[str, str]:
        from chalicelib.sql.analysis import read_through

        try:
            sql = read_through(render(task.sql, task.arguments, arguments), lake)
        except RenderError as error:
            raise GraphQLError(str(error)) from None
        started = _tasks(info).trigger(TaskType.QUERY, task.name, sql)
        return {"taskId": started.task_id}

    def result(
        _: Any, info: Info, taskId: str, limit: int | None = None, nextToken: str | None = None
    ) -> dict[str, Any]:
        if limit is not None and not 1 <= limit <= MAX_PAGE_ROWS:
            raise GraphQLError(
                f"{result_field}: limit must be between 1 and {MAX_PAGE_ROWS}, got {limit}"
            )
        service = _tasks(info)
        try:
            current = service.task(taskId, task.name)
        except TaskNotFound as error:
            raise GraphQLError(f"{error}: use the taskId its trigger returned") from None
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
    delete: DeleteMutation, lake: Mapping[str, str]
) -> tuple[Resolver, Resolver]:
    """The trigger (Mutation) and the result read (Query) of one DELETE mutation.

    The DELETE runs as the SELECT of what it deletes (DESIGN §6), built from the
    rendered statement's syntax tree; sqlglot is imported by the first deletion
    trigger only, so the function's cold start stays without it.
    """

    def trigger(_: Any, info: Info, **arguments: Any) -> dict[str, str]:
        from chalicelib.sql.analysis import delete_to_select, read_through

        try:
            sql = read_through(
                delete_to_select(render(delete.sql, delete.arguments, arguments)), lake
            )
        except RenderError as error:
            raise GraphQLError(str(error)) from None
        started = _tasks(info).trigger(TaskType.DELETION, delete.name, sql)
        return {"taskId": started.task_id}

    def result(_: Any, info: Info, taskId: str) -> dict[str, Any]:
        try:
            current = _tasks(info).task(taskId, delete.name)
        except TaskNotFound as error:
            raise GraphQLError(f"{error}: use the taskId its trigger returned") from None
        return {**_task_fields(current), "deletedCount": current.deleted_count}

    return trigger, result
