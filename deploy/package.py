"""``python -m deploy package --stage dev``: path (a)'s one stack, packaged and checked.

It writes into ``--out`` (``out/``) what ``aws cloudformation package`` and ``deploy``
take: ``sam.json`` (Chalice's template merged with ``deploy.merge``), ``deployment.zip``
and, unless a layer ARN is chosen, ``pyarrow-layer.zip``. Then it fails when:

- Chalice reports dependencies it could not install (it prints ``Could not install
  dependencies:`` with the list, leaves them out, and still succeeds: a package without
  them would fail only on AWS, at import);
- the GraphQL function's package is over 15 MiB unzipped: the budget that keeps its cold
  start small (Chalice ships one ``deployment.zip`` for every function);
- the package plus the pyarrow layer, what the stream and compaction functions each
  unpack, could be over 262,144,000 bytes unzipped: Lambda's "250 MB" limit, function
  and layers together (250 MiB; the figure Lambda's refusal names);
- the template has problems before or after the SAM transform (``deploy.validate``).

Before the checks, ``deployment.zip`` gets the bytecode of its modules
(``deploy.bytecode``), which Lambda's read-only file system would otherwise have every
cold start compile again.

Chalice runs on a copy of the project's files (what git tracks or would track), never on
the repository itself: Chalice keeps the dependencies it built in
``.chalice/deployments`` and, when that cache is warm, reuses them without running pip,
so a failed install would be neither reported nor retried.

Layer sizes. The layer built here (the default) is measured from its zip. The managed
AWS SDK for pandas layer cannot be measured offline: its size is published nowhere and
reading it needs an AWS account. It is counted at the bound ``deploy/managed_layers.json``
records: 204 MiB, the largest unzipped size reported for these layers (3.16.1 for
python3.13 in aws/aws-sdk-pandas#3331, the release whose growth broke deployments at
this very limit). A layer given by its ARN is not counted, and the check says so.

Figures are printed in MiB (AWS's "MB"), so CI logs show them.

Markers. What the template creates has no id while it is packaged, yet the app reads
some ids at import: the account (when the stage names none) and, on a stage that signs
users in with a pool the stack creates, the pool's and app client's ids. The app is
packaged with a marker for each (``ACCOUNT_MARKER``; ``deploy.stage.USER_POOL_MARKER``
and ``USER_POOL_CLIENT_MARKER``), and every string of the template holding one then
refers to what it stands for (:func:`with_references`); a marker left in the template
is a problem.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from chalicelib.schema import load_schema
from chalicelib.settings import PROJECT_ROOT, Settings
from deploy.bytecode import BytecodeError, add_bytecode, startup_modules
from deploy.compaction import compaction_problems
from deploy.layer import BUILD, MIB, Layer, mib, stream_layer
from deploy.merge import merge_template
from deploy.names import app_name, function_names, name_problems
from deploy.options import StageOptions, stage_options, user_pool_problems
from deploy.resources import USER_POOL, USER_POOL_CLIENT
from deploy.stage import (
    AUTH_MODE_VARIABLE,
    CHALICE_CONFIG,
    USER_POOL_CLIENT_MARKER,
    USER_POOL_CLIENT_VARIABLE,
    USER_POOL_MARKER,
    USER_POOL_VARIABLE,
    api_stage,
    read_config,
    region_variables,
    stage_app,
    stage_environment,
    stage_settings,
    user_pool_markers,
    write_config,
)
from deploy.validate import validate_packaged
from deploy.zips import unzipped_size

GRAPHQL_PACKAGE_LIMIT = 15 * MIB
LAMBDA_UNZIPPED_LIMIT = 262_144_000
# chalice.constants.MISSING_DEPENDENCIES_TEMPLATE: the header, then one package a line,
# then the advice that follows them.
_MISSING = re.compile(
    r"Could not install dependencies:\n(?P<packages>.*?)\nYou will have to build", re.DOTALL
)
PACKAGE = "deployment.zip"
# The region packaging assumes when none is set: aws-mode settings require one, and it
# only names resources in the template (and picks the managed layer's ARN).
DEFAULT_REGION = "us-east-1"
# The account id the settings are made with when the stage names none; every string of
# the template holding it then names the stack's account instead (with_references).
ACCOUNT_MARKER = "000000000000"
STACK_ACCOUNT = "AWS::AccountId"
# Each marker and what it stands for in the template: a pseudo parameter or a resource.
MARKERS = {
    ACCOUNT_MARKER: STACK_ACCOUNT,
    USER_POOL_MARKER: USER_POOL,
    USER_POOL_CLIENT_MARKER: USER_POOL_CLIENT,
}


def check_package(out_dir: Path, chalice_output: str, layers: Sequence[Layer]) -> list[str]:
    """What keeps the package in ``out_dir`` from deploying; empty when nothing does."""
    problems = []
    missing = _MISSING.search(chalice_output)
    if missing:
        packages = ", ".join(missing["packages"].split())
        problems.append(
            f"chalice package could not install: {packages} (no wheel for the Lambda "
            "runtime; Chalice left them out of the package)"
        )
    package = out_dir / PACKAGE
    if not package.is_file():
        return [*problems, f"chalice package wrote no {PACKAGE} in {out_dir}"]
    size = unzipped_size(package)
    if size > GRAPHQL_PACKAGE_LIMIT:
        problems.append(
            f"the GraphQL function's package is {mib(size)} ({size:,} bytes) unzipped, "
            f"over its budget of {mib(GRAPHQL_PACKAGE_LIMIT)} ({GRAPHQL_PACKAGE_LIMIT:,} bytes)"
        )
    total = size + sum(layer.unzipped_bytes for layer in layers)
    if total > LAMBDA_UNZIPPED_LIMIT:
        problems.append(
            f"the stream and compaction functions' package and layers take {mib(total)} "
            f"({total:,} bytes) unzipped, over Lambda's limit of "
            f"{mib(LAMBDA_UNZIPPED_LIMIT)} ({LAMBDA_UNZIPPED_LIMIT:,} bytes)"
        )
    return problems


def figures(out_dir: Path, layers: Sequence[Layer]) -> list[str]:
    """The sizes the check compares, one line each, for the log."""
    size = unzipped_size(out_dir / PACKAGE)
    total = size + sum(layer.unzipped_bytes for layer in layers)
    return [
        f"GraphQL function package: {mib(size)} unzipped (budget {mib(GRAPHQL_PACKAGE_LIMIT)})",
        f"stream and compaction functions: package and layers {mib(total)} unzipped "
        f"(Lambda's limit {mib(LAMBDA_UNZIPPED_LIMIT)})",
        *(f"  layer: {layer.description}" for layer in layers),
    ]


def package_stage(
    stage: str, out_dir: Path, *, layer_choice: str = BUILD, config_file: Path = CHALICE_CONFIG
) -> list[str]:
    """Package the stage into ``out_dir``, print the figures, return the problems."""
    region = _packaging_region()
    config = read_config(config_file)
    options = stage_options(config, stage)
    # What the stage's functions and resources are told of the account: the stage's own
    # account id, or the account the stack is created in; and of the user pool.
    account = stage_environment(config, stage).get("OCG_ACCOUNT_ID") or ACCOUNT_MARKER
    variables = {
        **region_variables(region),
        "OCG_ACCOUNT_ID": account,
        **sign_in_variables(options),
    }
    environment = {**os.environ, **variables}
    problems = user_pool_variable_problems(config, stage)
    problems += user_pool_problems(options, stage, region)
    if problems:
        return problems
    out_dir.mkdir(parents=True, exist_ok=True)
    layer = stream_layer(layer_choice, region, out_dir)  # first: an unknown region fails fast
    settings = stage_settings(stage, config_file, environment)
    app = stage_app(stage, config_file, variables)
    problems = name_problems(settings, stage, function_names(app).values())
    problems += compaction_problems(config, stage, settings)
    if problems:
        return problems
    model = load_schema(settings.schema_file, check_sql=True)
    merge = merge_template(
        app,
        settings,
        model,
        options,
        stream_layer=layer.reference,
        api_stage=api_stage(config, stage),
    )
    with tempfile.TemporaryDirectory(prefix="ocg-project-") as project:
        merge_file = Path(project) / "merge.json"
        merge_file.write_text(json.dumps(merge))
        copy_project(Path(project) / "project")
        if options.playground:
            problems = include_playground(Path(project) / "project")
            if problems:
                return problems
        config_file = Path(project) / "project" / ".chalice" / "config.json"
        write_config(_packaged_config(config, stage, settings, options), config_file)
        result = subprocess.run(
            [
                str(Path(sys.executable).with_name("chalice")),
                "--project-dir",
                str(Path(project) / "project"),
                "package",
                "--stage",
                stage,
                "--merge-template",
                str(merge_file),
                str(out_dir.resolve()),
            ],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
        )
    if result.returncode != 0:
        return [f"chalice package failed (exit {result.returncode}):\n{result.stdout}"]
    counted = [layer.counted] if layer.counted else []
    package = out_dir / PACKAGE
    # What Lambda gives the function, and nothing of this machine's environment. A cognito
    # stage refuses a request without a user's token, which the start cannot have: it
    # serves as a both stage does, loading the same modules, with the key left to API
    # Gateway.
    function_environment = {**stage_environment(config, stage), **variables}
    if options.auth_mode == "cognito":
        function_environment[AUTH_MODE_VARIABLE] = "both"
    compiled, problems = _add_startup_bytecode(package, function_environment)
    problems += check_package(out_dir, result.stdout, counted)
    if package.is_file():
        print(f"region: {region}")
        if account == ACCOUNT_MARKER:
            print("account: the one the stack is created in (${AWS::AccountId})")
        if compiled is not None:
            print(f"bytecode: the {compiled} modules a cold start loads, compiled into {PACKAGE}")
        print("\n".join(figures(out_dir, counted)))
        if layer.counted is None:
            print(f"  layer: {layer.reference} (not counted: its size is unknown offline)")
    template_file = out_dir / "sam.json"
    template = with_references(json.loads(template_file.read_text()), MARKERS)
    template_file.write_text(json.dumps(template, indent=2))
    return [*problems, *marker_problems(template), *validate_packaged(template, region)]


def sign_in_variables(options: StageOptions) -> dict[str, str]:
    """The sign-in mode the app is packaged with, the stage's (so one exported in this
    shell cannot change which routes want the key), and what the functions are told of
    the user pool: the existing pool and client the options name, or markers for those
    the stack creates."""
    variables: dict[str, str] = {AUTH_MODE_VARIABLE: options.auth_mode}
    if options.creates_user_pool:
        variables.update(user_pool_markers())
    elif options.signs_in:
        assert options.user_pool_id is not None and options.user_pool_client_id is not None
        variables[USER_POOL_VARIABLE] = options.user_pool_id
        variables[USER_POOL_CLIENT_VARIABLE] = options.user_pool_client_id
    return variables


def user_pool_variable_problems(config: Mapping[str, Any], stage: str) -> list[str]:
    """The user pool's variables set by hand in the stage's environment: the package sets
    them (from the options, or to the pool it creates), so a value there would be
    silently replaced."""
    environment = stage_environment(config, stage)
    return [
        f"{name} is set in the environment_variables of .chalice/config.json, but the "
        "package gives the functions the pool's ids: name an existing pool with the stage "
        "options ocg.user_pool_id and ocg.user_pool_client_id instead, or neither for the "
        "stack to create one (docs/deploying.md, Sign-in)"
        for name in (USER_POOL_VARIABLE, USER_POOL_CLIENT_VARIABLE)
        if environment.get(name)
    ]


def marker_problems(template: Any) -> list[str]:
    """A marker the template still holds would reach AWS as if it were an id."""
    text = json.dumps(template)
    return [
        f"the packaged template still holds the marker {marker!r} (for {target})"
        for marker, target in MARKERS.items()
        if marker in text
    ]


def _packaged_config(
    config: Mapping[str, Any], stage: str, settings: Settings, options: StageOptions
) -> dict[str, Any]:
    """The config Chalice packages with: the project's ``app_name`` (it names the API),
    the stage's log retention (Chalice then makes each function's log group with it),
    and the account and user pool the settings were made for (markers, when the stack
    creates them). Each function's role comes from the merge template, so the stage's
    ``iam_role_arn``, which Chalice requires, is only a stand-in."""
    packaged: dict[str, Any] = json.loads(json.dumps(config))
    packaged["app_name"] = app_name(settings)
    stage_config = packaged["stages"][stage]
    stage_config["log_retention_in_days"] = options.log_retention_in_days
    variables = stage_config.setdefault("environment_variables", {})
    variables["OCG_ACCOUNT_ID"] = settings.account_id
    if options.signs_in:
        variables[USER_POOL_VARIABLE] = settings.cognito_user_pool_id
        variables[USER_POOL_CLIENT_VARIABLE] = settings.cognito_client_id
    stage_config["iam_role_arn"] = (
        f"arn:aws:iam::{settings.account_id}:role/each-function-has-its-role-in-the-template"
    )
    return packaged


def with_references(template: Any, markers: Mapping[str, str]) -> Any:
    """``template`` with every string holding a marker made to refer to what the marker
    stands for (``markers``: marker → a pseudo parameter such as ``AWS::AccountId``, or a
    resource's logical id), so a package made without those ids deploys anywhere.

    A string that is just a marker becomes a ``Ref``; a string holding one becomes an
    ``Fn::Sub`` (its own ``${`` escaped as ``${!``); a string that is already an
    ``Fn::Sub`` template just gets the variable."""

    def substituted(text: str) -> str:
        for marker, target in markers.items():
            text = text.replace(marker, f"${{{target}}}")
        return text

    if isinstance(template, dict):
        return {
            key: (
                substituted(value)
                if key == "Fn::Sub" and isinstance(value, str)
                else with_references(value, markers)
            )
            for key, value in template.items()
        }
    if isinstance(template, list):
        return [with_references(value, markers) for value in template]
    if isinstance(template, str):
        if template in markers:
            return {"Ref": markers[template]}
        if any(marker in template for marker in markers):
            return {"Fn::Sub": substituted(template.replace("${", "${!"))}
    return template


def _add_startup_bytecode(
    package: Path, environment: Mapping[str, str]
) -> tuple[int | None, list[str]]:
    """Compile into the package what its cold start loads: how many, and the problem
    when the packaged app does not even start."""
    if not package.is_file():
        return None, []
    try:
        return add_bytecode(package, startup_modules(package, environment)), []
    except BytecodeError as error:
        return None, [str(error)]


def _packaging_region() -> str:
    """The region the template is for: as boto3 and Chalice find it (``AWS_DEFAULT_REGION``,
    then the profile), else ``AWS_REGION``, else ``DEFAULT_REGION``, so packaging needs no
    AWS set-up."""
    import boto3

    region: str | None = boto3.session.Session().region_name or os.environ.get("AWS_REGION")
    return region or DEFAULT_REGION


def include_playground(project: Path, built: Path | None = None) -> list[str]:
    """Put the built GraphiQL where a deployed stage's ``GET /playground`` reads it (the
    stage option ``playground``): it is git-ignored, so :func:`copy_project` left it out."""
    from chalicelib.graphql import playground

    source = built or playground.BUILT_ASSETS
    files = (playground.SCRIPT, playground.STYLESHEET)
    missing = [name for name in files if not (source / name).is_file()]
    if missing:
        return [
            f"the stage option ocg.playground is on, but {source} has no "
            f"{' or '.join(missing)}: build the playground with `make install`"
        ]
    target = project / playground.PACKAGED_ASSETS.relative_to(PROJECT_ROOT)
    target.mkdir(parents=True, exist_ok=True)
    for name in files:
        shutil.copy2(source / name, target / name)
    return []


def copy_project(destination: Path) -> None:
    """The files git tracks or would track (so nothing ignored, such as Chalice's cache
    or the virtualenv), symlinks kept as links, as a fresh clone would have them."""
    command = ["git", "-C", str(PROJECT_ROOT), "ls-files", "-z", "--cached", "--others"]
    listed = subprocess.run(
        [*command, "--exclude-standard"], capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = PROJECT_ROOT / name
        if not (source.exists() or source.is_symlink()):  # deleted, not yet committed
            continue
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)
