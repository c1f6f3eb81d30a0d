"""A stage's deployment options: what an operator tunes per stage, with affordable defaults.

They live in the stage of ``.chalice/config.json``, beside Chalice's own settings, so
both paths read the same values: ``log_retention_in_days`` is Chalice's own key (it
makes each function's log group with that retention, on both paths), the others sit
under ``"ocg"``::

    "dev": {
      "log_retention_in_days": 30,
      "ocg": {"alarm_email": "ops@example.com", "api_daily_quota": 20000}
    }

None of them reaches the functions' environment: they shape the stack, not the code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from chalicelib.settings import SettingsError

GIB = 1024**3
# The retention values CloudWatch Logs accepts.
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
    2922, 3288, 3653,
)  # fmt: skip


@dataclass(frozen=True)
class StageOptions:
    # Days CloudWatch Logs keeps each function's log lines (Chalice's key).
    log_retention_in_days: int = 30
    # Where alarms are mailed; without it the alarm topic has no subscriber (subscribe
    # one yourself: the topic's ARN is a stack output).
    alarm_email: str | None = None
    # Athena stops a query that would scan more than this: a runaway query costs at most
    # about $0.05 (Athena charges $5 per TiB scanned).
    bytes_scanned_cutoff: int = 10 * GIB
    # An alarm fires when the workgroup scans more than this in a day (about $0.49).
    daily_scanned_bytes_alarm: int = 100 * GIB
    # Each API key's steady request rate, burst and daily quota (the usage plan's).
    api_rate_limit: int = 50
    api_burst_limit: int = 100
    api_daily_quota: int = 10_000
    # At most this many concurrent invocations of each queue listener (2 to 1,000).
    queue_max_concurrency: int = 5
    # Ship the built GraphiQL in the package, so GET /playground serves it (its requests
    # still need the API key: the page is public, the API is not). 1.9 MiB unzipped.
    playground: bool = False


_CHALICE_KEYS = ("log_retention_in_days",)


def stage_options(config: Mapping[str, Any], stage: str) -> StageOptions:
    """The stage's options; an unknown or malformed one fails with its place in the
    config, so a typo is not silently ignored."""
    stage_config = config.get("stages", {}).get(stage, {})
    ours = stage_config.get("ocg", {})
    where = f".chalice/config.json, stages.{stage}"
    if not isinstance(ours, dict):
        raise SettingsError(f"{where}.ocg must be an object")
    known = {option.name for option in fields(StageOptions)} - set(_CHALICE_KEYS)
    unknown = sorted(set(ours) - known)
    if unknown:
        raise SettingsError(
            f"{where}.ocg has unknown option(s) {', '.join(unknown)}; known: "
            + ", ".join(sorted(known))
        )
    values = dict(ours)
    for key in _CHALICE_KEYS:
        value = stage_config.get(key, config.get(key))
        if value is not None:
            values[key] = value
    options = StageOptions(**values)
    _check(options, where)
    return options


def _check(options: StageOptions, where: str) -> None:
    if options.log_retention_in_days not in LOG_RETENTION_DAYS:
        raise SettingsError(
            f"{where}.log_retention_in_days={options.log_retention_in_days!r} is not a "
            f"retention CloudWatch Logs accepts ({', '.join(map(str, LOG_RETENTION_DAYS))})"
        )
    for name in (
        "bytes_scanned_cutoff",
        "daily_scanned_bytes_alarm",
        "api_rate_limit",
        "api_burst_limit",
        "api_daily_quota",
    ):
        value = getattr(options, name)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise SettingsError(f"{where}.ocg.{name}={value!r} must be a positive integer")
    if options.bytes_scanned_cutoff < 10 * 1024**2:
        raise SettingsError(
            f"{where}.ocg.bytes_scanned_cutoff={options.bytes_scanned_cutoff} is below "
            "Athena's minimum of 10 MiB (10485760)"
        )
    concurrency = options.queue_max_concurrency
    if not isinstance(concurrency, int) or not 2 <= concurrency <= 1000:
        raise SettingsError(
            f"{where}.ocg.queue_max_concurrency={concurrency!r} must be from 2 to 1000"
        )
    if not isinstance(options.playground, bool):
        raise SettingsError(f"{where}.ocg.playground={options.playground!r} must be true or false")
    email = options.alarm_email
    if email is not None and (not isinstance(email, str) or "@" not in email):
        raise SettingsError(f"{where}.ocg.alarm_email={email!r} must be an e-mail address")
