"""The GraphQL playground in a real browser, with no network but loopback.

``make run``'s real ``chalice local`` process serves ``GET /graphql`` (and ``GET
/playground``, a deployed stage's keyless page); headless Chromium
(Debian's, driven by ``tests/browser/playground.mjs`` with playwright-core) opens it with
every host but 127.0.0.1 sent to a proxy that is not there, types a header and a query
into GraphiQL, runs it and reads the result pane; ``tests/browser/subscription.mjs`` runs
a subscription there, over the server's WebSocket port, and reads the event a mutation
sends it. The screenshots are kept as the run's
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
SUBSCRIPTION_DRIVER = ROOT / "tests" / "browser" / "subscription.mjs"
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


def _drive(
    node: str,
    url: str,
    tmp_path: Path,
    *,
    driver: Path = DRIVER,
    arguments: tuple[str, ...] = (),
    prefix: str = "",
    environment: dict[str, str] | None = None,
) -> tuple[dict[str, Any], Path]:
    """Runs ``driver`` on the page at ``url`` (``arguments`` after it) and returns its
    report and the screenshot (``out/browser/<prefix><last path segment>.png``)."""
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTEFACTS / f"{prefix}{url.rsplit('/', 1)[-1]}.png"
    profile = tmp_path / "chromium-profile"  # a fresh --user-data-dir
    command = [node, str(driver), url, *arguments, str(screenshot), str(profile), str(CHROMIUM)]
    done = subprocess.run(
        command,
        cwd=driver.parent,
        capture_output=True,
        text=True,
        timeout=DRIVER_TIMEOUT,
        check=False,
        env={**os.environ, **(environment or {})},
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


@pytest.mark.parametrize(("path", "signed_in"), [("/graphql", True), ("/playground", False)])
def test_the_playground_runs_a_subscription_over_the_local_websocket_with_no_network(
    path: str,
    signed_in: bool,
    node: str,
    make_run: ChaliceLocal,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    origin = make_run.url.removesuffix("/graphql")
    # A signed-in user's header, as the README says to make one for make run.
    authorization = f"Bearer {make_run.token('alice')}" if signed_in else None
    report, screenshot = _drive(
        node,
        origin + path,
        tmp_path,
        driver=SUBSCRIPTION_DRIVER,
        arguments=(make_run.url,),
        prefix="subscription-",
        environment={"PLAYGROUND_AUTHORIZATION": authorization} if authorization else {},
    )
    with capsys.disabled():
        print(f"\nplayground subscription screenshot: {screenshot}")

    # The page was told where subscriptions go, and opened a WebSocket there, and only there.
    assert report["settings"]["subscriptionUrl"] == make_run.ws_url
    assert report["websockets"] == [make_run.ws_url], report["websockets"]
    assert make_run.ws_url.startswith("ws://127.0.0.1:")
    assert any('"subscribe"' in frame for frame in report["websocketFrames"]["sent"]), report
    # The header editor's Authorization signs the socket in (connection_init's payload).
    init = json.loads(report["websocketFrames"]["sent"][0])
    assert init == {
        "type": "connection_init",
        "payload": {"Authorization": authorization} if signed_in else {},
    }

    # Nothing left the machine: the page, its operations and the mutation, all loopback.
    assert report["offMachine"] == []
    assert all(request["url"].startswith(origin) for request in report["requests"]), report
    assert report["requests"][0] == {"method": "GET", "url": origin + path}
    assert report["pageErrors"] == [] and report["consoleErrors"] == [], report

    # The brand the page created reached the subscription, and its event the result pane.
    assert report["typedQuery"] == "subscription { onCreateBrand { name } }"
    assert report["mutation"]["status"] == 200, report["mutation"]
    assert "errors" not in report["mutation"]["body"], report["mutation"]
    assert report["result"] == {"data": {"onCreateBrand": {"name": "Acme"}}}
    shown = json.dumps(report["result"])
    assert shown == '{"data": {"onCreateBrand": {"name": "Acme"}}}'
    assert '"name": "Acme"' in report["resultText"].replace("\xa0", " ")
    assert screenshot.stat().st_size > 10_000
