"""The Athena engine against moto: starts in the workgroup, states, and every result page."""

from __future__ import annotations

from typing import Any

import pytest
from moto.moto_api import state_manager

from chalicelib.tasks.athena import AthenaEngine
from chalicelib.tasks.engine import InvalidPageToken, QueryState, QueryStatistics
from tests.athena_world import DATABASE, WORKGROUP, AthenaWorld


def test_a_query_starts_in_the_projects_workgroup_and_database(world: AthenaWorld) -> None:
    execution_id = world.engine.start("SELECT 1", "token-0000000000000000000000000001")

    execution = world.athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]
    assert execution["Query"] == "SELECT 1"
    assert execution["WorkGroup"] == WORKGROUP
    assert execution["QueryExecutionContext"] == {"Database": DATABASE}


def test_the_state_follows_athena(world: AthenaWorld) -> None:
    state_manager.set_transition(
        model_name="athena::execution", transition={"progression": "manual", "times": 1}
    )
    try:
        execution_id = world.engine.start("SELECT 1", "token-0000000000000000000000000002")
        assert world.engine.execution(execution_id).state is QueryState.RUNNING
        assert not QueryState.RUNNING.finished
        assert world.engine.execution(execution_id).state is QueryState.SUCCEEDED
    finally:
        state_manager.unset_transition("athena::execution")


def test_a_cancelled_query_is_finished(world: AthenaWorld) -> None:
    execution_id = world.engine.start("SELECT 1", "token-0000000000000000000000000003")
    world.athena.stop_query_execution(QueryExecutionId=execution_id)

    execution = world.engine.execution(execution_id)
    assert execution.state is QueryState.CANCELLED
    assert execution.state.finished


def test_results_of_2500_rows_come_in_pages_with_the_header_only_on_the_first(
    world: AthenaWorld,
) -> None:
    world.inject_results(["id", "n"], [[f"r{i}", str(i)] for i in range(2500)])
    execution_id = world.engine.start("SELECT id, n FROM t", "token-0000000000000000000000000004")

    pages = [world.engine.results(execution_id)]
    while pages[-1].next_token is not None:
        pages.append(world.engine.results(execution_id, next_token=pages[-1].next_token))

    assert [len(page.rows) for page in pages] == [999, 1000, 501]
    rows = [row for page in pages for row in page.rows]
    assert rows == [(f"r{i}", str(i)) for i in range(2500)]
    assert all(page.columns == ("id", "n") for page in pages)


def test_a_small_first_page_asks_for_the_header_on_top(world: AthenaWorld) -> None:
    world.inject_results(["id"], [[str(i)] for i in range(5)])
    execution_id = world.engine.start("SELECT id FROM t", "token-0000000000000000000000000005")

    first = world.engine.results(execution_id, max_rows=2)
    second = world.engine.results(execution_id, next_token=first.next_token, max_rows=2)

    assert first.rows == (("0",), ("1",))
    assert second.rows == (("2",), ("3",))


def test_nulls_stay_null(world: AthenaWorld) -> None:
    world.inject_results(["a", "b"], [["x", None]])
    execution_id = world.engine.start("SELECT a, b FROM t", "token-0000000000000000000000000006")

    assert world.engine.results(execution_id).rows == (("x", None),)


def test_a_token_athena_refuses_is_an_invalid_page_token(world: AthenaWorld) -> None:
    world.inject_results(["a"], [["x"]])
    execution_id = world.engine.start("SELECT a FROM t", "token-0000000000000000000000000007")

    with pytest.raises(InvalidPageToken, match="nextToken"):
        world.engine.results(execution_id, next_token="not-a-token")


def test_the_statistics_come_from_athenas(world: AthenaWorld) -> None:
    def report(parsed: dict[str, Any], **_: Any) -> None:
        parsed["QueryExecution"]["Statistics"].update(
            DataScannedInBytes=123_456_789,
            EngineExecutionTimeInMillis=1500,
            QueryQueueTimeInMillis=42,
            ResultReuseInformation={"ReusedPreviousResult": True},
        )

    world.athena.meta.events.register("after-call.athena.GetQueryExecution", report)
    execution_id = world.engine.start("SELECT 1", "token-0000000000000000000000000099")

    assert world.engine.execution(execution_id).statistics == QueryStatistics(
        data_scanned_bytes=123_456_789, engine_millis=1500, queue_millis=42, result_reused=True
    )


@pytest.mark.parametrize("minutes", [0, 60])
def test_result_reuse_is_asked_for_only_when_the_stage_opts_in(
    world: AthenaWorld, minutes: int
) -> None:
    sent: list[dict[str, Any]] = []
    world.athena.meta.events.register(
        "provide-client-params.athena.StartQueryExecution",
        lambda params, **_: sent.append(dict(params)),
    )
    engine = AthenaEngine(
        world.athena, workgroup=WORKGROUP, database=DATABASE, result_reuse_minutes=minutes
    )
    engine.start("SELECT 1", "token-0000000000000000000000000098")

    expected = {"ResultReuseByAgeConfiguration": {"Enabled": True, "MaxAgeInMinutes": minutes}}
    assert sent[0].get("ResultReuseConfiguration") == (expected if minutes else None)
