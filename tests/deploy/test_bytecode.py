"""Bytecode in the deployment package: a cold start loads it instead of compiling, and
never runs anything but the source beside it."""

from __future__ import annotations

import importlib.util
import json
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from deploy.__main__ import main
from deploy.bytecode import BytecodeError, add_bytecode, startup_modules
from deploy.stage import read_config, region_variables, stage_environment

# Imports the modules named in argv[1:] and prints the files the import system compiled
# from source meanwhile (a module reading its own source, as anyio does, is not counted).
COMPILED_BY_IMPORT = """
import importlib, json, sys
from importlib.machinery import SourceFileLoader
compiled, compile_source = [], SourceFileLoader.source_to_code
def counting(self, data, path, **options):
    compiled.append(str(path))
    return compile_source(self, data, path, **options)
SourceFileLoader.source_to_code = counting
results = [getattr(importlib.import_module(name), "VALUE", None) for name in sys.argv[1:]]
print(json.dumps({"compiled": compiled, "values": results}))
"""

APP_SERVING_ONE_REQUEST = """
import helper

def app(event, context):
    return {"statusCode": 200, "body": helper.BODY}
"""


def write_zip(path: Path, files: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            entry = zipfile.ZipInfo(name)
            entry.external_attr = (stat.S_IFREG | 0o644) << 16
            archive.writestr(entry, text)
    path.chmod(0o644)
    return path


def compiled_by_import(directory: Path, *modules: str) -> dict[str, list[str]]:
    result = subprocess.run(
        [sys.executable, "-c", COMPILED_BY_IMPORT, *modules],
        cwd=directory,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    found: dict[str, list[str]] = json.loads(result.stdout)
    return found


@pytest.fixture
def package(tmp_path: Path) -> Path:
    return write_zip(
        tmp_path / "deployment.zip",
        {
            "pkg/__init__.py": "",
            "pkg/used.py": "VALUE = 'from source'\n",
            "pkg/unused.py": "VALUE = 'never compiled'\n",
        },
    )


def test_bytecode_is_added_for_the_named_sources_only(
    package: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Where this interpreter keeps its own bytecode does not matter: Lambda's looks
    # in __pycache__.
    monkeypatch.setattr(sys, "pycache_prefix", str(tmp_path / "elsewhere"))
    before = {
        e.filename: (e.external_attr, zipfile.ZipFile(package).read(e))
        for e in zipfile.ZipFile(package).infolist()
    }

    added = add_bytecode(package, ["pkg/__init__.py", "pkg/used.py"])

    with zipfile.ZipFile(package) as archive:
        after = {e.filename: (e.external_attr, archive.read(e)) for e in archive.infolist()}
        pyc = archive.read(f"pkg/__pycache__/used.{sys.implementation.cache_tag}.pyc")
    assert added == 2
    tag = sys.implementation.cache_tag
    assert set(after) - set(before) == {
        f"pkg/__pycache__/__init__.{tag}.pyc",
        f"pkg/__pycache__/used.{tag}.pyc",
    }
    assert {name: after[name] for name in before} == before
    assert pyc[:4] == importlib.util.MAGIC_NUMBER
    assert int.from_bytes(pyc[4:8], "little") == 0b11  # hash-based, checked against the source
    assert stat.S_IMODE(package.stat().st_mode) == 0o644
    assert add_bytecode(package, ["pkg/used.py"]) == 0


def test_an_unpacked_package_imports_its_bytecode_without_compiling(
    package: Path, tmp_path: Path
) -> None:
    add_bytecode(package, ["pkg/__init__.py", "pkg/used.py"])
    unpacked = tmp_path / "task"
    zipfile.ZipFile(package).extractall(unpacked)

    found = compiled_by_import(unpacked, "pkg.used", "pkg.unused")

    assert found["values"] == ["from source", "never compiled"]
    assert [Path(f).name for f in found["compiled"]] == ["unused.py"]


def test_bytecode_never_runs_instead_of_a_changed_source(package: Path, tmp_path: Path) -> None:
    add_bytecode(package, ["pkg/__init__.py", "pkg/used.py"])
    unpacked = tmp_path / "task"
    zipfile.ZipFile(package).extractall(unpacked)
    (unpacked / "pkg" / "used.py").write_text("VALUE = 'edited'\n")

    found = compiled_by_import(unpacked, "pkg.used")

    assert found["values"] == ["edited"]
    assert [Path(f).name for f in found["compiled"]] == ["used.py"]


def test_startup_modules_are_what_importing_the_app_and_one_request_load(tmp_path: Path) -> None:
    package = write_zip(
        tmp_path / "deployment.zip",
        {
            "app.py": APP_SERVING_ONE_REQUEST,
            "helper.py": "BODY = '{}'\n",
            "later.py": "",
        },
    )

    assert startup_modules(package, dict(os.environ)) == ["app.py", "helper.py"]


def test_the_probe_sees_the_runtimes_libraries_and_the_package_only(tmp_path: Path) -> None:
    """boto3 comes with the Lambda runtime; graphql-core, installed here, does not."""
    runtime_only = write_zip(
        tmp_path / "runtime.zip",
        {"app.py": "import boto3\n" + APP_SERVING_ONE_REQUEST, "helper.py": "BODY = '{}'\n"},
    )
    missing = write_zip(
        tmp_path / "missing.zip",
        {"app.py": "import graphql\n" + APP_SERVING_ONE_REQUEST, "helper.py": "BODY = '{}'\n"},
    )

    assert startup_modules(runtime_only, {}) == ["app.py", "helper.py"]
    with pytest.raises(BytecodeError, match="No module named 'graphql'"):
        startup_modules(missing, {})


def test_a_packaged_app_that_does_not_start_is_reported(tmp_path: Path) -> None:
    package = write_zip(
        tmp_path / "deployment.zip", {"app.py": "raise SystemExit('OCG_ACCOUNT_ID is not set')\n"}
    )

    with pytest.raises(BytecodeError, match="does not start: OCG_ACCOUNT_ID is not set"):
        startup_modules(package, dict(os.environ))


def test_the_packaged_graphql_function_starts_without_compiling_anything_it_ships(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    layer = "arn:aws:lambda:us-east-1:111111111111:layer:mine:1"  # no layer build here
    out = tmp_path / "out"
    assert main(["package", "--stage", "dev", "--out", str(out), "--pyarrow-layer", layer]) == 0
    assert "bytecode: the " in capsys.readouterr().out
    unpacked = tmp_path / "task"
    with zipfile.ZipFile(out / "deployment.zip") as archive:
        archive.extractall(unpacked)
        names = set(archive.namelist())
    assert not any(name.startswith("sqlglot/") and name.endswith(".pyc") for name in names)
    environment = {
        **os.environ,
        **stage_environment(read_config(), "dev"),
        **region_variables("us-east-1"),
        "OCG_ACCOUNT_ID": "210987654321",  # the stack's, on AWS
        "PYTHONDONTWRITEBYTECODE": "1",
    }

    result = subprocess.run(
        [sys.executable, "-c", COMPILED_BY_IMPORT, "app", "chalicelib.graphql"],
        cwd=unpacked,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )

    compiled = json.loads(result.stdout)["compiled"]
    assert [f for f in compiled if Path(f).resolve().is_relative_to(unpacked.resolve())] == []
