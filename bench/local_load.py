"""`make load` into a real `make run`: lines a second, and when the lake has caught up.

A JSON Lines file of the example schema is written (a brand, 100 products, N users, and
N/2 favorites naming them by ``"@ref"``), a ``chalice local`` is started on a local
directory of its own (as ``make run`` starts it), and ``python -m chalicelib.local.load``
loads the file through the API, as ``make load`` does. Printed: the loader's rate (lines
acknowledged a second), and the seconds until the lake holds a file for every line (the
stream and the lake follow the load in the background).

    python -m bench.local_load [--users 10000]

The issue's target is 2,000 lines a second; what bounds the rate is in docs/local.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._local import ROOT, chalice_local, free_port

PRODUCTS = 100
TARGET_LINES_PER_S = 2000


def _write_lines(path: Path, users: int) -> int:
    with path.open("w", encoding="utf-8") as file:
        lines = [{"createBrand": {"name": "Acme"}, "ref": "acme"}]
        lines += [
            {"createProduct": {"name": f"P{n}", "price": n, "brandId": "@acme"}, "ref": f"p{n}"}
            for n in range(PRODUCTS)
        ]
        lines += [
            {"createUser": {"name": f"U{n}", "email": f"u{n}@example.com"}, "ref": f"u{n}"}
            for n in range(users)
        ]
        lines += [
            {"addFavorite": {"userId": f"@u{n}", "productId": f"@p{n % PRODUCTS}"}}
            for n in range(0, users, 2)
        ]
        file.writelines(json.dumps(line) + "\n" for line in lines)
    return len(lines)


def _lake_files(local_dir: Path) -> int:
    return sum(1 for _ in (local_dir / "lake" / "tables").rglob("*.parquet"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ocg-bench-load-") as scratch:
        local_dir = Path(scratch) / "local"
        data = Path(scratch) / "data.jsonl"
        lines = _write_lines(data, arguments.users)
        port = free_port()
        with chalice_local(str(local_dir), port):
            started = time.perf_counter()
            command = [sys.executable, "-m", "chalicelib.local.load", str(data)]
            command += ["--url", f"http://127.0.0.1:{port}/graphql"]
            loaded = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
            load_s = time.perf_counter() - started
            if loaded.returncode != 0:
                print(loaded.stdout, loaded.stderr)
                return 1
            while _lake_files(local_dir) < lines and time.perf_counter() - started < 3600:
                time.sleep(0.1)
            lake_s = time.perf_counter() - started
    print(f"\nmake load of {lines:,} lines ({arguments.users:,} users) into make run")
    print(f"{'loaded (lines/s)':32}{lines / load_s:>12,.0f}   target >= {TARGET_LINES_PER_S:,}")
    print(f"{'loaded (s)':32}{load_s:>12.1f}")
    print(f"{'lake caught up (s from start)':32}{lake_s:>12.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
