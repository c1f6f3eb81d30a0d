"""A Chalice stage as its functions will see it: ``.chalice/config.json``, read and written.

The stage's settings are read as Chalice gives them to the functions: the
``environment_variables`` of the config (global, then the stage's), over the process
environment, which supplies the region.

A stage that signs users in (``OCG_AUTH_MODE`` cognito or both) needs the ids of its
Cognito user pool and app client, which the app requires at import, before the stack
that creates them exists: until the stage's environment names them, they are read as
markers (:data:`USER_POOL_MARKER`, :data:`USER_POOL_CLIENT_MARKER`), which a packaged
template replaces by references to the created pool (``deploy.package``) and ``prepare``
by the stack's outputs.
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

# The functions' sign-in mode (chalicelib.settings), and the modes that accept users' ID
# tokens.
AUTH_MODE_VARIABLE = "OCG_AUTH_MODE"
SIGN_IN_MODES = ("cognito", "both")
# The variables naming the user pool and app client whose ID tokens they accept, and the
# markers that stand for a pool the stack creates (shaped as Cognito's ids, so the app
# takes them; they appear nowhere else).
USER_POOL_VARIABLE, USER_POOL_CLIENT_VARIABLE = "OCG_COGNITO_USER_POOL_ID", "OCG_COGNITO_CLIENT_ID"
USER_POOL_MARKER = "xx-marker-0_OcgUserPoolMarker"
USER_POOL_CLIENT_MARKER = "ocgUserPoolClientMarker"


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
    settings = load_settings(with_user_pool_markers({**base, **stage_environment(config, stage)}))
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
    variables = with_user_pool_markers({**os.environ, **variables})
    with _environment(variables):
        sys.modules.pop("app", None)
        try:
            module = importlib.import_module("app")
        finally:
            sys.modules.pop("app", None)
    chalice_app: Chalice = module.app
    return chalice_app


def user_pool_markers() -> dict[str, str]:
    """The user pool's variables, as markers for a pool the stack creates."""
    return {
        USER_POOL_VARIABLE: USER_POOL_MARKER,
        USER_POOL_CLIENT_VARIABLE: USER_POOL_CLIENT_MARKER,
    }


def with_user_pool_markers(environment: Mapping[str, str]) -> dict[str, str]:
    """``environment``, with markers for the user pool's ids it lacks when its stage signs
    users in: what the app needs to import before the pool exists."""
    variables = dict(environment)
    if variables.get(AUTH_MODE_VARIABLE) in SIGN_IN_MODES:
        for name, marker in user_pool_markers().items():
            if not variables.get(name):
                variables[name] = marker
    return variables
