"""The local default at 1,000, 10,000 and 100,000 items: request latency and memory.

Each size runs in a fresh interpreter with its own local directory. The app is imported
on the embedded default (as ``chalice local`` imports it), then set up quickly: N users
and 100 products are put straight into moto's table with ``Table.put_item`` (the code a
PutItem request reaches after its parsing), with the stream detached and event delivery
paused, so the lake does not mirror them and no journal records them: set-up, not what
is measured. Then the server ``make run`` serves (``chalice.local``'s own, built by
``create_local_server`` as ``chalice local`` builds it) listens on a free loopback port
in a thread, and every measured request goes over HTTP to ``/graphql``, with event
delivery running in the background as it does under ``make run`` (each measured request
is sent once what the previous one set off is delivered):

    createUser, updateUser, readUser, addFavorite (the join INSERT: one
    TransactWriteItems), listUser(limit: 20) first page, and a page in the middle of the
    list (reached by paging there, 100 at a time).

Then a `chalice local` is started on the state the run kept (folded into a snapshot) and
timed until it answers: the restart.

Printed: the median of each (after warm-ups), the process's RSS after the measured
requests and after 900 more that store nothing new (a join INSERT already done, a read,
a list page), the ratio of the largest size to the smallest, and the targets: each
request within 1.5x between 1,000 and 100,000 items and at most 30 ms at 100,000; RSS
below 1 GB and not growing.

    python -m bench.local_scale [--sizes 1000,10000,100000] [--requests 40] [--moto-as-is]

``--moto-as-is`` runs without ``chalicelib.local.dynamodb`` (moto's own costs), for a
before/after comparison at small sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench._local import ROOT, Api, chalice_local, free_port

SIZES = (1_000, 10_000, 100_000)
PRODUCTS = 100
WARMUPS = 3
# The further requests after which memory must not have grown.
GROWTH_REQUESTS = 900
TARGET_RATIO = 1.5
TARGET_MS = 30.0
TARGET_RSS_MB = 1024
TARGET_RESTART_S = 10.0
OPERATIONS = (
    "createUser",
    "updateUser",
    "readUser",
    "addFavorite (join INSERT)",
    "listUser first page",
    "listUser middle page",
)


# -- one size, in its own process ---------------------------------------------------


def _user_id(number: int) -> str:
    return f"00000000-0000-4000-8000-{number:012d}"


def _product_id(number: int) -> str:
    return f"10000000-0000-4000-8000-{number:012d}"


def _stored_entity(entity: str, entity_id: str, number: int, **fields: Any) -> dict[str, Any]:
    """An entity item as the store writes it, in DynamoDB's wire format."""
    from boto3.dynamodb.types import TypeSerializer

    from chalicelib import keys

    created = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(1_735_689_600 + number))
    created += f".{number % 1000:03d}Z"
    plain = {
        **keys.entity_item_keys(entity, entity_id),
        **keys.entity_list_keys(entity, entity_id, created),
        keys.ENTITY_TYPE: entity,
        "id": entity_id,
        "createdAt": created,
        "updatedAt": created,
        **fields,
    }
    serializer = TypeSerializer()
    return {name: serializer.serialize(value) for name, value in plain.items()}


def _load(application: Any, users: int) -> float:
    """Put the users and products straight into moto's table; seconds taken."""
    from moto.dynamodb.models import dynamodb_backends

    settings = application.services.settings
    table = dynamodb_backends[settings.account_id][settings.region].tables[settings.table_name]
    events = application.services.local_runtime.events
    events.stop()  # nothing else touches moto meanwhile
    shard, table.stream_shard = table.stream_shard, None
    start = time.perf_counter()
    try:
        for number in range(PRODUCTS):
            table.put_item(
                _stored_entity(
                    "product",
                    _product_id(number),
                    number,
                    name=f"Product {number}",
                    brandId=_product_id(0),
                    price=1,
                )
            )
        for number in range(users):
            table.put_item(
                _stored_entity(
                    "user",
                    _user_id(number),
                    number,
                    name=f"User {number}",
                    email=f"u{number}@example.com",
                )
            )
    finally:
        table.stream_shard = shard
        events.start()
    return time.perf_counter() - start


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _serve(application: Any) -> int:
    """``chalice local``'s server for the imported app, on a free port, in a thread."""
    from chalice.cli.factory import CLIFactory
    from chalice.local import create_local_server

    config = CLIFactory(str(ROOT)).create_config_obj(
        "local", user_provided_params={"chalice_app": application.app}
    )
    server = create_local_server(application.app, config, "127.0.0.1", 0)
    port: int = server.server.server_address[1]
    threading.Thread(target=server.server.serve_forever, daemon=True).start()
    return port


def _median_ms(call: Callable[[int], object], count: int, settle: Callable[[], object]) -> float:
    """The median of ``count`` calls (after warm-ups), each made once what the previous
    one set off in the background (stream delivery, lake writes) is done: the latency of
    a request to a server otherwise idle, as a person using the API sees it, rather than
    of requests queued behind the lake writes of the ones before."""
    samples = []
    for number in range(WARMUPS + count):
        settle()
        start = time.perf_counter()
        call(number)
        if number >= WARMUPS:
            samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def _measure(users: int, requests: int, growth: int, moto_as_is: bool) -> dict[str, Any]:
    local_dir = tempfile.mkdtemp(prefix="ocg-bench-scale-")
    os.environ.update({"OCG_MODE": "local", "OCG_PROJECT": "shop", "OCG_LOCAL_DIR": local_dir})
    sys.path.insert(0, str(ROOT))
    if moto_as_is:
        import chalicelib.local.dynamodb as bounded

        bounded.install = lambda: None
    import app as application

    result: dict[str, Any] = {"users": users, "load_s": _load(application, users)}
    api = Api(_serve(application))
    runtime = application.services.local_runtime
    assert runtime is not None, "the embedded default delivers events"
    events = runtime.events
    list_page = (
        "query ($t: String) { listUser(limit: 20, nextToken: $t) { items { id } nextToken } }"
    )

    start = time.perf_counter()
    api(list_page)
    result["first_list_ms"] = (time.perf_counter() - start) * 1000
    # The middle of the list, paging there as a client would.
    middle: str | None = None
    for _ in range(users // 2 // 100):
        middle = api(
            "query ($t: String) { listUser(limit: 100, nextToken: $t) { nextToken } }",
            {"t": middle},
        )["listUser"]["nextToken"]
    events.wait_until_idle()

    created: list[str] = []
    calls: dict[str, Callable[[int], object]] = {
        "createUser": lambda n: created.append(
            api(
                "mutation ($i: CreateUserInput!) { createUser(input: $i) { id } }",
                {"i": {"name": f"New {n}", "email": f"new{n}@example.com"}},
            )["createUser"]["id"]
        ),
        "updateUser": lambda n: api(
            'mutation ($id: ID!) { updateUser(id: $id, input: {name: "Renamed"}) { id } }',
            {"id": _user_id(n * 7919 % users)},
        ),
        "readUser": lambda n: api(
            "query ($id: ID!) { readUser(id: $id) { id name email } }",
            {"id": _user_id(n * 104_729 % users)},
        ),
        "addFavorite (join INSERT)": lambda n: api(
            "mutation ($u: ID!, $p: ID!) { addFavorite(userId: $u, productId: $p) }",
            {"u": _user_id(n * 7 % users), "p": _product_id(n % PRODUCTS)},
        ),
        "listUser first page": lambda n: api(list_page),
        "listUser middle page": lambda n: api(list_page, {"t": middle}),
    }
    medians: dict[str, float] = {}
    for name in OPERATIONS:
        medians[name] = _median_ms(calls[name], requests, events.wait_until_idle)
    result["medians_ms"] = medians
    result["rss_mb"] = _rss_mb()

    # Memory over more requests that store nothing new: a join INSERT already done (a
    # cancelled transaction), a read and a list page, again and again.
    for number in range(growth // 3):
        calls["addFavorite (join INSERT)"](number % requests)
        calls["readUser"](number)
        calls["listUser middle page"](number)
    events.wait_until_idle()
    result["rss_after_mb"] = _rss_mb()
    # What a restart finds: everything in a snapshot (the stream is delivered).
    runtime.aws.snapshot()
    result["local_dir"] = local_dir
    return result


def _restart_seconds(local_dir: str) -> float:
    """From `chalice local` started on the kept state to its first answer."""
    with chalice_local(local_dir, free_port()) as seconds:
        return seconds


# -- the table ------------------------------------------------------------------------


def _print_table(results: list[dict[str, Any]], growth: int, moto_as_is: bool) -> None:
    results.sort(key=lambda r: r["users"])
    small, large = results[0], results[-1]
    sizes = "".join(f"{r['users']:>12,}" for r in results)
    ratio = f"{large['users'] // 1000}k/{small['users'] // 1000}k" if len(results) > 1 else ""
    print(f"\nlocal default, {'moto as is' if moto_as_is else 'bounded moto'}: users in table")
    print(f"{'':32}{sizes}{ratio:>12}   target")
    for name in OPERATIONS:
        figures = "".join(f"{r['medians_ms'][name]:>12.1f}" for r in results)
        change = (
            f"{large['medians_ms'][name] / small['medians_ms'][name]:>11.2f}x"
            if len(results) > 1
            else ""
        )
        print(f"{name + ' (ms)':32}{figures}{change:>12}   <={TARGET_RATIO}x, <={TARGET_MS:.0f} ms")
    rows = (
        ("RSS after requests (MB)", "rss_mb", f"< {TARGET_RSS_MB}"),
        (f"RSS after {growth} more (MB)", "rss_after_mb", "no growth"),
        ("first request, a list (ms)", "first_list_ms", "once"),
        ("restart: serving again (s)", "restart_s", f"<= {TARGET_RESTART_S}"),
        ("set-up: load (s)", "load_s", ""),
    )
    for label, key, target in rows:
        figures = "".join(f"{r[key]:>12.1f}" for r in results)
        print(f"{label:32}{figures}{'':12}   {target}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--requests", type=int, default=40, help="measured per operation")
    parser.add_argument(
        "--growth", type=int, default=GROWTH_REQUESTS, help="requests after which RSS is read again"
    )
    parser.add_argument("--moto-as-is", action="store_true")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child is not None:
        result = _measure(
            arguments.child, arguments.requests, arguments.growth, arguments.moto_as_is
        )
        Path(arguments.out).write_text(json.dumps(result))
        return 0
    results = []
    for size in (int(size) for size in arguments.sizes.split(",")):
        print(f"{size:,} users: loading and measuring…", flush=True)
        with tempfile.TemporaryDirectory() as scratch:
            out, log = Path(scratch) / "result.json", Path(scratch) / "log"
            command = [sys.executable, "-m", "bench.local_scale", "--child", str(size)]
            command += ["--out", str(out), "--requests", str(arguments.requests)]
            command += ["--growth", str(arguments.growth)]
            command += ["--moto-as-is"] if arguments.moto_as_is else []
            with log.open("w") as output:
                run = subprocess.run(command, cwd=ROOT, stdout=output, stderr=output)
            if run.returncode != 0:
                print(log.read_text()[-5000:])
                return 1
            result = json.loads(out.read_text())
            result["restart_s"] = _restart_seconds(result["local_dir"])
            shutil.rmtree(result["local_dir"], ignore_errors=True)
            results.append(result)
    _print_table(results, arguments.growth, arguments.moto_as_is)
    return 0


if __name__ == "__main__":
    sys.exit(main())
