"""moto's CloudFormation, taught the resource types of our stack that it skips.

moto 5.2.5 creates tables, buckets, queues and roles from a template, but only warns and
moves on for Glue databases and tables, Athena workgroups, bucket policies, API Gateway
usage plans and keys, and Cognito user pools and app clients (FIELD-NOTES, moto). Each
function below creates one such resource through moto's own backend, with the
template's properties, and returns what its ``Ref`` gives; so a stack test sees what a
real stack would have made: a Glue table with the schema we generated, a workgroup with
our output location, a usage plan naming the API, a user pool that issues tokens.
Importing this module registers them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.apigateway.models import apigateway_backends
from moto.athena.models import athena_backends
from moto.cloudformation import parsing
from moto.cognitoidp.models import cognitoidp_backends
from moto.core.common_models import CloudFormationModel
from moto.glue.models import glue_backends
from moto.s3.models import s3_backends
from moto.utilities.utils import get_partition

Properties = dict[str, Any]
Create = Callable[[Properties, str, str], str]  # properties, account, region → Ref
Delete = Callable[[Properties, str, str], None]  # properties, account, region

# Bucket policies by bucket: moto enforces a policy without its conditions, so our
# TLS-only deny would refuse every request; the tests read them from here instead.
bucket_policies: dict[str, Any] = {}


def _glue_database(properties: Properties, account_id: str, region: str) -> str:
    database_input = properties["DatabaseInput"]
    glue_backends[account_id][region].create_database(database_input["Name"], database_input)
    name: str = database_input["Name"]
    return name


def _glue_table(properties: Properties, account_id: str, region: str) -> str:
    table_input = properties["TableInput"]
    glue_backends[account_id][region].create_table(
        properties["DatabaseName"], table_input["Name"], table_input
    )
    name: str = table_input["Name"]
    return name


def _delete_glue_database(properties: Properties, account_id: str, region: str) -> None:
    glue = glue_backends[account_id][region]
    if properties["DatabaseInput"]["Name"] in glue.databases:
        glue.delete_database(properties["DatabaseInput"]["Name"])


def _athena_workgroup(properties: Properties, account_id: str, region: str) -> str:
    athena_backends[account_id][region].create_work_group(
        properties["Name"], properties["WorkGroupConfiguration"], "", []
    )
    name: str = properties["Name"]
    return name


def _bucket_policy(properties: Properties, account_id: str, region: str) -> str:
    bucket: str = properties["Bucket"]
    s3_backends[account_id][get_partition(region)].get_bucket(bucket)  # it exists
    bucket_policies[bucket] = properties["PolicyDocument"]
    return bucket


def _usage_plan(properties: Properties, account_id: str, region: str) -> str:
    throttle = properties["Throttle"]
    plan = apigateway_backends[account_id][region].create_usage_plan(
        {
            "name": properties["UsagePlanName"],
            "apiStages": [
                {"apiId": stage["ApiId"], "stage": stage["Stage"]}
                for stage in properties["ApiStages"]
            ],
            "throttle": {"rateLimit": throttle["RateLimit"], "burstLimit": throttle["BurstLimit"]},
            "quota": {
                "limit": properties["Quota"]["Limit"],
                "period": properties["Quota"]["Period"],
            },
        }
    )
    plan_id: str = plan.id
    return plan_id


def _api_key(properties: Properties, account_id: str, region: str) -> str:
    key = apigateway_backends[account_id][region].create_api_key(
        {"name": properties["Name"], "enabled": properties["Enabled"]}
    )
    key_id: str = key.id
    return key_id


def _usage_plan_key(properties: Properties, account_id: str, region: str) -> str:
    apigateway_backends[account_id][region].create_usage_plan_key(
        properties["UsagePlanId"], {"keyId": properties["KeyId"], "keyType": properties["KeyType"]}
    )
    return f"{properties['UsagePlanId']}:{properties['KeyId']}"


def _user_pool(properties: Properties, account_id: str, region: str) -> str:
    """The pool, configured as CreateUserPool would be: the template's properties are the
    API's, but for its name."""
    config = {key: value for key, value in properties.items() if key != "UserPoolName"}
    pool = cognitoidp_backends[account_id][region].create_user_pool(
        properties["UserPoolName"], config
    )
    pool_id: str = pool.id
    return pool_id


def _user_pool_client(properties: Properties, account_id: str, region: str) -> str:
    config = {
        key: value
        for key, value in properties.items()
        if key not in ("UserPoolId", "GenerateSecret")
    }
    client = cognitoidp_backends[account_id][region].create_user_pool_client(
        properties["UserPoolId"], properties.get("GenerateSecret", False), config
    )
    client_id: str = client.id
    return client_id


def _register(resource_type: str, create: Create, delete: Delete | None = None) -> None:
    """A ``CloudFormationModel`` for the type (moto looks among its direct subclasses);
    with ``delete``, a stack deletion removes what it made (the others stay, as moto
    leaves them)."""

    def __init__(self: Any, identifier: str, properties: Properties) -> None:
        self.identifier = identifier
        self.properties = properties

    def delete_resource(self: Any, account_id: str, region_name: str) -> None:
        if delete is not None:
            delete(self.properties, account_id, region_name)

    def create_from_cloudformation_json(
        cls: Any,
        /,
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
        **_: Any,
    ) -> Any:
        properties = cloudformation_json["Properties"]
        return cls(create(properties, account_id, region_name), properties)

    type(
        resource_type.replace("::", ""),
        (CloudFormationModel,),
        {
            "__init__": __init__,
            "physical_resource_id": property(lambda self: self.identifier),
            "cloudformation_type": staticmethod(lambda: resource_type),
            "cloudformation_name_type": staticmethod(lambda: ""),
            "create_from_cloudformation_json": classmethod(create_from_cloudformation_json),
            "delete": delete_resource,
        },
    )


_register("AWS::Glue::Database", _glue_database, _delete_glue_database)
for _type, _create in {
    "AWS::Glue::Table": _glue_table,
    "AWS::Athena::WorkGroup": _athena_workgroup,
    "AWS::S3::BucketPolicy": _bucket_policy,
    "AWS::ApiGateway::UsagePlan": _usage_plan,
    "AWS::ApiGateway::ApiKey": _api_key,
    "AWS::ApiGateway::UsagePlanKey": _usage_plan_key,
    # No delete: the pool is retained (and deletion-protected); its client would go, but
    # a test that tears a stack down looks at the pool only.
    "AWS::Cognito::UserPool": _user_pool,
    "AWS::Cognito::UserPoolClient": _user_pool_client,
}.items():
    _register(_type, _create)
parsing.get_model_map.cache_clear()
parsing.get_name_type_map.cache_clear()
