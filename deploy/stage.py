"""A Chalice stage as its functions will see it: ``.chalice/config.json``, read and written.

The stage's settings are read as Chalice gives them to the functions: the
``environment_variables`` of the config (global, then the stage's), over the process
environment, which supplies the region.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from chalice.app import Chalice

from chalicelib.settings import PROJECT_ROOT, Settings, SettingsError, load_settings

CHALICE_CONFIG = PROJECT_ROOT / ".chalice" / "config.json"
DEFAULT_API_STAGE = "api"  # Chalice's default api_gateway_stage


def read_config(config_file: Path = CHALICE_CONFIG) -> dict[str, Any]:
    config: dict[str, Any] = json.loads(config_file.read_text())
    return config


def write_config(config: Mapping[str, Any], config_file: Path = CHALICE_CONFIG) -> None:
    config_file.write_text(json.dumps(config, indent=2) + "\n")


def stage_environment(config: Mapping[str, Any], stage: str) -> dict[str, str]:
    """The environment variables Chalice gives the stage's functions."""
    stages = config.get("stages", {})
    if stage not in stages:
        raise SettingsError(
            f"the Chalice config has no stage {stage!r} (stages: {', '.join(stages)})"
        )
    return {
        **config.get("environment_variables", {}),
        **stages[stage].get("environment_variables", {}),
    }


def api_stage(config: Mapping[str, Any], stage: str) -> str:
    """The API Gateway stage the Chalice stage deploys its API to."""
    name: str = config["stages"][stage].get(
        "api_gateway_stage", config.get("api_gateway_stage", DEFAULT_API_STAGE)
    )
    return name


def region_variables(region: str) -> dict[str, str]:
    """Both variables a region is read from: boto3 and Chalice read ``AWS_DEFAULT_REGION``,
    the settings prefer ``AWS_REGION`` (what Lambda sets), so both must name the one the
    deployment is for."""
    return {"AWS_REGION": region, "AWS_DEFAULT_REGION": region}


def stage_settings(
    stage: str,
    config_file: Path = CHALICE_CONFIG,
    environ: Mapping[str, str] | None = None,
    *,
    config: Mapping[str, Any] | None = None,
) -> Settings:
    """The settings the stage's functions will run with (from ``config``, when given,
    instead of the file)."""
    base = os.environ if environ is None else environ
    config = read_config(config_file) if config is None else config
    settings = load_settings({**base, **stage_environment(config, stage)})
    if settings.is_local:
        raise SettingsError(
            f"stage {stage!r} runs on the embedded local default: nothing to deploy"
        )
    return settings


@contextmanager
def _environment(variables: Mapping[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(variables)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def stage_app(
    stage: str, config_file: Path = CHALICE_CONFIG, extra: Mapping[str, str] | None = None
) -> Chalice:
    """The Chalice app as the stage builds it (its event sources name its resources).

    ``app.py`` reads its settings at import, so it is imported afresh under the stage's
    environment, which is then restored."""
    variables = {**stage_environment(read_config(config_file), stage), **(extra or {})}
    with _environment(variables):
        sys.modules.pop("app", None)
        try:
            module = importlib.import_module("app")
        finally:
            sys.modules.pop("app", None)
    chalice_app: Chalice = module.app
    return chalice_app
