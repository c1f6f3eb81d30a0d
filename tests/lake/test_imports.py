"""What the lake modules import: the GraphQL function has neither pyarrow nor pandas."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(code: str) -> None:
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)


def test_importing_the_lake_does_not_import_pyarrow() -> None:
    run(
        "import sys\n"
        "import chalicelib.lake, chalicelib.lake.stream, chalicelib.lake.catalog\n"
        "import chalicelib.lake.objects, chalicelib.lake.columns\n"
        "assert 'pyarrow' not in sys.modules, 'pyarrow imported'\n"
    )


def test_processing_a_batch_never_imports_pandas(tmp_path: Path) -> None:
    run(
        "import sys\n"
        "from pathlib import Path\n"
        "from chalicelib.lake.objects import DirectoryObjectStore\n"
        "from chalicelib.lake.stream import process_stream_event\n"
        "from tests.lake.support import batch, captured, make_model\n"
        "event = batch(captured('stream_insert_user'), captured('stream_insert_join_row'))\n"
        f"store = DirectoryObjectStore(Path({str(tmp_path)!r}))\n"
        "response = process_stream_event(event, model=make_model(), object_store=store,\n"
        "    sqs_client=None, cascade_queue_url='')\n"
        "assert response == {'batchItemFailures': []}, response\n"
        "assert 'pyarrow' in sys.modules\n"
        "assert 'pandas' not in sys.modules, 'pandas imported'\n"
    )
