"""AWS stand-ins (moto) and the schema model for the lake tests.

Files are read back with ``use_threads=False``: Arrow's CPU thread pool can abort or
hang the interpreter at exit after a threaded read (apache/arrow#34314, #50482).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.lake.objects import DirectoryObjectStore
from chalicelib.schema.model import SchemaModel
from tests.lake.support import BUCKET, REGION, make_model


@pytest.fixture
def model() -> SchemaModel:
    return make_model()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


@pytest.fixture
def s3(aws: None) -> Any:
    client = boto3.client("s3", region_name=REGION)
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def sqs(aws: None) -> Any:
    return boto3.client("sqs", region_name=REGION)


@pytest.fixture
def cascade_queue(sqs: Any) -> str:
    url: str = sqs.create_queue(QueueName="ocg-shop-cascade")["QueueUrl"]
    return url


@pytest.fixture
def lake(tmp_path: Path) -> DirectoryObjectStore:
    return DirectoryObjectStore(tmp_path / "lake")
