"""CORS of the GraphQL routes on the real ``chalice local``: a playground on another
origin may send the headers GraphQL clients send, and caches the preflight."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.local.chalice_local import ChaliceLocal, serving


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ChaliceLocal]:
    monkeypatch.setenv("OCG_CORS_MAX_AGE", "300")
    with serving(tmp_path) as local:
        yield local


def test_the_preflight_allows_graphql_clients_headers_and_is_cached(server: ChaliceLocal) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.request(
        "OPTIONS",
        "/graphql",
        headers={
            "Origin": "http://localhost:5173",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,apollographql-client-name",
        },
    )
    response = connection.getresponse()
    response.read()

    assert response.status == 200
    assert response.getheader("Access-Control-Allow-Origin") == "*"
    listed = response.getheader("Access-Control-Allow-Headers") or ""
    allowed = {h.strip().lower() for h in listed.split(",")}
    assert {"content-type", "authorization", "x-api-key", "apollographql-client-name"} <= allowed
    assert response.getheader("Access-Control-Max-Age") == "300"
    assert "POST" in (response.getheader("Access-Control-Allow-Methods") or "")
