"""Run every benchmark in turn, each in its own interpreter so none warms another."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


def main() -> int:
    modules = sorted(path.stem for path in BENCH_DIR.glob("*.py") if not path.stem.startswith("_"))
    failed = 0
    for module in modules:
        print(f"== bench.{module}", flush=True)
        run = subprocess.run([sys.executable, "-m", f"bench.{module}"], cwd=BENCH_DIR.parent)
        failed += run.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
