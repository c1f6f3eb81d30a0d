"""Parsed and validated documents, kept per query text.

Clients send the same few queries again and again, and running graphql-core's
specified validation rules over a document is most of a warm request's time (about
1.5 ms of 2 for a ``readT``). Whether a document passes those rules depends only on
the schema and the document, so the outcome is kept with the parsed document; rules
that depend on the request (the cost limit reads the variables) still run every time.

The cache is bounded in entries and in the text it holds, and a long query is never
kept, so clients sending many or large distinct queries cannot grow the function's
memory past a few tens of MB: a parsed document takes about 170 bytes per character of
an ordinary query, and up to about 340 for one written to be large (``{a@b@b@b…}``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from ariadne.validation.introspection_disabled import IntrospectionDisabledRule
from graphql import (
    ASTValidationRule,
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    parse,
    specified_rules,
    validate,
)
from graphql.utilities.type_info import TypeInfo

from chalicelib.graphql.validation import with_values_at_path

MAX_ENTRIES = 256
MAX_QUERY_LENGTH = 10_000
MAX_CACHED_TEXT = 100_000

Rules = tuple[type[ASTValidationRule], ...]


@dataclass
class _Entry:
    query: str
    document: DocumentNode
    # The errors of the request-independent rules, per schema and set of such rules.
    errors: dict[tuple[GraphQLSchema, Rules], list[GraphQLError]] = field(default_factory=dict)


class DocumentCache:
    """An ariadne ``query_parser`` and ``query_validator`` pair that share their work.

    ``request_independent`` names the rules, beyond the specified ones and the
    introspection ban, whose outcome depends on the document alone; any other rule
    given to the validator runs on every request.
    """

    def __init__(
        self,
        request_independent: Iterable[type[ASTValidationRule]] = (),
        *,
        max_entries: int = MAX_ENTRIES,
        max_query_length: int = MAX_QUERY_LENGTH,
        max_cached_text: int = MAX_CACHED_TEXT,
        max_tokens: int | None = None,
    ) -> None:
        """``max_tokens``: the parser gives up on a longer document, before building it."""
        self._max_tokens = max_tokens
        self._static = {
            *with_values_at_path(specified_rules),
            IntrospectionDisabledRule,
            *request_independent,
        }
        self._max_entries = max_entries
        self._max_query_length = max_query_length
        self._max_cached_text = max_cached_text
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        # The cached document objects, by identity, for the validator (which is handed
        # the document, not its text). An entry holds its document, so an id here is
        # never reused while it is listed.
        self._by_document: dict[int, _Entry] = {}
        self._cached_text = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def parse(self, context: Any, data: dict[str, Any]) -> DocumentNode:
        """The document of ``data["query"]``; a syntax error raises ``GraphQLError``."""
        query: str = data["query"]
        with self._lock:
            entry = self._entries.get(query)
            if entry is not None:
                self._entries.move_to_end(query)
                return entry.document
        document = parse(query, max_tokens=self._max_tokens)
        if len(query) <= self._max_query_length:
            self._keep(_Entry(query, document))
        return document

    def validate(
        self,
        schema: GraphQLSchema,
        document_ast: DocumentNode,
        rules: Collection[type[ASTValidationRule]] | None = None,
        max_errors: int | None = None,
        type_info: TypeInfo | None = None,
    ) -> list[GraphQLError]:
        """The document's validation errors; request-independent rules' once per document.

        graphql-core's value rule is replaced by one whose messages name the argument and
        the field inside it (:mod:`chalicelib.graphql.validation`).

        ``type_info`` is part of ariadne's validator signature; graphql-core 3.3 has no use
        for it."""
        every = with_values_at_path(rules if rules is not None else specified_rules)
        with self._lock:
            entry = self._by_document.get(id(document_ast))
        if entry is None or entry.document is not document_ast:
            return validate(schema, document_ast, every, max_errors=max_errors)
        static = tuple(rule for rule in every if rule in self._static)
        errors = entry.errors.get((schema, static))
        if errors is None:
            errors = entry.errors[schema, static] = validate(
                schema, document_ast, static, max_errors=max_errors
            )
        per_request = [rule for rule in every if rule not in self._static]
        if errors or not per_request:
            return errors
        return validate(schema, document_ast, per_request, max_errors=max_errors)

    def _keep(self, entry: _Entry) -> None:
        with self._lock:
            if entry.query in self._entries:
                return
            self._entries[entry.query] = entry
            self._by_document[id(entry.document)] = entry
            self._cached_text += len(entry.query)
            while (
                len(self._entries) > self._max_entries or self._cached_text > self._max_cached_text
            ):
                _, evicted = self._entries.popitem(last=False)
                del self._by_document[id(evicted.document)]
                self._cached_text -= len(evicted.query)
