"""``python -m chalicelib.local.load FILE.jsonl``: load entities and relations into the
running ``make run``, through its API.

One JSON object per line, naming the mutation and its input:

    {"createUser": {"name": "Ada", "email": "ada@example.com"}, "ref": "ada"}
    {"createProduct": {"name": "Anvil", "price": 9.5}, "ref": "anvil"}
    {"addFavorite": {"userId": "@ada", "productId": "@anvil"}}

A ``createT`` line holds ``CreateTInput``; a join INSERT line holds the mutation's
arguments. ``"ref"`` names the entity a line creates, and ``"@name"`` stands for its id
in any later line (``"@@…"`` for a text that starts with ``@``). Every line goes through
the GraphQL endpoint, so it is validated and written exactly as a client's request would
be, and the stream and the lake follow; lines are sent a batch at a time, as one
request of aliased mutations with one variable each, on a few connections at once.

A bad line is reported with its number and the API's message, and nothing of it is
written: a value the API refuses fails only its own mutation (each is one item, or one
transaction for an INSERT), and a batch refused as a whole is sent again without the
lines the refusal named. Lines are applied in file order except within a batch; a line
that uses a ``"@name"`` waits for the batch that creates it.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chalicelib.schema import load_schema, naming
from chalicelib.schema.model import SchemaModel

BATCH_LINES = 100
CONNECTIONS = 4
DEFAULT_URL = "http://127.0.0.1:8000/graphql"
_VARIABLE = re.compile(r"\$(l\d+)(?:_\w+)?\b")
# How graphql-core names a variable in its message: the line's own words replace it.
_VARIABLE_WORDS = re.compile(r"Variable '\$l\d+(?:_(\w+))?' (?:got|has) ")


class LoadError(Exception):
    """The file or the server cannot be used at all (not a bad line)."""


@dataclass
class Line:
    number: int
    mutation: str
    arguments: dict[str, Any]
    variable_type: str
    ref: str | None = None
    needs: set[str] = field(default_factory=set)

    @property
    def alias(self) -> str:
        return f"l{self.number}"


@dataclass
class Report:
    loaded: int = 0
    bad: list[tuple[int, str]] = field(default_factory=list)
    seconds: float = 0.0


def creates(model: SchemaModel) -> dict[str, str]:
    """The ``createT`` mutations, with the type of their one ``input``."""
    return {
        naming.create_field(entity.name): f"{naming.create_input(entity.name)}!"
        for entity in model.entities
    }


def inserts(model: SchemaModel) -> dict[str, dict[str, str]]:
    """The join INSERT mutations, with the type of each argument."""
    return {
        insert.name: {argument.name: argument.type.sdl() for argument in insert.arguments}
        for insert in model.insert_mutations
    }


def _references(value: Any) -> Iterator[str]:
    if isinstance(value, str) and value.startswith("@") and not value.startswith("@@"):
        yield value[1:]
    elif isinstance(value, dict):
        for item in value.values():
            yield from _references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)


def _resolve(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str) and value.startswith("@@"):
        return value[1:]
    if isinstance(value, str) and value.startswith("@"):
        return ids[value[1:]]
    if isinstance(value, dict):
        return {key: _resolve(item, ids) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolve(item, ids) for item in value]
    return value


def parse_lines(
    text_lines: Iterable[str], model: SchemaModel
) -> tuple[list[Line], list[tuple[int, str]]]:
    """The loadable lines, and the bad ones with why (refused before anything is sent)."""
    create_types, insert_types = creates(model), inserts(model)
    known = {*create_types, *insert_types}
    lines: list[Line] = []
    bad: list[tuple[int, str]] = []
    refs: set[str] = set()
    for number, text in enumerate(text_lines, 1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as error:
            bad.append((number, f"not JSON: {error}"))
            continue
        if not isinstance(record, dict):
            bad.append((number, "not a JSON object"))
            continue
        ref = record.pop("ref", None)
        if len(record) != 1:
            bad.append((number, 'one mutation per line, e.g. {"createUser": {...}}'))
            continue
        ((name, arguments),) = record.items()
        if name not in known:
            bad.append(
                (
                    number,
                    f"{name!r} is not a create or INSERT mutation of the schema "
                    f"(known: {', '.join(sorted(known))})",
                )
            )
            continue
        if not isinstance(arguments, dict):
            bad.append((number, f"{name}'s value must be an object"))
            continue
        if ref is not None and (not isinstance(ref, str) or name not in create_types):
            bad.append((number, '"ref" names the entity a create line makes: a string'))
            continue
        if ref in refs:
            bad.append((number, f'"ref" {ref!r} is used by an earlier line'))
            continue
        needs = set(_references(arguments))
        unknown = needs - refs
        if unknown:
            bad.append((number, f"no earlier line has the ref {', '.join(sorted(unknown))}"))
            continue
        if name in insert_types:
            extra = set(arguments) - set(insert_types[name])
            if extra:
                bad.append((number, f"{name} has no argument {', '.join(sorted(extra))}"))
                continue
        lines.append(Line(number, name, arguments, create_types.get(name, ""), ref, needs))
        if ref is not None:
            refs.add(ref)
    return lines, bad


def batches(lines: Sequence[Line], size: int = BATCH_LINES) -> Iterator[list[Line]]:
    """Lines in file order, ``size`` at most a batch, a batch ending before a line that
    needs an id a line of the same batch creates."""
    batch: list[Line] = []
    created: set[str] = set()
    for line in lines:
        if len(batch) >= size or line.needs & created:
            yield batch
            batch, created = [], set()
        batch.append(line)
        if line.ref is not None:
            created.add(line.ref)
    if batch:
        yield batch


class Loader:
    """Sends batches to one GraphQL endpoint."""

    def __init__(self, url: str, model: SchemaModel) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme != "http" or not parsed.hostname:
            raise LoadError(f"{url}: the local server's http:// URL is expected")
        self._host, self._port = parsed.hostname, parsed.port or 80
        self._path = parsed.path or "/graphql"
        self._insert_types = inserts(model)
        self.ids: dict[str, str] = {}
        self._lock = threading.Lock()

    def document(self, batch: Sequence[Line]) -> tuple[str, dict[str, Any]]:
        """One mutation of aliased fields, every value a variable: a bad value is then a
        variable error naming its line."""
        definitions, selections, variables = [], [], {}
        for line in batch:
            arguments = _resolve(line.arguments, self.ids)
            if line.variable_type:  # a createT: its input is one variable
                definitions.append(f"${line.alias}: {line.variable_type}")
                selections.append(f"{line.alias}: {line.mutation}(input: ${line.alias}) {{ id }}")
                variables[line.alias] = arguments
                continue
            parts = []
            for name, value in arguments.items():
                variable = f"{line.alias}_{name}"
                definitions.append(f"${variable}: {self._insert_types[line.mutation][name]}")
                parts.append(f"{name}: ${variable}")
                variables[variable] = value
            selections.append(f"{line.alias}: {line.mutation}({', '.join(parts)})")
        head = f"({', '.join(definitions)})" if definitions else ""
        return f"mutation{head} {{ {' '.join(selections)} }}", variables

    def post(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        connection = http.client.HTTPConnection(self._host, self._port, timeout=120)
        try:
            body = json.dumps({"query": query, "variables": variables})
            connection.request(
                "POST", self._path, body=body, headers={"content-type": "application/json"}
            )
            response = connection.getresponse()
            payload = response.read()
        except OSError as error:
            raise LoadError(
                f"cannot reach {self._host}:{self._port}: {error} (is `make run` running?)"
            ) from None
        finally:
            connection.close()
        try:
            result: dict[str, Any] = json.loads(payload)
        except json.JSONDecodeError:
            raise LoadError(f"the server answered {response.status}: {payload[:200]!r}") from None
        return result

    def send(self, batch: list[Line], report: Report) -> None:
        """Send a batch until every line is loaded or reported.

        A refusal before anything ran (a value its variable's type refuses) names its
        lines: they are reported and the rest is sent again. A mutation that fails as it
        runs ends the request there (its field is non-null, so GraphQL answers no data
        and runs nothing after it): the lines before it were written, it is reported,
        and the lines after it are sent again. A create written in such a request has
        no id to answer with, so a later line using its ``"@name"`` is reported."""
        by_alias = {line.alias: line for line in batch}
        while batch:
            query, variables = self.document(batch)
            result = self.post(query, variables)
            data = result.get("data")
            errors = result.get("errors") or []
            failed = {error["path"][0]: error["message"] for error in errors if error.get("path")}
            if data is None and not failed:  # refused before anything ran
                named = {
                    match.group(1)
                    for error in errors
                    for match in _VARIABLE.finditer(error.get("message", ""))
                }
                if not named:
                    raise LoadError(f"the server refused a batch: {errors}")
                with self._lock:
                    for alias in named:
                        messages = [
                            _VARIABLE_WORDS.sub(
                                lambda m: f"{m.group(1) or 'input'} has ", e["message"]
                            )
                            for e in errors
                            if re.search(rf"\${alias}(?:_\w+)?\b", e["message"])
                        ]
                        report.bad.append((by_alias[alias].number, "; ".join(messages)))
                batch = [line for line in batch if line.alias not in named]
                continue
            with self._lock:
                for index, line in enumerate(batch):
                    if line.alias in failed:
                        report.bad.append((line.number, failed[line.alias]))
                        if data is None:  # nothing after it ran
                            batch = batch[index + 1 :]
                            break
                        continue
                    report.loaded += 1
                    if line.ref is not None and data is not None:
                        self.ids[line.ref] = data[line.alias]["id"]
                else:
                    return


def load(text_lines: Iterable[str], model: SchemaModel, url: str = DEFAULT_URL) -> Report:
    """Load the lines; what was loaded and what was refused (by line number)."""
    started = time.perf_counter()
    lines, bad = parse_lines(text_lines, model)
    report = Report(bad=bad)
    loader = Loader(url, model)
    pending = list(batches(lines))
    with ThreadPoolExecutor(CONNECTIONS) as pool:
        while pending:
            # Batches run together until one needs an id another creates.
            wave: list[list[Line]] = []
            for batch in pending:
                if any(need not in loader.ids for line in batch for need in line.needs):
                    break
                wave.append(batch)
            if not wave:
                wave = pending[:1]  # its refs were on bad lines, or their ids lost
                missing = {n for line in wave[0] for n in line.needs} - set(loader.ids)
                for line in wave[0]:
                    if line.needs & missing:
                        report.bad.append(
                            (
                                line.number,
                                f"the line with ref "
                                f"{', '.join(sorted(line.needs & missing))} failed",
                            )
                        )
                pending[0] = [line for line in wave[0] if not line.needs & missing]
                continue
            for future in [pool.submit(loader.send, batch, report) for batch in wave]:
                future.result()
            pending = pending[len(wave) :]
    report.bad.sort()
    report.seconds = time.perf_counter() - started
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m chalicelib.local.load",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", type=Path, help="JSON Lines: one mutation and its input a line")
    parser.add_argument("--url", default=DEFAULT_URL, help=f"the API (default {DEFAULT_URL})")
    parser.add_argument("--schema", type=Path, help="the schema (default: the app's)")
    arguments = parser.parse_args(argv)
    from chalicelib.settings import load_settings

    schema = arguments.schema or load_settings().schema_file
    try:
        with arguments.file.open(encoding="utf-8") as file:
            report = load(file, load_schema(schema, check_sql=False), arguments.url)
    except (OSError, LoadError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for number, message in report.bad:
        print(f"{arguments.file}:{number}: {message}", file=sys.stderr)
    rate = report.loaded / report.seconds if report.seconds else 0.0
    print(
        f"{report.loaded} line(s) loaded, {len(report.bad)} refused, in "
        f"{report.seconds:.1f} s ({rate:,.0f} a second)"
    )
    return 1 if report.bad else 0


if __name__ == "__main__":
    sys.exit(main())
