"""Peak memory of the test suite: ``pytest -q`` in a child process, its maximum resident
set size as the kernel counts it (what ``/usr/bin/time -v`` reports).

Every app-level test boots the app (a Chalice app, the emulated AWS, an event thread, a
DuckDB database); if a fixture does not stop what it started, the suite's memory grows
test after test. Target: under 800 MB. Arguments are passed to pytest
(``python -m bench.suite_memory tests/local``); the full suite takes about 3 minutes.
"""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_MB = 800


def main(arguments: list[str]) -> int:
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", *arguments], cwd=ROOT)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # Linux counts in kB, macOS in bytes.
    peak_mb = peak / 1024 / (1024 if sys.platform == "darwin" else 1)
    print(f"test suite peak resident memory: {peak_mb:.0f} MB (pytest exit {run.returncode})")
    print(f"target: under {TARGET_MB} MB")
    return run.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
