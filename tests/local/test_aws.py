"""The embedded AWS: the resources of DESIGN §3/§7/§8, named as the settings say."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from chalicelib.keys import GSI1, GSI2
from chalicelib.local import EmbeddedAWS, EmbeddedAWSError, start_embedded_aws
from chalicelib.queues import MAX_RECEIVE_COUNT, dead_letter_queue_name
from chalicelib.settings import Settings
from chalicelib.table import TTL_ATTRIBUTE


def test_second_start_returns_the_running_instance(aws: EmbeddedAWS, settings: Settings) -> None:
    assert start_embedded_aws(settings) is aws
    # Only resource names identify an instance: another stage name is the same AWS.
    assert start_embedded_aws(replace(settings, stage="other")) is aws


def test_aws_mode_is_refused(settings: Settings) -> None:
    with pytest.raises(EmbeddedAWSError, match="OCG_MODE=local"):
        start_embedded_aws(replace(settings, mode="aws"))


def test_table_has_indexes_stream_and_ttl(aws: EmbeddedAWS, settings: Settings) -> None:
    dynamodb = aws.client("dynamodb")
    table = dynamodb.describe_table(TableName=settings.table_name)["Table"]
    assert {index["IndexName"] for index in table["GlobalSecondaryIndexes"]} == {GSI1, GSI2}
    assert table["StreamSpecification"] == {
        "StreamEnabled": True,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    assert aws.table_stream_arn.startswith(
        f"arn:aws:dynamodb:us-east-1:123456789012:table/{settings.table_name}/stream/"
    )
    ttl = dynamodb.describe_time_to_live(TableName=settings.table_name)
    assert ttl["TimeToLiveDescription"] == {
        "TimeToLiveStatus": "ENABLED",
        "AttributeName": TTL_ATTRIBUTE,
    }


def test_buckets_glue_database_and_workgroup(aws: EmbeddedAWS, settings: Settings) -> None:
    buckets = {b["Name"] for b in aws.client("s3").list_buckets()["Buckets"]}
    assert {settings.lake_bucket, settings.athena_results_bucket} <= buckets
    database = aws.client("glue").get_database(Name=settings.glue_database)["Database"]
    assert database["Name"] == "local_events_db"
    workgroup = aws.client("athena").get_work_group(WorkGroup=settings.athena_workgroup)
    result_configuration = workgroup["WorkGroup"]["Configuration"]["ResultConfiguration"]
    assert result_configuration["OutputLocation"] == settings.athena_output


@pytest.mark.parametrize("queue", ["cascade", "deletion"])
def test_queues_match_settings_and_redrive_to_a_dlq(
    aws: EmbeddedAWS, settings: Settings, queue: str
) -> None:
    sqs = aws.client("sqs")
    name = getattr(settings, f"{queue}_queue_name")
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    assert url == getattr(settings, f"{queue}_queue_url")
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["QueueArn"] == getattr(settings, f"{queue}_queue_arn")
    dlq_url = sqs.get_queue_url(QueueName=dead_letter_queue_name(name))["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": dlq_arn["Attributes"]["QueueArn"],
        "maxReceiveCount": MAX_RECEIVE_COUNT,
    }


def test_reset_leaves_the_resources_empty(aws: EmbeddedAWS, settings: Settings) -> None:
    dynamodb, s3, sqs = aws.client("dynamodb"), aws.client("s3"), aws.client("sqs")
    old_stream = aws.table_stream_arn
    dynamodb.put_item(TableName=settings.table_name, Item={"PK": {"S": "a"}, "SK": {"S": "a"}})
    s3.put_object(Bucket=settings.lake_bucket, Key="tables/x.parquet", Body=b"x")
    sqs.send_message(QueueUrl=settings.cascade_queue_url, MessageBody="{}")
    aws.client("glue").create_table(
        DatabaseName=settings.glue_database, TableInput={"Name": "product"}
    )
    hooked: list[EmbeddedAWS] = []
    remove_hook = aws.add_reset_hook(hooked.append)
    try:
        aws.reset()
    finally:
        remove_hook()

    assert hooked == [aws]
    assert dynamodb.scan(TableName=settings.table_name)["Items"] == []
    assert s3.list_objects_v2(Bucket=settings.lake_bucket)["KeyCount"] == 0
    counts = sqs.get_queue_attributes(
        QueueUrl=settings.cascade_queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert counts["Attributes"]["ApproximateNumberOfMessages"] == "0"
    tables = aws.client("glue").get_tables(DatabaseName=settings.glue_database)["TableList"]
    assert tables == []
    assert aws.table_stream_arn != old_stream
