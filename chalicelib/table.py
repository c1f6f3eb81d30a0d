"""The single table of DESIGN §3, defined once.

The local runtime passes :func:`table_definition` to moto's ``create_table`` and the
deployment turns the same dictionary into CloudFormation, so both worlds get the same
keys, indexes and stream.
"""

from __future__ import annotations

from typing import Any

from chalicelib.keys import EXPIRES_AT, GSI1, GSI1_PK, GSI1_SK, GSI2, GSI2_PK, GSI2_SK, PK, SK

# TTL is not part of ``create_table``: it is switched on afterwards with
# ``update_time_to_live`` (and ``TimeToLiveSpecification`` in CloudFormation).
TTL_ATTRIBUTE = EXPIRES_AT


def _key_schema(partition: str, sort: str) -> list[dict[str, str]]:
    return [
        {"AttributeName": partition, "KeyType": "HASH"},
        {"AttributeName": sort, "KeyType": "RANGE"},
    ]


def table_definition(table_name: str) -> dict[str, Any]:
    """The keyword arguments of DynamoDB ``create_table`` for the project's table."""
    return {
        "TableName": table_name,
        "AttributeDefinitions": [
            {"AttributeName": name, "AttributeType": "S"}
            for name in (PK, SK, GSI1_PK, GSI1_SK, GSI2_PK, GSI2_SK)
        ],
        "KeySchema": _key_schema(PK, SK),
        "GlobalSecondaryIndexes": [
            {
                "IndexName": index,
                "KeySchema": _key_schema(partition, sort),
                "Projection": {"ProjectionType": "ALL"},
            }
            for index, partition, sort in ((GSI1, GSI1_PK, GSI1_SK), (GSI2, GSI2_PK, GSI2_SK))
        ],
        "BillingMode": "PAY_PER_REQUEST",
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    }
