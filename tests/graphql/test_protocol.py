"""GraphQL over HTTP through the Chalice app: media types, GET, and every malformed
request a GraphQL-shaped 4xx (chalicelib.graphql.protocol, chalicelib.graphql.endpoint)."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import pytest

from chalicelib.graphql.protocol import GRAPHQL_RESPONSE, JSON, RequestError, negotiate
from tests.conftest import LoadedApp


def post(app: LoadedApp, body: str | bytes, **headers: str) -> Any:
    sent = {"content-type": JSON, **{k.replace("_", "-"): v for k, v in headers.items()}}
    return app.client.http.post("/graphql", headers=sent, body=body)


def get(app: LoadedApp, accept: str = JSON, **params: str) -> Any:
    return app.client.http.get(
        f"/graphql?{urllib.parse.urlencode(params)}", headers={"accept": accept}
    )


def header(response: Any, name: str) -> str:
    found = {key.lower(): value for key, value in response.headers.items()}
    return str(found[name])


def message(response: Any) -> str:
    errors = json.loads(response.body)["errors"]
    assert len(errors) == 1
    text: str = errors[0]["message"]
    return text


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, JSON),
        ("*/*", JSON),
        ("application/json", JSON),
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE}, application/json;q=0.9", GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE};q=0.5, application/json", JSON),
        (f"application/json;q=0, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),
    ],
)
def test_accept_chooses_the_media_type(accept: str | None, chosen: str) -> None:
    assert negotiate(accept) == chosen


def test_nothing_acceptable_is_406(shop: LoadedApp) -> None:
    with pytest.raises(RequestError) as refused:
        negotiate("text/html")
    assert refused.value.status == 406
    response = post(shop, '{"query": "{ __typename }"}', accept="text/plain")
    assert response.status_code == 406
    assert "Accept" in message(response)


def test_request_errors_are_400_under_graphql_response_json_and_200_under_json(
    shop: LoadedApp,
) -> None:
    for body in (
        '{"query": "{"}',  # does not parse
        '{"query": "{ nope }"}',  # invalid
        '{"query": "query A { __typename } query B { __typename }"}',  # which operation?
        '{"query": "query ($n: Int!) { listUser(limit: $n) { nextToken } }", '
        '"variables": {"n": "x"}}',  # variables do not coerce
    ):
        strict = post(shop, body, accept=GRAPHQL_RESPONSE)
        assert strict.status_code == 400, body
        assert header(strict, "content-type").startswith(GRAPHQL_RESPONSE)
        assert "data" not in json.loads(strict.body)
        legacy = post(shop, body, accept=JSON)
        assert legacy.status_code == 200, body
    # A field error is not a request error: there is data, and 200.
    done = post(shop, '{"query": "{ readUser(id: \\"x\\") { id } }"}', accept=GRAPHQL_RESPONSE)
    assert done.status_code == 200
    assert json.loads(done.body) == {"data": {"readUser": None}}


def test_get_runs_queries_and_refuses_mutations(shop: LoadedApp) -> None:
    ran = get(shop, query="query ($n: Int) { listUser(limit: $n) { items { id } } }",
              variables='{"n": 5}')  # fmt: skip
    assert ran.status_code == 200
    assert json.loads(ran.body) == {"data": {"listUser": {"items": []}}}

    mutation = get(shop, query='mutation { deleteUser(id: "x") { deleted } }')
    assert mutation.status_code == 405
    assert header(mutation, "allow") == "POST"
    assert "POST" in message(mutation)


def test_get_without_a_query_gives_a_browser_the_playground_and_a_client_an_error(
    shop: LoadedApp,
) -> None:
    page = get(shop, accept="text/html,application/xhtml+xml")
    assert page.status_code in (200, 503)
    assert header(page, "content-type").startswith("text/html")
    client = get(shop)
    assert client.status_code == 400
    assert "'query'" in message(client)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("", "empty"),
        ("{", "not valid JSON"),
        ("[]", "JSON object"),
        ('{"query": 1}', "'query' string"),
        ('{"query": "{ __typename }", "variables": 0}', "'variables'"),
        ('{"query": "{ __typename }", "variables": false}', "'variables'"),
        ('{"query": "{ __typename }", "variables": ""}', "'variables'"),
        ('{"query": "{ __typename }", "variables": []}', "'variables'"),
        ('{"query": "{ __typename }", "variables": "x"}', "'variables'"),
        ('{"query": "{ __typename }", "extensions": 7}', "'extensions'"),
        ('{"query": "{ __typename }", "extensions": []}', "'extensions'"),
        ('{"query": "{ __typename }", "operationName": 1}', "'operationName'"),
        ('{"query": "{ __typename }", "x": NaN}', "NaN"),
        ('{"a": ' * 980 + "1" + "}" * 980, "nests too deeply"),
        ("[" * 5000 + "]" * 5000, "nests too deeply"),
    ],
)
def test_a_malformed_request_is_a_graphql_shaped_400(
    shop: LoadedApp, body: str, reason: str
) -> None:
    response = post(shop, body)
    assert response.status_code == 400, response.body
    assert reason in message(response)


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/graphql"])
def test_a_body_that_is_not_json_is_a_graphql_shaped_415(
    shop: LoadedApp, content_type: str | None
) -> None:
    headers = {} if content_type is None else {"content-type": content_type}
    response = shop.client.http.post(
        "/graphql", headers=headers, body='{"query": "{ __typename }"}'
    )
    if content_type is None:
        # Chalice's test client adds no header; API Gateway and chalice local pass none on.
        assert response.status_code in (200, 415)
        return
    assert response.status_code == 415
    assert "application/json" in message(response)


def test_a_document_over_the_size_limit_is_413_and_echoes_nothing_of_it(
    load_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCG_MAX_REQUEST_BYTES", "1000")
    app = load_app()
    query = "{ " + " ".join(f"a{n}: __typename" for n in range(200)) + " }"
    response = post(app, json.dumps({"query": query}))
    assert response.status_code == 413
    assert "a199" not in message(response) and "1,000" in message(response)


def test_a_document_over_the_token_limit_stops_the_parser(
    load_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCG_MAX_TOKENS", "100")
    app = load_app()
    query = "{ " + " ".join(f"a{n}: __typename" for n in range(50)) + " }"
    response = post(app, json.dumps({"query": query}), accept=GRAPHQL_RESPONSE)
    assert response.status_code == 400
    assert "more than 100 tokens" in message(response)


def test_a_lone_surrogate_in_a_task_argument_is_refused_naming_the_argument(
    shop: LoadedApp,
) -> None:
    body = json.dumps(
        {
            "query": "mutation ($c: String!) { triggerTaskUsersByCity(city: $c) { taskId } }",
            "variables": {"c": "\ud800x"},
        }
    )
    result = json.loads(post(shop, body).body)
    assert result["data"] is None
    (error,) = result["errors"]
    assert "city" in error["message"] and "surrogate" in error["message"]


def test_a_huge_task_id_or_token_is_echoed_as_a_short_prefix(shop: LoadedApp) -> None:
    huge = "x" * 1_000_000
    for query in (
        f'{{ taskResultUsersByCity(taskId: "{huge}") {{ taskStatus }} }}',
        f'{{ listUser(nextToken: "{huge}") {{ nextToken }} }}',
    ):
        response = post(shop, json.dumps({"query": query}))
        errors = json.loads(response.body)["errors"]
        assert errors and all(len(e["message"]) < 300 for e in errors), errors[0]["message"][:300]
