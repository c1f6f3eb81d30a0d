"""Posting through API Gateway's Management API (boto3's client, its answers stubbed):
a connection that is gone is reported, not raised; any other failure is raised."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from chalicelib.subscriptions import ManagementConnections


def client() -> tuple[object, Stubber]:
    management = boto3.client(
        "apigatewaymanagementapi",
        region_name="eu-west-1",
        endpoint_url="https://abc123.execute-api.eu-west-1.amazonaws.com/api",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    return management, Stubber(management)


def test_a_message_is_posted_as_json() -> None:
    management, stub = client()
    stub.add_response(
        "post_to_connection", {}, {"ConnectionId": "c1", "Data": b'{"type": "connection_ack"}'}
    )
    with stub:
        assert ManagementConnections(management).send("c1", {"type": "connection_ack"})
    stub.assert_no_pending_responses()


def test_a_gone_connection_is_reported() -> None:
    management, stub = client()
    stub.add_client_error("post_to_connection", "GoneException", http_status_code=410)
    stub.add_client_error("delete_connection", "GoneException", http_status_code=410)
    with stub:
        assert not ManagementConnections(management).send("c1", {"type": "pong"})
        ManagementConnections(management).close("c1", 4403, "Forbidden")


def test_other_failures_are_raised() -> None:
    management, stub = client()
    stub.add_client_error("post_to_connection", "LimitExceededException", http_status_code=429)
    with stub, pytest.raises(ClientError):
        ManagementConnections(management).send("c1", {"type": "pong"})
