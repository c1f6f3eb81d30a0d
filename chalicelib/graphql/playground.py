"""``GET /graphql``'s page: GraphiQL that works with no internet.

GraphiQL, its explorer plugin and React are built from pinned npm packages
(``playground/package.json`` and its lock) into one JS and one CSS file by ``make
install`` (``npm run build --prefix playground``). This module inlines both into one
``text/html`` answer, so the browser asks nothing of any other host, nor of this one but
the operations it sends to ``/graphql`` (the page's own address: any host, port or stage
prefix works). The ``Content-Security-Policy`` says so to the browser too.

The built files are read on the first request, never at import (the GraphQL function's
cold start), and kept while they are unchanged on disk: a rebuild is picked up by the next
request, without restarting ``make run``. Where they are not built the page says so, and
how to build them, with status 503.

Where they are read from, first found first:

- ``playground/dist/``: what ``make install`` builds, for ``make run`` and the tests;
- ``chalicelib/graphql/playground_assets/``: what a deployed stage's package carries, where
  ``playground/`` is not. The stage option ``playground`` puts them there (path a, ``make
  package``); for ``chalice deploy`` (path b), ``npm run build:package --prefix
  playground`` does. 1.9 MiB more unzipped (0.7 MiB zipped) in the package that every
  function shares, against the GraphQL function's 15 MiB budget (``deploy/package.py``).

A deployed stage's ``GET /graphql`` needs the API key, which a browser's address bar
cannot send; there the page is ``GET /playground``, which needs none, and sends its
operations to ``graphql`` beside it with the key typed into GraphiQL's header editor.
"""

from __future__ import annotations

import base64
import html
import json
import threading
from dataclasses import dataclass
from pathlib import Path

from chalicelib.graphql.endpoint import HttpResponse
from chalicelib.settings import PROJECT_ROOT

PACKAGED_ASSETS = Path(__file__).resolve().parent / "playground_assets"
BUILT_ASSETS = PROJECT_ROOT / "playground" / "dist"
ASSET_DIRECTORIES: tuple[Path, ...] = (BUILT_ASSETS, PACKAGED_ASSETS)
SCRIPT = "playground.js"
STYLESHEET = "playground.css"

BUILD_COMMANDS = (
    "make install",
    "npm ci --prefix playground && npm run build --prefix playground",
)

_FAVICON_SVG = (
    "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 32 32'>"
    "<rect width='32' height='32' rx='6' fill='#171a26'/>"
    "<path d='M16 4 26.4 10v12L16 28 5.6 22V10Z' fill='none' stroke='#e535ab' stroke-width='2'/>"
    "<path d='M16 4 26.4 22H5.6Z' fill='none' stroke='#e535ab' stroke-width='1.5'/>"
    "<g fill='#e535ab'><circle cx='16' cy='4' r='2.4'/><circle cx='26.4' cy='10' r='2.4'/>"
    "<circle cx='26.4' cy='22' r='2.4'/><circle cx='16' cy='28' r='2.4'/>"
    "<circle cx='5.6' cy='22' r='2.4'/><circle cx='5.6' cy='10' r='2.4'/></g></svg>"
)
FAVICON = "data:image/svg+xml;base64," + base64.b64encode(_FAVICON_SVG.encode()).decode()

# Everything the page may load: itself (inline), data: fonts and images, and operations
# sent to its own origin (HTTP, and WebSocket for subscriptions).
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'unsafe-inline'",
        "style-src 'unsafe-inline'",
        "img-src data:",
        "font-src data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)

_HTML = "text/html; charset=utf-8"


@dataclass(frozen=True)
class _Assets:
    key: tuple[str, int, int, int, int]
    script: str
    stylesheet: str


_lock = threading.Lock()
_cached: _Assets | None = None
_pages: dict[tuple[object, ...], str] = {}


def playground_page(
    title: str,
    *,
    graphql_url: str | None = None,
    subscription_url: str | None = None,
    header_template: str | None = None,
) -> HttpResponse:
    """The playground for ``title``. ``graphql_url`` (relative to the page; the page's own
    address when not given) is where GraphiQL sends operations, ``subscription_url``
    (relative, or absolute) where it opens graphql-ws subscriptions when the API has them,
    and ``header_template`` what its header editor starts with (JSON text)."""
    assets = _load_assets()
    if assets is None:
        return _not_built_page(title)
    options = {
        "graphqlUrl": graphql_url,
        "subscriptionUrl": subscription_url,
        "defaultHeaders": header_template,
    }
    key = (assets.key, title, *options.values())
    with _lock:
        page = _pages.get(key)
        if page is None:
            _pages.clear()
            page = _pages[key] = _render(title, assets, options)
    headers = {"Content-Type": _HTML, "Content-Security-Policy": _csp(subscription_url)}
    return HttpResponse(200, page, headers)


def _csp(subscription_url: str | None) -> str:
    if subscription_url and "://" in subscription_url:
        return CONTENT_SECURITY_POLICY.replace(
            "connect-src 'self'", f"connect-src 'self' {subscription_url}"
        )
    return CONTENT_SECURITY_POLICY


def _load_assets() -> _Assets | None:
    """The first directory's built files, read again only when they changed on disk."""
    global _cached
    for directory in ASSET_DIRECTORIES:
        script, stylesheet = directory / SCRIPT, directory / STYLESHEET
        try:
            script_stat, stylesheet_stat = script.stat(), stylesheet.stat()
        except OSError:
            continue
        key = (
            str(directory),
            script_stat.st_mtime_ns,
            script_stat.st_size,
            stylesheet_stat.st_mtime_ns,
            stylesheet_stat.st_size,
        )
        with _lock:
            if _cached is not None and _cached.key == key:
                return _cached
        try:
            loaded = _Assets(
                key, script.read_text(encoding="utf-8"), stylesheet.read_text(encoding="utf-8")
            )
        except OSError:  # removed between the look and the read (a rebuild): try the next
            continue
        with _lock:
            _cached = loaded
        return loaded
    return None


def _render(title: str, assets: _Assets, options: dict[str, str | None]) -> str:
    settings = json.dumps({name: value for name, value in options.items() if value})
    # Inline text must not end its own element early; the build refuses bundles that
    # would, and these replacements keep the page whole whatever is in the files.
    script = assets.script.replace("</script", "<\\/script")
    stylesheet = assets.stylesheet.replace("</style", "<\\/style")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{html.escape(title)}</title>
<link rel="icon" href="{FAVICON}">
<style>{stylesheet}</style>
<style>html, body, #playground {{ height: 100%; margin: 0; }}</style>
<script id="playground-settings" type="application/json">{_script_json(settings)}</script>
</head>
<body>
<div id="playground"><noscript>The GraphQL playground needs JavaScript.</noscript></div>
<script>{script}</script>
</body>
</html>
"""


def _script_json(text: str) -> str:
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _not_built_page(title: str) -> HttpResponse:
    looked = "".join(
        f"<li><code>{html.escape(str(path))}</code></li>" for path in ASSET_DIRECTORIES
    )
    commands = "".join(f"<pre><code>{html.escape(c)}</code></pre>" for c in BUILD_COMMANDS)
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(title)}: playground not built</title>
<link rel="icon" href="{FAVICON}">
<style>body {{ font: 16px/1.5 system-ui, sans-serif; max-width: 46em; margin: 3em auto;
padding: 0 1em; }} pre {{ background: #f3f3f6; padding: .6em 1em; }}</style>
</head>
<body>
<h1>The GraphQL playground is not built</h1>
<p>Its files (GraphiQL, built from the npm packages in <code>playground/</code>) are in
none of these directories:</p>
<ul>{looked}</ul>
<p>Build them, in the project's directory, with either of:</p>
{commands}
<p>then reload this page. For a deployed stage, set its option
<code>"ocg": {{"playground": true}}</code> in <code>.chalice/config.json</code> before
<code>make package</code>, or run <code>npm run build:package --prefix playground</code>
before <code>chalice deploy</code>.</p>
<p>The API itself works meanwhile: POST GraphQL requests to this address.</p>
</body>
</html>
"""
    headers = {
        "Content-Type": _HTML,
        "Cache-Control": "no-store",
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    }
    return HttpResponse(503, page, headers)
