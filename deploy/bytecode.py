"""Compiled bytecode in the deployment package, so a cold start does not compile.

Lambda unpacks a function's zip into a read-only ``/var/task``, where Python can neither
find nor write ``__pycache__``: every cold start compiles each module it imports from
source (graphql-core, ariadne, chalicelib: ``bench/package_import.py`` measures it).
Chalice packages sources only, so ``python -m deploy package`` adds to the zip the
``.pyc`` the runtime's Python would write for each module a cold start of the GraphQL
function loads: found by importing ``app`` from the unpacked zip, under the stage's
settings, and serving one request. Modules loaded later (sqlglot, for deletion tasks)
stay sources: bytecode is larger than source, and the package has a size budget.

The ``.pyc`` files are checked-hash ones (PEP 552): Python hashes the source next to
them and uses one only when it matches, so a ``.pyc`` never runs code other than its
source; a mismatch costs the compile it would have cost anyway. They are compiled by the
interpreter that packages, which is the runtime's version (Chalice takes the runtime
from it); the cache tag in each file name makes any other interpreter ignore them.
"""

from __future__ import annotations

import importlib.util
import json
import posixpath
import py_compile
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from chalicelib.services import LAMBDA_FUNCTION_VARIABLE
from deploy.zips import file_entry

# Runs in the unpacked package as Lambda would: nothing on ``sys.path`` but the package
# and what the runtime provides, imports the app, serves the request in argv (an API
# Gateway event) through the Lambda entry point, and writes the package's files it
# loaded, as zip paths, to the report file.
_PROBE = """
import json, os, sys
unpacked, runtime, event, report = sys.argv[1:]
sys.path[:0] = [unpacked, runtime]
import app

class Context:
    function_name, aws_request_id = "probe", "probe"
    def get_remaining_time_in_millis(self):
        return 30_000

response = app.app(json.loads(event), Context())
if response["statusCode"] != 200 or "errors" in json.loads(response["body"]):
    sys.exit(f"the packaged app did not serve {{ __typename }}: {response}")
root = os.path.join(unpacked, "")
loaded = [getattr(module, "__file__", None) or "" for module in list(sys.modules.values())]
files = [os.path.relpath(path, unpacked) for path in loaded if path.startswith(root)]
with open(report, "w") as out:
    json.dump(sorted(path.replace(os.sep, "/") for path in files), out)
"""
# What the Lambda Python runtime puts beside a function's package: boto3 and what it needs.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")
PROBE_TIMEOUT_SECONDS = 120


class BytecodeError(Exception):
    """The packaged app could not be started to find what it loads."""


def api_gateway_event(body: str, request_id: str = "probe") -> dict[str, Any]:
    """A ``POST /graphql`` as API Gateway's REST proxy integration hands it to Lambda."""
    return {
        "resource": "/graphql",
        "path": "/graphql",
        "httpMethod": "POST",
        "headers": {"content-type": "application/json"},
        "multiValueHeaders": {"content-type": ["application/json"]},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/graphql",
            "httpMethod": "POST",
            "path": "/api/graphql",
            "stage": "api",
            "requestId": request_id,
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": body,
        "isBase64Encoded": False,
    }


def startup_modules(zip_path: Path, environment: Mapping[str, str]) -> list[str]:
    """The package's source files a cold start of the GraphQL function loads (paths in
    the zip), found by running it unpacked with only ``environment`` (the stage's
    variables and region) and the runtime's own libraries: a package that would not
    start on Lambda does not start here either."""
    with tempfile.TemporaryDirectory(prefix="ocg-package-") as work:
        unpacked, runtime, report = (
            Path(work) / "task",
            Path(work) / "runtime",
            Path(work) / "report",
        )
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(unpacked)
        _link_runtime_libraries(runtime)
        event = api_gateway_event(json.dumps({"query": "{ __typename }"}))
        command = [sys.executable, "-I", "-S", "-c", _PROBE, str(unpacked), str(runtime)]
        try:
            result = subprocess.run(
                [*command, json.dumps(event), str(report)],
                cwd=unpacked,
                env={**environment, LAMBDA_FUNCTION_VARIABLE: "probe"},
                capture_output=True,
                text=True,
                check=False,
                timeout=PROBE_TIMEOUT_SECONDS,
            )
        except subprocess.TimeoutExpired:
            raise BytecodeError(
                f"the packaged GraphQL function did not start in {PROBE_TIMEOUT_SECONDS} s"
            ) from None
        if result.returncode != 0:
            raise BytecodeError(
                f"the packaged GraphQL function does not start: {result.stderr.strip()}"
            )
        loaded: list[str] = json.loads(report.read_text())
    return [path for path in loaded if path.endswith(".py")]


def _link_runtime_libraries(directory: Path) -> None:
    """``directory`` holds links to this environment's copies of what the runtime
    provides, and nothing else of it."""
    directory.mkdir()
    for name in RUNTIME_PROVIDED:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise BytecodeError(f"{name}, which the Lambda runtime provides, is not installed")
        origin = Path(spec.origin)
        library = origin.parent if spec.submodule_search_locations else origin
        (directory / library.name).symlink_to(library)


def add_bytecode(zip_path: Path, sources: Collection[str]) -> int:
    """Add a checked-hash ``.pyc`` for each of ``sources`` (paths in the zip) that has
    none; the number added. The zip is rewritten in place, its entries unchanged."""
    with zipfile.ZipFile(zip_path) as source:
        entries = source.infolist()
        names = {entry.filename for entry in entries}
        wanted = {_cache_path(name): name for name in sources if name in names}
        compiled = {
            cached: _compile(source.read(name), name)
            for cached, name in sorted(wanted.items())
            if cached not in names
        }
        if not compiled:
            return 0
        with tempfile.NamedTemporaryFile(dir=zip_path.parent, suffix=".zip", delete=False) as out:
            rewritten = Path(out.name)
        try:
            with zipfile.ZipFile(rewritten, "w", zipfile.ZIP_DEFLATED) as target:
                for entry in entries:
                    target.writestr(entry, source.read(entry))
                for name, code in compiled.items():
                    target.writestr(file_entry(name), code)
            shutil.copymode(zip_path, rewritten)
        except BaseException:
            rewritten.unlink()
            raise
    rewritten.replace(zip_path)
    return len(compiled)


def _cache_path(source_name: str) -> str:
    """Where the runtime looks for a module's bytecode, inside the zip: whatever this
    interpreter's own settings (``PYTHONPYCACHEPREFIX``, ``-O``), Lambda's looks in
    ``__pycache__`` for an unoptimised ``.pyc`` of its cache tag."""
    directory, _, file_name = source_name.rpartition("/")
    stem = file_name.removesuffix(".py")
    return posixpath.join(directory, "__pycache__", f"{stem}.{sys.implementation.cache_tag}.pyc")


def _compile(source: bytes, name: str) -> bytes:
    with tempfile.TemporaryDirectory(prefix="ocg-bytecode-") as work:
        source_file, cached = Path(work) / "module.py", Path(work) / "module.pyc"
        source_file.write_bytes(source)
        py_compile.compile(
            str(source_file),
            cfile=str(cached),
            dfile=name,
            doraise=True,
            optimize=0,
            invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
        )
        return cached.read_bytes()
