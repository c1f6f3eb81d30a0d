"""Start-up: settings, the compiled schema, and the AWS clients of the world we run in.

This is the one place that knows whether the app runs on AWS or on the embedded local
default; handlers and resolvers receive what they need from :class:`Services` and
never ask. Clients and the executable schema are created on first use, so a cold
start pays only for what its function touches.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import shutil
import sys
from collections.abc import Callable
from datetime import datetime
from functools import cache, cached_property
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from chalicelib.keys import LAKE_LAYER_PREFIXES
from chalicelib.schema import SchemaError, load_schema
from chalicelib.settings import PROJECT_ROOT, Settings, SettingsError, load_settings
from chalicelib.telemetry import Telemetry, configure_logging
from chalicelib.telemetry.logs import (
    LAMBDA_FUNCTION_VARIABLE as LAMBDA_FUNCTION_VARIABLE,  # re-exported: deploy, tests
)
from chalicelib.telemetry.logs import lambda_function_name

if TYPE_CHECKING:
    from chalice.app import Chalice

    from chalicelib.auth import Identity, TokenVerifier
    from chalicelib.graphql import GraphQLEndpoint
    from chalicelib.lake.objects import ObjectStore
    from chalicelib.local import EmbeddedAWS, LocalRuntime
    from chalicelib.local.athena import LocalAthena
    from chalicelib.schema.model import SchemaModel
    from chalicelib.store import EntityStore
    from chalicelib.subscriptions import SubscriptionHub
    from chalicelib.tasks.engine import QueryEngine
    from chalicelib.tasks.service import TaskService

ClientFactory = Callable[[str], Any]

logger = logging.getLogger(__name__)


class Services:
    """What handlers and resolvers may use, built once per process by :func:`boot`."""

    def __init__(self, settings: Settings, model: SchemaModel, client: ClientFactory) -> None:
        self.settings = settings
        self.model = model
        self.client = cache(client)
        self.local_runtime: LocalRuntime | None = None
        # The handlers' invocations: their log fields and metrics.
        self.telemetry = Telemetry(settings, function_name=lambda_function_name())

    @cached_property
    def store(self) -> EntityStore:
        from chalicelib.store import EntityStore

        return EntityStore(
            self.client("dynamodb"), self.settings.table_name, self.settings.list_token_secret
        )

    @cached_property
    def lake_objects(self) -> ObjectStore:
        """Where the lake's files go: the S3 bucket, or on the embedded default a directory
        DuckDB reads (moto's S3 is in memory, out of any SQL engine's reach)."""
        from chalicelib.lake.objects import DirectoryObjectStore, S3ObjectStore

        if self.settings.is_local:
            return DirectoryObjectStore(
                self.settings.local_lake_dir, on_change=self._local_athena.lake_changed
            )
        return S3ObjectStore(self.client("s3"), self.settings.lake_bucket)

    @property
    def lake_write_workers(self) -> int:
        """How many lake files the stream handler writes at once. S3 writes wait on the
        network, so many overlap; the local directory's are encoding and disk work in
        this very process, where more threads only contend for the interpreter with
        the API they run beside."""
        from chalicelib.lake.stream import DEFAULT_MAX_WORKERS

        return 1 if self.settings.is_local else DEFAULT_MAX_WORKERS

    @cached_property
    def query_engine(self) -> QueryEngine:
        """Athena, or on the embedded default DuckDB over the local lake."""
        if self.settings.is_local:
            return self._local_athena
        from chalicelib.tasks.athena import AthenaEngine

        return AthenaEngine(
            self.client("athena"),
            workgroup=self.settings.athena_workgroup,
            database=self.settings.glue_database,
            result_reuse_minutes=self.settings.result_reuse_minutes,
        )

    @cached_property
    def _local_athena(self) -> LocalAthena:
        """DuckDB standing in for Athena: it follows the local lake as it is written and
        announces state changes through the local EventBridge, as Athena would."""
        from chalicelib.lake.layers import lake_layers
        from chalicelib.local.athena import LocalAthena

        s = self.settings
        return LocalAthena(
            s.local_lake_dir,
            lake_layers(self.model),
            workgroup=s.athena_workgroup,
            region=s.region,
            account_id=s.account_id,
            publish=self._publish_local_event,
            result_reuse_minutes=s.result_reuse_minutes,
            results_dir=s.local_dir / "athena",
        )

    @cached_property
    def tasks(self) -> TaskService:
        from chalicelib.tasks.service import TaskService

        return TaskService(
            self.client("dynamodb"),
            self.settings.table_name,
            self.query_engine,
            queue_deletion=self._queue_deletion,
        )

    @cached_property
    def subscriptions(self) -> SubscriptionHub:
        """GraphQL subscriptions over WebSocket: the protocol of the ``on_ws_*`` routes,
        and the fan-out of changes and task states. Clients are reached through the
        WebSocket API's Management API, or locally the embedded server's sockets."""
        from chalicelib.subscriptions import (
            Connections,
            ManagementConnections,
            SubscriptionHub,
            SubscriptionRegistry,
        )

        connections: Connections
        if self.local_runtime is not None and self.local_runtime.websockets is not None:
            from chalicelib.local.websockets import LocalConnections

            connections = LocalConnections(self.local_runtime.websockets)
        else:
            connections = ManagementConnections(self.client("apigatewaymanagementapi"))
        return SubscriptionHub(
            self,
            lambda: self.graphql_endpoint,
            SubscriptionRegistry(self.client("dynamodb"), self.settings.table_name),
            connections,
            self.authenticate,
            self.model,
            publishing=self.settings.is_local or bool(self.settings.websocket_endpoint),
        )

    @cached_property
    def token_verifier(self) -> TokenVerifier:
        """Checks users' ID tokens: the user pool's on AWS (its keys fetched on first
        use), the local signing key's on the embedded default."""
        from chalicelib.auth import cognito_verifier, local_verifier

        s = self.settings
        if s.is_local:
            return local_verifier(s.local_dir, s.project)
        return cognito_verifier(s.region, s.cognito_user_pool_id, s.cognito_client_id)

    def authenticate(self, authorization: str | None) -> Identity:
        """The caller of a request by its Authorization header (docs/auth.md): PUBLIC
        without a token where the stage allows that, else the token's verified user.
        Raises TokenError for a token refused (or missing where one is required)."""
        from chalicelib.auth import PUBLIC, TokenError, bearer_token

        token = bearer_token(authorization)
        if token is None:
            if self.settings.token_required:
                raise TokenError(
                    "this API needs a signed-in user: send their ID token as "
                    "'Authorization: Bearer <token>'"
                )
            return PUBLIC
        if not self.settings.accepts_tokens:
            raise TokenError(
                "this stage takes no user tokens (its sign-in is the API key): "
                "send no Authorization header"
            )
        return self.token_verifier.verify(token)

    def _queue_deletion(self, task_id: str) -> None:
        self.client("sqs").send_message(
            QueueUrl=self.settings.deletion_queue_url, MessageBody=json.dumps({"taskId": task_id})
        )

    @cached_property
    def graphql_endpoint(self) -> GraphQLEndpoint:
        """The API, with the stage's request limits (strict on a protected stage, which
        also refuses introspection). Every stage caps the tasks one request may trigger."""
        from chalicelib.graphql import GraphQLEndpoint, build_executable_schema
        from chalicelib.graphql.limits import ApiLimits
        from chalicelib.graphql.triggers import trigger_limit

        limits = ApiLimits(
            self.model,
            max_depth=self.settings.limits.max_depth,
            max_cost=self.settings.limits.max_cost,
            introspection=not self.settings.graphql_protected,
        )
        triggers = trigger_limit(
            self.model,
            max_tasks=self.settings.max_task_triggers,
            max_deletions=self.settings.max_deletion_triggers,
        )
        return GraphQLEndpoint(
            build_executable_schema(self.model),
            limits,
            document_rules=(triggers,),
            max_request_bytes=self.settings.limits.max_request_bytes,
            max_tokens=self.settings.limits.max_tokens,
            authenticate=self.authenticate,
        )

    def deliver_local_events(self, app: Chalice) -> None:
        """On the embedded default, feed streams, queues and events to ``app``'s handlers.

        On AWS, Lambda's event-source mappings do that, so this does nothing.
        """
        if self.settings.is_local and self.local_runtime is None:
            from chalicelib.local import start_local_runtime

            self.local_runtime = start_local_runtime(app, self.settings)
            self._end_interrupted_tasks()

    def compacting(self) -> contextlib.AbstractContextManager[None]:
        """Hold the lake's compaction to one run at a time: on AWS the function's reserved
        concurrency of 1 does; locally, ``make compact`` and the schedule share a lock file."""
        if not self.settings.is_local:
            return contextlib.nullcontext()
        from chalicelib.lake.compaction import exclusive_compaction

        return exclusive_compaction(self.settings.local_lake_dir)

    def acknowledging(self) -> contextlib.AbstractContextManager[None]:
        """Wrap a request: on the embedded default its writes are on disk once the block
        ends (and not each on its own); on AWS, DynamoDB made each durable already."""
        if self.local_runtime is None:
            return contextlib.nullcontext()
        return self.local_runtime.aws.acknowledging()

    def _end_interrupted_tasks(self) -> None:
        """A query the local engine ran when an earlier process died died with it: its
        task (kept on disk) is failed with a reason, through the tracker, as a failed
        Athena query would be. A deletion task whose rows are being deleted is not: its
        message is kept and the deletion listener finishes it."""
        from chalicelib.tasks.service import DeletionStep, TaskStatus

        assert self.local_runtime is not None
        for task_id in self.local_runtime.aws.task_ids():
            task = self.tasks.read(task_id)
            if (
                task is None
                or task.status is not TaskStatus.RUNNING
                or task.deletion_step is DeletionStep.QUEUED
            ):
                continue
            self._local_athena.abandon(
                task.task_id,
                datetime.fromisoformat(task.start_date),
                "the local query engine stopped while this query ran (the app was "
                "restarted); trigger the task again",
            )

    def close(self) -> None:
        """Stop what these services started: local event delivery, and the local query
        engine's thread and DuckDB database. A server or a Lambda process never needs
        this (it ends with the process); whatever boots the app again and again in one
        process (the tests) does, or every boot stays in memory. Idempotent."""
        if self.local_runtime is not None:
            self.local_runtime.stop()
        # Only engines already created (a cached_property is in __dict__ once computed);
        # both names may hold the same one, and closing it twice is harmless.
        for name in ("query_engine", "_local_athena"):
            close = getattr(self.__dict__.get(name), "close", None)
            if close is not None:
                close()

    def _publish_local_event(self, event: dict[str, Any]) -> None:
        if self.local_runtime is None:
            raise RuntimeError("no local event delivery: call deliver_local_events(app) first")
        self.local_runtime.events.publish(event)


def _sql_checked_here(settings: Settings) -> bool:
    """Whether loading the schema also parses its SQL (sqlglot costs ~75 ms to import).

    Everywhere a schema is written, tried or shipped — tests, local mode and the chalice
    CLI's ``local``/``package``/``deploy`` — the SQL is parsed and checked. A deployed
    function runs a package built from an already-checked schema, so its cold start
    skips the parse.
    """
    return settings.is_local or "chalice.cli" in sys.modules


def _aws_clients(settings: Settings) -> ClientFactory:
    """boto3 clients of the function's region, the session made on first use (~10 ms).
    The Management API's client posts to the stage's own WebSocket API."""

    @cache
    def session() -> Any:
        import boto3

        return boto3.session.Session(region_name=settings.region)

    def client(service_name: str) -> Any:
        from botocore.config import Config

        from chalicelib.lake.stream import DEFAULT_MAX_WORKERS

        # The stream handler writes a batch's files concurrently: a connection per worker.
        config = Config(max_pool_connections=DEFAULT_MAX_WORKERS)
        if service_name == "apigatewaymanagementapi":
            return session().client(
                service_name, config=config, endpoint_url=settings.websocket_endpoint or None
            )
        return session().client(service_name, config=config)

    return client


# Local directories this process has claimed, with their open lock files.
_claimed_local_dirs: dict[Path, IO[str]] = {}


def _claim_local_dir(settings: Settings) -> None:
    """Refuse to share the local lake with another running app.

    Each process emulates its own AWS in memory: a second one would empty the lake the
    first still serves, and both would write to it. Where ``fcntl`` is missing (Windows)
    nothing is checked.
    """
    try:
        import fcntl
    except ImportError:
        return
    local_dir = settings.local_dir.resolve()
    if local_dir in _claimed_local_dirs:
        return
    local_dir.mkdir(parents=True, exist_ok=True)
    lock = (local_dir / ".lock").open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise SystemExit(
            f"another app is running on the local default with OCG_LOCAL_DIR={local_dir}; "
            "stop it, or give this one its own OCG_LOCAL_DIR"
        ) from None
    _claimed_local_dirs[local_dir] = lock


def _provision_lake(aws: EmbeddedAWS, model: SchemaModel, *, empty: bool = False) -> None:
    """Describe the lake in Glue; with ``empty`` (a reset of the emulated AWS) also empty
    its local directory, so it mirrors the emptied table. A start never empties it: the
    table is kept on disk too (``chalicelib.local.persistence``), and the lake mirrors it."""
    from chalicelib.lake.catalog import ensure_catalog

    settings = aws.settings
    ensure_catalog(aws.client("glue"), settings.glue_database, model, settings.lake_bucket)
    if empty:
        for layer in LAKE_LAYER_PREFIXES:
            shutil.rmtree(settings.local_lake_dir / layer, ignore_errors=True)


def _warn_if_reloading_would_wipe_state(settings: Settings) -> None:
    """``chalice local`` restarts on any file change under the project, the local lake's
    included, and a restart empties the in-memory AWS: say so before it happens."""
    if os.environ.get("CHALICE_WORKER") and settings.local_dir.is_relative_to(PROJECT_ROOT):
        logger.warning(
            "chalice local is auto-reloading and the local lake (%s) is inside the project: "
            "every lake write restarts the server. "
            "Run `make run` (chalice local --no-autoreload) or set OCG_LOCAL_DIR elsewhere.",
            settings.local_dir,
        )


def boot() -> Services:
    """Everything ``app.py`` needs; a bad setting or schema fails here, at import.

    The failure is a ``SystemExit`` carrying only the message, so the chalice CLI, the
    Lambda log and a plain ``python -c "import app"`` show where and why, not a traceback.
    Where Lambda runs the app, logging is set up first: JSON lines at ``OCG_LOG_LEVEL``.
    """
    try:
        settings = load_settings()
        configure_logging(settings)
        _spare_the_collector_what_lives_forever()
        model = load_schema(settings.schema_file, check_sql=_sql_checked_here(settings))
    except SettingsError as error:
        raise SystemExit(f"invalid setting: {error}") from None
    except SchemaError as error:
        raise SystemExit(f"{settings.schema_file} is not a valid schema:\n{error}") from None
    except OSError as error:
        raise SystemExit(f"cannot read the schema: {error}") from None
    for warning in model.warnings:
        logger.warning("%s", warning)
    if settings.is_local:
        from chalicelib.local import start_embedded_aws
        from chalicelib.local.persistence import StateError
        from chalicelib.local.server import LocalServerError, widen_listen_backlog

        _warn_if_reloading_would_wipe_state(settings)
        try:
            # Before `chalice local` builds its server, which happens after this import.
            widen_listen_backlog()
        except LocalServerError as error:
            raise SystemExit(str(error)) from None
        _claim_local_dir(settings)
        aws = start_embedded_aws(settings)
        _provision_lake(aws, model)
        try:
            applied = aws.keep_state()
        except StateError as error:
            raise SystemExit(f"the local default's state cannot be restored: {error}") from None
        if applied:
            logger.info("local state restored: %d write(s) applied again from the journal", applied)
        aws.add_reset_hook(lambda reset: _provision_lake(reset, model, empty=True))
        return Services(settings, model, aws.client)
    services = Services(settings, model, _aws_clients(settings))
    _spare_the_collector_what_lives_forever()
    return services


def _spare_the_collector_what_lives_forever() -> None:
    """In a Lambda process, move every object alive now out of the garbage collector's
    sight.

    A Lambda process keeps its modules and its schema until it dies, yet each full
    collection walks them all: measured, the first one came during the first request and
    cost it 20-25 ms. Frozen (twice: before the schema is loaded, and after), they are
    never walked again, and the first request's collections take about 14 ms instead of
    36. Only where Lambda runs the app (it sets ``AWS_LAMBDA_FUNCTION_NAME``): a test run
    or ``chalice local`` imports the app again and again, and what an earlier import left
    must stay collectable.
    """
    if LAMBDA_FUNCTION_VARIABLE in os.environ:
        gc.freeze()
