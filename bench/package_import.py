"""Cold start of the packaged GraphQL function, with and without its bytecode.

Unpacks ``out/deployment.zip`` (packaging the dev stage first, against the managed
layer so nothing is built, when there is none) and, in fresh interpreters that have
already imported ``boto3`` (the runtime provides it), times ``import app`` plus a first
``{ __typename }`` request through the Lambda entry point: as shipped, with the bytecode
``deploy.bytecode`` adds, and with that bytecode ignored, as ``chalice deploy`` ships the
package (every module compiled from source on each cold start). No target: the figures
show what the bytecode saves.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from deploy.bytecode import api_gateway_event
from deploy.stage import read_config, region_variables, stage_environment

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "out" / "deployment.zip"
RUNS = 11
STAGE = "dev"
REGION = "us-east-1"

PROBE = """
import json, sys, time
import boto3
start = time.perf_counter()
import app

class Context:
    function_name, aws_request_id = "bench", "bench"
    def get_remaining_time_in_millis(self):
        return 30_000

response = app.app(json.loads(sys.argv[1]), Context())
assert response["statusCode"] == 200, response
print((time.perf_counter() - start) * 1000)
"""


def package() -> Path:
    if PACKAGE.is_file():
        return PACKAGE
    out = Path(tempfile.mkdtemp(prefix="ocg-bench-package-"))
    print(f"no {PACKAGE.relative_to(ROOT)}: packaging the {STAGE} stage into {out}", flush=True)
    command = [sys.executable, "-m", "deploy", "package", "--stage", STAGE, "--out", str(out)]
    subprocess.run([*command, "--pyarrow-layer", "managed"], cwd=ROOT, check=True)
    return out / "deployment.zip"


def cold_start_ms(unpacked: Path, environment: dict[str, str]) -> float:
    event = api_gateway_event(json.dumps({"query": "{ __typename }"}))
    out = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(event)],
        cwd=unpacked,
        env=environment,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(out)


def main() -> None:
    zip_path = package()
    environment = {
        **os.environ,
        **stage_environment(read_config(), STAGE),
        **region_variables(REGION),
        "AWS_LAMBDA_FUNCTION_NAME": "ocg-dev-api_handler",  # as Lambda sets it
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    with tempfile.TemporaryDirectory(prefix="ocg-bench-task-") as unpacked:
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(unpacked)
        shipped = [cold_start_ms(Path(unpacked), environment) for _ in range(RUNS)]
        with tempfile.TemporaryDirectory(prefix="ocg-bench-no-bytecode-") as elsewhere:
            # Bytecode is looked for under this (empty) prefix only: all is compiled.
            from_source = {**environment, "PYTHONPYCACHEPREFIX": elsewhere}
            compiled = [cold_start_ms(Path(unpacked), from_source) for _ in range(RUNS)]
    with_bytecode, without = statistics.median(shipped), statistics.median(compiled)
    print(
        f"packaged GraphQL function ({zip_path}), import app + first request over boto3: "
        f"median {with_bytecode:.0f} ms with its bytecode, {without:.0f} ms compiling from "
        f"source (as chalice deploy ships it), over {RUNS} runs each"
    )


if __name__ == "__main__":
    main()
