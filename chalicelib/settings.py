"""The one place where the app's configuration is read.

Every setting comes from an environment variable (Chalice sets them per stage from
``.chalice/config.json``). Names of AWS resources are derived from the project name,
region and account exactly as DESIGN.md gives them, so a stage normally sets only
``OCG_PROJECT``, ``OCG_MODE`` and, on AWS, ``OCG_ACCOUNT_ID``; any derived name can
still be overridden by its own variable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Mode = Literal["aws", "local"]
# Who may call the API (docs/auth.md): an API key (checked by API Gateway), a Cognito
# user's ID token (checked by our code), or both: the key for the app, a token when a
# user signs in.
AuthMode = Literal["api_key", "cognito", "both"]
AUTH_MODES: tuple[AuthMode, ...] = ("api_key", "cognito", "both")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The port `make run` (chalice local) serves HTTP on unless PORT says otherwise.
DEFAULT_HTTP_PORT = 8000
# DESIGN's rule, narrowed so that every name derived from the project fits its service:
# the longest, the Athena results bucket ``ocg-<project>-athena-<account>``, must stay
# within S3's 63 characters (39 for the project), and a bucket name ends in a letter or
# digit.
PROJECT_NAME_RULE = re.compile(r"[a-z][a-z0-9-]{1,37}[a-z0-9]")

# moto's fixed account: what every ARN looks like in the embedded default.
LOCAL_ACCOUNT_ID = "123456789012"
LOCAL_REGION = "us-east-1"

# Task triggers one request may select: query tasks, deletion tasks.
DEFAULT_MAX_TASK_TRIGGERS = 5
DEFAULT_MAX_DELETION_TRIGGERS = 1
# How often the lake is compacted (chalicelib.lake.compaction): on AWS by an EventBridge
# schedule, in minutes; on the embedded default by the local runtime, in seconds.
DEFAULT_COMPACTION_MINUTES = 15
DEFAULT_LOCAL_COMPACTION_SECONDS = 60


@dataclass(frozen=True)
class RequestLimits:
    """What one GraphQL request may ask of the server (chalicelib.graphql.endpoint)."""

    max_request_bytes: int
    max_tokens: int
    max_depth: int
    max_cost: int


# A deployed (protected) stage's defaults, strict; the local stage's, generous: a
# developer's own requests, bounded only against one holding the server for long.
PROTECTED_LIMITS = RequestLimits(64 * 1024, 5_000, 10, 1_000)
LOCAL_LIMITS = RequestLimits(512 * 1024, 20_000, 20, 20_000)

# What GraphiQL, Apollo Client, urql and Relay send from a browser, beyond Chalice's own
# five (Content-Type, X-Amz-Date, Authorization, X-Api-Key, X-Amz-Security-Token).
DEFAULT_CORS_HEADERS = (
    "Accept",
    "Apollo-Require-Preflight",
    "Apollographql-Client-Name",
    "Apollographql-Client-Version",
    "X-Apollo-Operation-Name",
    "X-Requested-With",
)
DEFAULT_CORS_MAX_AGE = 600
# Athena's query result reuse for task SQL, in minutes (0: off; Athena allows 7 days).
# Off by default: a reused result can be older than the lake.
MAX_RESULT_REUSE_MINUTES = 7 * 24 * 60

# The root logger's level on Lambda (chalicelib.telemetry.logs).
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DEFAULT_LOG_LEVEL = "INFO"


class SettingsError(ValueError):
    """A setting is missing or malformed; raised when the app is imported."""


@dataclass(frozen=True)
class Settings:
    project: str
    stage: str
    mode: Mode
    region: str
    account_id: str
    schema_file: Path
    table_name: str
    table_stream_arn: str
    lake_bucket: str
    athena_results_bucket: str
    athena_output: str
    athena_workgroup: str
    glue_database: str
    cascade_queue_name: str
    cascade_queue_url: str
    cascade_queue_arn: str
    deletion_queue_name: str
    deletion_queue_url: str
    deletion_queue_arn: str
    stream_failures_queue_name: str  # where the stream's failing records go (deployed)
    tracker_failures_queue_name: str  # where the tracker's failed events go (deployed)
    list_token_secret: bytes
    local_dir: Path
    # Deployed stages require an API key and refuse introspection, deep and costly
    # requests; the local stage stays open for the explorer.
    graphql_protected: bool
    # How many query tasks, and how many deletion tasks, one request may trigger (every
    # stage: see chalicelib/graphql/triggers.py).
    max_task_triggers: int = DEFAULT_MAX_TASK_TRIGGERS
    max_deletion_triggers: int = DEFAULT_MAX_DELETION_TRIGGERS
    compaction_minutes: int = DEFAULT_COMPACTION_MINUTES
    local_compaction_seconds: int = DEFAULT_LOCAL_COMPACTION_SECONDS
    # Where the local default serves WebSocket subscriptions: WS_PORT, else the HTTP
    # server's PORT + 1 (0: any free port).
    local_ws_port: int = DEFAULT_HTTP_PORT + 1
    # The WebSocket API's Management API endpoint (https://{api}.execute-api.{region}
    # .amazonaws.com/{stage}), where the functions push to subscribers; empty: none.
    websocket_endpoint: str = ""
    result_reuse_minutes: int = 0
    limits: RequestLimits = LOCAL_LIMITS
    # CORS of the GraphQL routes: the one origin allowed ("*": any), headers a browser
    # may send beyond Chalice's five, and how long a preflight is cached (seconds).
    cors_origin: str = "*"
    cors_headers: tuple[str, ...] = DEFAULT_CORS_HEADERS
    cors_max_age: int = DEFAULT_CORS_MAX_AGE
    # The level of the root logger where Lambda runs the app: one of LOG_LEVELS.
    log_level: str = DEFAULT_LOG_LEVEL
    # Sign-in: the mode, and the Cognito user pool and app client whose ID tokens are
    # accepted (aws mode). The local stage always takes tokens signed by its local key,
    # and a request without one is public.
    auth_mode: AuthMode = "api_key"
    cognito_user_pool_id: str = ""
    cognito_client_id: str = ""

    @property
    def api_key_required(self) -> bool:
        """Whether API Gateway asks every request for the stage's API key."""
        return self.graphql_protected and self.auth_mode != "cognito"

    @property
    def accepts_tokens(self) -> bool:
        return self.is_local or self.auth_mode != "api_key"

    @property
    def token_required(self) -> bool:
        """Whether a request without a user's token is refused (401)."""
        return not self.is_local and self.auth_mode == "cognito"

    @property
    def is_local(self) -> bool:
        return self.mode == "local"

    @property
    def local_lake_dir(self) -> Path:
        """The embedded default's lake: the S3 key layout as files DuckDB can read."""
        return self.local_dir / "lake"


def _queue_url(region: str, account_id: str, name: str) -> str:
    return f"https://sqs.{region}.amazonaws.com/{account_id}/{name}"


def _queue_arn(region: str, account_id: str, name: str) -> str:
    return f"arn:aws:sqs:{region}:{account_id}:{name}"


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the settings; a bad or missing value fails with the variable's name."""
    env = os.environ if environ is None else environ

    def get(name: str, default: str) -> str:
        return env.get(name) or default

    project = get("OCG_PROJECT", "shop")
    if not PROJECT_NAME_RULE.fullmatch(project):
        raise SettingsError(
            f"OCG_PROJECT={project!r} must match {PROJECT_NAME_RULE.pattern} "
            "(lower-case letters, digits and hyphens, 3 to 39 characters, starting with a "
            "letter and ending with a letter or digit)"
        )
    mode = get("OCG_MODE", "local")
    if mode not in ("aws", "local"):
        raise SettingsError(f"OCG_MODE={mode!r} must be 'aws' or 'local'")
    if mode == "local":
        region, account_id = LOCAL_REGION, LOCAL_ACCOUNT_ID
    else:
        region = get("AWS_REGION", get("AWS_DEFAULT_REGION", ""))
        account_id = get("OCG_ACCOUNT_ID", "")
        if not region:
            raise SettingsError("AWS_REGION (or AWS_DEFAULT_REGION) is required in aws mode")
        if not re.fullmatch(r"\d{12}", account_id):
            raise SettingsError(
                f"OCG_ACCOUNT_ID={account_id!r} must be the 12-digit AWS account id in aws mode"
            )

    protected = _flag("OCG_GRAPHQL_PROTECTED", get("OCG_GRAPHQL_PROTECTED", str(mode == "aws")))
    auth_mode = get("OCG_AUTH_MODE", "api_key")
    if auth_mode not in AUTH_MODES:
        raise SettingsError(f"OCG_AUTH_MODE={auth_mode!r} must be one of {', '.join(AUTH_MODES)}")
    user_pool_id = get("OCG_COGNITO_USER_POOL_ID", "")
    client_id = get("OCG_COGNITO_CLIENT_ID", "")
    if mode == "aws" and auth_mode != "api_key" and not (user_pool_id and client_id):
        raise SettingsError(
            f"OCG_AUTH_MODE={auth_mode} needs OCG_COGNITO_USER_POOL_ID and "
            "OCG_COGNITO_CLIENT_ID (the deployment sets them: docs/auth.md)"
        )
    table_name = get("OCG_TABLE", f"OCG-{project}")
    lake_bucket = get("OCG_LAKE_BUCKET", f"ocg-{project}-{account_id}")
    athena_results_bucket = get("OCG_ATHENA_RESULTS_BUCKET", f"ocg-{project}-athena-{account_id}")
    cascade_queue_name = get("OCG_CASCADE_QUEUE", f"ocg-{project}-cascade")
    deletion_queue_name = get("OCG_DELETION_QUEUE", f"ocg-{project}-deletion")
    schema_file = Path(get("OCG_SCHEMA_FILE", str(PROJECT_ROOT / "schema.graphql")))
    if not schema_file.is_absolute():
        schema_file = PROJECT_ROOT / schema_file
    local_dir = Path(get("OCG_LOCAL_DIR", str(PROJECT_ROOT / ".local")))
    if not local_dir.is_absolute():
        local_dir = PROJECT_ROOT / local_dir

    return Settings(
        project=project,
        stage=get("OCG_STAGE", mode),
        mode=mode,  # type: ignore[arg-type]
        region=region,
        account_id=account_id,
        schema_file=schema_file,
        table_name=table_name,
        table_stream_arn=get(
            "OCG_TABLE_STREAM_ARN",
            f"arn:aws:dynamodb:{region}:{account_id}:table/{table_name}/stream/latest",
        ),
        lake_bucket=lake_bucket,
        athena_results_bucket=athena_results_bucket,
        athena_output=get("OCG_ATHENA_OUTPUT", f"s3://{athena_results_bucket}/results/"),
        athena_workgroup=get("OCG_ATHENA_WORKGROUP", f"ocg-{project}"),
        glue_database=get("OCG_GLUE_DATABASE", f"{project.replace('-', '_')}_db"),
        cascade_queue_name=cascade_queue_name,
        cascade_queue_url=get(
            "OCG_CASCADE_QUEUE_URL", _queue_url(region, account_id, cascade_queue_name)
        ),
        cascade_queue_arn=get(
            "OCG_CASCADE_QUEUE_ARN", _queue_arn(region, account_id, cascade_queue_name)
        ),
        deletion_queue_name=deletion_queue_name,
        deletion_queue_url=get(
            "OCG_DELETION_QUEUE_URL", _queue_url(region, account_id, deletion_queue_name)
        ),
        deletion_queue_arn=get(
            "OCG_DELETION_QUEUE_ARN", _queue_arn(region, account_id, deletion_queue_name)
        ),
        stream_failures_queue_name=get(
            "OCG_STREAM_FAILURES_QUEUE", f"ocg-{project}-stream-failures"
        ),
        tracker_failures_queue_name=get(
            "OCG_TRACKER_FAILURES_QUEUE", f"ocg-{project}-tracker-failures"
        ),
        list_token_secret=get("OCG_LIST_TOKEN_SECRET", f"ocg-list-token|{table_name}").encode(),
        local_dir=local_dir,
        graphql_protected=protected,
        max_task_triggers=_positive_int(
            "OCG_MAX_TASK_TRIGGERS", get("OCG_MAX_TASK_TRIGGERS", str(DEFAULT_MAX_TASK_TRIGGERS))
        ),
        max_deletion_triggers=_positive_int(
            "OCG_MAX_DELETION_TRIGGERS",
            get("OCG_MAX_DELETION_TRIGGERS", str(DEFAULT_MAX_DELETION_TRIGGERS)),
        ),
        compaction_minutes=_positive_int(
            "OCG_COMPACTION_MINUTES",
            get("OCG_COMPACTION_MINUTES", str(DEFAULT_COMPACTION_MINUTES)),
        ),
        limits=_limits(get, PROTECTED_LIMITS if protected else LOCAL_LIMITS),
        cors_origin=get("OCG_CORS_ORIGIN", "*"),
        cors_headers=tuple(
            name.strip()
            for name in get("OCG_CORS_HEADERS", ",".join(DEFAULT_CORS_HEADERS)).split(",")
            if name.strip()
        ),
        cors_max_age=_int_within(
            "OCG_CORS_MAX_AGE", get("OCG_CORS_MAX_AGE", str(DEFAULT_CORS_MAX_AGE)), 0, 86_400
        ),
        result_reuse_minutes=_int_within(
            "OCG_RESULT_REUSE_MINUTES",
            get("OCG_RESULT_REUSE_MINUTES", "0"),
            0,
            MAX_RESULT_REUSE_MINUTES,
        ),
        local_ws_port=_port(
            "WS_PORT",
            get("WS_PORT", str(int(_port("PORT", get("PORT", str(DEFAULT_HTTP_PORT)))) + 1)),
        ),
        websocket_endpoint=get("OCG_WEBSOCKET_ENDPOINT", ""),
        local_compaction_seconds=_positive_int(
            "OCG_LOCAL_COMPACTION_SECONDS",
            get("OCG_LOCAL_COMPACTION_SECONDS", str(DEFAULT_LOCAL_COMPACTION_SECONDS)),
        ),
        log_level=_log_level(get("OCG_LOG_LEVEL", DEFAULT_LOG_LEVEL)),
        auth_mode=auth_mode,
        cognito_user_pool_id=user_pool_id,
        cognito_client_id=client_id,
    )


def _flag(name: str, value: str) -> bool:
    if value.lower() not in ("true", "false"):
        raise SettingsError(f"{name}={value!r} must be true or false")
    return value.lower() == "true"


def _limits(get: Callable[[str, str], str], defaults: RequestLimits) -> RequestLimits:
    """``OCG_MAX_REQUEST_BYTES``, ``OCG_MAX_TOKENS``, ``OCG_MAX_DEPTH``, ``OCG_MAX_COST``."""
    values = {
        name: _positive_int(f"OCG_{name.upper()}", get(f"OCG_{name.upper()}", str(default)))
        for name, default in vars(defaults).items()
    }
    return RequestLimits(**values)


def _int_within(name: str, value: str, low: int, high: int) -> int:
    if not re.fullmatch(r"[0-9]+", value) or not low <= int(value) <= high:
        raise SettingsError(f"{name}={value!r} must be a whole number from {low} to {high}")
    return int(value)


def _port(name: str, value: str) -> int:
    if not value.isdigit() or int(value) > 65535:
        raise SettingsError(f"{name}={value!r} must be a port number (0 for any free port)")
    return int(value)


def _positive_int(name: str, value: str) -> int:
    if not re.fullmatch(r"[0-9]+", value) or int(value) < 1:
        raise SettingsError(f"{name}={value!r} must be a positive integer")
    return int(value)


def _log_level(value: str) -> str:
    if value.upper() not in LOG_LEVELS:
        raise SettingsError(f"OCG_LOG_LEVEL={value!r} must be one of {', '.join(LOG_LEVELS)}")
    return value.upper()
