"""What the event-source mappings need and Chalice cannot set (FIELD-NOTES, Chalice).

Without partial batch responses Lambda ignores the ``batchItemFailures`` the handlers
return: failed queue messages would be deleted and failed stream records skipped. The
stream also halves a failing batch around the bad record, retries it a bounded number of
times, and then sends it to an on-failure destination instead of holding back its shard.

The settings are named as both CloudFormation's ``AWS::Serverless::Function`` events and
Lambda's ``UpdateEventSourceMapping`` take them, so the merge template (path a) and the
post-deploy step (path b) apply the same values.
"""

from __future__ import annotations

from typing import Any

# A stream record still failing after this many retries goes to the failure queue.
STREAM_MAX_RETRIES = 5
STREAM_MAX_RECORD_AGE_SECONDS = 24 * 3600
PARTIAL_BATCH_RESPONSE: dict[str, Any] = {"FunctionResponseTypes": ["ReportBatchItemFailures"]}


def stream_settings(failure_destination: Any) -> dict[str, Any]:
    """The stream mapping's settings; the destination may be a template reference."""
    return {
        **PARTIAL_BATCH_RESPONSE,
        "BisectBatchOnFunctionError": True,
        "MaximumRetryAttempts": STREAM_MAX_RETRIES,
        "MaximumRecordAgeInSeconds": STREAM_MAX_RECORD_AGE_SECONDS,
        "DestinationConfig": {"OnFailure": {"Destination": failure_destination}},
    }


def queue_settings() -> dict[str, Any]:
    """A queue mapping's settings (its dead-letter queue is the queue's own redrive)."""
    return dict(PARTIAL_BATCH_RESPONSE)
