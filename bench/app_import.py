"""Cold-start cost of the GraphQL function: importing ``app`` in aws mode.

Prints the median time to import ``app`` on top of ``boto3`` and ``ariadne`` (which
every GraphQL function loads anyway) over fresh interpreters, and which heavy
libraries the import pulled in. Target: under 60 ms, none of pyarrow, pandas, duckdb
or sqlglot.

Every module is imported from bytecode, as from the package ``python -m deploy package``
builds (``deploy.bytecode``): a first, unmeasured import writes it under a temporary
``PYTHONPYCACHEPREFIX``, so the figure does not depend on whether this machine keeps
``__pycache__`` (``PYTHONDONTWRITEBYTECODE``). ``bench.package_import`` measures the
compile it saves.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 15
HEAVY = ("pyarrow", "pandas", "duckdb", "sqlglot", "moto")

PROBE = f"""
import json, sys, time
import boto3, ariadne
start = time.perf_counter()
import app
elapsed = time.perf_counter() - start
print(json.dumps({{"ms": elapsed * 1000, "heavy": [m for m in {HEAVY!r} if m in sys.modules]}}))
"""

AWS_ENV = {
    "OCG_MODE": "aws",
    "OCG_ACCOUNT_ID": "123456789012",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_LAMBDA_FUNCTION_NAME": "ocg-dev-api_handler",  # as Lambda sets it
}


def measure_once(bytecode_dir: str) -> dict[str, object]:
    env = {**os.environ, **AWS_ENV, "PYTHONPYCACHEPREFIX": bytecode_dir}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, check=True, capture_output=True
    ).stdout
    result: dict[str, object] = json.loads(out)
    return result


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="ocg-bench-bytecode-") as bytecode_dir:
        measure_once(bytecode_dir)
        runs = [measure_once(bytecode_dir) for _ in range(RUNS)]
    times = sorted(float(str(run["ms"])) for run in runs)
    heavy = sorted({module for run in runs for module in run["heavy"]})  # type: ignore[attr-defined]
    print(
        f"import app (aws mode) over boto3+ariadne: median {statistics.median(times):.1f} ms, "
        f"min {times[0]:.1f} ms, max {times[-1]:.1f} ms over {RUNS} runs (target < 60 ms)"
    )
    print(f"heavy modules loaded: {', '.join(heavy) if heavy else 'none'}")


if __name__ == "__main__":
    main()
