"""What the event-source mappings need and Chalice cannot set (FIELD-NOTES, Chalice).

Without partial batch responses Lambda ignores the ``batchItemFailures`` the handlers
return: failed queue messages would be deleted and failed stream records skipped. The
stream also halves a failing batch around the bad record, retries it a bounded number of
times, and then sends it to an on-failure destination instead of holding back its shard.

The Athena state-change tracker is no mapping: EventBridge invokes it asynchronously, and
Lambda retries a failed event twice and then drops it. Its asynchronous-invocation
config gives it an on-failure destination instead, so a failed event is kept.

The settings are named as both CloudFormation (``AWS::Serverless::Function`` events,
``AWS::Lambda::EventInvokeConfig``) and Lambda's API (``UpdateEventSourceMapping``,
``PutFunctionEventInvokeConfig``) take them, so the merge template (path a) and the
post-deploy step (path b) apply the same values.
"""

from __future__ import annotations

from typing import Any

# A stream record still failing after this many retries goes to the failure queue.
STREAM_MAX_RETRIES = 5
STREAM_MAX_RECORD_AGE_SECONDS = 24 * 3600
PARTIAL_BATCH_RESPONSE: dict[str, Any] = {"FunctionResponseTypes": ["ReportBatchItemFailures"]}
# An asynchronous event still failing after this many retries goes to the failure queue
# (Lambda's default and maximum).
TRACKER_MAX_RETRIES = 2
TRACKER_MAX_EVENT_AGE_SECONDS = 6 * 3600


def stream_settings(failure_destination: Any) -> dict[str, Any]:
    """The stream mapping's settings; the destination may be a template reference."""
    return {
        **PARTIAL_BATCH_RESPONSE,
        "BisectBatchOnFunctionError": True,
        "MaximumRetryAttempts": STREAM_MAX_RETRIES,
        "MaximumRecordAgeInSeconds": STREAM_MAX_RECORD_AGE_SECONDS,
        "DestinationConfig": {"OnFailure": {"Destination": failure_destination}},
    }


def queue_settings(max_concurrency: int) -> dict[str, Any]:
    """A queue mapping's settings (its dead-letter queue is the queue's own redrive).

    Its maximum concurrency bounds how many listeners a burst of messages starts, so a
    burst of deletions cannot take the account's concurrency from the API; messages
    beyond it wait in the queue, which is what a queue is for."""
    return {**PARTIAL_BATCH_RESPONSE, "ScalingConfig": {"MaximumConcurrency": max_concurrency}}


def tracker_invoke_settings(failure_destination: Any) -> dict[str, Any]:
    """The tracker's asynchronous-invocation settings; the destination may be a template
    reference.

    An event is kept for at most six hours (``TRACKER_MAX_EVENT_AGE_SECONDS``, Lambda's
    maximum) while it waits for its first attempt or a retry. Ageing out sooner gains
    nothing: the tracker is idempotent (a task already final is left alone) and takes the
    finish time and failure reason from Athena's record of the query, which Athena keeps
    for 45 days, so a late event changes the task exactly as a prompt one would. Waiting
    longer lets it ride out throttling (the account's concurrency taken by a burst of
    stream and queue work) and be handled without anyone replaying it. An event that
    does age out is not lost either: Lambda sends it to the same destination."""
    return {
        "MaximumRetryAttempts": TRACKER_MAX_RETRIES,
        "MaximumEventAgeInSeconds": TRACKER_MAX_EVENT_AGE_SECONDS,
        "DestinationConfig": {"OnFailure": {"Destination": failure_destination}},
    }
