"""The GraphQL playground in a real browser, with no network but loopback.

``make run``'s real ``chalice local`` process serves ``GET /graphql`` (and ``GET
/playground``, a deployed stage's keyless page); headless Chromium
(Debian's, driven by ``tests/browser/playground.mjs`` with playwright-core) opens it with
every host but 127.0.0.1 sent to a proxy that is not there, types a header and a query
into GraphiQL, runs it and reads the result pane. The screenshots are kept as the run's
artefacts in ``out/browser/`` (their paths are printed).

Chromium missing: CI (``CI`` set) fails, since ``.ci/run`` installs it; elsewhere the test
is skipped (``apt-get install -y --no-install-recommends chromium`` to run it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.local.chalice_local import ChaliceLocal, serving

CHROMIUM = Path("/usr/bin/chromium")
DRIVER = ROOT / "tests" / "browser" / "playground.mjs"
DRIVER_TIMEOUT = 180
ARTEFACTS = ROOT / "out" / "browser"


@pytest.fixture
def node() -> str:
    """The ``node`` to run the driver with; skips or fails, before any server starts,
    when the browser is missing."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install -y --no-install-recommends chromium"
        if os.environ.get("CI"):
            pytest.fail(f"{message} (.ci/run installs it)")
        pytest.skip(message)
    node = shutil.which("node")
    assert node is not None, "node is missing (Node.js 20 builds and drives the playground)"
    assert (ROOT / "tests" / "browser" / "node_modules" / "playwright-core").is_dir(), (
        "tests/browser/node_modules is missing: make install (or npm ci --prefix tests/browser)"
    )
    return node


@pytest.fixture
def make_run(tmp_path: Path) -> Iterator[ChaliceLocal]:
    with serving(tmp_path) as local:
        yield local


def _drive(node: str, url: str, tmp_path: Path) -> tuple[dict[str, Any], Path]:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTEFACTS / f"{url.rsplit('/', 1)[-1]}.png"
    profile = tmp_path / "chromium-profile"  # a fresh --user-data-dir
    command = [node, str(DRIVER), url, str(screenshot), str(profile), str(CHROMIUM)]
    done = subprocess.run(
        command,
        cwd=DRIVER.parent,
        capture_output=True,
        text=True,
        timeout=DRIVER_TIMEOUT,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    assert lines, f"the driver printed nothing (exit {done.returncode}):\n{done.stderr}"
    report: dict[str, Any] = json.loads(lines[-1])
    assert done.returncode == 0 and "error" not in report, (
        f"the driver failed (screenshot: {screenshot}):\n{report.get('error')}\n{done.stderr}"
    )
    return report, screenshot


@pytest.mark.parametrize("path", ["/graphql", "/playground"])
def test_the_playground_runs_a_query_typed_in_graphiql_with_no_network(
    path: str,
    node: str,
    make_run: ChaliceLocal,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    origin = make_run.url.removesuffix("/graphql")
    report, screenshot = _drive(node, origin + path, tmp_path)
    with capsys.disabled():
        print(f"\nplayground screenshot: {screenshot}")

    # The network really is closed: off-loopback traffic dies at the dead proxy.
    assert "ERR_PROXY_CONNECTION_FAILED" in report["blockCheck"], report["blockCheck"]
    # The page asked nothing of any other host: one GET of itself, then its operations.
    assert report["offMachine"] == []
    assert all(request["url"].startswith(origin) for request in report["requests"]), report
    assert report["requests"][0] == {"method": "GET", "url": origin + path}
    assert report["pageErrors"] == [] and report["consoleErrors"] == [], report
    assert report["title"].endswith(" GraphQL")

    # What a person typed went out, header and all, and the answer is in the result pane.
    assert report["typedQuery"] == "{ __typename }"
    assert json.loads(report["typedHeaders"]) == {"x-playground-check": "offline"}
    assert report["sentHeader"] == "offline"
    assert report["operationUrl"] == make_run.url
    assert report["result"] == {"data": {"__typename": "Query"}}
    assert '"__typename": "Query"' in report["resultText"].replace("\xa0", " ")
    assert screenshot.stat().st_size > 10_000
