"""The graphql-transport-ws protocol and the fan-out, on the real app (embedded default),
with the sockets replaced by a recorder of what each connection was sent."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from chalicelib.auth import PUBLIC
from chalicelib.auth.local import mint_token
from chalicelib.subscriptions import PROTOCOL, SubscriptionRegistry
from chalicelib.subscriptions.hub import MAX_MESSAGE_BYTES
from chalicelib.subscriptions.registry import Subscription
from tests.conftest import LoadedApp, create
from tests.subscriptions.recorder import Client, Recorder, hub_over
from tests.test_auth_flow import SCHEMA as AUTH_SCHEMA


@pytest.fixture
def shop_clients(
    shop: LoadedApp, hub_of: Callable[..., Any]
) -> tuple[Callable[[str], Client], Recorder]:
    clients, recorder = hub_of(shop)
    return clients, recorder


# The protocol.


def test_only_the_protocol_is_accepted_and_named_in_the_answer(shop_clients: Any) -> None:
    clients, _ = shop_clients

    assert clients("a").connect("graphql-ws")["statusCode"] == 400
    answer = clients("b").connect(f"foo, {PROTOCOL}")
    assert answer["statusCode"] == 200
    assert answer["headers"] == {"Sec-WebSocket-Protocol": PROTOCOL}


def test_ping_is_answered_with_pong(shop_clients: Any) -> None:
    client = shop_clients[0]("c")
    client.init()

    client.send({"type": "ping"})

    assert client.messages()[-1] == {"type": "pong"}


@pytest.mark.parametrize(
    ("messages", "code"),
    [
        (["not json"], 4400),
        ([{"type": "what"}], 4400),
        ([{"type": "subscribe", "payload": {"query": "{ __typename }"}}], 4400),
        ([{"id": "1", "type": "subscribe", "payload": {"query": "{ __typename }"}}], 4401),
        ([{"type": "connection_init"}, {"type": "connection_init"}], 4429),
        ([{"type": "connection_init", "payload": {"Authorization": "Bearer a.b.c"}}], 4403),
        (
            [
                {"type": "connection_init"},
                {"id": "1", "type": "subscribe", "payload": {"query": "{ a }", "variables": []}},
            ],
            4400,
        ),
        (
            [
                {"type": "connection_init"},
                {"id": "1", "type": "subscribe", "payload": {"query": "{ a }", "operationName": 1}},
            ],
            4400,
        ),
    ],
    ids=[
        "not json",
        "unknown type",
        "no id",
        "before init",
        "init twice",
        "bad token",
        "variables not an object",
        "operation name not a string",
    ],
)
def test_protocol_violations_close_with_the_protocols_codes(
    shop_clients: Any, messages: list[Any], code: int
) -> None:
    client = shop_clients[0]("d")
    client.connect()

    for message in messages:
        client.send(message)

    assert client.closed is not None and client.closed[0] == code


def test_a_subscription_id_in_use_closes_the_connection(shop_clients: Any) -> None:
    client = shop_clients[0]("e")
    client.init()
    query = "subscription { onCreateUser { id } }"

    client.subscribe("s1", query)
    client.subscribe("s1", query)

    assert client.closed == (4409, "Subscriber for s1 already exists")


def test_an_invalid_subscription_is_an_error_message(shop_clients: Any) -> None:
    client = shop_clients[0]("f")
    client.init()

    client.subscribe("s1", "subscription { onCreateUser { nope } }")

    (error,) = [m for m in client.messages() if m["type"] == "error"]
    assert error["id"] == "s1"
    assert "Cannot query field 'nope'" in error["payload"][0]["message"]
    assert client.closed is None


@pytest.mark.parametrize(
    ("operation_name", "message"),
    [
        (None, "Must provide operation name if query contains multiple operations."),
        ("C", "Unknown operation named 'C'."),
    ],
)
def test_an_operation_not_found_is_an_error_message(
    shop_clients: Any, operation_name: str | None, message: str
) -> None:
    client = shop_clients[0]("which")
    client.init()
    document = "subscription A { onCreateUser { id } } subscription B { onCreateBrand { id } }"

    client.send(
        {
            "id": "1",
            "type": "subscribe",
            "payload": {"query": document, "operationName": operation_name},
        }
    )

    assert client.messages()[-1] == {"id": "1", "type": "error", "payload": [{"message": message}]}


def test_a_query_over_the_socket_answers_once_then_completes(
    shop: LoadedApp, shop_clients: Any
) -> None:
    ada = create(shop, "User", name="Ada", email="ada@example.com")
    client = shop_clients[0]("g")
    client.init()

    client.subscribe("q", "query($id: ID!) { readUser(id: $id) { name } }", {"id": ada})

    assert client.messages()[1:] == [
        {"id": "q", "type": "next", "payload": {"data": {"readUser": {"name": "Ada"}}}},
        {"id": "q", "type": "complete"},
    ]


# Entity changes.


def test_changes_reach_subscribers_whose_filters_they_match(
    shop: LoadedApp, shop_clients: Any
) -> None:
    clients, _ = shop_clients
    paris, anyone = clients("paris"), clients("anyone")
    for client in (paris, anyone):
        client.init()
    paris.subscribe("s", 'subscription { onCreateUser(name: "Ada") { name email } }')
    anyone.subscribe("s", "subscription { onCreateUser { name } onUpdateUser { name } }")
    anyone.subscribe("u", "subscription { onUpdateUser { name age } }")

    ada = create(shop, "User", name="Ada", email="ada@example.com")
    create(shop, "User", name="Bob", email="bob@example.com")
    shop.data("mutation($id: ID!) { updateUser(id: $id, input: {age: 37}) { id } }", {"id": ada})
    shop.settle()

    assert [m["payload"] for m in paris.messages()[1:]] == [
        {"data": {"onCreateUser": {"name": "Ada", "email": "ada@example.com"}}}
    ]
    updates = [m for m in anyone.messages() if m.get("id") == "u"]
    assert [m["payload"]["data"]["onUpdateUser"] for m in updates] == [{"name": "Ada", "age": 37}]


def test_a_deletion_sends_the_last_image(shop: LoadedApp, shop_clients: Any) -> None:
    client = shop_clients[0]("h")
    client.init()
    client.subscribe("d", "subscription { onDeleteUser { id name } }")
    ada = create(shop, "User", name="Ada", email="ada@example.com")

    shop.data("mutation($id: ID!) { deleteUser(id: $id) { deleted } }", {"id": ada})
    shop.settle()

    assert client.messages()[-1]["payload"] == {
        "data": {"onDeleteUser": {"id": ada, "name": "Ada"}}
    }


def test_fan_out_reaches_the_live_and_forgets_the_gone(shop: LoadedApp, shop_clients: Any) -> None:
    clients, recorder = shop_clients
    subscribers = [clients(f"c{i:03d}") for i in range(100)]
    for client in subscribers:
        client.init()
        client.subscribe("s", "subscription { onCreateBrand { name } }")
    gone = {client.id for client in subscribers[::3]}
    recorder.gone |= gone

    create(shop, "Brand", name="Acme")
    shop.settle()

    for client in subscribers:
        received = [m for m in client.messages() if m["type"] == "next"]
        expected = [] if client.id in gone else [{"data": {"onCreateBrand": {"name": "Acme"}}}]
        assert [m["payload"] for m in received] == expected, client.id
    registry = SubscriptionRegistry(
        shop.services.client("dynamodb"), shop.services.settings.table_name
    )
    remaining = {s.connection_id for s in registry.subscribers("brand#create")}
    assert remaining == {client.id for client in subscribers} - gone


# Tasks.

TRIGGER = 'mutation { triggerTaskUsersByCity(city: "Paris") { taskId } }'
ON_RESULT = """subscription($t: ID!) {
  onTaskResultUsersByCity(taskId: $t) { taskStatus result { name } } }"""


def test_a_task_subscription_gets_its_state_then_its_result(
    shop: LoadedApp, shop_clients: Any
) -> None:
    ada = create(shop, "User", name="Ada", email="ada@example.com")
    create(shop, "Address", userId=ada, city="Paris", country="FR")
    shop.settle()
    client = shop_clients[0]("t")
    client.init()
    task = shop.data(TRIGGER)["triggerTaskUsersByCity"]["taskId"]

    client.subscribe("r", ON_RESULT, {"t": task})
    shop.settle()

    messages = client.messages()[1:]
    states = [
        m["payload"]["data"]["onTaskResultUsersByCity"] for m in messages if m["type"] == "next"
    ]
    assert states[-1] == {"taskStatus": "SUCCEEDED", "result": [{"name": "Ada"}]}
    assert all(state["taskStatus"] in ("RUNNING", "SUCCEEDED") for state in states)
    assert messages[-1] == {"id": "r", "type": "complete"}
    assert len(states) <= 2


def test_a_late_subscriber_still_gets_the_result(shop: LoadedApp, shop_clients: Any) -> None:
    task = shop.data(TRIGGER)["triggerTaskUsersByCity"]["taskId"]
    shop.settle()
    client = shop_clients[0]("late")
    client.init()

    client.subscribe("r", ON_RESULT, {"t": task})

    assert client.messages()[1:] == [
        {
            "id": "r",
            "type": "next",
            "payload": {
                "data": {"onTaskResultUsersByCity": {"taskStatus": "SUCCEEDED", "result": []}}
            },
        },
        {"id": "r", "type": "complete"},
    ]


def test_a_task_subscription_under_an_alias_in_a_fragment_ends_with_its_result(
    shop: LoadedApp, shop_clients: Any
) -> None:
    client = shop_clients[0]("aliased")
    client.init()
    task = shop.data(TRIGGER)["triggerTaskUsersByCity"]["taskId"]
    query = """subscription($t: ID!) { ...Result }
      fragment Result on Subscription {
        mine: onTaskResultUsersByCity(taskId: $t) { taskStatus } }"""

    client.subscribe("r", query, {"t": task})
    shop.settle()

    *states, last = client.messages()[1:]
    assert states[-1]["payload"] == {"data": {"mine": {"taskStatus": "SUCCEEDED"}}}
    assert last == {"id": "r", "type": "complete"}


def test_filters_are_read_through_fragments(shop: LoadedApp, shop_clients: Any) -> None:
    client = shop_clients[0]("fragments")
    client.init()
    query = """subscription($name: String) {
      ... on Subscription { created: onCreateUser(name: $name) { name } } }"""

    client.subscribe("ada", query, {"name": "Ada"})
    for name in ("Bob", "Ada"):
        create(shop, "User", name=name, email=f"{name}@example.com")
    shop.settle()

    assert [m["payload"] for m in client.messages()[1:]] == [{"data": {"created": {"name": "Ada"}}}]


def test_a_pushed_result_is_its_first_page_with_the_token_for_the_rest(
    shop: LoadedApp, shop_clients: Any
) -> None:
    for name in ("Ada", "Bob"):
        user = create(shop, "User", name=name, email=f"{name}@example.com")
        create(shop, "Address", userId=user, city="Paris", country="FR")
    shop.settle()
    task = shop.data(TRIGGER)["triggerTaskUsersByCity"]["taskId"]
    shop.settle()
    client = shop_clients[0]("pages")
    client.init()
    query = """subscription($t: ID!) {
      onTaskResultUsersByCity(taskId: $t, limit: 1) { result { name } nextToken } }"""

    client.subscribe("r", query, {"t": task})

    first = client.messages()[1]["payload"]["data"]["onTaskResultUsersByCity"]
    rest = shop.data(
        "query ($t: ID!, $n: String) { taskResultUsersByCity(taskId: $t, nextToken: $n) "
        "{ result { name } nextToken } }",
        {"t": task, "n": first["nextToken"]},
    )["taskResultUsersByCity"]
    assert first["result"] == [{"name": "Ada"}] and first["nextToken"]
    assert rest == {"result": [{"name": "Bob"}], "nextToken": None}


def test_the_tracker_racing_a_subscribe_sends_the_result_once(
    shop: LoadedApp, shop_clients: Any
) -> None:
    """Both saw the finished task; only the one that removed the subscription says so."""
    clients, recorder = shop_clients
    client = clients("raced")
    client.init()
    task = shop.data(TRIGGER)["triggerTaskUsersByCity"]["taskId"]
    shop.settle()  # finished: the subscribe below sends the result and completes
    client.subscribe("r", ON_RESULT, {"t": task})
    subscribed = client.messages()[:]

    class SeenBeforeItEnded(SubscriptionRegistry):
        """The tracker's view: it read the subscribers before the subscribe removed it."""

        def subscribers(self, topic: str) -> Iterator[Subscription]:
            request = {"query": ON_RESULT, "variables": {"t": task}, "operationName": None}
            yield Subscription(client.id, "r", topic, request, {"taskId": task}, PUBLIC)

    hub_over(shop.services, recorder, SeenBeforeItEnded).publish_task(task)

    assert [m["type"] for m in subscribed[1:]] == ["next", "complete"]
    assert client.messages() == subscribed


def test_an_answer_over_the_message_limit_is_an_error_that_says_so(
    shop: LoadedApp, shop_clients: Any
) -> None:
    client = shop_clients[0]("large")
    client.init()
    client.subscribe("u", "subscription { onCreateUser { name } }")

    create(shop, "User", name="x" * (MAX_MESSAGE_BYTES + 1), email="x@example.com")
    create(shop, "User", name="Ada", email="ada@example.com")
    shop.settle()

    large, small = (m["payload"] for m in client.messages()[1:])
    assert large["data"] is None
    (error,) = large["errors"]
    assert error["extensions"] == {"code": "PAYLOAD_TOO_LARGE"}
    assert f"over the {MAX_MESSAGE_BYTES} bytes a WebSocket message may carry" in error["message"]
    assert small == {"data": {"onCreateUser": {"name": "Ada"}}}


# Rules.


def test_subscribers_see_only_what_their_rules_allow(
    load_app: Callable[..., LoadedApp], hub_of: Callable[..., Any]
) -> None:
    app = load_app(AUTH_SCHEMA)
    clients, _ = hub_of(app)
    local_dir = app.services.settings.local_dir

    def token(sub: str, *groups: str) -> str:
        return "Bearer " + mint_token(local_dir, "shop", sub=sub, groups=groups)

    alice, bob, admin, anonymous = (
        clients("alice"),
        clients("bob"),
        clients("admin"),
        clients("anon"),
    )
    for client, authorization in (
        (alice, token("alice")),
        (bob, token("bob")),
        (admin, token("root", "admin")),
        (anonymous, None),
    ):
        client.init(authorization)
        client.subscribe("n", "subscription { onCreateNote { title owner } }")
    refused = [m for m in anonymous.messages() if m["type"] == "error"]
    assert refused and refused[0]["payload"][0]["extensions"]["code"] == "FORBIDDEN"

    as_alice = app.as_caller(token("alice"))
    as_alice.data('mutation { createNote(input: {title: "mine"}) { id } }')
    task = as_alice.data("mutation { triggerTaskMyNotes { taskId } }")["triggerTaskMyNotes"][
        "taskId"
    ]
    app.settle()
    bob.subscribe(
        "t", "subscription($t: ID!) { onTaskResultMyNotes(taskId: $t) { taskStatus } }", {"t": task}
    )

    def created(client: Client) -> list[Any]:
        return [
            m["payload"]["data"]["onCreateNote"]
            for m in client.messages()
            if m.get("id") == "n" and m["type"] == "next"
        ]

    assert created(alice) == [{"title": "mine", "owner": "alice"}]
    assert created(admin) == [{"title": "mine", "owner": "alice"}]
    assert created(bob) == []
    (error,) = [m for m in bob.messages() if m.get("id") == "t"]
    assert error["type"] == "error" and "no task" in error["payload"][0]["message"]
