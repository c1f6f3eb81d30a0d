"""``python -m deploy <command> --stage <stage>``: deploy a stage with Chalice.

Path (a), one CloudFormation stack made by ``chalice package``:
  ``package`` writes ``out/`` (template, code, pyarrow layer) and checks it: missing
  dependencies, sizes, cfn-lint before and after the SAM transform.
Path (b), ``chalice deploy``:
  ``prepare`` creates or updates the stage's resources stack and writes the stage's
  config; then ``chalice deploy --stage <stage>``; then ``finish`` sets what Chalice
  cannot on the event sources, the tracker's on-failure destination and the compaction's
  invocation settings, and gives the API its usage plan and key (or, on a stage whose
  callers sign in without one, its stage's throttle).
``resources`` prints the resources stack's template (path b's, roles and alarms
included), for review or a scanner.
``teardown`` deletes the stage's stack; with ``--delete-data`` also the table and the
buckets it keeps (``deploy.teardown``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from chalicelib.schema import SchemaError, load_schema
from chalicelib.settings import SettingsError
from deploy.compaction import COMPACTION_HANDLER, compaction_timeout
from deploy.layer import BUILD, LayerError, stream_layer
from deploy.names import function_name, function_names
from deploy.options import stage_options
from deploy.package import package_stage
from deploy.stack import DeployError, finish_stage, prepare_stage, region, stack_template
from deploy.stage import read_config, region_variables, stage_app, stage_settings
from deploy.teardown import teardown_stage

COMMANDS = {
    "resources": "print the stage's resources template",
    "package": "package the stage as one SAM template in --out and check it (path a)",
    "prepare": "create or update the stage's resources stack and config (path b, before deploy)",
    "finish": "set the event sources, the tracker's failure queue, the compaction's retries "
    "and the API's usage plan (path b, after chalice deploy)",
    "compact": "compact the stage's lake now: invoke its compaction function and print the "
    "report (it runs one at a time, so never beside the scheduled run)",
    "teardown": "delete the stage's stack (either path); --delete-data also deletes the table "
    "and the buckets it keeps",
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploy", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for command, help_text in COMMANDS.items():
        sub = commands.add_parser(command, help=help_text)
        sub.add_argument("--stage", required=True)
        if command == "teardown":
            sub.add_argument(
                "--delete-data",
                action="store_true",
                help="also delete the table, the lake and the access logs (all versions): "
                "what a re-create with the same names needs gone",
            )
        if command in ("prepare", "finish"):
            sub.add_argument(
                "--template-bucket",
                metavar="BUCKET",
                help="a bucket of yours for a stack template over CloudFormation's inline "
                "limit (51,200 bytes; a schema with many types)",
            )
        if command in ("package", "prepare"):
            sub.add_argument(
                "--pyarrow-layer",
                default=BUILD,
                metavar="build|managed|ARN",
                help="the pyarrow layer of the stream and compaction functions: built from "
                "requirements-layer.txt (default), the AWS SDK for pandas managed layer of "
                "the region, or a layer ARN",
            )
            sub.add_argument(
                "--out", type=Path, default=Path("out"), help="where packages are written (out/)"
            )
    arguments = parser.parse_args(argv)
    try:
        return _run(arguments)
    except (SettingsError, SchemaError, DeployError, LayerError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _run(arguments: argparse.Namespace) -> int:
    stage = arguments.stage
    if arguments.command == "compact":
        return _compact(stage)
    if arguments.command == "teardown":
        import boto3

        for line in teardown_stage(
            boto3.session.Session(), stage, delete_data=arguments.delete_data
        ):
            print(line)
        return 0
    if arguments.command in ("prepare", "finish"):
        import boto3

        session = boto3.session.Session()
        if arguments.command == "prepare":
            layer = stream_layer(arguments.pyarrow_layer, region(session), arguments.out).reference
            if isinstance(layer, Path):  # built into --out, to be published
                layer = arguments.out / layer
            prepared = prepare_stage(
                session,
                stage,
                stream_layer=layer,
                template_bucket=arguments.template_bucket,
            )
            print(
                f"stack {prepared.stack} is ready in account {prepared.account_id}; "
                f"stage {stage!r} of .chalice/config.json now uses it.\n"
                f"next: chalice deploy --stage {stage} && python -m deploy finish --stage {stage}"
            )
        else:
            finished = finish_stage(session, stage, template_bucket=arguments.template_bucket)
            key = (
                "its API key: aws apigateway get-api-key --include-value "
                f"--api-key {finished.api_key_id} --query value --output text"
                if finished.api_key_id
                else "no API key: every request carries a user's ID token (OCG_AUTH_MODE=cognito)"
            )
            print(
                f"event sources set: {', '.join(finished.event_sources)}\n"
                f"asynchronous invocation set: {finished.tracker}, {finished.compaction}\n"
                f"GraphQL endpoint: {finished.api.url.rstrip('/')}/graphql\n"
                f"{key}"
            )
            if finished.websocket is not None:
                print(
                    f"subscriptions (graphql-ws): {finished.websocket.url.rstrip('/')}\n"
                    f"WebSocket endpoint given to: {', '.join(finished.pushing)}"
                )
        return 0
    if arguments.command == "package":
        problems = package_stage(stage, arguments.out, layer_choice=arguments.pyarrow_layer)
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        if problems:
            print("package check failed", file=sys.stderr)
            return 1
        print(
            f"package check passed; {arguments.out}/sam.json is ready for "
            "aws cloudformation package and deploy (README, Deploying)"
        )
        return 0
    settings = stage_settings(stage)
    model = load_schema(settings.schema_file, check_sql=True)
    functions = function_names(stage_app(stage, extra=region_variables(settings.region)))
    template = stack_template(settings, model, stage_options(read_config(), stage), functions)
    print(json.dumps(template, indent=2))
    return 0


def _compact(stage: str) -> int:
    """A synchronous invocation of the compaction function: waits as long as the function
    may run, and is never retried by the client (a retry would be throttled meanwhile)."""
    import boto3
    from botocore.config import Config

    settings = stage_settings(stage)
    client = boto3.client(
        "lambda",
        region_name=settings.region,
        config=Config(read_timeout=compaction_timeout(settings) + 60, retries={"max_attempts": 0}),
    )
    answer = client.invoke(FunctionName=function_name(settings, COMPACTION_HANDLER))
    print(answer["Payload"].read().decode())
    return 1 if answer.get("FunctionError") else 0


if __name__ == "__main__":
    sys.exit(main())
