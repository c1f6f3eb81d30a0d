"""``python -m chalicelib.schema``, and what importing the compiler costs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib.schema import load_schema, public_sdl
from chalicelib.schema.__main__ import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "schema.graphql"


def test_prints_the_public_sdl(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(EXAMPLE)]) == 0
    assert capsys.readouterr().out == public_sdl(load_schema(EXAMPLE))


def test_defaults_to_the_apps_schema_file(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCG_SCHEMA_FILE", str(EXAMPLE))
    assert main([]) == 0
    assert capsys.readouterr().out.startswith("scalar AWSDateTime\n")


def test_prints_problems_and_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "schema.graphql"
    path.write_text("type User {\n  name: String\n}\n")
    assert main([str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert (
        captured.err
        == f"{path}:1:6: User: [entity-id] entity User needs a field id: ID! (its key)\n"
    )


def test_missing_file_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "nope.graphql")]) == 1
    assert "nope.graphql" in capsys.readouterr().err


def test_runs_as_a_module() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "chalicelib.schema", str(EXAMPLE)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert "type Mutation {" in result.stdout


def test_sqlglot_is_imported_only_to_check_sql() -> None:
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from chalicelib.schema import load_schema, public_sdl\n"
        f"public_sdl(load_schema(Path({str(EXAMPLE)!r}), check_sql=False))\n"
        "assert 'sqlglot' not in sys.modules, 'imported without check_sql'\n"
        f"load_schema(Path({str(EXAMPLE)!r}))\n"
        "assert 'sqlglot' in sys.modules\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
