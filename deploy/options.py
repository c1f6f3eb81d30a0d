"""A stage's deployment options: what an operator tunes per stage, with affordable defaults.

They live in the stage of ``.chalice/config.json``, beside Chalice's own settings, so
both paths read the same values: ``log_retention_in_days`` is Chalice's own key (it
makes each function's log group with that retention, on both paths), the others sit
under ``"ocg"``::

    "dev": {
      "log_retention_in_days": 30,
      "ocg": {"alarm_email": "ops@example.com", "api_daily_quota": 20000}
    }

They shape the stack, not the code: none reaches the functions' environment but the
ids of an existing user pool, which the deployment gives the functions as it gives them
those of a pool it creates. One option is read the other way round: the sign-in mode is
the stage's environment variable ``OCG_AUTH_MODE``, since the app reads it at import to
decide whether its routes require the API key (``chalicelib.settings``); the
deployment reads it from there too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from chalicelib.settings import AUTH_MODES, AuthMode, SettingsError
from deploy.stage import AUTH_MODE_VARIABLE

GIB = 1024**3
# The retention values CloudWatch Logs accepts.
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
    2922, 3288, 3653,
)  # fmt: skip
# Cognito's formats: a user pool id is ``<region>_<letters and digits>`` (55 characters
# at most), an app client id word characters or "+" (128 at most).
USER_POOL_ID_RULE = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+_[0-9A-Za-z]+")
USER_POOL_ID_MAX = 55
USER_POOL_CLIENT_ID_RULE = re.compile(r"[\w+]{1,128}")


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
    # The WebSocket API stage's steady rate and burst of messages (connects included),
    # all clients together: its callers carry no API key to meter each by.
    ws_rate_limit: int = 100
    ws_burst_limit: int = 200
    # At most this many concurrent invocations of each queue listener (2 to 1,000).
    queue_max_concurrency: int = 5
    # Ship the built GraphiQL in the package, so GET /playground serves it (its requests
    # still need the API key: the page is public, the API is not). 1.9 MiB unzipped.
    playground: bool = False
    # Who may call the API: the stage's OCG_AUTH_MODE (api_key, cognito or both), read
    # from its environment variables, not from "ocg".
    auth_mode: AuthMode = "api_key"
    # An existing Cognito user pool and app client whose ID tokens sign users in (both or
    # neither); without them a cognito or both stage creates its own.
    user_pool_id: str | None = None
    user_pool_client_id: str | None = None
    # The created pool lets anyone sign up (else only an administrator creates users).
    self_sign_up: bool = False
    # The created app client also allows ADMIN_USER_PASSWORD_AUTH, so an operator with
    # IAM credentials gets a user's tokens from the AWS CLI (docs/deploying.md).
    admin_password_auth: bool = False

    @property
    def signs_in(self) -> bool:
        """Whether the functions accept Cognito users' ID tokens (cognito or both)."""
        return self.auth_mode != "api_key"

    @property
    def creates_user_pool(self) -> bool:
        """Whether the deployment creates the user pool and its app client."""
        return self.signs_in and self.user_pool_id is None

    @property
    def uses_api_key(self) -> bool:
        """Whether the API's routes require the stage's API key (api_key or both)."""
        return self.auth_mode != "cognito"


_CHALICE_KEYS = ("log_retention_in_days",)
# Read from the stage's environment variables (AUTH_MODE_VARIABLE), not from "ocg".
_ENVIRONMENT_KEYS = ("auth_mode",)


def stage_options(config: Mapping[str, Any], stage: str) -> StageOptions:
    """The stage's options; an unknown or malformed one fails with its place in the
    config, so a typo is not silently ignored."""
    stage_config = config.get("stages", {}).get(stage, {})
    ours = stage_config.get("ocg", {})
    where = f".chalice/config.json, stages.{stage}"
    if not isinstance(ours, dict):
        raise SettingsError(f"{where}.ocg must be an object")
    known = {option.name for option in fields(StageOptions)} - {
        *_CHALICE_KEYS,
        *_ENVIRONMENT_KEYS,
    }
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
    mode, place = _environment_variable(config, stage, AUTH_MODE_VARIABLE)
    if mode is not None:
        if mode not in AUTH_MODES:
            raise SettingsError(
                f"{place}.{AUTH_MODE_VARIABLE}={mode!r} must be one of {', '.join(AUTH_MODES)}"
            )
        values["auth_mode"] = mode
    options = StageOptions(**values)
    _check(options, where)
    return options


def _environment_variable(
    config: Mapping[str, Any], stage: str, variable: str
) -> tuple[str | None, str]:
    """A variable of the stage's environment (the stage's own, else the config's global
    one, as Chalice gives them to the functions) and where it is set. An empty value is
    unset, as the app reads it."""
    stage_config = config.get("stages", {}).get(stage, {})
    for variables, place in (
        (stage_config.get("environment_variables", {}), f"stages.{stage}"),
        (config.get("environment_variables", {}), ""),
    ):
        if variables.get(variable):
            where = ".".join(filter(None, (place, "environment_variables")))
            return variables[variable], f".chalice/config.json, {where}"
    return None, ""


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
        "ws_rate_limit",
        "ws_burst_limit",
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
    _check_sign_in(options, where)


def _check_sign_in(options: StageOptions, where: str) -> None:
    for name in ("self_sign_up", "admin_password_auth"):
        value = getattr(options, name)
        if not isinstance(value, bool):
            raise SettingsError(f"{where}.ocg.{name}={value!r} must be true or false")
    pool, client = options.user_pool_id, options.user_pool_client_id
    if (pool is None) != (client is None):
        given, missing = (
            ("user_pool_id", "user_pool_client_id")
            if client is None
            else ("user_pool_client_id", "user_pool_id")
        )
        raise SettingsError(
            f"{where}.ocg.{given} needs {missing} too: name an existing user pool and its "
            "app client both, or neither (the deployment then creates them)"
        )
    if pool is not None:
        if (
            not isinstance(pool, str)
            or len(pool) > USER_POOL_ID_MAX
            or not USER_POOL_ID_RULE.fullmatch(pool)
        ):
            raise SettingsError(
                f"{where}.ocg.user_pool_id={pool!r} must be a Cognito user pool id, "
                "<region>_<letters and digits> (eu-west-1_AbC123xyz)"
            )
        if not isinstance(client, str) or not USER_POOL_CLIENT_ID_RULE.fullmatch(client):
            raise SettingsError(
                f"{where}.ocg.user_pool_client_id={client!r} must be a Cognito app client "
                "id (letters, digits, '_' and '+', 128 at most)"
            )
        if not options.signs_in:
            raise SettingsError(
                f"{where}.ocg.user_pool_id is set but OCG_AUTH_MODE is {options.auth_mode}: "
                "a user pool is used only with OCG_AUTH_MODE cognito or both"
            )
    if not options.creates_user_pool:
        for name in ("self_sign_up", "admin_password_auth"):
            if getattr(options, name):
                why = (
                    "the stage names an existing pool (ocg.user_pool_id)"
                    if options.signs_in
                    else f"OCG_AUTH_MODE is {options.auth_mode}"
                )
                raise SettingsError(
                    f"{where}.ocg.{name} shapes the user pool the deployment creates, and "
                    f"it creates none: {why}"
                )


def user_pool_region(user_pool_id: str) -> str:
    """The region a user pool is in: its id's prefix."""
    return user_pool_id.partition("_")[0]


def user_pool_problems(options: StageOptions, stage: str, region: str) -> list[str]:
    """An existing pool the stage names in another region than the one it deploys to:
    refused, since the stage's outputs and the app's verifier
    (``chalicelib.auth.tokens.cognito_verifier``, which takes a region beside the pool
    id) are made for one region, the stage's."""
    if options.user_pool_id is None or user_pool_region(options.user_pool_id) == region:
        return []
    return [
        f".chalice/config.json, stages.{stage}.ocg.user_pool_id={options.user_pool_id!r} is a "
        f"pool in {user_pool_region(options.user_pool_id)}, but the stage deploys to "
        f"{region}: name a user pool of {region}"
    ]
