"""The lake as a user of the local default sees it: GraphQL writes in, typed Parquet out."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from chalicelib import keys
from tests.conftest import LoadedApp

CATALOGUE = '''
enum Genre { NOVEL POETRY ESSAY }

type Book {
  id: ID!
  title: String!
  pages: Int
  price: Float
  inPrint: Boolean
  genre: Genre
  tags: [String!]
  ratings: [Int]
  publishedAt: AWSDateTime
  createdAt: AWSDateTime!
  updatedAt: AWSDateTime!
}

type Reader {
  id: ID!
  name: String!
  createdAt: AWSDateTime!
  updatedAt: AWSDateTime!
}

type Mutation {
  borrow(readerId: ID!, bookId: ID!)
    @sql_query(query: """
      INSERT INTO $join_table(loans) (readerId:Reader, bookId:Book)
      VALUES ($args.readerId, $args.bookId)
    """)
}
'''
BOOK_FIELDS = "id title pages price inPrint genre tags ratings publishedAt createdAt updatedAt"


@pytest.fixture
def library(load_app: Callable[..., LoadedApp]) -> LoadedApp:
    return load_app(CATALOGUE)


def lake_file(app: LoadedApp, table: str, created_at: str, object_id: str) -> Path:
    key = keys.lake_object_key(table, created_at, object_id)
    path: Path = app.services.settings.local_lake_dir / key
    return path


def read_back(path: Path) -> pa.Table:
    return pq.read_table(path, use_threads=False, partitioning=None)


def create_book(app: LoadedApp, **values: Any) -> dict[str, Any]:
    mutation = f"mutation ($i: CreateBookInput!) {{ createBook(input: $i) {{ {BOOK_FIELDS} }} }}"
    book: dict[str, Any] = app.data(mutation, {"i": {"title": "Dune", **values}})["createBook"]
    return book


def test_a_created_entity_lands_as_typed_parquet(library: LoadedApp) -> None:
    book = create_book(
        library,
        pages=412,
        price=9.99,
        inPrint=True,
        genre="NOVEL",
        tags=["sf", "désert ☀"],
        ratings=[5, None, 4],
        publishedAt="1965-08-01T00:00:00Z",
    )
    library.settle()

    path = lake_file(library, "book", book["createdAt"], book["id"])
    table = read_back(path)
    assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "SNAPPY"
    assert table.schema.names == [
        "id", "title", "pages", "price", "inPrint", "genre", "tags", "ratings",
        "publishedAt", "createdAt", "updatedAt",
    ]  # fmt: skip
    types = {field.name: field.type for field in table.schema}
    assert types["pages"] == pa.int64()
    assert types["price"] == pa.float64()
    assert types["inPrint"] == pa.bool_()
    assert types["genre"] == pa.string()
    assert types["tags"] == pa.list_(pa.string())
    assert types["ratings"] == pa.list_(pa.int64())
    assert types["createdAt"] == pa.timestamp("ms", tz="UTC")
    (row,) = table.to_pylist()
    assert row["tags"] == ["sf", "désert ☀"]
    assert row["ratings"] == [5, None, 4]
    assert row["price"] == 9.99
    assert row["publishedAt"] == datetime(1965, 8, 1, tzinfo=UTC)
    assert (
        row["createdAt"].isoformat(timespec="milliseconds").replace("+00:00", "Z")
        == (book["createdAt"])
    )


def test_updates_rewrite_the_same_file_and_deletes_remove_it(library: LoadedApp) -> None:
    book = create_book(library, pages=100)
    library.settle()
    path = lake_file(library, "book", book["createdAt"], book["id"])

    library.data(
        "mutation ($id: ID!) { updateBook(id: $id, input: {pages: 101, price: null}) { id } }",
        {"id": book["id"]},
    )
    library.settle()
    (row,) = read_back(path).to_pylist()
    assert row["pages"] == 101
    assert row["price"] is None
    assert len(list(path.parent.iterdir())) == 1

    library.data("mutation ($id: ID!) { deleteBook(id: $id) { deleted } }", {"id": book["id"]})
    library.settle()
    assert not path.exists()


def test_deleting_an_entity_cascades_to_its_join_rows(library: LoadedApp) -> None:
    reader = library.data('mutation { createReader(input: {name: "Ann"}) { id } }')["createReader"]
    book = create_book(library)
    relation_id = keys.relation_id("loans", [("reader", reader["id"]), ("book", book["id"])])
    dynamodb = library.services.client("dynamodb")
    table_name = library.services.settings.table_name
    borrowed = library.data(
        "mutation ($r: ID!, $b: ID!) { borrow(readerId: $r, bookId: $b) }",
        {"r": reader["id"], "b": book["id"]},
    )
    assert borrowed == {"borrow": True}
    row_key = {k: {"S": v} for k, v in keys.join_row_item_keys(relation_id).items()}
    created_at = dynamodb.get_item(TableName=table_name, Key=row_key)["Item"]["createdAt"]["S"]
    library.settle()
    row_file = lake_file(library, "loans", created_at, relation_id)
    (lake_row,) = read_back(row_file).to_pylist()
    assert lake_row["s3Key"] == keys.lake_object_key("loans", created_at, relation_id)

    library.data("mutation ($id: ID!) { deleteReader(id: $id) { deleted } }", {"id": reader["id"]})
    library.settle()

    remaining = dynamodb.scan(TableName=table_name)["Items"]
    assert [item["PK"]["S"] for item in remaining] == [f"book#{book['id']}"]
    assert not row_file.exists()


def test_the_glue_catalogue_describes_the_lake_and_duckdb_reads_it(library: LoadedApp) -> None:
    for n in range(3):
        create_book(library, title=f"volume {n}", pages=n)
    library.settle()
    settings = library.services.settings

    glue = library.services.client("glue")
    table = glue.get_table(DatabaseName=settings.glue_database, Name="book__live")["Table"]
    columns = [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]]
    assert columns[:4] == [("id", "string"), ("title", "string"), ("pages", "bigint"),
                           ("price", "double")]  # fmt: skip
    assert ("ratings", "array<bigint>") in columns
    assert ("createdat", "timestamp") in columns
    assert [p["Name"] for p in table["PartitionKeys"]] == ["year", "month", "day"]
    assert table["Parameters"]["projection.enabled"] == "true"

    lake = settings.local_lake_dir / "tables" / "book"
    connection = duckdb.connect(
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False}
    )
    pages = connection.execute(
        f"SELECT sum(pages), count(*) FROM read_parquet('{lake}/*/*/*/*.parquet')"
    ).fetchall()
    assert pages == [(3, 3)]
