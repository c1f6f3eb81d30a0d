"""Automatic persisted queries (Apollo's ``persistedQuery`` extension): a client sends a
query's SHA-256 instead of its text, and its text only when the server does not know it.

A request with ``extensions.persistedQuery.sha256Hash`` and no ``query`` runs the query
of that hash if this function instance has seen it, and is otherwise answered
``PersistedQueryNotFound`` (the client then sends hash and text together). A text is
kept only if it hashes to the hash sent with it, so a hash can never run another query.
The cache is per instance and bounded in entries and in text, least recently used first.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any

from chalicelib.graphql.protocol import GraphQLParams, RequestError
from chalicelib.messages import shown

NOT_FOUND = "PersistedQueryNotFound"
NOT_FOUND_CODE = "PERSISTED_QUERY_NOT_FOUND"
MAX_ENTRIES = 1000
MAX_TEXT = 8 * 1024 * 1024


class PersistedQueryNotFound(Exception):
    """The hash is not known here (yet): the client sends the text with it."""


class PersistedQueries:
    def __init__(self, *, max_entries: int = MAX_ENTRIES, max_text: int = MAX_TEXT) -> None:
        self._queries: OrderedDict[str, str] = OrderedDict()
        self._text = 0
        self._max_entries, self._max_text = max_entries, max_text
        self._lock = threading.Lock()

    def resolve(self, params: GraphQLParams) -> GraphQLParams:
        """``params`` with the query text to run; raises :class:`PersistedQueryNotFound`
        or a 400 for a malformed extension or a text that is not the hash's."""
        extension = params.extensions.get("persistedQuery")
        if extension is None:
            return params
        digest = _hash(extension)
        if params.query is None:
            with self._lock:
                query = self._queries.get(digest)
                if query is None:
                    raise PersistedQueryNotFound(NOT_FOUND)
                self._queries.move_to_end(digest)
            return GraphQLParams(query, params.variables, params.operation_name, params.extensions)
        if hashlib.sha256(params.query.encode()).hexdigest() != digest:
            raise RequestError(400, f"persistedQuery.sha256Hash {shown(digest)} is not the query's")
        self._keep(digest, params.query)
        return params

    def _keep(self, digest: str, query: str) -> None:
        if len(query) > self._max_text:
            return
        with self._lock:
            if digest in self._queries:
                self._queries.move_to_end(digest)
                return
            self._queries[digest] = query
            self._text += len(query)
            while len(self._queries) > self._max_entries or self._text > self._max_text:
                _, evicted = self._queries.popitem(last=False)
                self._text -= len(evicted)


def _hash(extension: Any) -> str:
    if not isinstance(extension, dict) or extension.get("version") != 1:
        raise RequestError(400, "extensions.persistedQuery must be {version: 1, sha256Hash}")
    digest = extension.get("sha256Hash")
    if not isinstance(digest, str) or len(digest) != 64:
        raise RequestError(400, "persistedQuery.sha256Hash must be a SHA-256 in hexadecimal")
    return digest.lower()
