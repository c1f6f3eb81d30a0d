"""The project's SQS queues (DESIGN §7), defined once for the emulator and the deployment.

Both queues feed a Lambda function through an event-source mapping that reports
partial batch failures; a message that keeps failing is moved to the queue's
dead-letter queue after ``MAX_RECEIVE_COUNT`` receives.
"""

from __future__ import annotations

import json
from typing import Any

MAX_RECEIVE_COUNT = 5
DLQ_SUFFIX = "-dlq"
# Chalice's default Lambda timeout. AWS advises a queue's visibility timeout of at least
# six times its function's timeout, so a message is not handed out again while a
# (retried) invocation still works on it.
FUNCTION_TIMEOUT_SECONDS = 60
VISIBILITY_TIMEOUT_SECONDS = 6 * FUNCTION_TIMEOUT_SECONDS
# How long a queued message is kept (SQS's default, stated so it is a decision): far
# longer than its five receives take.
RETENTION_SECONDS = 4 * 24 * 3600
# How long a dead-lettered message is kept for inspection (SQS's maximum, 14 days). SQS
# keeps a message's first enqueue time when it moves it to the dead-letter queue, so this
# must exceed RETENTION_SECONDS or a message could expire on arrival.
DLQ_RETENTION_SECONDS = 14 * 24 * 3600


def dead_letter_queue_name(queue_name: str) -> str:
    return queue_name + DLQ_SUFFIX


def queue_attributes(dead_letter_queue_arn: Any) -> dict[str, Any]:
    """A queue's attributes; the ARN may be a CloudFormation reference in a template."""
    return {
        "VisibilityTimeout": VISIBILITY_TIMEOUT_SECONDS,
        "MessageRetentionPeriod": RETENTION_SECONDS,
        "RedrivePolicy": {
            "deadLetterTargetArn": dead_letter_queue_arn,
            "maxReceiveCount": MAX_RECEIVE_COUNT,
        },
    }


def sqs_attributes(dead_letter_queue_arn: str) -> dict[str, str]:
    """The same attributes as the SQS API takes them: every value a string."""
    attributes = queue_attributes(dead_letter_queue_arn)
    return {
        "VisibilityTimeout": str(attributes["VisibilityTimeout"]),
        "MessageRetentionPeriod": str(attributes["MessageRetentionPeriod"]),
        "RedrivePolicy": json.dumps(attributes["RedrivePolicy"]),
    }
