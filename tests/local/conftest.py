"""One embedded AWS for this package's tests, reset before each and stopped at the end.

Stopping matters: while it runs, every ``mock_aws()`` elsewhere in the suite nests
inside it and would share (and never reset) its state.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chalicelib.local import EmbeddedAWS, start_embedded_aws, stop_embedded_aws
from chalicelib.settings import Settings, load_settings
from tests.local.chalice_local import ChaliceLocal, serving


@pytest.fixture(scope="package", autouse=True)
def _embedded_aws_lifetime() -> Iterator[None]:
    yield
    stop_embedded_aws()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        {"OCG_MODE": "local", "OCG_PROJECT": "local-events", "OCG_LOCAL_DIR": str(tmp_path)}
    )


@pytest.fixture
def aws(settings: Settings) -> EmbeddedAWS:
    embedded = start_embedded_aws(settings)
    embedded.reset()
    return embedded


@pytest.fixture
def make_run(tmp_path: Path) -> Iterator[ChaliceLocal]:
    """``make run``'s command, serving on a free loopback port with the test's own local
    directory; killed at the end, whatever happens."""
    with serving(tmp_path) as local:
        yield local
