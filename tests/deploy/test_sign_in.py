"""Sign-in with Cognito user pools, path (a): a stage's ``OCG_AUTH_MODE`` decides whether
the one stack creates a user pool and app client, whether the API wants its key, and
what the functions are told of the pool; no marker of an id not known at packaging time
reaches the template. (Path b: ``test_stack.py``.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chalicelib.settings import SettingsError
from deploy.package import MARKERS, package_stage, user_pool_variable_problems
from deploy.stage import read_config, write_config
from deploy.validate import sam_transform
from tests.conftest import ROOT

REGION = "eu-west-1"
LAYER = f"arn:aws:lambda:{REGION}:111111111111:layer:pyarrow:7"
POOL, CLIENT = f"{REGION}_AbC123xyz", "1a2b3c4d5e6f7g8h9i0j1k2l3m"
FUNCTIONS = (
    "APIHandler",
    "OnTableChange",
    "OnCascadeMessage",
    "OnDeletionMessage",
    "OnAthenaStateChange",
    "CompactLake",
)


def stage_config(tmp: Path, variables: dict[str, str], ours: dict[str, Any]) -> Path:
    """The project's config with the dev stage given ``variables`` and options."""
    config = read_config(ROOT / ".chalice" / "config.json")
    stage = config["stages"]["dev"]
    stage["environment_variables"].update(variables)
    stage["ocg"] = {**stage.get("ocg", {}), **ours}
    path = tmp / "config.json"
    write_config(config, path)
    return path


def package(tmp: Path, variables: dict[str, str], ours: dict[str, Any]) -> dict[str, Any]:
    """The stage packaged for the region of ``POOL``."""
    config_file = stage_config(tmp, variables, ours)
    out = tmp / "out"

    with pytest.MonkeyPatch.context() as environment:
        environment.setenv("AWS_DEFAULT_REGION", REGION)
        assert package_stage("dev", out, layer_choice=LAYER, config_file=config_file) == []

    template: dict[str, Any] = json.loads((out / "sam.json").read_text())
    return template


@pytest.fixture(scope="module")
def cognito(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A stage whose users sign in with a pool the stack creates, and no API key."""
    return package(tmp_path_factory.mktemp("cognito"), {"OCG_AUTH_MODE": "cognito"}, {})


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A stage with the API key and, when sent, a token of an existing pool."""
    options = {"user_pool_id": POOL, "user_pool_client_id": CLIENT}
    return package(tmp_path_factory.mktemp("both"), {"OCG_AUTH_MODE": "both"}, options)


def variables(template: dict[str, Any], function: str) -> dict[str, Any]:
    found: dict[str, Any] = template["Resources"][function]["Properties"]["Environment"][
        "Variables"
    ]
    return found


def graphql_security(template: dict[str, Any]) -> dict[str, Any]:
    paths = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
    return {method: paths["/graphql"][method].get("security") for method in ("get", "post")}


def test_a_cognito_stage_creates_its_pool_and_tells_every_function(
    cognito: dict[str, Any],
) -> None:
    resources = cognito["Resources"]

    assert resources["UserPool"]["Type"] == "AWS::Cognito::UserPool"
    assert resources["UserPool"]["Properties"]["UserPoolName"] == "ocg-shop-dev-users"
    assert resources["UserPoolClient"]["Properties"]["UserPoolId"] == {"Ref": "UserPool"}
    # Every function imports the app, which needs the ids in cognito mode.
    for function in FUNCTIONS:
        assert variables(cognito, function)["OCG_AUTH_MODE"] == "cognito"
        assert variables(cognito, function)["OCG_COGNITO_USER_POOL_ID"] == {"Ref": "UserPool"}
        assert variables(cognito, function)["OCG_COGNITO_CLIENT_ID"] == {"Ref": "UserPoolClient"}
    outputs = cognito["Outputs"]
    assert outputs["UserPoolId"] == {"Value": {"Ref": "UserPool"}}
    assert outputs["UserPoolClientId"] == {"Value": {"Ref": "UserPoolClient"}}
    assert outputs["UserPoolIssuer"]["Value"] == {
        "Fn::Sub": "https://cognito-idp.${AWS::Region}.amazonaws.com/${UserPool}"
    }
    text = json.dumps(cognito)
    assert not any(marker in text for marker in MARKERS)


def test_a_cognito_stage_wants_no_key_and_throttles_its_stage_instead(
    cognito: dict[str, Any],
) -> None:
    resources = cognito["Resources"]

    assert graphql_security(cognito) == {"get": None, "post": None}
    kinds = {resource["Type"] for resource in resources.values()}
    assert not kinds & {
        "AWS::ApiGateway::UsagePlan",
        "AWS::ApiGateway::ApiKey",
        "AWS::ApiGateway::UsagePlanKey",
    }
    # A usage plan meters requests by their key: without one, the stage bounds them all.
    translated = sam_transform(cognito, REGION)["Resources"]
    (stage,) = [r for r in translated.values() if r["Type"] == "AWS::ApiGateway::Stage"]
    assert stage["Properties"]["MethodSettings"] == [
        {
            "ResourcePath": "/*",
            "HttpMethod": "*",
            "ThrottlingRateLimit": 50,
            "ThrottlingBurstLimit": 100,
        }
    ]
    assert stage["Properties"]["TracingEnabled"] is True


def test_no_role_may_call_cognito(cognito: dict[str, Any]) -> None:
    """Tokens are checked against the pool's public keys, fetched over HTTPS."""
    roles = [r for r in cognito["Resources"].values() if r["Type"] == "AWS::IAM::Role"]

    actions = [
        action
        for role in roles
        for policy in role["Properties"].get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
        for action in statement["Action"]
    ]
    assert actions and not any(action.startswith("cognito") for action in actions)


def test_a_both_stage_keeps_its_key_and_names_the_existing_pool(both: dict[str, Any]) -> None:
    resources = both["Resources"]

    assert graphql_security(both) == {"get": [{"api_key": []}], "post": [{"api_key": []}]}
    assert resources["ApiUsagePlan"]["Type"] == "AWS::ApiGateway::UsagePlan"
    assert "MethodSettings" not in resources["RestAPI"]["Properties"]
    assert not any(r["Type"].startswith("AWS::Cognito::") for r in resources.values())
    for function in FUNCTIONS:
        assert variables(both, function)["OCG_COGNITO_USER_POOL_ID"] == POOL
        assert variables(both, function)["OCG_COGNITO_CLIENT_ID"] == CLIENT
    assert both["Outputs"]["UserPoolId"] == {"Value": POOL}
    assert both["Outputs"]["UserPoolIssuer"] == {
        "Value": f"https://cognito-idp.eu-west-1.amazonaws.com/{POOL}"
    }


def test_a_pool_of_another_region_is_refused_before_packaging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    options = {"user_pool_id": POOL, "user_pool_client_id": CLIENT}
    config_file = stage_config(tmp_path, {"OCG_AUTH_MODE": "cognito"}, options)

    (problem,) = package_stage("dev", tmp_path / "out", layer_choice=LAYER, config_file=config_file)

    assert problem == (
        f".chalice/config.json, stages.dev.ocg.user_pool_id={POOL!r} is a pool in eu-west-1, "
        "but the stage deploys to us-east-1: name a user pool of us-east-1"
    )


def test_pool_ids_set_by_hand_are_refused_before_packaging(tmp_path: Path) -> None:
    hand_set = {"OCG_AUTH_MODE": "cognito", "OCG_COGNITO_USER_POOL_ID": POOL}
    config_file = stage_config(tmp_path, hand_set, {})

    (problem,) = package_stage("dev", tmp_path / "out", layer_choice=LAYER, config_file=config_file)

    assert problem.startswith("OCG_COGNITO_USER_POOL_ID is set in the environment_variables")
    assert "ocg.user_pool_id and ocg.user_pool_client_id" in problem
    assert not (tmp_path / "out" / "sam.json").exists()
    assert user_pool_variable_problems(read_config(ROOT / ".chalice" / "config.json"), "dev") == []


def test_a_bad_sign_in_option_stops_the_package(tmp_path: Path) -> None:
    config_file = stage_config(tmp_path, {"OCG_AUTH_MODE": "cognito"}, {"user_pool_id": POOL})

    with pytest.raises(
        SettingsError, match=r"stages\.dev\.ocg\.user_pool_id needs user_pool_client_id"
    ):
        package_stage("dev", tmp_path / "out", layer_choice=LAYER, config_file=config_file)
