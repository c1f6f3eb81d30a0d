"""A stage's deployment options, from ``.chalice/config.json``: defaults a small team can
afford, and a clear refusal of a typo or a value AWS would refuse."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.settings import SettingsError
from deploy.options import StageOptions, stage_options


def config(stage: dict[str, Any]) -> dict[str, Any]:
    return {"stages": {"dev": stage}}


def test_an_empty_stage_gets_the_defaults() -> None:
    options = stage_options(config({}), "dev")

    assert options == StageOptions()
    assert options.bytes_scanned_cutoff == 10 * 1024**3
    assert options.log_retention_in_days == 30
    assert (options.api_rate_limit, options.api_burst_limit) == (50, 100)
    assert options.api_daily_quota == 10_000
    assert options.alarm_email is None


def test_chalices_log_retention_and_our_options_are_read_from_the_stage() -> None:
    options = stage_options(
        config({"log_retention_in_days": 7, "ocg": {"alarm_email": "ops@example.com"}}), "dev"
    )

    assert options.log_retention_in_days == 7
    assert options.alarm_email == "ops@example.com"


@pytest.mark.parametrize(
    ("stage", "message"),
    [
        ({"ocg": {"alarm_mail": "x@y"}}, "unknown option(s) alarm_mail"),
        ({"log_retention_in_days": 10}, "log_retention_in_days=10 is not a retention"),
        ({"ocg": {"api_daily_quota": 0}}, "api_daily_quota=0 must be a positive integer"),
        ({"ocg": {"bytes_scanned_cutoff": 1024}}, "below Athena's minimum of 10 MiB"),
        ({"ocg": {"queue_max_concurrency": 1}}, "queue_max_concurrency=1 must be from 2 to 1000"),
        ({"ocg": {"alarm_email": "ops"}}, "alarm_email='ops' must be an e-mail address"),
        ({"ocg": []}, "stages.dev.ocg must be an object"),
    ],
)
def test_a_bad_option_is_refused_with_its_place(stage: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError, match=r"stages\.dev") as refused:
        stage_options(config(stage), "dev")

    assert message in str(refused.value)


def test_the_sign_in_mode_is_the_stages_variable_and_an_existing_pool_its_options() -> None:
    stage = {
        "environment_variables": {"OCG_AUTH_MODE": "both"},
        "ocg": {"user_pool_id": "eu-west-1_AbC123xyz", "user_pool_client_id": "a1b2c3"},
    }

    options = stage_options(config(stage), "dev")

    assert options.auth_mode == "both" and options.signs_in and options.uses_api_key
    assert not options.creates_user_pool
    assert (options.user_pool_id, options.user_pool_client_id) == ("eu-west-1_AbC123xyz", "a1b2c3")
    # The global variable counts too, as Chalice gives it to every stage.
    cognito = stage_options(
        {"environment_variables": {"OCG_AUTH_MODE": "cognito"}, "stages": {"dev": {}}}, "dev"
    )
    assert cognito.creates_user_pool and not cognito.uses_api_key
    assert StageOptions().auth_mode == "api_key" and not StageOptions().signs_in


@pytest.mark.parametrize(
    ("variables", "place"),
    [
        (
            {"stages": {"dev": {"environment_variables": {"OCG_AUTH_MODE": "jwt"}}}},
            "stages.dev.environment_variables",
        ),
        (
            {"environment_variables": {"OCG_AUTH_MODE": "jwt"}, "stages": {"dev": {}}},
            "environment_variables",
        ),
    ],
)
def test_an_unknown_sign_in_mode_is_refused_with_its_variable_and_place(
    variables: dict[str, Any], place: str
) -> None:
    with pytest.raises(SettingsError) as refused:
        stage_options(variables, "dev")

    assert str(refused.value) == (
        f".chalice/config.json, {place}.OCG_AUTH_MODE='jwt' must be one of api_key, cognito, both"
    )


COGNITO = {"OCG_AUTH_MODE": "cognito"}


@pytest.mark.parametrize(
    ("variables", "ours", "message"),
    [
        (COGNITO, {"user_pool_id": "eu-west-1_abc"}, "user_pool_id needs user_pool_client_id"),
        (COGNITO, {"user_pool_client_id": "abc"}, "user_pool_client_id needs user_pool_id"),
        (
            COGNITO,
            {"user_pool_id": "abc", "user_pool_client_id": "abc"},
            "user_pool_id='abc' must be a Cognito user pool id",
        ),
        (
            COGNITO,
            {"user_pool_id": "eu-west-1_ab-c", "user_pool_client_id": "abc"},
            "user_pool_id='eu-west-1_ab-c' must be a Cognito user pool id",
        ),
        (
            COGNITO,
            {"user_pool_id": "eu-west-1_abc", "user_pool_client_id": "a b"},
            "user_pool_client_id='a b' must be a Cognito app client id",
        ),
        (
            {},
            {"user_pool_id": "eu-west-1_abc", "user_pool_client_id": "abc"},
            "user_pool_id is set but OCG_AUTH_MODE is api_key",
        ),
        (COGNITO, {"self_sign_up": "yes"}, "self_sign_up='yes' must be true or false"),
        ({}, {"self_sign_up": True}, "creates none: OCG_AUTH_MODE is api_key"),
        (
            COGNITO,
            {
                "admin_password_auth": True,
                "user_pool_id": "eu-west-1_a",
                "user_pool_client_id": "b",
            },
            "admin_password_auth shapes the user pool the deployment creates, and it creates "
            "none: the stage names an existing pool",
        ),
        (COGNITO, {"auth_mode": "cognito"}, "unknown option(s) auth_mode"),
    ],
)
def test_a_bad_sign_in_option_is_refused_with_its_place(
    variables: dict[str, str], ours: dict[str, Any], message: str
) -> None:
    stage = {"environment_variables": variables, "ocg": ours}

    with pytest.raises(SettingsError, match=r"stages\.dev\.ocg") as refused:
        stage_options(config(stage), "dev")

    assert message in str(refused.value)
