"""The GraphQL API generated from the user's schema."""

from chalicelib.graphql.context import RequestContext
from chalicelib.graphql.endpoint import GraphQLEndpoint, HttpResponse
from chalicelib.graphql.executable import build_executable_schema

__all__ = [
    "GraphQLEndpoint",
    "HttpResponse",
    "RequestContext",
    "build_executable_schema",
]
