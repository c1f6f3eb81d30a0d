"""The GraphQL-over-HTTP audit of the community's reference (``graphql-http``'s
``auditServer``, pinned in ``tests/http_audit/package.json``, run by Node) against the
real ``chalice local`` that ``make run`` starts: every MUST, SHOULD and MAY passes.

In protected mode introspection is off, as on a deployed stage. Four audits send
``query Type($name: String!) { __type(name: $name) { name } }`` (the audit's only
query with variables), so they get a GraphQL error there, as they should; they are the
only ones allowed not to pass, and only in protected mode.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.local.chalice_local import ChaliceLocal, serving

AUDIT = ROOT / "tests" / "http_audit"
# The audits whose query reads __type: refused where introspection is off.
INTROSPECTING = (
    "SHOULD allow map {variables} parameter when accepting application/graphql-response+json",
    "MUST allow map {variables} parameter when accepting application/json",
    "MAY allow URL-encoded JSON string {variables} parameter in GETs when accepting "
    "application/graphql-response+json",
    "MAY allow URL-encoded JSON string {variables} parameter in GETs when accepting "
    "application/json",
)


@pytest.fixture(params=["local", "protected"])
def server(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, ChaliceLocal]]:
    if request.param == "protected":
        monkeypatch.setenv("OCG_GRAPHQL_PROTECTED", "true")
    with serving(tmp_path) as local:
        yield request.param, local


def audit(url: str) -> list[dict[str, Any]]:
    node = shutil.which("node")
    assert node, "Node.js is needed for the audit (it is on this project's machines and CI)"
    assert (AUDIT / "node_modules" / "graphql-http").is_dir(), "run make install"
    ran = subprocess.run(
        [node, "audit.mjs", url], cwd=AUDIT, capture_output=True, text=True, timeout=120
    )
    assert ran.returncode == 0, ran.stderr
    return [json.loads(line) for line in ran.stdout.splitlines()]


def test_the_server_passes_the_graphql_over_http_audit(server: tuple[str, ChaliceLocal]) -> None:
    mode, local = server
    results = audit(local.url)

    assert len(results) > 50
    failed = {r["name"]: r["reason"] for r in results if r["status"] != "ok"}
    allowed = set(INTROSPECTING) if mode == "protected" else set()
    assert set(failed) <= allowed, failed
    if mode == "protected":
        assert set(failed) == allowed, "introspection must be off in protected mode"
