"""Load ``app.py`` the way Chalice does, on the embedded local default, once per test.

Every test gets a fresh import of ``app`` (so ``OCG_SCHEMA_FILE`` can point at its own
schema) and a fresh emulated AWS, stopped afterwards so that tests using their own
``mock_aws()`` never share its state. Each app's services are closed too (event thread,
local query engine and its DuckDB): an app left running stays in memory for the rest of
the suite (``python -m bench.suite_memory`` measures the suite's peak).
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.local import stop_embedded_aws

# Fixtures shared across packages: the moto Athena world of the task tests.
pytest_plugins = ("tests.athena_world",)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_SCHEMA = ROOT / "schema.graphql"


@dataclass
class LoadedApp:
    module: ModuleType
    client: Client
    # Sent with every request (an Authorization header: :meth:`as_caller`).
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def services(self) -> Any:
        return self.module.services

    def as_caller(self, authorization: str | None) -> LoadedApp:
        """The same app, each request sent with this Authorization header (None: none)."""
        return replace(
            self, headers={} if authorization is None else {"authorization": authorization}
        )

    def post(self, body: str | bytes, content_type: str = "application/json") -> Any:
        headers = {**self.headers, "content-type": content_type}
        return self.client.http.post("/graphql", headers=headers, body=body)

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.post(json.dumps({"query": query, "variables": variables or {}}))
        assert response.status_code == 200, response.body
        result: dict[str, Any] = json.loads(response.body)
        return result

    def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        result = self.graphql(query, variables)
        assert "errors" not in result, result["errors"]
        data: dict[str, Any] = result["data"]
        return data

    def errors(self, query: str, variables: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        result = self.graphql(query, variables)
        assert result.get("errors"), f"expected errors, got {result}"
        errors: list[dict[str, Any]] = result["errors"]
        return errors

    def error_messages(self, query: str, variables: dict[str, Any] | None = None) -> list[str]:
        return [error["message"] for error in self.errors(query, variables)]

    def settle(self) -> None:
        """Deliver every pending stream record and queue message to the handlers, and let
        every started query finish and announce it."""
        self.services.local_runtime.events.wait_until_idle()
        self.services.query_engine.wait_until_idle()
        self.services.local_runtime.events.wait_until_idle()


def create(app: LoadedApp, entity: str, **values: Any) -> str:
    """Create an entity through the API; its id."""
    data = app.data(
        f"mutation($input: Create{entity}Input!) {{ create{entity}(input: $input) {{ id }} }}",
        {"input": values},
    )
    entity_id: str = data[f"create{entity}"]["id"]
    return entity_id


@pytest.fixture
def load_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., LoadedApp]]:
    loaded: list[LoadedApp] = []

    def load(schema: str | Path = EXAMPLE_SCHEMA) -> LoadedApp:
        if isinstance(schema, str):
            path = tmp_path / "schema.graphql"
            path.write_text(schema)
            schema = path
        monkeypatch.setenv("OCG_MODE", "local")
        monkeypatch.setenv("OCG_PROJECT", "shop")
        monkeypatch.setenv("OCG_LOCAL_DIR", str(tmp_path / "local"))
        monkeypatch.setenv("WS_PORT", "0")  # each app's WebSocket server on a free port
        monkeypatch.setenv("OCG_SCHEMA_FILE", str(schema))
        sys.modules.pop("app", None)
        module = importlib.import_module("app")
        app = LoadedApp(module, Client(module.app, stage_name="local", project_dir=str(ROOT)))
        loaded.append(app)
        return app

    yield load
    for app in loaded:
        app.services.close()
    sys.modules.pop("app", None)
    stop_embedded_aws()


@pytest.fixture
def shop(load_app: Callable[..., LoadedApp]) -> LoadedApp:
    """The app serving the example schema."""
    return load_app()
