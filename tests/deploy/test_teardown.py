"""``python -m deploy teardown``: the stack goes, the data stays unless asked, and a stage
torn down with its data can be prepared again under the same names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from deploy.stack import DeployError, prepare_stage
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
