"""HTTP in front of the GraphQL schema: what AppSync would do, as a Chalice route.

The request is read as GraphQL over HTTP has it (:mod:`chalicelib.graphql.protocol`):
POST or GET, answered as ``application/graphql-response+json`` or ``application/json``
by ``Accept``. Under ``application/json`` everything GraphQL reports comes back with
200, as legacy clients expect; under ``application/graphql-response+json`` a request
that never reached execution (it does not parse, is invalid, names no operation, or
its variables do not coerce: no ``data``) is a 400. A request that is not GraphQL at all
is refused with a GraphQL-shaped 4xx before anything runs, a document larger than the
stage's limit with 413, and a mutation sent by GET with 405. Automatic persisted
queries (:mod:`chalicelib.graphql.persisted`) run by hash, by POST and GET.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ariadne import graphql_sync
from graphql import (
    ASTValidationRule,
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    NoSchemaIntrospectionCustomRule,
    OperationType,
    execute_sync,
    specified_rules,
)
from graphql.utilities import get_operation_ast

from chalicelib.auth.identity import PUBLIC, Identity
from chalicelib.auth.tokens import KeysUnavailable, TokenError
from chalicelib.graphql.context import CallerContext
from chalicelib.graphql.documents import DocumentCache
from chalicelib.graphql.executable import ErrorTally, error_log, format_error
from chalicelib.graphql.limits import ApiLimits
from chalicelib.graphql.persisted import (
    NOT_FOUND,
    NOT_FOUND_CODE,
    PersistedQueries,
    PersistedQueryNotFound,
)
from chalicelib.graphql.protocol import (
    GRAPHQL_RESPONSE,
    JSON,
    GraphQLParams,
    RequestError,
    error_body,
    negotiate,
    read_get,
    read_post,
)
from chalicelib.settings import LOCAL_LIMITS
from chalicelib.telemetry import add_log_fields, metrics

JSON_HEADERS = {"Content-Type": "application/json"}
UNAUTHENTICATED = "UNAUTHENTICATED"
# Who a request's Authorization header says is calling; TokenError when it says nothing
# this API trusts, KeysUnavailable when the issuer's keys cannot be read.
Authenticator = Callable[[str | None], Identity]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: str
    headers: dict[str, str]


@dataclass(frozen=True)
class HttpRequest:
    """What the endpoint reads of an HTTP request; header names lower-cased."""

    method: str
    headers: Mapping[str, str] = field(default_factory=dict)
    query_params: Mapping[str, str] = field(default_factory=dict)
    body: bytes | str | None = None


class GraphQLEndpoint:
    """The schema served over HTTP; with ``limits`` (protected stages) introspection is
    off and too deep or too costly requests are refused before anything runs.

    ``document_rules`` are validation rules of every stage whose outcome depends on the
    document alone (the cap on task triggers, :mod:`chalicelib.graphql.triggers`).
    Documents and their validation are kept across requests (:class:`DocumentCache`).
    ``max_request_bytes`` and ``max_tokens`` bound what a request may ask the server to
    read at all: over the first it is refused with 413, over the second the parser stops.
    ``authenticate`` names the caller before anything else is read: a token it refuses
    is a 401 (``WWW-Authenticate: Bearer``), keys it cannot read a 503.
    """

    def __init__(
        self,
        schema: GraphQLSchema,
        limits: ApiLimits | None = None,
        *,
        document_rules: Iterable[type[ASTValidationRule]] = (),
        max_request_bytes: int = LOCAL_LIMITS.max_request_bytes,
        max_tokens: int = LOCAL_LIMITS.max_tokens,
        authenticate: Authenticator = lambda _: PUBLIC,
    ) -> None:
        self.schema = schema
        self._authenticate = authenticate
        self._limits = limits
        self._document_rules = tuple(document_rules)
        self._max_request_bytes = max_request_bytes
        depth = () if limits is None else (limits.depth_rule,)
        self.documents = DocumentCache((*self._document_rules, *depth), max_tokens=max_tokens)
        self._persisted = PersistedQueries()

    def execute(self, body: bytes | str | None, context: Any) -> HttpResponse:
        """A POST of ``application/json`` (what tests and scripts send)."""
        return self.serve(HttpRequest("POST", {"content-type": JSON}, {}, body), context)

    def serve(self, request: HttpRequest, context: Any) -> HttpResponse:
        """Serve one request, then count it and log it (one line, at INFO)."""
        started = time.perf_counter()
        tally = ErrorTally()
        response = None
        try:
            response = self._respond(request, context, tally)
            return response
        finally:
            _record(response, tally, started)

    def _respond(self, request: HttpRequest, context: Any, tally: ErrorTally) -> HttpResponse:
        try:
            media = negotiate(request.headers.get("accept"))
        except RequestError as error:
            return _refusal(error, JSON)
        try:
            context = CallerContext(context, self._caller(request))
            params = self._persisted.resolve(self._read(request))
        except RequestError as error:
            return _refusal(error, media)
        except PersistedQueryNotFound:
            status = 400 if media == GRAPHQL_RESPONSE else 200
            body = {"errors": [{"message": NOT_FOUND, "extensions": {"code": NOT_FOUND_CODE}}]}
            return HttpResponse(status, json.dumps(body), _headers(media))
        add_log_fields(operationName=params.operation_name)
        data = params.as_data()
        if request.method == "GET":
            refusal = self._mutation_by_get(context, data)
            if refusal is not None:
                return _refusal(refusal, media)
        limits = self._limits
        rules = [*self._document_rules, *(limits.rules(params.variables) if limits else ())]
        _, result = graphql_sync(
            self.schema,
            data,
            context_value=context,
            query_parser=self.documents.parse,
            query_validator=self.documents.validate,
            error_formatter=tally.format,
            logger=error_log,
            introspection=limits is None or limits.introspection,
            validation_rules=rules or None,
        )
        if _never_executed(result):
            # graphql-core answers "data": null for an operation it could not select or
            # whose variables did not coerce, as if it had run: it never did.
            result.pop("data", None)
        status = 400 if media == GRAPHQL_RESPONSE and "data" not in result else 200
        return HttpResponse(status, json.dumps(result), _headers(media))

    def prepare(self, params: GraphQLParams) -> tuple[DocumentNode | None, list[GraphQLError]]:
        """A document parsed and validated as an HTTP request's would be (its limits
        included), for an operation that arrives another way (a WebSocket subscribe)."""
        try:
            document = self.documents.parse(None, params.as_data())
        except GraphQLError as error:
            return None, [error]
        limits = self._limits
        rules = [*specified_rules, *self._document_rules]
        rules += limits.rules(params.variables) if limits else []
        if limits is not None and not limits.introspection:
            rules.append(NoSchemaIntrospectionCustomRule)
        errors = self.documents.validate(self.schema, document, rules)
        return (None, errors) if errors else (document, [])

    def run(
        self,
        document: DocumentNode,
        params: GraphQLParams,
        context: Any,
        root_value: Any = None,
    ) -> dict[str, Any]:
        """Execute a prepared document; its errors formatted as HTTP answers format them."""
        result = execute_sync(
            self.schema,
            document,
            root_value=root_value,
            context_value=context,
            variable_values=params.variables,
            operation_name=params.operation_name,
        )
        answer: dict[str, Any] = {"data": result.data}
        if result.errors:
            answer["errors"] = [format_error(error) for error in result.errors]
        return answer

    def _caller(self, request: HttpRequest) -> Identity:
        try:
            return self._authenticate(request.headers.get("authorization"))
        except TokenError as error:
            # The message never holds the token (chalicelib.auth.tokens), so both may show it.
            logger.info("token refused: %s", error, extra={"status": 401})
            raise RequestError(
                401,
                f"not signed in: {error}",
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
                code=UNAUTHENTICATED,
            ) from None
        except KeysUnavailable as error:
            logger.error("tokens cannot be checked: %s", error)
            raise RequestError(
                503, "tokens cannot be checked right now; try again shortly", {"Retry-After": "5"}
            ) from None

    def _read(self, request: HttpRequest) -> GraphQLParams:
        if request.method == "GET":
            params = read_get(request.query_params)
            size = len((params.query or "").encode())
        elif request.method == "POST":
            body = request.body or b""
            size = len(body.encode() if isinstance(body, str) else body)
            if size > self._max_request_bytes:
                raise _too_large(size, self._max_request_bytes)
            params = read_post(request.headers.get("content-type"), request.body)
        else:
            raise RequestError(
                405, f"{request.method} is not a GraphQL request", {"Allow": "GET, POST"}
            )
        if size > self._max_request_bytes:
            raise _too_large(size, self._max_request_bytes)
        return params

    def _mutation_by_get(self, context: Any, data: dict[str, Any]) -> RequestError | None:
        """GET may only read: a mutation is refused before it runs. A document that does
        not parse or names no operation is GraphQL's to report."""
        try:
            document = self.documents.parse(context, data)
        except GraphQLError:
            return None
        operation = get_operation_ast(document, data.get("operationName"))
        if operation is not None and operation.operation is not OperationType.QUERY:
            kind = operation.operation.value
            return RequestError(405, f"a {kind} must be sent by POST, not GET", {"Allow": "POST"})
        return None


def _never_executed(result: dict[str, Any]) -> bool:
    """No data and no error of a field (every field error has a ``path``)."""
    errors = result.get("errors") or []
    return result.get("data") is None and bool(errors) and not any("path" in e for e in errors)


def _too_large(size: int, limit: int) -> RequestError:
    return RequestError(413, f"the request is {size:,} bytes; this API reads at most {limit:,}")


def _headers(media: str) -> dict[str, str]:
    return {"Content-Type": f"{media}; charset=utf-8"}


def _refusal(error: RequestError, media: str) -> HttpResponse:
    return HttpResponse(
        error.status, error_body(error.message, error.code), {**_headers(media), **error.headers}
    )


def _record(response: HttpResponse | None, tally: ErrorTally, started: float) -> None:
    """Count the request: a 400 or errors of the client's making are a client error; a
    resolver's unexpected exception, or one that escaped (no response), is internal."""
    status = 500 if response is None else response.status
    internal = response is None or tally.internal > 0
    client = 400 <= status < 500 or tally.client > 0
    metrics.count(metrics.GRAPHQL_REQUESTS)
    metrics.count(metrics.GRAPHQL_CLIENT_ERRORS, int(client))
    metrics.count(metrics.GRAPHQL_INTERNAL_ERRORS, int(internal))
    duration_ms = round((time.perf_counter() - started) * 1000, 1)
    errors = tally.client + tally.internal + (400 <= status < 500 and not tally.client)
    # An exception escaped: Chalice answers 500 and logs its traceback after this line.
    logger.log(
        logging.ERROR if response is None else logging.INFO,
        "GraphQL request answered %d with %d error(s) in %.1f ms",
        status,
        errors,
        duration_ms,
        extra={"status": status, "errors": errors, "durationMs": duration_ms},
    )
