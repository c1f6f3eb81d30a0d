"""``python -m deploy resources|merge-template --stage dev``: print a stage's template.

``resources``: the stage's resources alone, for a stack of their own.
``merge-template``: those resources plus the event-source settings Chalice cannot make,
for ``chalice package --stage dev --merge-template <file> out/``.

The stage's settings are read as Chalice would give them to the functions: the
``environment_variables`` of ``.chalice/config.json`` (global, then the stage's), over
the process environment, which supplies the region.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from chalice.app import Chalice

from chalicelib.schema import SchemaError, load_schema
from chalicelib.settings import PROJECT_ROOT, Settings, SettingsError, load_settings
from deploy.merge import merge_template
from deploy.resources import DEFAULT_BYTES_SCANNED_CUTOFF, resources_template

CHALICE_CONFIG = PROJECT_ROOT / ".chalice" / "config.json"


def stage_settings(stage: str, config_file: Path = CHALICE_CONFIG) -> Settings:
    """The settings the stage's functions will run with."""
    settings = load_settings({**os.environ, **_stage_environment(stage, config_file)})
    if settings.is_local:
        raise SettingsError(
            f"stage {stage!r} runs on the embedded local default: nothing to deploy"
        )
    return settings


def _stage_environment(stage: str, config_file: Path = CHALICE_CONFIG) -> dict[str, str]:
    config = json.loads(config_file.read_text())
    stages = config.get("stages", {})
    if stage not in stages:
        raise SettingsError(f"{config_file} has no stage {stage!r} (stages: {', '.join(stages)})")
    return {
        **config.get("environment_variables", {}),
        **stages[stage].get("environment_variables", {}),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for command, help_text in (
        ("resources", "print the stage's resources template"),
        ("merge-template", "print the merge template for chalice package"),
    ):
        sub = commands.add_parser(command, help=help_text)
        sub.add_argument("--stage", required=True)
        sub.add_argument(
            "--bytes-scanned-cutoff",
            type=int,
            default=DEFAULT_BYTES_SCANNED_CUTOFF,
            help="Athena's per-query scan limit in bytes (default: 10 GiB)",
        )
    arguments = parser.parse_args(argv)
    try:
        settings = stage_settings(arguments.stage)
        model = load_schema(settings.schema_file, check_sql=True)
    except (SettingsError, SchemaError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    cutoff = arguments.bytes_scanned_cutoff
    if arguments.command == "resources":
        template = resources_template(settings, model, bytes_scanned_cutoff=cutoff)
    else:
        template = merge_template(
            _stage_app(arguments.stage), settings, model, bytes_scanned_cutoff=cutoff
        )
    print(json.dumps(template, indent=2))
    return 0


def _stage_app(stage: str) -> Chalice:
    """The Chalice app as the stage builds it (its event sources name its resources)."""
    os.environ.update(_stage_environment(stage))
    import app

    chalice_app: Chalice = app.app
    return chalice_app


if __name__ == "__main__":
    sys.exit(main())
