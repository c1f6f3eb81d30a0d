"""``python -m chalicelib.local.sql``: the local lake's tables as a task reads them,
compacted or not."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from chalicelib.local.sql import main
from tests.conftest import LoadedApp, create


def test_a_question_reads_live_and_compacted_rows_as_one_table(
    load_app: Callable[..., LoadedApp], capsys: pytest.CaptureFixture[str]
) -> None:
    app = load_app()
    for name in ("Ann", "Bob"):
        create(app, "User", name=name, email=f"{name.lower()}@example.com")
    app.settle()
    app.services.local_runtime.schedules.fire("compact_lake")
    create(app, "User", name="Cy", email="cy@example.com")
    app.settle()

    assert main(['SELECT name FROM "user" ORDER BY name']) == 0
    assert capsys.readouterr().out == "name\nAnn\nBob\nCy\n"


def test_a_bad_question_says_why(
    load_app: Callable[..., LoadedApp], capsys: pytest.CaptureFixture[str]
) -> None:
    load_app()
    assert main(['SELECT nope FROM "user"']) == 1
    assert "nope" in capsys.readouterr().err
    assert main(["SELECT (1"]) == 2
    assert "cannot parse" in capsys.readouterr().err
