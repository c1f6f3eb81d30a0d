"""Every generated name fits its service, or the deployment stops before it starts and
says which setting to change."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.settings import Settings, SettingsError, load_settings
from deploy.names import function_name, log_group_name, name_problems
from deploy.package import package_stage
from deploy.stage import read_config, write_config
from tests.deploy.path_b_world import FUNCTIONS

ACCOUNT = "210987654321"


def settings(**variables: str) -> Settings:
    return load_settings(
        {"OCG_MODE": "aws", "AWS_REGION": "eu-west-1", "OCG_ACCOUNT_ID": ACCOUNT, **variables}
    )


def test_names_carry_the_project_and_the_stage() -> None:
    dev = settings(OCG_STAGE="dev")

    assert function_name(dev, "api_handler") == "ocg-shop-dev-api_handler"
    assert log_group_name(dev, "on_table_change") == "/aws/lambda/ocg-shop-dev-on_table_change"
    assert function_name(settings(OCG_STAGE="dev", OCG_PROJECT="blog"), "api_handler") == (
        "ocg-blog-dev-api_handler"
    )


def test_the_longest_project_the_rule_admits_fits_every_bucket() -> None:
    longest = settings(OCG_PROJECT="p" * 39, OCG_STAGE="x")

    problems = name_problems(longest, "x", [])

    assert problems == []
    assert len(longest.athena_results_bucket) == 63
    with pytest.raises(SettingsError, match="3 to 39 characters"):
        settings(OCG_PROJECT="p" * 40)


def test_a_function_name_over_lambdas_limit_is_refused_with_the_setting_to_change() -> None:
    stage = "s" * 33  # ocg-shop-<stage>-on_athena_state_change: 65 characters
    long_stage = settings(OCG_STAGE=stage)

    (problem,) = name_problems(long_stage, stage, FUNCTIONS)

    assert problem == (
        f"the Lambda function name 'ocg-shop-{stage}-on_athena_state_change' is 65 "
        "characters, over AWS's 64: use a shorter OCG_PROJECT or stage name"
    )
    assert name_problems(settings(OCG_STAGE=stage[:-1]), stage[:-1], FUNCTIONS) == []


def test_an_overridden_bucket_name_over_s3s_limit_names_its_variable() -> None:
    (problem,) = name_problems(settings(OCG_STAGE="dev", OCG_LAKE_BUCKET="b" * 64), "dev", [])

    assert "S3 bucket name" in problem and "use OCG_LAKE_BUCKET or OCG_PROJECT" in problem


def test_a_stage_name_lambda_would_refuse_in_a_function_name_is_refused() -> None:
    (problem,) = name_problems(settings(OCG_STAGE="v1.2"), "v1.2", FUNCTIONS)

    assert problem.startswith("the stage name 'v1.2' must be letters, digits, hyphens")


def test_the_example_account_and_a_stage_named_otherwise_are_refused() -> None:
    example = settings(OCG_ACCOUNT_ID="123456789012", OCG_STAGE="dev")

    (account,) = name_problems(example, "dev", [])
    (stage,) = name_problems(settings(OCG_STAGE="prod"), "dev", [])

    assert account.startswith("OCG_ACCOUNT_ID is 123456789012, the documentation's example")
    assert stage.startswith("OCG_STAGE is 'prod' but the Chalice stage is 'dev'")


def test_package_refuses_the_example_account_before_packaging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    config = read_config()
    config["stages"]["dev"]["environment_variables"]["OCG_ACCOUNT_ID"] = "123456789012"
    config_file = tmp_path / "config.json"
    write_config(config, config_file)
    out = tmp_path / "out"

    (problem,) = package_stage(
        "dev", out, layer_choice="arn:aws:lambda:eu-west-1:1:layer:x:1", config_file=config_file
    )

    assert "OCG_ACCOUNT_ID is 123456789012" in problem
    assert not (out / "sam.json").exists()


def test_the_user_pools_names_are_checked_against_cognitos_limits() -> None:
    stage = "s" * 113  # ocg-shop-<stage>-users: 128 characters, the most Cognito takes
    assert not any(
        "Cognito" in problem for problem in name_problems(settings(OCG_STAGE=stage), stage, [])
    )

    longer = "s" * 114
    problems = name_problems(settings(OCG_STAGE=longer), longer, [])

    assert [p for p in problems if "Cognito" in p] == [
        f"the Cognito user pool name 'ocg-shop-{longer}-users' is 129 characters, over AWS's "
        "128: use a shorter OCG_PROJECT or stage name"
    ]
