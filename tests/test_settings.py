from pathlib import Path

import pytest

from chalicelib.settings import PROJECT_ROOT, SettingsError, load_settings


def test_local_defaults_follow_the_design_names() -> None:
    settings = load_settings({"OCG_PROJECT": "my-shop"})

    assert settings.mode == "local"
    assert settings.table_name == "OCG-my-shop"
    assert settings.lake_bucket == "ocg-my-shop-123456789012"
    assert settings.glue_database == "my_shop_db"
    assert settings.cascade_queue_arn == "arn:aws:sqs:us-east-1:123456789012:ocg-my-shop-cascade"
    assert settings.deletion_queue_url.endswith("/123456789012/ocg-my-shop-deletion")
    assert settings.schema_file == PROJECT_ROOT / "schema.graphql"
    assert settings.local_lake_dir == PROJECT_ROOT / ".local" / "lake"


def test_aws_mode_derives_names_from_region_and_account() -> None:
    settings = load_settings(
        {
            "OCG_PROJECT": "shop",
            "OCG_MODE": "aws",
            "AWS_REGION": "eu-west-1",
            "OCG_ACCOUNT_ID": "210987654321",
        }
    )

    assert settings.lake_bucket == "ocg-shop-210987654321"
    assert settings.cascade_queue_arn == "arn:aws:sqs:eu-west-1:210987654321:ocg-shop-cascade"
    assert settings.table_stream_arn.startswith(
        "arn:aws:dynamodb:eu-west-1:210987654321:table/OCG-shop/stream/"
    )


def test_every_derived_name_can_be_overridden() -> None:
    settings = load_settings({"OCG_TABLE": "custom", "OCG_SCHEMA_FILE": "other/s.graphql"})

    assert settings.table_name == "custom"
    assert settings.schema_file == PROJECT_ROOT / "other" / "s.graphql"
    assert load_settings({"OCG_SCHEMA_FILE": "/abs/s.graphql"}).schema_file == Path(
        "/abs/s.graphql"
    )


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"OCG_PROJECT": "Shop"}, "OCG_PROJECT='Shop' must match"),
        ({"OCG_PROJECT": "ab"}, "OCG_PROJECT='ab' must match"),
        # 40 characters: the Athena results bucket's name would be 64, over S3's 63.
        ({"OCG_PROJECT": "p" * 40}, f"OCG_PROJECT='{'p' * 40}' must match"),
        ({"OCG_PROJECT": "shop-"}, "OCG_PROJECT='shop-' must match"),
        ({"OCG_MODE": "cloud"}, "OCG_MODE='cloud' must be 'aws' or 'local'"),
        ({"OCG_MODE": "aws", "AWS_REGION": "us-east-1"}, "OCG_ACCOUNT_ID=''"),
        ({"OCG_MODE": "aws", "OCG_ACCOUNT_ID": "123456789012"}, "AWS_REGION"),
        ({"OCG_GRAPHQL_PROTECTED": "yes"}, "OCG_GRAPHQL_PROTECTED='yes' must be true or false"),
        ({"OCG_MAX_TASK_TRIGGERS": "0"}, "OCG_MAX_TASK_TRIGGERS='0' must be a positive integer"),
        ({"OCG_MAX_TASK_TRIGGERS": "-3"}, "OCG_MAX_TASK_TRIGGERS='-3' must be a positive"),
        ({"OCG_MAX_TASK_TRIGGERS": "five"}, "OCG_MAX_TASK_TRIGGERS='five' must be a positive"),
        ({"OCG_MAX_DELETION_TRIGGERS": "1.5"}, "OCG_MAX_DELETION_TRIGGERS='1.5' must be a"),
        ({"OCG_MAX_DELETION_TRIGGERS": " 2"}, "OCG_MAX_DELETION_TRIGGERS=' 2' must be a"),
    ],
)
def test_bad_settings_name_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(")):
        load_settings(environ)


def test_deployed_stages_are_protected_and_the_local_one_is_open() -> None:
    aws = {"OCG_MODE": "aws", "AWS_REGION": "eu-west-1", "OCG_ACCOUNT_ID": "123456789012"}

    assert load_settings({}).graphql_protected is False
    assert load_settings(aws).graphql_protected is True
    assert load_settings({**aws, "OCG_GRAPHQL_PROTECTED": "false"}).graphql_protected is False
    assert load_settings({"OCG_GRAPHQL_PROTECTED": "TRUE"}).graphql_protected is True


def test_task_trigger_caps_default_to_five_and_one_on_every_stage() -> None:
    aws = {"OCG_MODE": "aws", "AWS_REGION": "eu-west-1", "OCG_ACCOUNT_ID": "123456789012"}

    for environ in ({}, aws):
        settings = load_settings(environ)
        assert (settings.max_task_triggers, settings.max_deletion_triggers) == (5, 1)
    settings = load_settings({"OCG_MAX_TASK_TRIGGERS": "20", "OCG_MAX_DELETION_TRIGGERS": "3"})
    assert (settings.max_task_triggers, settings.max_deletion_triggers) == (20, 3)


def test_the_log_level_defaults_to_info_and_a_bad_one_is_refused_by_name() -> None:
    assert load_settings({}).log_level == "INFO"
    assert load_settings({"OCG_LOG_LEVEL": "warning"}).log_level == "WARNING"
    with pytest.raises(SettingsError, match="OCG_LOG_LEVEL='verbose' must be one of DEBUG, INFO"):
        load_settings({"OCG_LOG_LEVEL": "verbose"})
