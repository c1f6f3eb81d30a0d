"""The app as Lambda's Python runtime runs it, with moto for AWS.

``python -m tests.telemetry.lambda_probe FRAMES`` does what ``awslambdaric.bootstrap.run``
does before the first invocation (standard output unbuffered; the log sink Lambda
hands over in ``_LAMBDA_TELEMETRY_LOG_FD``, here the file ``FRAMES``; the root logger
set up by the runtime's own ``_setup_logging`` for ``AWS_LAMBDA_LOG_FORMAT`` and
``AWS_LAMBDA_LOG_LEVEL``), then imports ``app`` and invokes its handlers as Lambda
would: a GraphQL request, a cascade batch, and a GraphQL request whose table is gone.
The log is in ``FRAMES`` (the runtime's framing); standard output has what the
handlers printed.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).resolve().parent.parent / "events"
TABLE = "OCG-shop"


class Context:
    """What Lambda passes as the context of an invocation."""

    def __init__(self, function_name: str, request_id: str) -> None:
        self.function_name = function_name
        self.aws_request_id = request_id

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def invoke_handlers(bootstrap: Any) -> None:
    import boto3
    from moto import mock_aws

    from chalicelib.table import table_definition
    from deploy.bytecode import api_gateway_event

    with mock_aws():
        dynamodb = boto3.client("dynamodb")
        dynamodb.create_table(**table_definition(TABLE))
        import app

        function = os.environ["AWS_LAMBDA_FUNCTION_NAME"]

        def invoke(handler: Any, event: dict[str, Any], request_id: str) -> Any:
            bootstrap._GLOBAL_AWS_REQUEST_ID = request_id  # as the runtime's loop sets it
            return handler(event, Context(function, request_id))

        hello = {"query": "query Hello { listUser { items { id } } }", "operationName": "Hello"}
        invoke(app.app, api_gateway_event(json.dumps(hello), "api-request-1"), "lambda-request-1")
        cascade = json.loads((EVENTS / "sqs_cascade.json").read_text())
        invoke(app.on_cascade_message, cascade, "lambda-request-2")
        dynamodb.delete_table(TableName=TABLE)
        broken = {"query": 'query Broken { readUser(id: "u1") { id } }'}
        invoke(app.app, api_gateway_event(json.dumps(broken), "api-request-3"), "lambda-request-3")


def main(frames: str) -> None:
    os.environ["_LAMBDA_TELEMETRY_LOG_FD"] = str(os.open(frames, os.O_WRONLY | os.O_CREAT))
    from awslambdaric import bootstrap  # type: ignore[import-untyped]

    sys.stdout = bootstrap.Unbuffered(sys.stdout)
    sys.stderr = bootstrap.Unbuffered(sys.stderr)
    with bootstrap.create_log_sink() as log_sink:
        bootstrap._setup_logging(
            bootstrap._AWS_LAMBDA_LOG_FORMAT, bootstrap._AWS_LAMBDA_LOG_LEVEL, log_sink
        )
        invoke_handlers(bootstrap)


if __name__ == "__main__":
    main(sys.argv[1])
