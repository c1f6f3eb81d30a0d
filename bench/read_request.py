"""Warm request overhead of the GraphQL function for ``readT``, the store stubbed.

Each request goes through the Lambda entry point exactly as API Gateway calls it
(``app(event, context)``): routing, JSON parsing, GraphQL parse/validate/execute and
serialisation — everything but DynamoDB. Target: under 1.5 ms per request.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from deploy.bytecode import api_gateway_event

ROOT = Path(__file__).resolve().parent.parent
REQUESTS = 2000
ITEM = {
    "id": "8d6ec2c4-6bd3-4e49-9a56-0f3f4b7d2a11",
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "age": 36,
    "vip": True,
    "createdAt": "2026-11-23T19:22:14.123Z",
    "updatedAt": "2026-11-23T19:22:14.123Z",
}
QUERY = "query ($id: ID!) { readUser(id: $id) { id name email age vip createdAt updatedAt } }"


class StubStore:
    def read(self, entity: Any, entity_id: str) -> dict[str, Any]:
        return {**ITEM, "id": entity_id}


class Context:
    function_name = "ocg-dev"
    aws_request_id = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def main() -> None:
    os.environ.update(
        {
            "OCG_MODE": "aws",
            "OCG_ACCOUNT_ID": "123456789012",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_LAMBDA_FUNCTION_NAME": "ocg-dev-api_handler",  # as Lambda sets it
        }
    )
    sys.path.insert(0, str(ROOT))
    import app as application

    application.services.store = StubStore()  # type: ignore[assignment]
    # Each request still writes its log line and its metrics line, as on Lambda, but to
    # nowhere, so the figures are what this prints.
    sink = Path(os.devnull).open("w")  # noqa: SIM115 (open for the process's life)
    application.services.telemetry.metrics_out = sink
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sink)
    event = api_gateway_event(json.dumps({"query": QUERY, "variables": {"id": ITEM["id"]}}))
    context = Context()
    first = application.app(event, context)
    assert json.loads(first["body"])["data"]["readUser"]["name"] == ITEM["name"], first
    for _ in range(200):
        application.app(event, context)
    samples = []
    for _ in range(REQUESTS):
        start = time.perf_counter()
        application.app(event, context)
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    print(
        f"readUser warm request, store stubbed: median {statistics.median(samples):.3f} ms, "
        f"p95 {samples[int(len(samples) * 0.95)]:.3f} ms over {REQUESTS} requests "
        "(target < 1.5 ms)"
    )


if __name__ == "__main__":
    main()
