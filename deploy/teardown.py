"""``python -m deploy teardown --stage <stage>``: take a stage down, keeping its data or not.

CloudFormation cannot delete a bucket that holds objects, so the Athena results bucket
(deleted with the stack) is emptied first, every version included. The table, the lake
and the access logs are retained by the stack (``DeletionPolicy: Retain``): they are
the stage's data. While they exist, a stack that creates them again under the same
names fails, so ``--delete-data`` deletes them too (the table's deletion protection is
switched off first): what a teardown followed by a fresh ``prepare`` or ``package``
deploy needs. A user pool the stack created (a stage that signs users in) is retained
and protected from deletion too: it holds the users. A new stack would create another
(pool names need not be unique), so nothing forces it gone; ``--delete-data`` deletes it
with the rest, and a teardown without it says how to delete it later (only the stack
knew which pool it created). A pool the stage only names (``ocg.user_pool_id``) is
never touched.

On path (b) the functions and the API belong to ``chalice deploy``, not to the stack,
and they use the stack's roles: ``chalice delete --stage <stage>`` comes first, and
teardown refuses while Chalice's record of the stage says they exist.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from deploy.names import access_logs_bucket
from deploy.resources import USER_POOL, USER_POOL_ID_OUTPUT
from deploy.stack import DeployError, read_deployed_if_any, region, stack_name
from deploy.stage import CHALICE_CONFIG, region_variables, stage_settings

# A bucket that S3 still delivers access logs to may fill again between emptying and
# deleting: a few more tries, this far apart (seconds).
BUCKET_DELETE_DELAYS = (5, 10, 20)


def teardown_stage(
    session: Any,
    stage: str,
    *,
    config_file: Path = CHALICE_CONFIG,
    delete_data: bool = False,
    wait: Callable[[float], None] = time.sleep,
) -> list[str]:
    """Delete the stage's stack (and with ``delete_data`` its retained data); what was
    done and what is left, a line each."""
    deployed = read_deployed_if_any(config_file.parent.parent, stage)
    if deployed and deployed.get("resources"):
        raise DeployError(
            f"chalice deploy's functions and API of stage {stage!r} still exist "
            f"(.chalice/deployed/{stage}.json): run chalice delete --stage {stage} first"
        )
    account_id = session.client("sts").get_caller_identity()["Account"]
    settings = stage_settings(
        stage,
        config_file,
        {**os.environ, **region_variables(region(session)), "OCG_ACCOUNT_ID": account_id},
    )
    if settings.account_id != account_id:
        raise DeployError(
            f"stage {stage!r} belongs to account {settings.account_id}, not to the caller's "
            f"({account_id})"
        )
    s3 = session.client("s3")
    done = []
    emptied = _empty_bucket(s3, settings.athena_results_bucket)
    done.append(f"emptied {settings.athena_results_bucket} ({emptied} object versions)")
    name = stack_name(settings)
    cloudformation = session.client("cloudformation")
    user_pool = _created_user_pool(cloudformation, name)
    cloudformation.delete_stack(StackName=name)
    cloudformation.get_waiter("stack_delete_complete").wait(
        StackName=name, WaiterConfig={"Delay": 5, "MaxAttempts": 360}
    )
    done.append(f"deleted stack {name}")
    data_buckets = [settings.lake_bucket, access_logs_bucket(settings)]
    if not delete_data:
        kept = ", ".join([f"table {settings.table_name}", *data_buckets])
        lines = [
            *done,
            f"kept: {kept} (the stage's data; a new stack with the same names needs them "
            "gone: teardown --delete-data)",
        ]
        if user_pool is not None:
            lines.append(
                f"kept: user pool {user_pool} (the stage's users; a new stack creates "
                "another). To delete it: aws cognito-idp update-user-pool --user-pool-id "
                f"{user_pool} --deletion-protection INACTIVE && aws cognito-idp "
                f"delete-user-pool --user-pool-id {user_pool}"
            )
        return lines
    dynamodb = session.client("dynamodb")
    if _exists(dynamodb.describe_table, TableName=settings.table_name):
        dynamodb.update_table(TableName=settings.table_name, DeletionProtectionEnabled=False)
        dynamodb.delete_table(TableName=settings.table_name)
        dynamodb.get_waiter("table_not_exists").wait(TableName=settings.table_name)
        done.append(f"deleted table {settings.table_name}")
    for bucket in data_buckets:
        if _exists(s3.head_bucket, Bucket=bucket):
            _delete_bucket(s3, bucket, wait)
            done.append(f"deleted bucket {bucket}, every version")
    cognito = session.client("cognito-idp")
    if user_pool is not None and _exists(cognito.describe_user_pool, UserPoolId=user_pool):
        cognito.update_user_pool(UserPoolId=user_pool, DeletionProtection="INACTIVE")
        cognito.delete_user_pool(UserPoolId=user_pool)
        done.append(f"deleted user pool {user_pool} and its users")
    return done


def _created_user_pool(cloudformation: Any, stack: str) -> str | None:
    """The id of the user pool the stack created, if it did: its template has the pool
    (a pool the stage only names is in its outputs alone)."""
    try:
        body = cloudformation.get_template(StackName=stack)["TemplateBody"]
        (described,) = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ValidationError":
            return None  # no such stack
        raise
    template = json.loads(body) if isinstance(body, str) else body  # boto3 parses JSON
    if USER_POOL not in template.get("Resources", {}):
        return None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    pool: str | None = outputs.get(USER_POOL_ID_OUTPUT)
    return pool


def _exists(describe: Callable[..., Any], **resource: str) -> bool:
    try:
        describe(**resource)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in (
            "ResourceNotFoundException",
            "404",
            "NoSuchBucket",
        ):
            return False
        raise
    return True


def _empty_bucket(s3: Any, bucket: str) -> int:
    """Delete every version and delete marker in ``bucket``; how many. A bucket that
    does not exist is empty."""
    count = 0
    try:
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            keys = [
                {"Key": item["Key"], "VersionId": item["VersionId"]}
                for item in (*page.get("Versions", []), *page.get("DeleteMarkers", []))
            ]
            for start in range(0, len(keys), 1000):  # DeleteObjects takes 1,000 at most
                batch = keys[start : start + 1000]
                answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
                if answer.get("Errors"):
                    first = answer["Errors"][0]
                    raise DeployError(
                        f"could not empty {bucket}: {first.get('Key')}: {first.get('Message')}"
                    )
                count += len(batch)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "NoSuchBucket":
            return 0
        raise
    return count


def _delete_bucket(s3: Any, bucket: str, wait: Callable[[float], None]) -> None:
    for delay in (*BUCKET_DELETE_DELAYS, None):
        _empty_bucket(s3, bucket)
        try:
            s3.delete_bucket(Bucket=bucket)
            return
        except ClientError as error:
            if delay is None or error.response.get("Error", {}).get("Code") != "BucketNotEmpty":
                raise
            wait(delay)
