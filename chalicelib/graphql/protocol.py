"""GraphQL over HTTP, as the specification has it: what a request may look like, which
media type answers it, and the refusals that come before any GraphQL work.

The GraphQL-over-HTTP specification (graphql.github.io/graphql-over-http) is what
Apollo Client, urql, Relay, GraphiQL and gateways speak: POST with a JSON body, GET with
the parameters in the URL, ``application/graphql-response+json`` or ``application/json``
chosen by ``Accept``. Every refusal here is a :class:`RequestError` whose body is
GraphQL-shaped (``{"errors": [{"message": …}]}``), so any client can show it.

Pure functions of the request's parts: no Chalice, no schema.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chalicelib.messages import shown

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
# In order of preference when the client accepts both equally.
MEDIA_TYPES = (GRAPHQL_RESPONSE, JSON)


class RequestError(Exception):
    """A request refused before GraphQL ran: its HTTP status and what to tell the client."""

    def __init__(
        self,
        status: int,
        message: str,
        headers: Mapping[str, str] | None = None,
        *,
        code: str | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})
        self.code = code  # ``extensions.code`` of the error, for clients that branch on it


@dataclass(frozen=True)
class GraphQLParams:
    query: str | None  # None: a persisted query's hash stands for it (extensions)
    variables: dict[str, Any] | None = None
    operation_name: str | None = None
    extensions: dict[str, Any] = field(default_factory=dict)

    def as_data(self) -> dict[str, Any]:
        """The request as Ariadne's ``graphql_sync`` takes it."""
        return {
            "query": self.query,
            "variables": self.variables,
            "operationName": self.operation_name,
            "extensions": self.extensions,
        }


def negotiate(accept: str | None) -> str:
    """The media type of the answer, by the ``Accept`` header; raises 406 when the
    client accepts neither. No header means ``application/json``, as legacy clients send."""
    if accept is None or not accept.strip():
        return JSON
    best: tuple[float, int, str] | None = None
    for part in accept.split(","):
        media, *parameters = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        media = media.lower()
        # A wildcard gets application/json: what a client that names no type expects.
        offered = JSON if media in ("*/*", "application/*") else media
        if quality > 0 and offered in MEDIA_TYPES:
            candidate = (quality, -MEDIA_TYPES.index(offered), offered)
            best = candidate if best is None or candidate > best else best
    if best is None:
        raise RequestError(
            406,
            f"cannot answer with any media type in Accept: {shown(accept)}; accept "
            f"{GRAPHQL_RESPONSE} or {JSON}",
        )
    return best[2]


def read_post(content_type: str | None, body: bytes | str | None) -> GraphQLParams:
    """The parameters of a POST: a JSON object in an ``application/json`` body."""
    if content_type is None:
        raise RequestError(415, f"a POST needs a Content-Type: send {JSON}")
    media = content_type.split(";")[0].strip().lower()
    if media != JSON:
        raise RequestError(
            415, f"unsupported Content-Type {shown(content_type)}: send the request as {JSON}"
        )
    if not body:
        raise RequestError(
            400, 'the request body is empty; send JSON like {"query": "{ __typename }"}'
        )
    try:
        data = json.loads(body, parse_constant=_reject_constant)
    except RecursionError:
        raise RequestError(400, "the request body nests too deeply to be read") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RequestError(400, f"the request body is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise RequestError(400, "the request body must be a JSON object with a 'query' string")
    return _params(data)


def read_get(parameters: Mapping[str, str]) -> GraphQLParams:
    """The parameters of a GET: in the URL, ``variables`` and ``extensions`` as JSON."""
    data: dict[str, Any] = {"query": parameters.get("query")}
    if "operationName" in parameters:
        data["operationName"] = parameters["operationName"] or None
    for name in ("variables", "extensions"):
        text = parameters.get(name)
        if text:
            try:
                data[name] = json.loads(text, parse_constant=_reject_constant)
            except RecursionError:
                raise RequestError(400, f"'{name}' nests too deeply to be read") from None
            except json.JSONDecodeError as error:
                raise RequestError(400, f"'{name}' is not valid JSON: {error}") from None
    return _params(data)


def _params(data: Mapping[str, Any]) -> GraphQLParams:
    query = data.get("query")
    persisted = isinstance(data.get("extensions"), dict) and "persistedQuery" in data["extensions"]
    if not isinstance(query, str) and not (query is None and persisted):
        raise RequestError(400, "the request must have a 'query' string")
    variables = data.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise RequestError(400, "'variables' must be a JSON object or null")
    operation = data.get("operationName")
    if operation is not None and not isinstance(operation, str):
        raise RequestError(400, "'operationName' must be a string or null")
    extensions = data.get("extensions")
    if extensions is not None and not isinstance(extensions, dict):
        raise RequestError(400, "'extensions' must be a JSON object or null")
    return GraphQLParams(query, variables, operation, extensions or {})


def _reject_constant(name: str) -> Any:
    raise RequestError(400, f"the request body is not valid JSON: {name} is not a JSON value")


def error_body(message: str, code: str | None = None) -> str:
    error: dict[str, Any] = {"message": message}
    if code is not None:
        error["extensions"] = {"code": code}
    return json.dumps({"errors": [error]})
