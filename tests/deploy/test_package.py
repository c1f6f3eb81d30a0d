"""Path (a)'s package and its checks: Chalice's missing dependencies and the size limits
fail it, and the dev stage, packaged for real with a built layer, passes every check
(sizes, cfn-lint before and after the SAM transform) with its figures printed."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import pytest
from chalice.constants import MISSING_DEPENDENCIES_TEMPLATE

from deploy.__main__ import main
from deploy.layer import MIB, Layer, managed_layer_size_bound, stream_layer
from deploy.package import (
    GRAPHQL_PACKAGE_LIMIT,
    LAMBDA_UNZIPPED_LIMIT,
    check_package,
    figures,
    include_playground,
)

CLEAN_OUTPUT = "Creating deployment package.\nWrote package to out\n"


def package(out_dir: Path, unzipped_bytes: int) -> Path:
    """A deployment.zip taking ``unzipped_bytes`` once extracted (zeros compress to little)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out_dir / "deployment.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("app.py", bytes(unzipped_bytes))
    return out_dir


def test_a_package_within_every_limit_has_no_problems(tmp_path: Path) -> None:
    out = package(tmp_path, 7 * MIB)
    layers = [Layer("pyarrow", LAMBDA_UNZIPPED_LIMIT - 7 * MIB)]  # exactly the limit

    assert check_package(out, CLEAN_OUTPUT, layers) == []
    assert figures(out, layers) == [
        "GraphQL function package: 7.0 MiB unzipped (budget 15.0 MiB)",
        "stream and compaction functions: package and layers 250.0 MiB unzipped "
        "(Lambda's limit 250.0 MiB)",
        "  layer: pyarrow",
    ]


def test_dependencies_chalice_could_not_install_fail_the_check(tmp_path: Path) -> None:
    output = CLEAN_OUTPUT + MISSING_DEPENDENCIES_TEMPLATE % "pyarrow==26.0.1\nnumpy==2.4.6"

    problems = check_package(package(tmp_path, MIB), output, [])

    assert problems == [
        "chalice package could not install: pyarrow==26.0.1, numpy==2.4.6 (no wheel for the "
        "Lambda runtime; Chalice left them out of the package)"
    ]


def test_a_graphql_package_over_its_budget_fails_the_check(tmp_path: Path) -> None:
    problems = check_package(package(tmp_path, GRAPHQL_PACKAGE_LIMIT + 1), CLEAN_OUTPUT, [])

    assert problems == [
        "the GraphQL function's package is 15.0 MiB (15,728,641 bytes) unzipped, "
        "over its budget of 15.0 MiB (15,728,640 bytes)"
    ]


def test_pyarrow_functions_over_lambdas_limit_with_their_layers_fail_the_check(
    tmp_path: Path,
) -> None:
    layers = [Layer("pyarrow", 200 * MIB), Layer("another", 43 * MIB)]

    problems = check_package(package(tmp_path, 7 * MIB + 1), CLEAN_OUTPUT, layers)

    assert problems == [
        "the stream and compaction functions' package and layers take 250.0 MiB "
        "(262,144,001 bytes) unzipped, over Lambda's limit of 250.0 MiB (262,144,000 bytes)"
    ]


def test_no_package_fails_the_check(tmp_path: Path) -> None:
    assert check_package(tmp_path, CLEAN_OUTPUT, []) == [
        f"chalice package wrote no deployment.zip in {tmp_path}"
    ]


def test_the_managed_layer_counts_at_its_recorded_bound(tmp_path: Path) -> None:
    layer = stream_layer("managed", "eu-west-1", tmp_path)

    assert layer.reference == "arn:aws:lambda:eu-west-1:336392948345:layer:AWSSDKPandas-Python311:2"
    assert layer.counted is not None
    assert layer.counted.unzipped_bytes == managed_layer_size_bound() == 204 * MIB
    assert "a recorded bound" in layer.counted.description
    assert list(tmp_path.iterdir()) == []  # nothing built


def test_a_layer_given_by_its_arn_is_used_and_not_counted(tmp_path: Path) -> None:
    layer = stream_layer(
        "arn:aws:lambda:eu-west-1:111111111111:layer:mine:3", "eu-west-1", tmp_path
    )

    assert layer.reference == "arn:aws:lambda:eu-west-1:111111111111:layer:mine:3"
    assert layer.counted is None


def test_the_dev_stage_packages_with_a_built_layer_and_passes_every_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    out = tmp_path / "out"

    status = main(["package", "--stage", "dev", "--out", str(out)])

    printed = capsys.readouterr()
    assert status == 0, printed.err
    region, account, bytecode, *lines = printed.out.splitlines()
    assert region == "region: eu-west-1"
    assert account == "account: the one the stack is created in (${AWS::AccountId})"
    assert re.fullmatch(
        r"bytecode: the \d+ modules a cold start loads, compiled into deployment\.zip", bytecode
    )
    assert re.fullmatch(
        r"GraphQL function package: \d+\.\d MiB unzipped \(budget 15\.0 MiB\)", lines[0]
    )
    assert re.fullmatch(
        r"stream and compaction functions: package and layers \d+\.\d MiB unzipped "
        r"\(Lambda's limit 250\.0 MiB\)",
        lines[1],
    )
    assert re.fullmatch(
        rf"  layer: built {re.escape(str(out))}/pyarrow-layer\.zip: \d+\.\d MiB unzipped, "
        r"\d+\.\d MiB zipped",
        lines[2],
    )
    assert lines[3].startswith("package check passed")
    assert {p.name for p in out.iterdir()} == {"sam.json", "deployment.zip", "pyarrow-layer.zip"}
    resources = json.loads((out / "sam.json").read_text())["Resources"]
    assert resources["OnTableChange"]["Properties"]["Layers"] == [{"Ref": "PyarrowLayer"}]
    assert resources["CompactLake"]["Properties"]["Layers"] == [{"Ref": "PyarrowLayer"}]
    assert resources["PyarrowLayer"]["Properties"]["ContentUri"] == "./pyarrow-layer.zip"
    assert "Layers" not in resources["APIHandler"]["Properties"]


def test_the_playground_option_puts_the_built_files_where_the_page_reads_them(
    tmp_path: Path,
) -> None:
    built = tmp_path / "dist"
    built.mkdir()
    (built / "playground.js").write_text("js")
    (built / "playground.css").write_text("css")
    project = tmp_path / "project"

    assert include_playground(project, built) == []

    packaged = project / "chalicelib" / "graphql" / "playground_assets"
    assert {p.name: p.read_text() for p in packaged.iterdir()} == {
        "playground.js": "js",
        "playground.css": "css",
    }


def test_the_playground_option_without_a_build_is_a_problem(tmp_path: Path) -> None:
    built = tmp_path / "dist"
    built.mkdir()
    (built / "playground.css").write_text("css")

    (problem,) = include_playground(tmp_path / "project", built)

    assert "ocg.playground is on" in problem
    assert "no playground.js" in problem and "make install" in problem
