"""``python -m deploy teardown``: the stack goes, the data stays unless asked, and a stage
torn down with its data can be prepared again under the same names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from deploy.stack import DeployError, prepare_stage
from deploy.stage import read_config
from deploy.teardown import teardown_stage
from tests.deploy.path_b_world import ACCOUNT, LAYER, STAGE, chalice_deploy

LAKE, RESULTS = f"ocg-shop-{ACCOUNT}", f"ocg-shop-athena-{ACCOUNT}"
LOGS = f"ocg-shop-logs-{ACCOUNT}"


def fill(s3: Any, bucket: str) -> None:
    """Two versions of one object and a deleted one: what a versioned bucket holds
    (moto's CloudFormation leaves versioning off, so it is switched on here)."""
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=bucket, Key="tables/user/a.parquet", Body=b"1")
    s3.put_object(Bucket=bucket, Key="tables/user/a.parquet", Body=b"2")
    s3.put_object(Bucket=bucket, Key="tables/user/b.parquet", Body=b"3")
    s3.delete_object(Bucket=bucket, Key="tables/user/b.parquet")


def buckets(s3: Any) -> set[str]:
    return {bucket["Name"] for bucket in s3.list_buckets()["Buckets"]}


def test_teardown_keeps_the_data_and_says_so(session: Any, config_file: Path) -> None:
    prepare_stage(session, STAGE, config_file=config_file, stream_layer=LAYER)
    s3 = session.client("s3")
    fill(s3, RESULTS)
    fill(s3, LAKE)

    done = teardown_stage(session, STAGE, config_file=config_file)

    # Those four, and the stack's template, which prepare passed through the bucket.
    assert done[:2] == [f"emptied {RESULTS} (5 object versions)", "deleted stack ocg-shop-dev"]
    assert "kept: table OCG-shop" in done[2] and "teardown --delete-data" in done[2]
    with pytest.raises(ClientError):
        session.client("cloudformation").describe_stacks(StackName="ocg-shop-dev")
    assert {LAKE, LOGS} <= buckets(s3) and RESULTS not in buckets(s3)
    assert session.client("dynamodb").describe_table(TableName="OCG-shop")["Table"]


def test_teardown_with_its_data_then_prepare_again(session: Any, config_file: Path) -> None:
    prepare_stage(session, STAGE, config_file=config_file, stream_layer=LAYER)
    fill(session.client("s3"), LAKE)

    done = teardown_stage(session, STAGE, config_file=config_file, delete_data=True)

    assert "deleted table OCG-shop" in done
    assert f"deleted bucket {LAKE}, every version" in done
    assert not {LAKE, LOGS, RESULTS} & buckets(session.client("s3"))
    prepared = prepare_stage(session, STAGE, config_file=config_file, stream_layer=LAYER)
    assert prepared.outputs["TableStreamArn"].startswith(
        f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/OCG-shop/stream/"
    )


def test_teardown_waits_for_chalice_delete_on_path_b(session: Any, config_file: Path) -> None:
    prepare_stage(session, STAGE, config_file=config_file, stream_layer=LAYER)
    chalice_deploy(session, config_file)

    with pytest.raises(DeployError, match="run chalice delete --stage dev first"):
        teardown_stage(session, STAGE, config_file=config_file)


def signing_in(config_file: Path, mode: str, **ours: Any) -> None:
    config = read_config(config_file)
    stage = config["stages"][STAGE]
    stage["environment_variables"]["OCG_AUTH_MODE"] = mode
    stage["ocg"] = ours
    config_file.write_text(json.dumps(config))


def test_a_created_user_pool_is_kept_and_the_way_to_delete_it_said(
    session: Any, config_file: Path
) -> None:
    signing_in(config_file, "cognito")
    outputs = prepare_stage(session, STAGE, config_file=config_file, stream_layer=LAYER).outputs
    pool = outputs["UserPoolId"]

    done = teardown_stage(session, STAGE, config_file=config_file)

    assert done[-1].startswith(f"kept: user pool {pool} (the stage's users")
    assert f"delete-user-pool --user-pool-id {pool}" in done[-1]
    assert session.client("cognito-idp").describe_user_pool(UserPoolId=pool)["UserPool"]


def test_teardown_with_its_data_deletes_the_created_user_pool(
    session: Any, config_file: Path
) -> None:
    signing_in(config_file, "cognito")
    outputs = prepare_stage(session, STAGE, config_file=config_file, stream_layer=LAYER).outputs

    done = teardown_stage(session, STAGE, config_file=config_file, delete_data=True)

    assert done[-1] == f"deleted user pool {outputs['UserPoolId']} and its users"
    assert session.client("cognito-idp").list_user_pools(MaxResults=10)["UserPools"] == []


def test_teardown_leaves_a_pool_the_stage_only_names(session: Any, config_file: Path) -> None:
    existing = session.client("cognito-idp").create_user_pool(PoolName="theirs")["UserPool"]["Id"]
    signing_in(config_file, "both", user_pool_id=existing, user_pool_client_id="c123")
    prepare_stage(session, STAGE, config_file=config_file, stream_layer=LAYER)

    done = teardown_stage(session, STAGE, config_file=config_file, delete_data=True)

    assert not any("user pool" in line for line in done)
    assert session.client("cognito-idp").describe_user_pool(UserPoolId=existing)["UserPool"]
