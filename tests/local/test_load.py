"""``python -m chalicelib.local.load``: JSON Lines into the running ``make run``, through
its API; bad lines reported by number, nothing of them written."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chalicelib.keys import LAKE_PREFIX
from chalicelib.local.load import Loader, batches, parse_lines
from chalicelib.schema import load_schema
from chalicelib.schema.model import SchemaModel
from tests.conftest import EXAMPLE_SCHEMA, ROOT
from tests.local.chalice_local import ChaliceLocal


@pytest.fixture(scope="module")
def model() -> SchemaModel:
    return load_schema(EXAMPLE_SCHEMA, check_sql=False)


def jsonl(*records: object) -> list[str]:
    return [record if isinstance(record, str) else json.dumps(record) for record in records]


def test_lines_the_schema_cannot_take_are_refused_with_their_number(model: SchemaModel) -> None:
    lines, bad = parse_lines(
        jsonl(
            {"createUser": {"name": "Ada", "email": "a@x"}, "ref": "ada"},
            "not json",
            {"createNothing": {}},
            {"addFavorite": {"userId": "@bob", "productId": "p"}},
            {"addFavorite": {"userId": "@ada", "productId": "p", "extra": 1}},
            {"createUser": {"name": "Bob", "email": "b@x"}, "ref": "ada"},
            {"addFavorite": {"userId": "@ada", "productId": "@@literal"}},
        ),
        model,
    )

    assert [line.number for line in lines] == [1, 7]
    assert [number for number, _ in bad] == [2, 3, 4, 5, 6]
    assert "'createNothing' is not a create or INSERT mutation" in bad[1][1]
    assert bad[2][1] == "no earlier line has the ref bob"
    assert bad[3][1] == "addFavorite has no argument extra"
    assert lines[1].needs == {"ada"}


def test_a_batch_ends_before_a_line_needing_an_id_it_creates(model: SchemaModel) -> None:
    lines, _ = parse_lines(
        jsonl(
            {"createUser": {"name": "Ada", "email": "a@x"}, "ref": "ada"},
            {"createBrand": {"name": "Acme"}, "ref": "acme"},
            {"addFavorite": {"userId": "@ada", "productId": "p"}},
            {"createUser": {"name": "Bob", "email": "b@x"}},
        ),
        model,
    )

    assert [[line.number for line in batch] for batch in batches(lines)] == [[1, 2], [3, 4]]
    assert [[line.number for line in batch] for batch in batches(lines, size=1)] == [
        [1],
        [2],
        [3],
        [4],
    ]


def test_every_value_is_a_variable_of_its_line(model: SchemaModel) -> None:
    lines, _ = parse_lines(
        jsonl(
            {"createUser": {"name": "Ada", "email": "a@x"}, "ref": "ada"},
            {"addFavorite": {"userId": "@ada", "productId": "@@p"}},
        ),
        model,
    )
    loader = Loader("http://127.0.0.1:1/graphql", model)
    loader.ids["ada"] = "u-1"

    query, variables = loader.document(lines)

    assert query == (
        "mutation($l1: CreateUserInput!, $l2_userId: ID!, $l2_productId: ID!) { "
        "l1: createUser(input: $l1) { id } l2: addFavorite(userId: $l2_userId, "
        "productId: $l2_productId) }"
    )
    assert variables == {
        "l1": {"name": "Ada", "email": "a@x"},
        "l2_userId": "u-1",
        "l2_productId": "@p",
    }


def test_a_file_loads_through_the_api_and_the_lake_follows(
    make_run: ChaliceLocal, tmp_path: Path
) -> None:
    data = tmp_path / "data.jsonl"
    users = [
        {"createUser": {"name": f"u{n}", "email": f"u{n}@x"}, "ref": f"u{n}"} for n in range(250)
    ]
    data.write_text(
        "\n".join(
            jsonl(
                {"createBrand": {"name": "Acme"}, "ref": "acme"},
                {"createProduct": {"name": "Anvil", "price": 9.5, "brandId": "@acme"}, "ref": "a"},
                *users,
                {"createUser": {"name": None, "email": "bad@x"}},  # line 253: null name
                {"addFavorite": {"userId": "@u1", "productId": "@a"}},
                {"addFavorite": {"userId": "@u2", "productId": "no-such-product"}},  # 255
                {"createUser": {"name": "late", "email": "late@x", "age": "old"}},  # 256
                {"addFavorite": {"userId": None, "productId": "@a"}},  # 257
            )
        )
        + "\n"
    )

    result = subprocess.run(
        [sys.executable, "-m", "chalicelib.local.load", str(data), "--url", make_run.url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 1, result.stderr
    refused = [line.split(":")[1] for line in result.stderr.splitlines()]
    assert refused == ["253", "255", "256", "257"]
    messages = result.stderr.replace(f"{data}:", "").splitlines()
    assert messages[0].startswith("253: input has invalid value at .name")
    assert messages[1] == "255: addFavorite: Product 'no-such-product' does not exist"
    assert messages[3].startswith("257: userId has invalid value: Expected value of non-null")
    assert "253 line(s) loaded, 4 refused" in result.stdout
    listed = make_run.graphql("{ listUser(limit: 100) { items { name } nextToken } }")
    assert "bad@x" not in json.dumps(listed) and "late" not in json.dumps(listed)
    favorites = make_run.local_dir / "lake" / LAKE_PREFIX / "user_favorite_products"
    deadline = time.monotonic() + 60
    users_dir = make_run.local_dir / "lake" / LAKE_PREFIX / "user"
    while time.monotonic() < deadline and len(list(users_dir.rglob("*.parquet"))) < 250:
        time.sleep(0.2)
    assert len(list(users_dir.rglob("*.parquet"))) == 250
    assert len(list(favorites.rglob("*.parquet"))) == 1
