"""One 100-record stream batch against an S3 stand-in that takes 20 ms per call.

The writes of a batch run concurrently on a bounded pool; serially they would take
100 x 20 ms. Target: at most 10% of that. Also measured: the same batch with one
worker, which is what the serial estimate stands for.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from bench._lake import MODEL, insert_record
from chalicelib.lake.stream import DEFAULT_MAX_WORKERS, process_stream_event

RECORDS = 100
CALL_SECONDS = 0.020
RUNS = 5


class SlowObjectStore:
    """Accepts every call after 20 ms, like an S3 round trip, and keeps nothing."""

    def put(self, key: str, body: bytes) -> None:
        time.sleep(CALL_SECONDS)

    def delete(self, key: str) -> None:
        time.sleep(CALL_SECONDS)


def run(event: dict[str, Any], max_workers: int) -> float:
    start = time.perf_counter()
    response = process_stream_event(
        event,
        model=MODEL,
        object_store=SlowObjectStore(),
        sqs_client=None,
        cascade_queue_url="",
        max_workers=max_workers,
    )
    elapsed = time.perf_counter() - start
    if response["batchItemFailures"]:
        raise RuntimeError(f"the batch reported failures: {response}")
    return elapsed


def main() -> None:
    event = {"Records": [insert_record(number) for number in range(RECORDS)]}
    run(event, DEFAULT_MAX_WORKERS)  # warm-up: pyarrow import, per-table plans
    concurrent = statistics.median(run(event, DEFAULT_MAX_WORKERS) for _ in range(RUNS))
    one_worker = run(event, 1)
    estimate = RECORDS * CALL_SECONDS
    print(f"batch: {RECORDS} INSERT records, {CALL_SECONDS * 1000:.0f} ms per store call")
    print(f"serial estimate ({RECORDS} x {CALL_SECONDS * 1000:.0f} ms):  {estimate * 1000:7.1f} ms")
    print(f"measured, 1 worker:               {one_worker * 1000:7.1f} ms")
    print(f"measured, {DEFAULT_MAX_WORKERS} workers (median):   {concurrent * 1000:7.1f} ms")
    print(f"concurrent / serial estimate: {concurrent / estimate:.1%} (target <= 10%)")


if __name__ == "__main__":
    main()
