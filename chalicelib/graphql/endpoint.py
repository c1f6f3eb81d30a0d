"""HTTP in front of the GraphQL schema: what AppSync would do, as a Chalice route.

A request that is not a GraphQL request at all (bad JSON, no ``query``) is answered
with 400 and a message saying what is wrong; everything GraphQL itself reports —
syntax, validation and resolver errors — comes back as ``errors`` with HTTP 200, as
GraphQL clients expect.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ariadne import graphql_sync
from ariadne.explorer import ExplorerGraphiQL
from graphql import GraphQLSchema

from chalicelib.graphql.documents import DocumentCache
from chalicelib.graphql.executable import error_log, format_error
from chalicelib.graphql.limits import ApiLimits

JSON_HEADERS = {"Content-Type": "application/json"}


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

    Documents and their validation are kept across requests (:class:`DocumentCache`).
    """

    def __init__(self, schema: GraphQLSchema, limits: ApiLimits | None = None) -> None:
        self.schema = schema
        self._limits = limits
        self.documents = DocumentCache(() if limits is None else (limits.depth_rule,))

    def execute(self, body: bytes | str | None, context: Any) -> HttpResponse:
        """Serve one request."""
        try:
            data = parse_request(body)
        except BadRequest as error:
            return HttpResponse(
                400, json.dumps({"errors": [{"message": str(error)}]}), JSON_HEADERS
            )
        limits = self._limits
        _, result = graphql_sync(
            self.schema,
            data,
            context_value=context,
            query_parser=self.documents.parse,
            query_validator=self.documents.validate,
            error_formatter=format_error,
            logger=error_log,
            introspection=limits is None,
            validation_rules=None if limits is None else limits.rules(data.get("variables")),
        )
        return HttpResponse(200, json.dumps(result), JSON_HEADERS)


def explorer_page(title: str) -> HttpResponse:
    """GraphiQL; its scripts load from a CDN in the user's browser, not on the server."""
    html = ExplorerGraphiQL(title=title).html(None)
    return HttpResponse(200, html, {"Content-Type": "text/html; charset=utf-8"})
