"""The query engine on AWS: Athena, through boto3, in the project's workgroup.

The workgroup enforces the output location and the bytes-scanned cutoff, so a start
names only the workgroup and the Glue database the SQL's unqualified tables live in.
"""

from __future__ import annotations

from typing import Any

from chalicelib.tasks.engine import (
    MAX_PAGE_ROWS,
    EngineError,
    InvalidPageToken,
    QueryExecution,
    QueryState,
    QueryStatistics,
    ResultPage,
    UnknownExecution,
)


class AthenaEngine:
    def __init__(
        self, client: Any, *, workgroup: str, database: str, result_reuse_minutes: int = 0
    ) -> None:
        """``result_reuse_minutes`` > 0: an identical query whose results are at most that
        old is answered from them (Athena's query result reuse), scanning nothing."""
        self._client = client
        self._workgroup = workgroup
        self._database = database
        self._result_reuse_minutes = result_reuse_minutes

    def start(self, sql: str, request_token: str) -> str:
        request: dict[str, Any] = {
            "QueryString": sql,
            "ClientRequestToken": request_token,
            "QueryExecutionContext": {"Database": self._database},
            "WorkGroup": self._workgroup,
        }
        if self._result_reuse_minutes:
            request["ResultReuseConfiguration"] = {
                "ResultReuseByAgeConfiguration": {
                    "Enabled": True,
                    "MaxAgeInMinutes": self._result_reuse_minutes,
                }
            }
        response = self._client.start_query_execution(**request)
        return str(response["QueryExecutionId"])

    def execution(self, execution_id: str) -> QueryExecution:
        try:
            response = self._client.get_query_execution(QueryExecutionId=execution_id)
        except self._client.exceptions.InvalidRequestException as error:
            raise UnknownExecution(
                f"no query execution {execution_id}: {_message(error)}"
            ) from None
        execution = response["QueryExecution"]
        status = execution["Status"]
        reason = status.get("AthenaError", {}).get("ErrorMessage") or status.get(
            "StateChangeReason"
        )
        return QueryExecution(
            execution_id=execution_id,
            state=QueryState(status["State"]),
            reason=reason,
            submitted=status.get("SubmissionDateTime"),
            completed=status.get("CompletionDateTime"),
            statistics=_statistics(execution.get("Statistics", {})),
        )

    def results(
        self, execution_id: str, *, next_token: str | None = None, max_rows: int = MAX_PAGE_ROWS
    ) -> ResultPage:
        """One page; the first page of a SELECT starts with the header row, which is
        asked for on top of ``max_rows`` (within Athena's 1,000) and dropped."""
        first_page = next_token is None
        request: dict[str, Any] = {
            "QueryExecutionId": execution_id,
            "MaxResults": min(max_rows + (1 if first_page else 0), MAX_PAGE_ROWS),
        }
        if next_token is not None:
            request["NextToken"] = next_token
        try:
            response = self._client.get_query_results(**request)
        except self._client.exceptions.InvalidRequestException as error:
            message = _message(error)
            if next_token is not None and "token" in message.lower():
                raise InvalidPageToken(f"invalid nextToken: {message}") from None
            raise EngineError(f"cannot read the results of {execution_id}: {message}") from None
        result_set = response["ResultSet"]
        columns = tuple(
            str(column["Name"]).lower()
            for column in result_set.get("ResultSetMetadata", {}).get("ColumnInfo", [])
        )
        rows = [
            tuple(datum.get("VarCharValue") for datum in row.get("Data", []))
            for row in result_set.get("Rows", [])
        ]
        if first_page:
            rows = rows[1:]
        return ResultPage(columns, tuple(rows), response.get("NextToken"))


def _statistics(reported: dict[str, Any]) -> QueryStatistics:
    def number(name: str) -> int | None:
        value = reported.get(name)
        return None if value is None else int(value)

    return QueryStatistics(
        data_scanned_bytes=number("DataScannedInBytes"),
        engine_millis=number("EngineExecutionTimeInMillis"),
        queue_millis=number("QueryQueueTimeInMillis"),
        result_reused=bool(
            reported.get("ResultReuseInformation", {}).get("ReusedPreviousResult", False)
        ),
    )


def _message(error: Any) -> str:
    return str(error.response.get("Error", {}).get("Message") or error)
