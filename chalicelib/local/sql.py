"""``python -m chalicelib.local.sql "SELECT …"``: ask the local lake a question directly.

The lake's folders hold layers, not tables (docs/lake.md): live files of recent changes,
compacted files, tombstones. This reads each lake table as a task does, through the
three, with the same engine, and prints the rows as Athena's text, tab-separated under
a header. It reads ``.local/lake`` (``OCG_LOCAL_DIR``), beside ``make run`` or not.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from chalicelib.lake.layers import lake_layers, merged_tables
from chalicelib.local.athena import LocalAthena
from chalicelib.schema import load_schema
from chalicelib.settings import load_settings
from chalicelib.tasks.engine import QueryState


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chalicelib.local.sql", description=__doc__)
    parser.add_argument(
        "sql", help='Trino SQL over the lake tables, e.g. SELECT count(*) FROM "user"'
    )
    arguments = parser.parse_args(argv)
    from chalicelib.sql.analysis import SqlSyntaxError, read_through

    settings = load_settings()
    model = load_schema(settings.schema_file, check_sql=False)
    try:
        sql = read_through(arguments.sql, merged_tables(model))
    except SqlSyntaxError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 2
    engine = LocalAthena(
        settings.local_lake_dir,
        lake_layers(model),
        workgroup=settings.athena_workgroup,
        region=settings.region,
        account_id=settings.account_id,
        publish=lambda event: None,
        run=lambda job: job(),
    )
    try:
        execution_id = engine.start(sql, "sql")
        execution = engine.execution(execution_id)
        if execution.state is not QueryState.SUCCEEDED:
            print(f"error: {execution.reason}", file=sys.stderr)
            return 1
        page = engine.results(execution_id)
        print("\t".join(page.columns))
        while True:
            for row in page.rows:
                print("\t".join("NULL" if value is None else value for value in row))
            if page.next_token is None:
                return 0
            page = engine.results(execution_id, next_token=page.next_token)
    finally:
        engine.close()


if __name__ == "__main__":
    sys.exit(main())
