"""The README as a user meets it: its walkthrough runs top to bottom, as pasted into a
shell, against a real ``chalice local`` (``make run``'s server) on a free port with a
local directory of its own; its example schema loads; and every relative link of the
README and of docs/ leads to a file (and heading) that exists."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from chalicelib.schema import load_schema
from tests.conftest import ROOT
from tests.local.chalice_local import ChaliceLocal

README = ROOT / "README.md"
DOCS = ROOT / "docs"
MAX_README_LINES = 200
WALKTHROUGH_TIMEOUT = 120.0

# What differs from run to run, in the answers the README shows.
VARYING = (
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"), "<time>"),
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<id>"),
)


def section(heading: str) -> str:
    """The README's text under ``## heading``, up to the next ``## `` heading."""
    text = README.read_text()
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"README.md has no '## {heading}' section"
    return match.group(1)


def code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", text, re.M | re.S)


def answers(output: str) -> list[dict[str, Any]]:
    """The GraphQL answers the walkthrough printed, one JSON object a line."""
    return [json.loads(line) for line in output.splitlines() if line.startswith('{"')]


def only(found: list[dict[str, Any]], field: str) -> list[Any]:
    return [answer["data"][field] for answer in found if field in (answer.get("data") or {})]


def masked(answer: dict[str, Any]) -> str:
    text = json.dumps(answer)
    for pattern, placeholder in VARYING:
        text = pattern.sub(placeholder, text)
    return text


def test_readme_starts_with_the_two_commands_and_stays_short() -> None:
    text = README.read_text()
    first = code_blocks(text, "sh")[0]
    assert [line.split()[:2] for line in first.splitlines()] == [
        ["make", "run"],
        ["make", "test"],
    ]
    assert text.index("```sh") < text.index("\n## ")
    lines = len(text.splitlines())
    assert lines <= MAX_README_LINES, (
        f"README.md has {lines} lines: reference belongs in docs/ (docs/README.md)"
    )


@pytest.mark.skipif(shutil.which("curl") is None, reason="the walkthrough uses curl")
def test_walkthrough_runs_as_pasted(tmp_path: Path) -> None:
    script = "\n".join(code_blocks(section("Walkthrough"), "sh"))
    local = ChaliceLocal(tmp_path / "local", tmp_path / "chalice-local.log")
    env = {**os.environ, "OCG_LOCAL_DIR": str(local.local_dir)}
    # A user's shell: the stage's own settings, and not inside a make of ours.
    for name in ("OCG_MODE", "OCG_SCHEMA_FILE", "OCG_PROJECT", "MAKEFLAGS", "MFLAGS", "MAKELEVEL"):
        env.pop(name, None)
    try:
        local.start()
        env["PORT"] = str(local.port)
        run = subprocess.run(
            ["bash", "-c", "set -eu\n" + script],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=WALKTHROUGH_TIMEOUT,
        )
    finally:
        local.stop(signal.SIGKILL)
    out = run.stdout
    assert run.returncode == 0, f"stdout:\n{out}\nstderr:\n{run.stderr}"

    found = answers(out)
    assert found, out
    assert [answer for answer in found if "errors" in answer] == []

    # Every answer the README shows in full is one the walkthrough printed (ids and
    # times aside).
    printed = {masked(answer) for answer in found}
    for line in script.splitlines():
        shown = line.removeprefix("# ")
        if shown.startswith('{"') and "…" not in shown:
            assert masked(json.loads(shown)) in printed, f"README shows {shown}; printed:\n{out}"

    # The lake, as `make sql` reads it.
    assert "\nAda\tada@example.com\t37\ttrue\t" in out
    assert "\nBob\tbob@example.com\tNULL\tNULL\t" in out
    assert "user\tproduct\nAda\tAnvil\nAda\tLamp\nAda\tRocket\nBob\tLamp\n" in out
    assert "user\tproduct\nAda\tLamp\nBob\tLamp\n" in out
    assert "favorites_of_ada\n0\n" in out

    # The tasks: usersByCity before and after Ada's deletion, her favorites, the DELETE.
    by_city = only(found, "taskResultUsersByCity")
    assert [task["taskStatus"] for task in by_city] == ["SUCCEEDED", "SUCCEEDED"]
    assert [(row["name"], row["email"], row["total"]) for row in by_city[0]["result"]] == [
        ("Ada", "ada@example.com", 2),
        ("Bob", "bob@example.com", 2),
    ]
    assert by_city[1]["result"] == [{"name": "Bob", "total": 1}]
    (favorites,) = only(found, "taskResultFavoriteProducts")
    assert favorites["taskStatus"] == "SUCCEEDED"
    assert sorted((row["name"], row["price"]) for row in favorites["result"]) == [
        ("Anvil", 9.5),
        ("Lamp", 25.0),
        ("Rocket", 120.0),
    ]
    (removal,) = only(found, "taskResultRemoveFavoritesOfBrand")
    assert removal == {"taskStatus": "SUCCEEDED", "deletedCount": 2}
    assert only(found, "deleteUser") == [{"deleted": True}]


def test_the_example_schema_loads(tmp_path: Path) -> None:
    (schema,) = code_blocks(section("Your own schema"), "graphql")
    path = tmp_path / "library.graphql"
    path.write_text(schema)
    load_schema(path)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"^```.*?^```$", "", path.read_text(), flags=re.M | re.S)
    return {slug(heading) for heading in re.findall(r"^#+ (.+)$", text, re.M)}


@pytest.mark.parametrize(
    "page", [README, *sorted(DOCS.glob("*.md"))], ids=lambda page: page.relative_to(ROOT).as_posix()
)
def test_relative_links_resolve(page: Path) -> None:
    text = re.sub(r"^```.*?^```$", "", page.read_text(), flags=re.M | re.S)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        linked = (page.parent / file).resolve() if file else page
        missing_anchor = anchor and linked.suffix == ".md" and anchor not in anchors(linked)
        if not linked.exists() or missing_anchor:
            broken.append(target)
    assert broken == [], f"{page.name}: links that lead nowhere: {broken}"
