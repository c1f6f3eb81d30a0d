"""A moto world with the single table and the project's Athena workgroup, paged like Athena.

A pytest plugin (see tests/conftest.py): the `world` fixture serves tests of the task
engine, the task service and the deletion listener.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
import requests
from moto import mock_aws

from chalicelib.table import table_definition
from chalicelib.tasks.athena import AthenaEngine

TABLE = "OCG-tasks"
WORKGROUP = "ocg-tasks"
DATABASE = "tasks_db"
REGION = "us-east-1"


@dataclass
class AthenaWorld:
    dynamodb: Any
    athena: Any
    engine: AthenaEngine

    def inject_results(self, columns: list[str], rows: list[list[str | None]]) -> None:
        """Queue the result of the next query through moto's API, as Athena returns a
        SELECT: the header row first, then the data rows, every value as text."""

        def row(values: list[str | None]) -> dict[str, Any]:
            return {"Data": [{} if v is None else {"VarCharValue": v} for v in values]}

        body: dict[str, Any] = {
            "region": REGION,
            "results": [
                {
                    "rows": [row(list(columns)), *(row(r) for r in rows)],
                    "column_info": [{"Name": c, "Label": c, "Type": "varchar"} for c in columns],
                }
            ],
        }
        response = requests.post(
            "http://motoapi.amazonaws.com/moto-api/static/athena/query-results",
            json=body,
            timeout=5,
        )
        assert response.status_code == 201


def page_like_athena(client: Any) -> None:
    """moto returns every row at once; Athena returns at most ``MaxResults`` (≤ 1,000)
    rows per call, the header on the first page only, and a NextToken while more remain.
    This applies Athena's paging to moto's answer, in the client's own event pipeline."""

    def remember(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["athena_page"] = (params.get("MaxResults", 1000), params.get("NextToken"))

    def page(parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        max_results, token = context["athena_page"]
        if token is not None and not token.isdigit():
            raise client.exceptions.InvalidRequestException(
                {"Error": {"Code": "InvalidRequestException", "Message": "Invalid token"}},
                "GetQueryResults",
            )
        start = int(token or 0)
        rows = parsed["ResultSet"]["Rows"]
        parsed["ResultSet"]["Rows"] = rows[start : start + max_results]
        if start + max_results < len(rows):
            parsed["NextToken"] = str(start + max_results)

    client.meta.events.register("provide-client-params.athena.GetQueryResults", remember)
    client.meta.events.register("after-call.athena.GetQueryResults", page)


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[AthenaWorld]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        dynamodb = boto3.client("dynamodb")
        dynamodb.create_table(**table_definition(TABLE))
        athena = boto3.client("athena")
        athena.create_work_group(
            Name=WORKGROUP,
            Configuration={"ResultConfiguration": {"OutputLocation": "s3://results/"}},
        )
        page_like_athena(athena)
        yield AthenaWorld(
            dynamodb, athena, AthenaEngine(athena, workgroup=WORKGROUP, database=DATABASE)
        )
