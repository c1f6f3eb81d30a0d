"""GET /graphql's playground page: the built GraphiQL inlined, or how to build it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from chalicelib.graphql import playground
from chalicelib.graphql.endpoint import HttpResponse
from chalicelib.graphql.playground import playground_page
from tests.conftest import ROOT

SCRIPT = "console.log('graphiql'); const closing = '</script>';"
STYLESHEET = ".graphiql-container { color: #123456; }"


class _Tags(HTMLParser):
    """Every tag's attributes, and the text of each <script> and <style>."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.texts: dict[str, list[str]] = {"script": [], "style": []}
        self._open: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._open = tag if tag in self.texts else None
        if self._open is not None:
            self.texts[self._open].append("")

    def handle_endtag(self, tag: str) -> None:
        self._open = None

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self.texts[self._open][-1] += data


def _parse(html: str) -> _Tags:
    tags = _Tags()
    tags.feed(html)
    tags.close()
    return tags


@pytest.fixture
def assets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An asset directory of the test's own, the only one looked at, with nothing cached."""
    directory = tmp_path / "dist"
    monkeypatch.setattr(playground, "ASSET_DIRECTORIES", (directory, tmp_path / "packaged"))
    monkeypatch.setattr(playground, "_cached", None)
    monkeypatch.setattr(playground, "_pages", {})
    return directory


def _build(directory: Path, script: str = SCRIPT, stylesheet: str = STYLESHEET) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "playground.js").write_text(script)
    (directory / "playground.css").write_text(stylesheet)


def test_the_page_inlines_the_built_script_and_stylesheet(assets: Path) -> None:
    _build(assets)

    response = playground_page("shop GraphQL")

    assert response.status == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    page = _parse(response.body)
    assert "console.log('graphiql')" in "".join(page.texts["script"])
    assert STYLESHEET in "".join(page.texts["style"])
    # The inlined script cannot close its own element early.
    assert "const closing = '<\\/script>'" in response.body
    assert "<title>shop GraphQL</title>" in response.body


def test_the_page_loads_nothing_from_another_host(assets: Path) -> None:
    _build(assets)

    body = playground_page("shop GraphQL").body
    page = _parse(body)

    sources = [
        value
        for _, attrs in page.tags
        for name, value in attrs.items()
        if name in {"src", "href"} and value is not None
    ]
    assert not [source for source in sources if not source.startswith("data:")], sources
    assert not [attrs for tag, attrs in page.tags if tag == "script" and "src" in attrs]
    assert not [attrs for tag, attrs in page.tags if tag == "link" and attrs.get("rel") != "icon"]
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", body)


def test_the_page_has_an_inline_favicon(assets: Path) -> None:
    _build(assets)

    for response in (playground_page("shop GraphQL"), _not_built()):
        icons = [attrs for tag, attrs in _parse(response.body).tags if tag == "link"]
        assert icons == [{"rel": "icon", "href": playground.FAVICON}]
        assert playground.FAVICON.startswith("data:image/svg+xml;base64,")


def test_the_browser_is_told_to_load_nothing_else(assets: Path) -> None:
    _build(assets)

    policy = playground_page("shop GraphQL").headers["Content-Security-Policy"]

    assert "default-src 'none'" in policy
    assert "connect-src 'self'" in policy
    assert "http" not in policy


def test_the_title_and_settings_are_escaped(assets: Path) -> None:
    _build(assets)

    body = playground_page("<b>shop</b>", subscription_url="/graphql?a=</script>").body

    assert "<title>&lt;b&gt;shop&lt;/b&gt;</title>" in body
    settings = _parse(body).texts["script"][0]
    assert json.loads(settings) == {"subscriptionUrl": "/graphql?a=</script>"}
    assert "</script>" not in settings


def test_operations_can_go_to_an_address_beside_the_page_with_a_header_template(
    assets: Path,
) -> None:
    """``GET /playground``'s page: operations to ``graphql`` beside it, the key's header
    ready in the editor."""
    _build(assets)

    body = playground_page("shop", graphql_url="graphql", header_template='{"x-api-key": ""}').body

    settings = json.loads(_parse(body).texts["script"][0])
    assert settings == {"graphqlUrl": "graphql", "defaultHeaders": '{"x-api-key": ""}'}


def test_the_first_directory_with_both_files_is_used(assets: Path, tmp_path: Path) -> None:
    """``make install``'s build, else (on Lambda, say) the package's copy."""
    _build(tmp_path / "packaged", script="from the package")
    assets.mkdir()
    (assets / "playground.js").write_text("half a build")

    assert "from the package" in playground_page("t").body

    _build(assets, script="from dist")
    assert "from dist" in playground_page("t").body


def test_a_rebuild_is_served_without_a_restart(assets: Path) -> None:
    _build(assets, script="first build")
    assert "first build" in playground_page("t").body
    assert "first build" in playground_page("t").body

    _build(assets, script="second build, longer")

    body = playground_page("t").body
    assert "second build, longer" in body
    assert "first build" not in body


def _not_built() -> HttpResponse:
    return playground_page("shop GraphQL")


def test_without_a_build_the_page_says_how_to_build_it(assets: Path) -> None:
    response = _not_built()

    assert response.status == 503
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store"
    assert "not built" in response.body
    assert "make install" in response.body
    assert (
        "npm ci --prefix playground &amp;&amp; npm run build --prefix playground" in response.body
    )
    assert str(assets) in response.body
    assert not _parse(response.body).texts["script"]  # nothing to wait for: no "Loading…"


def test_a_build_after_the_not_built_page_is_served_at_once(assets: Path) -> None:
    assert _not_built().status == 503

    _build(assets)

    assert playground_page("shop GraphQL").status == 200


def test_nothing_is_read_at_import() -> None:
    """The GraphQL function's cold start: the files are read on the first GET only."""
    check = (
        "import sys, chalicelib.handlers, chalicelib.graphql.playground as p; "
        "assert p._cached is None and p._pages == {}, 'read at import'"
    )
    subprocess.run([sys.executable, "-c", check], cwd=ROOT, check=True)


def test_the_real_build_is_one_self_contained_page(monkeypatch: pytest.MonkeyPatch) -> None:
    """``make install``'s build (CI has it; elsewhere skipped until built)."""
    directory = playground.BUILT_ASSETS
    if not (directory / "playground.js").exists():
        if os.environ.get("CI"):
            pytest.fail(f"{directory} is not built: make install")
        pytest.skip(f"{directory} is not built: make install")
    monkeypatch.setattr(playground, "ASSET_DIRECTORIES", (directory,))
    monkeypatch.setattr(playground, "_cached", None)
    monkeypatch.setattr(playground, "_pages", {})

    response = playground_page("shop GraphQL")

    assert response.status == 200
    page = _parse(response.body)
    assert [tag for tag, _ in page.tags if tag in {"script", "link"}] == [
        "link",  # the favicon
        "script",  # the page's settings
        "script",  # GraphiQL
    ]
    assert [attrs.get("href") for tag, attrs in page.tags if tag == "link"] == [playground.FAVICON]
    assert not [attrs for tag, attrs in page.tags if tag == "script" and "src" in attrs]
    styles = "".join(page.texts["style"])
    assert not re.search(r"@import|url\(\s*[\"']?(https?:)?//", styles)
    assert len(page.texts["script"][1]) > 100_000  # the bundle itself, inline
