"""The stream function's pyarrow layer: the managed layer's pinned ARNs, and a layer built
from PyPI for the Lambda runtime that runs the real stream path without numpy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from deploy.layer import (
    LayerError,
    build_layer,
    managed_layer_arn,
    managed_layer_release,
    pip_platforms,
)
from deploy.package import LAMBDA_UNZIPPED_LIMIT
from deploy.zips import unzipped_size
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once for the module (pip caches the wheel for the rebuild below)."""
    return build_layer(tmp_path_factory.mktemp("layer") / "pyarrow-layer.zip")


def names(zip_path: Path) -> list[str]:
    with zipfile.ZipFile(zip_path) as archive:
        return archive.namelist()


def test_the_layer_holds_pyarrow_where_lambda_looks_for_it(layer: Path) -> None:
    entries = names(layer)

    assert all(name.startswith("python/") for name in entries)
    assert "python/pyarrow/parquet/__init__.py" in entries
    assert "python/pyarrow/lib.cpython-311-x86_64-linux-gnu.so" in entries
    assert entries == sorted(entries)


def test_the_layer_leaves_out_what_lambda_never_loads(layer: Path) -> None:
    entries = names(layer)

    assert not [name for name in entries if "/__pycache__/" in name or "/tests/" in name]
    assert not [name for name in entries if name.endswith((".pyc", ".pyx", ".pxd", ".pxi"))]
    assert not [name for name in entries if name.startswith("python/pyarrow/include/")]


def test_the_layer_fits_lambda_with_room_for_the_package(layer: Path) -> None:
    assert unzipped_size(layer) < LAMBDA_UNZIPPED_LIMIT - 100 * 1024 * 1024


def test_a_rebuild_is_byte_for_byte_the_same(layer: Path, tmp_path: Path) -> None:
    again = build_layer(tmp_path / "again.zip")

    assert again.read_bytes() == layer.read_bytes()


def test_the_stream_path_runs_on_the_layer_without_numpy_or_pandas(
    layer: Path, tmp_path: Path
) -> None:
    with zipfile.ZipFile(layer) as archive:
        archive.extractall(tmp_path / "opt")
    site = tmp_path / "opt" / "python"
    lake = tmp_path / "lake"
    code = (
        "import sys\n"
        "sys.modules['numpy'] = sys.modules['pandas'] = None  # neither is in the layer\n"
        "from pathlib import Path\n"
        "import pyarrow, pyarrow.parquet as pq\n"
        f"assert pyarrow.__file__.startswith({str(site)!r}), pyarrow.__file__\n"
        "from chalicelib.lake.objects import DirectoryObjectStore\n"
        "from chalicelib.lake.stream import process_stream_event\n"
        "from tests.lake.support import USER_KEY, batch, captured, make_model\n"
        f"lake = Path({str(lake)!r})\n"
        "response = process_stream_event(batch(captured('stream_insert_user')),\n"
        "    model=make_model(), object_store=DirectoryObjectStore(lake),\n"
        "    sqs_client=None, cascade_queue_url='')\n"
        "assert response == {'batchItemFailures': []}, response\n"
        "row = pq.ParquetFile(lake / USER_KEY).read().to_pylist()[0]\n"
        "print(json.dumps([pyarrow.__version__, row['name'], row['createdAt'].isoformat()]))\n"
    )

    result = subprocess.run(
        [sys.executable, "-c", f"import json\n{code}"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    pin = (ROOT / "requirements-layer.txt").read_text().split("pyarrow==")[1].strip()
    assert json.loads(result.stdout) == [
        pin,
        "Zoë Ångström 👩‍💻 東京",
        "2026-11-23T23:59:59.999000+00:00",
    ]


def test_a_pin_without_wheels_for_the_runtime_glibc_fails_the_build(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("pyarrow==26.0.1\n")  # manylinux_2_28 wheels only

    with pytest.raises(LayerError, match=r"python3\.11 \(x86_64, glibc 2\.26\)") as refused:
        build_layer(tmp_path / "layer.zip", requirements=requirements)

    assert "No matching distribution found for pyarrow==26.0.1" in str(refused.value)
    assert not (tmp_path / "layer.zip").exists()


def test_pip_is_offered_every_platform_the_runtime_glibc_loads() -> None:
    python311 = pip_platforms("3.11", "x86_64")
    python312 = pip_platforms("3.12", "arm64")

    assert python311[0] == "manylinux_2_17_x86_64"
    assert python311[-2:] == ["manylinux_2_26_x86_64", "manylinux2014_x86_64"]
    assert "manylinux_2_34_aarch64" in python312 and "manylinux2014_aarch64" in python312
    with pytest.raises(LayerError, match=r"python3\.9"):
        pip_platforms("3.9", "x86_64")


@pytest.mark.parametrize(
    ("region", "architecture", "arn"),
    [
        (
            "eu-west-1",
            "x86_64",
            "arn:aws:lambda:eu-west-1:336392948345:layer:AWSSDKPandas-Python311:2",
        ),
        (
            "us-east-1",
            "arm64",
            "arn:aws:lambda:us-east-1:336392948345:layer:AWSSDKPandas-Python311-Arm64:2",
        ),
        (
            "ap-east-1",
            "x86_64",
            "arn:aws:lambda:ap-east-1:839552336658:layer:AWSSDKPandas-Python311:4",
        ),
    ],
)
def test_the_managed_layer_is_the_pinned_releases(region: str, architecture: str, arn: str) -> None:
    assert managed_layer_release() == "3.4.0"
    assert managed_layer_arn(region, "3.11", architecture) == arn


@pytest.mark.parametrize(
    ("region", "python_version", "architecture"),
    [
        ("mars-1", "3.11", "x86_64"),
        ("eu-west-1", "3.12", "x86_64"),
        ("ap-south-2", "3.11", "arm64"),
    ],
)
def test_a_runtime_without_a_recorded_layer_asks_for_an_explicit_arn(
    region: str, python_version: str, architecture: str
) -> None:
    with pytest.raises(LayerError, match=f"in {region} .*pass a pyarrow layer ARN explicitly"):
        managed_layer_arn(region, python_version, architecture)
