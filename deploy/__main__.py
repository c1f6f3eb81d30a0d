"""``python -m deploy resources --stage dev``: print the stage's resources template.

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

from chalicelib.schema import SchemaError, load_schema
from chalicelib.settings import PROJECT_ROOT, Settings, SettingsError, load_settings
from deploy.resources import DEFAULT_BYTES_SCANNED_CUTOFF, resources_template

CHALICE_CONFIG = PROJECT_ROOT / ".chalice" / "config.json"


def stage_settings(stage: str, config_file: Path = CHALICE_CONFIG) -> Settings:
    """The settings the stage's functions will run with."""
    config = json.loads(config_file.read_text())
    stages = config.get("stages", {})
    if stage not in stages:
        raise SettingsError(f"{config_file} has no stage {stage!r} (stages: {', '.join(stages)})")
    environ = {
        **os.environ,
        **config.get("environment_variables", {}),
        **stages[stage].get("environment_variables", {}),
    }
    settings = load_settings(environ)
    if settings.is_local:
        raise SettingsError(
            f"stage {stage!r} runs on the embedded local default: nothing to deploy"
        )
    return settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    resources = commands.add_parser("resources", help="print the stage's resources template")
    resources.add_argument("--stage", required=True)
    resources.add_argument(
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
    template = resources_template(
        settings, model, bytes_scanned_cutoff=arguments.bytes_scanned_cutoff
    )
    print(json.dumps(template, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
