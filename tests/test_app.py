"""The application as Chalice, Lambda and a new user see it: routes, start-up, packaging."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chalicelib.services import LAMBDA_FUNCTION_VARIABLE
from chalicelib.tasks.engine import EngineError
from tests.conftest import ROOT, LoadedApp

AWS_ENV = {
    "OCG_MODE": "aws",
    "OCG_ACCOUNT_ID": "123456789012",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "request body is empty"),
        ("{not json", "request body is not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"variables": {}}', "must have a 'query' string"),
        ('{"query": "{ __typename }", "variables": [1]}', "'variables' must be a JSON object"),
        ('{"query": "{ __typename }", "operationName": 5}', "'operationName' must be a string"),
    ],
)
def test_a_malformed_request_is_a_400_with_a_clear_message(
    shop: LoadedApp, body: str, message: str
) -> None:
    response = shop.post(body)

    assert response.status_code == 400
    assert message in json.loads(response.body)["errors"][0]["message"]


def test_graphql_errors_come_back_with_http_200(shop: LoadedApp) -> None:
    result = shop.graphql("{ readUser(id: 1) { nope } }")

    assert "Cannot query field 'nope' on type 'User'" in result["errors"][0]["message"]


def test_get_serves_the_graphiql_explorer_to_a_browser(shop: LoadedApp) -> None:
    response = shop.client.http.get("/graphql", headers={"accept": "text/html,*/*;q=0.8"})

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert "graphiql" in response.body.decode().lower()


def _page_settings(body: bytes) -> dict[str, Any]:
    found = re.search(
        r'id="playground-settings" type="application/json">(.*?)</script>', body.decode()
    )
    assert found is not None
    settings: dict[str, Any] = json.loads(found.group(1))
    return settings


def test_the_keyless_playground_sends_operations_to_graphql_beside_it(shop: LoadedApp) -> None:
    response = shop.client.http.get("/playground")

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    settings = _page_settings(response.body)
    assert settings["graphqlUrl"] == "graphql"
    # Subscriptions go to the embedded WebSocket server, which the page may reach.
    websockets = shop.services.local_runtime.websockets
    assert settings["subscriptionUrl"] == websockets.url
    assert websockets.url in response.headers["Content-Security-Policy"]


def test_on_a_protected_stage_the_playground_asks_for_the_api_key(
    load_app: Callable[..., LoadedApp], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCG_GRAPHQL_PROTECTED", "true")
    app = load_app()

    settings = _page_settings(app.client.http.get("/playground").body)

    assert json.loads(settings["defaultHeaders"]) == {"x-api-key": ""}
    routes = app.module.app.routes
    assert not routes["/playground"]["GET"].api_key_required
    assert routes["/graphql"]["GET"].api_key_required is True
    assert routes["/graphql"]["POST"].api_key_required is True


def test_the_original_query_fields_are_replaced_by_tasks(shop: LoadedApp) -> None:
    fields = shop.data("{ __schema { queryType { fields { name } } } }")["__schema"]
    names = {field["name"] for field in fields["queryType"]["fields"]}

    assert "usersByCity" not in names
    assert {"readUser", "listUser", "taskResultUsersByCity"} <= names


def test_app_declares_every_handler_of_the_system(shop: LoadedApp) -> None:
    app = shop.module.app
    settings = shop.services.settings
    sources = {source.name: source for source in app.event_sources}

    assert set(sources) == {
        "on_table_change",
        "on_cascade_message",
        "on_deletion_message",
        "on_athena_state_change",
        "compact_lake",
    }
    assert sources["on_table_change"].stream_arn == settings.table_stream_arn
    # The lake must see every change, including those made before the mapping existed.
    assert sources["on_table_change"].starting_position == "TRIM_HORIZON"
    assert sources["on_cascade_message"].queue_arn == settings.cascade_queue_arn
    assert sources["on_deletion_message"].queue_arn == settings.deletion_queue_arn
    assert sources["on_athena_state_change"].event_pattern["detail"] == {
        "workgroupName": [settings.athena_workgroup]
    }
    # EventBridge runs the lake's compaction every OCG_COMPACTION_MINUTES.
    schedule = sources["compact_lake"].schedule_expression
    assert schedule.to_string() == f"rate({settings.compaction_minutes} minutes)"


def test_closing_the_services_stops_what_they_started(shop: LoadedApp) -> None:
    """What boots the app again and again in one process (the tests) must be able to
    free each boot: event delivery, the local query engine's thread and its DuckDB."""
    services = shop.services
    services.query_engine.preload()
    services.query_engine.wait_until_idle()
    names = ("ocg-local-events", "ocg-local-athena")
    started = [thread for thread in threading.enumerate() if thread.name in names]
    assert sorted(thread.name for thread in started) == sorted(names)

    services.close()
    services.close()  # idempotent

    assert not [thread.name for thread in started if thread.is_alive()]
    with pytest.raises(EngineError, match="closed"):
        services.query_engine.preload()


@pytest.mark.parametrize(("on_lambda", "frozen"), [(True, True), (False, False)])
def test_on_lambda_start_up_objects_are_kept_from_the_garbage_collector(
    on_lambda: bool, frozen: bool
) -> None:
    lambda_env = {LAMBDA_FUNCTION_VARIABLE: "ocg-dev"} if on_lambda else {}
    result = run_python("import gc, app; print(gc.get_freeze_count())", **AWS_ENV, **lambda_env)

    assert result.returncode == 0, result.stderr
    assert (int(result.stdout) > 10_000) is frozen


def test_importing_app_in_aws_mode_loads_no_heavy_library() -> None:
    heavy = ("pyarrow", "pandas", "duckdb", "sqlglot", "moto")
    result = run_python(
        f"import sys, app; print([m for m in {heavy!r} if m in sys.modules])", **AWS_ENV
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# Through the Lambda entry point as API Gateway calls it (chalice.test would import the
# chalice CLI, which makes the app parse its SQL at start-up as the CLI's commands do).
TASK_REQUESTS_ON_AWS = """
import json, sys
from moto import mock_aws
import boto3
from chalicelib.table import table_definition
with mock_aws():
    boto3.client("dynamodb").create_table(**table_definition("OCG-shop"))
    boto3.client("athena").create_work_group(
        Name="ocg-shop", Configuration={"ResultConfiguration": {"OutputLocation": "s3://r/"}}
    )
    import app
    class Context:
        function_name, aws_request_id = "ocg-dev", "test"
        def get_remaining_time_in_millis(self):
            return 30_000
    def graphql(query):
        event = {
            "resource": "/graphql", "path": "/graphql", "httpMethod": "POST",
            "headers": {"content-type": "application/json"},
            "multiValueHeaders": {"content-type": ["application/json"]},
            "queryStringParameters": None, "multiValueQueryStringParameters": None,
            "pathParameters": None, "stageVariables": None,
            "requestContext": {"resourcePath": "/graphql", "httpMethod": "POST",
                               "path": "/api/graphql", "stage": "api", "requestId": "test",
                               "identity": {"sourceIp": "127.0.0.1"}},
            "body": json.dumps({"query": query}), "isBase64Encoded": False,
        }
        return json.loads(app.app(event, Context())["body"])
    started = graphql('mutation { triggerTaskUsersByCity(city: "Paris") { taskId } }')
    task_id = started["data"]["triggerTaskUsersByCity"]["taskId"]
    result = graphql(
        '{ taskResultUsersByCity(taskId: "%s") { taskStatus result { name } } }' % task_id
    )
    print(json.dumps(result.get("data") or result))
    print([m for m in ("pyarrow", "pandas", "duckdb") if m in sys.modules])
"""


def test_tasks_on_aws_run_on_athena_without_any_heavy_library() -> None:
    """The GraphQL function renders and starts SQL with no engine or Arrow (the trigger
    imports sqlglot, pure Python, to read each lake table through its layers)."""
    result = run_python(
        TASK_REQUESTS_ON_AWS,
        **AWS_ENV,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
    )

    assert result.returncode == 0, result.stderr
    data, heavy = result.stdout.strip().splitlines()
    assert json.loads(data) == {"taskResultUsersByCity": {"taskStatus": "SUCCEEDED", "result": []}}
    assert heavy == "[]"


def test_a_broken_schema_fails_the_import_with_file_line_and_rule(tmp_path: Path) -> None:
    schema = tmp_path / "broken.graphql"
    schema.write_text("type User {\n  id: ID!\n  friend: User\n}\n")

    result = run_python("import app", OCG_SCHEMA_FILE=str(schema))

    assert result.returncode != 0
    assert f"{schema}:3:" in result.stderr
    assert "User.friend" in result.stderr


# What a plain ``chalice package`` of the dev stage needs from the environment: the
# stage leaves its account to ``python -m deploy package`` (or ``prepare``).
RAW_PACKAGE = {"AWS_DEFAULT_REGION": "us-east-1", "OCG_ACCOUNT_ID": "210987654321"}


def test_a_broken_schema_is_refused_by_chalice_package(tmp_path: Path) -> None:
    schema = tmp_path / "broken.graphql"
    schema.write_text("type Query {\n  total: Int\n}\n")
    chalice = Path(sys.executable).with_name("chalice")

    result = subprocess.run(
        [str(chalice), "package", "--stage", "dev", str(tmp_path / "out")],
        cwd=ROOT,
        env={**os.environ, **RAW_PACKAGE, "OCG_SCHEMA_FILE": str(schema)},
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode != 0
    assert f"{schema}:2:3: Query.total" in result.stderr
    assert not (tmp_path / "out").exists()


def test_the_deployment_package_contains_the_schema(tmp_path: Path) -> None:
    chalice = Path(sys.executable).with_name("chalice")
    result = subprocess.run(
        [str(chalice), "package", "--stage", "dev", str(tmp_path / "out")],
        cwd=ROOT,
        env={**os.environ, **RAW_PACKAGE},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr

    with zipfile.ZipFile(tmp_path / "out" / "deployment.zip") as package:
        names = set(package.namelist())
        assert {"app.py", "chalicelib/services.py", "schema.graphql"} <= names
        assert package.read("schema.graphql") == (ROOT / "schema.graphql").read_bytes()
        assert not any(name.startswith(("pyarrow/", "pandas/", "duckdb/")) for name in names)
    resources: dict[str, Any] = json.loads((tmp_path / "out" / "sam.json").read_text())["Resources"]
    api_environment = resources["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert api_environment["OCG_MODE"] == "aws"
    events = resources["OnCascadeMessage"]["Properties"]["Events"]
    (cascade_source,) = events.values()
    assert cascade_source["Properties"]["Queue"].endswith(":ocg-shop-cascade")
    api = resources["RestAPI"]["Properties"]["DefinitionBody"]
    for method in ("get", "post"):  # a deployed stage needs an API key
        assert api["paths"]["/graphql"][method]["security"] == [{"api_key": []}]


def test_a_second_local_app_may_not_share_the_first_ones_lake(tmp_path: Path) -> None:
    env = {**os.environ, "OCG_MODE": "local", "OCG_LOCAL_DIR": str(tmp_path)}
    first = subprocess.Popen(
        [sys.executable, "-c", "import app, time; print('ready', flush=True); time.sleep(60)"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert first.stdout is not None
        assert first.stdout.readline().strip() == "ready"

        second = run_python("import app", OCG_MODE="local", OCG_LOCAL_DIR=str(tmp_path))

        assert second.returncode != 0
        assert f"another app is running on the local default with OCG_LOCAL_DIR={tmp_path}" in (
            second.stderr
        )
    finally:
        first.kill()
        first.wait()
