"""HTTP in front of the GraphQL schema: what AppSync would do, as a Chalice route.

A request that is not a GraphQL request at all (bad JSON, no ``query``) is answered
with 400 and a message saying what is wrong; everything GraphQL itself reports —
syntax, validation and resolver errors — comes back as ``errors`` with HTTP 200, as
GraphQL clients expect.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ariadne import graphql_sync
from ariadne.explorer import ExplorerGraphiQL
from graphql import ASTValidationRule, GraphQLSchema

from chalicelib.graphql.documents import DocumentCache
from chalicelib.graphql.executable import ErrorTally, error_log
from chalicelib.graphql.limits import ApiLimits
from chalicelib.telemetry import add_log_fields, metrics

JSON_HEADERS = {"Content-Type": "application/json"}

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: str
    headers: dict[str, str]


class BadRequest(ValueError):
    """The body is not a GraphQL request; the message tells the client why."""


def _reject_constant(name: str) -> Any:
    raise BadRequest(f"request body is not valid JSON: {name} is not a JSON value")


def parse_request(body: bytes | str | None) -> dict[str, Any]:
    """The ``{query, variables, operationName}`` object of a GraphQL-over-HTTP POST."""
    if not body:
        raise BadRequest('request body is empty; send JSON like {"query": "{ __typename }"}')
    try:
        data = json.loads(body, parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadRequest(f"request body is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise BadRequest("request body must be a JSON object with a 'query' string")
    if not isinstance(data.get("query"), str):
        raise BadRequest("request body must have a 'query' string")
    if not isinstance(data.get("variables") or {}, dict):
        raise BadRequest("'variables' must be a JSON object or null")
    operation = data.get("operationName")
    if operation is not None and not isinstance(operation, str):
        raise BadRequest("'operationName' must be a string or null")
    return data


class GraphQLEndpoint:
    """The schema served over HTTP; with ``limits`` (protected stages) introspection is
    off and too deep or too costly requests are refused before anything runs.

    ``document_rules`` are validation rules of every stage whose outcome depends on the
    document alone (the cap on task triggers, :mod:`chalicelib.graphql.triggers`).
    Documents and their validation are kept across requests (:class:`DocumentCache`).
    """

    def __init__(
        self,
        schema: GraphQLSchema,
        limits: ApiLimits | None = None,
        *,
        document_rules: Iterable[type[ASTValidationRule]] = (),
    ) -> None:
        self.schema = schema
        self._limits = limits
        self._document_rules = tuple(document_rules)
        depth = () if limits is None else (limits.depth_rule,)
        self.documents = DocumentCache((*self._document_rules, *depth))

    def execute(self, body: bytes | str | None, context: Any) -> HttpResponse:
        """Serve one request, then count it and log it (one line, at INFO)."""
        started = time.perf_counter()
        tally = ErrorTally()
        response = None
        try:
            response = self._respond(body, context, tally)
            return response
        finally:
            _record(response, tally, started)

    def _respond(self, body: bytes | str | None, context: Any, tally: ErrorTally) -> HttpResponse:
        try:
            data = parse_request(body)
        except BadRequest as error:
            return HttpResponse(
                400, json.dumps({"errors": [{"message": str(error)}]}), JSON_HEADERS
            )
        add_log_fields(operationName=data.get("operationName"))
        limits = self._limits
        rules = [*self._document_rules, *(limits.rules(data.get("variables")) if limits else ())]
        _, result = graphql_sync(
            self.schema,
            data,
            context_value=context,
            query_parser=self.documents.parse,
            query_validator=self.documents.validate,
            error_formatter=tally.format,
            logger=error_log,
            introspection=limits is None,
            validation_rules=rules or None,
        )
        return HttpResponse(200, json.dumps(result), JSON_HEADERS)


def _record(response: HttpResponse | None, tally: ErrorTally, started: float) -> None:
    """Count the request: a 400 or errors of the client's making are a client error; a
    resolver's unexpected exception, or one that escaped (no response), is internal."""
    status = 500 if response is None else response.status
    internal = response is None or tally.internal > 0
    client = status == 400 or tally.client > 0
    metrics.count(metrics.GRAPHQL_REQUESTS)
    metrics.count(metrics.GRAPHQL_CLIENT_ERRORS, int(client))
    metrics.count(metrics.GRAPHQL_INTERNAL_ERRORS, int(internal))
    duration_ms = round((time.perf_counter() - started) * 1000, 1)
    errors = tally.client + tally.internal + (status == 400)
    # An exception escaped: Chalice answers 500 and logs its traceback after this line.
    logger.log(
        logging.ERROR if response is None else logging.INFO,
        "GraphQL request answered %d with %d error(s) in %.1f ms",
        status,
        errors,
        duration_ms,
        extra={"status": status, "errors": errors, "durationMs": duration_ms},
    )


def explorer_page(title: str) -> HttpResponse:
    """GraphiQL; its scripts load from a CDN in the user's browser, not on the server."""
    html = ExplorerGraphiQL(title=title).html(None)
    return HttpResponse(200, html, {"Content-Type": "text/html; charset=utf-8"})
