"""Automatic persisted queries, as Apollo Client's persisted-queries link sends them."""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from typing import Any

import pytest

from chalicelib.graphql.persisted import PersistedQueries, PersistedQueryNotFound
from chalicelib.graphql.protocol import GraphQLParams, RequestError
from tests.conftest import LoadedApp

QUERY = "{ listUser(limit: 1) { items { id } } }"


def extension(query: str) -> dict[str, Any]:
    digest = hashlib.sha256(query.encode()).hexdigest()
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


def post(app: LoadedApp, body: dict[str, Any]) -> Any:
    response = app.client.http.post(
        "/graphql", headers={"content-type": "application/json"}, body=json.dumps(body)
    )
    return response.status_code, json.loads(response.body)


def test_a_hash_runs_once_its_query_was_sent_by_post_and_by_get(shop: LoadedApp) -> None:
    assert post(shop, {"extensions": extension(QUERY)}) == (
        200,
        {
            "errors": [
                {
                    "message": "PersistedQueryNotFound",
                    "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"},
                }
            ]
        },
    )
    expected: dict[str, Any] = {"data": {"listUser": {"items": []}}}
    assert post(shop, {"query": QUERY, "extensions": extension(QUERY)}) == (200, expected)
    assert post(shop, {"extensions": extension(QUERY)}) == (200, expected)
    params = urllib.parse.urlencode({"extensions": json.dumps(extension(QUERY))})
    by_get = shop.client.http.get(f"/graphql?{params}", headers={"accept": "application/json"})
    assert json.loads(by_get.body) == expected


def test_a_text_that_is_not_the_hashs_is_refused_and_never_kept(shop: LoadedApp) -> None:
    other = "{ listUser(limit: 2) { nextToken } }"
    status, body = post(shop, {"query": other, "extensions": extension(QUERY)})
    assert status == 400
    assert "is not the query's" in body["errors"][0]["message"]
    assert post(shop, {"extensions": extension(QUERY)})[1]["errors"][0]["message"] == (
        "PersistedQueryNotFound"
    )


@pytest.mark.parametrize(
    "persisted",
    [{"version": 2, "sha256Hash": "0" * 64}, {"version": 1, "sha256Hash": "abc"}, "x"],
)
def test_a_malformed_extension_is_a_400(shop: LoadedApp, persisted: Any) -> None:
    status, body = post(shop, {"extensions": {"persistedQuery": persisted}})
    assert status == 400
    assert "persistedQuery" in body["errors"][0]["message"]


def test_the_cache_is_bounded() -> None:
    cache = PersistedQueries(max_entries=2)
    queries = [f"{{ a{n}: __typename }}" for n in range(3)]
    for query in queries:
        cache.resolve(GraphQLParams(query, extensions=extension(query)))
    with pytest.raises(PersistedQueryNotFound):
        cache.resolve(GraphQLParams(None, extensions=extension(queries[0])))
    assert cache.resolve(GraphQLParams(None, extensions=extension(queries[2]))).query == queries[2]
    with pytest.raises(RequestError):
        cache.resolve(GraphQLParams(None, extensions={"persistedQuery": {"version": 1}}))
