"""Users and their data, through HTTP on the real app: ``@auth`` rules for every kind and
operation, list paging per owner, tasks that belong to their callers, identity in SQL,
and the 401 of every token the local stage refuses.

Tokens are minted with the local signing key, as ``python -m chalicelib.auth token``
prints them; refused ones are signed by hand.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from chalicelib.auth.local import LOCAL_CLIENT_ID, local_issuer, mint_token, signing_key
from tests.conftest import LoadedApp

PROJECT = "shop"  # what tests.conftest.load_app sets

SCHEMA = '''
type Note @auth(rules: [{allow: owner}, {allow: groups, groups: ["admin"]}]) {
  id: ID!
  title: String!
  owner: String
  createdAt: AWSDateTime!
  updatedAt: AWSDateTime!
}

type Article @auth(rules: [
  {allow: public, operations: [read, list]},
  {allow: private, operations: [create]},
  {allow: owner, ownerField: "author", operations: [update, delete]}
]) {
  id: ID!
  text: String!
  author: ID
  createdAt: AWSDateTime!
  updatedAt: AWSDateTime!
}

type Secret @auth(rules: [{allow: groups, groups: ["staff"]}]) {
  id: ID!
  code: String!
  createdAt: AWSDateTime!
  updatedAt: AWSDateTime!
}

type NoteRow @task_response {
  id: ID!
  title: String!
}

type Query {
  myNotes: [NoteRow] @sql_query(query: "SELECT id, title FROM note WHERE owner = $identity.sub")
  allNotes: [NoteRow]
    @auth(rules: [{allow: groups, groups: ["admin"]}])
    @sql_query(query: "SELECT id, title FROM note")
  noteCount: Int @sql_query(query: "SELECT count(*) FROM note")
}

type Mutation {
  pin(noteId: ID!, articleId: ID!): Boolean
    @sql_query(
      query: """
      INSERT INTO $join_table(pins) (noteId:Note, articleId:Article)
      VALUES ($args.noteId, $args.articleId)
      """
    )
  unpin(articleId: ID!)
    @sql_query(query: "DELETE p FROM $join_table(pins) p WHERE p.articleId = $args.articleId")
}
'''

CREATE_NOTE = "mutation($t: String!) { createNote(input: {title: $t}) { id title owner } }"
READ_NOTE = "query($id: ID!) { readNote(id: $id) { id title owner } }"
UPDATE_NOTE = (
    "mutation($id: ID!, $t: String!) { updateNote(id: $id, input: {title: $t}) { id title } }"
)
DELETE_NOTE = "mutation($id: ID!) { deleteNote(id: $id) { id deleted } }"
LIST_NOTES = """query($limit: Int, $next: String) {
  listNote(limit: $limit, nextToken: $next) { items { id owner } nextToken } }"""


def create_note(caller: LoadedApp, title: str) -> str:
    note_id: str = caller.data(CREATE_NOTE, {"t": title})["createNote"]["id"]
    return note_id


@pytest.fixture
def app(load_app: Callable[..., LoadedApp]) -> LoadedApp:
    return load_app(SCHEMA)


@pytest.fixture
def local_dir(app: LoadedApp) -> Path:
    path: Path = app.services.settings.local_dir
    return path


@pytest.fixture
def user(app: LoadedApp, local_dir: Path) -> Callable[..., LoadedApp]:
    def signed_in(sub: str, *groups: str) -> LoadedApp:
        token = mint_token(local_dir, PROJECT, sub=sub, groups=groups)
        return app.as_caller(f"Bearer {token}")

    return signed_in


@pytest.fixture
def anonymous(app: LoadedApp) -> LoadedApp:
    return app.as_caller(None)


def codes(errors: list[dict[str, Any]]) -> list[str | None]:
    return [error.get("extensions", {}).get("code") for error in errors]


# Owner rules: create, read, update, delete of one's own items and of others'.


def test_the_owner_field_is_the_creators_sub(user: Callable[..., LoadedApp]) -> None:
    alice = user("alice")

    created = alice.data(CREATE_NOTE, {"t": "mine"})["createNote"]

    assert created["owner"] == "alice"
    assert alice.data(READ_NOTE, {"id": created["id"]})["readNote"]["owner"] == "alice"


def test_someone_elses_item_reads_as_missing(user: Callable[..., LoadedApp]) -> None:
    alice, bob = user("alice"), user("bob")
    note = create_note(alice, "private")

    assert bob.data(READ_NOTE, {"id": note})["readNote"] is None
    assert bob.data(READ_NOTE, {"id": "no-such-note"})["readNote"] is None
    assert alice.data(READ_NOTE, {"id": note})["readNote"]["title"] == "private"


def test_someone_elses_item_cannot_be_updated_as_if_missing(user: Callable[..., LoadedApp]) -> None:
    alice, bob = user("alice"), user("bob")
    note = create_note(alice, "before")

    refused = bob.errors(UPDATE_NOTE, {"id": note, "t": "hijacked"})
    missing = bob.errors(UPDATE_NOTE, {"id": "no-such-note", "t": "x"})

    assert refused[0]["message"] == missing[0]["message"].replace("no-such-note", note)
    assert alice.data(READ_NOTE, {"id": note})["readNote"]["title"] == "before"
    assert alice.data(UPDATE_NOTE, {"id": note, "t": "after"})["updateNote"]["title"] == "after"


def test_someone_elses_item_cannot_be_deleted(user: Callable[..., LoadedApp]) -> None:
    alice, bob = user("alice"), user("bob")
    note = create_note(alice, "keep")

    assert bob.data(DELETE_NOTE, {"id": note})["deleteNote"]["deleted"] is False
    assert alice.data(READ_NOTE, {"id": note})["readNote"] is not None
    assert alice.data(DELETE_NOTE, {"id": note})["deleteNote"]["deleted"] is True
    assert alice.data(READ_NOTE, {"id": note})["readNote"] is None


def test_only_a_ruled_group_may_set_or_change_the_owner(user: Callable[..., LoadedApp]) -> None:
    alice, admin, bob = user("alice"), user("root", "admin"), user("bob")
    give = 'mutation($o: String) { createNote(input: {title: "x", owner: $o}) { id owner } }'

    assert codes(alice.errors(give, {"o": "bob"})) == ["FORBIDDEN"]
    handed = admin.data(give, {"o": "bob"})["createNote"]
    assert handed["owner"] == "bob"
    assert bob.data(READ_NOTE, {"id": handed["id"]})["readNote"]["owner"] == "bob"

    move = 'mutation($id: ID!) { updateNote(id: $id, input: {owner: "alice"}) { owner } }'
    assert codes(bob.errors(move, {"id": handed["id"]})) == ["FORBIDDEN"]
    assert admin.data(move, {"id": handed["id"]})["updateNote"]["owner"] == "alice"
    assert bob.data(READ_NOTE, {"id": handed["id"]})["readNote"] is None
    assert [n["id"] for n in all_pages(alice)] == [handed["id"]]


def test_a_group_rule_reaches_every_owners_items(user: Callable[..., LoadedApp]) -> None:
    alice, admin = user("alice"), user("root", "admin")
    note = create_note(alice, "seen by admins")

    assert admin.data(READ_NOTE, {"id": note})["readNote"]["owner"] == "alice"
    assert admin.data(UPDATE_NOTE, {"id": note, "t": "edited"})["updateNote"]["title"] == "edited"
    assert admin.data(DELETE_NOTE, {"id": note})["deleteNote"]["deleted"] is True


def test_an_owner_only_type_refuses_callers_not_signed_in(
    user: Callable[..., LoadedApp], anonymous: LoadedApp
) -> None:
    note = create_note(user("alice"), "x")

    for query, variables in (
        (READ_NOTE, {"id": note}),
        (LIST_NOTES, {}),
        (CREATE_NOTE, {"t": "y"}),
        (UPDATE_NOTE, {"id": note, "t": "z"}),
        (DELETE_NOTE, {"id": note}),
    ):
        errors = anonymous.errors(query, variables)
        assert codes(errors) == ["FORBIDDEN"], query
        assert "not authorized" in errors[0]["message"]


# Lists: an owner's items from their own index partition, paged.


def all_pages(caller: LoadedApp, limit: int = 2) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    token = None
    while True:
        page = caller.data(LIST_NOTES, {"limit": limit, "next": token})["listNote"]
        items += page["items"]
        token = page["nextToken"]
        if token is None:
            return items


def test_an_owner_lists_only_their_items_page_by_page(user: Callable[..., LoadedApp]) -> None:
    alice, bob, admin = user("alice"), user("bob"), user("root", "admin")
    alices = [create_note(alice, f"a{i}") for i in range(5)]
    bobs = [create_note(bob, f"b{i}") for i in range(3)]

    assert [n["id"] for n in all_pages(alice)] == alices[::-1]
    assert [n["id"] for n in all_pages(bob)] == bobs[::-1]
    assert {n["id"] for n in all_pages(admin, limit=3)} == {*alices, *bobs}


def test_a_next_token_of_someone_elses_list_is_refused(user: Callable[..., LoadedApp]) -> None:
    alice, bob = user("alice"), user("bob")
    for i in range(3):
        create_note(alice, f"a{i}")
    create_note(bob, "b")
    token = alice.data(LIST_NOTES, {"limit": 1})["listNote"]["nextToken"]

    errors = bob.errors(LIST_NOTES, {"limit": 1, "next": token})

    assert "nextToken is not valid" in errors[0]["message"]


# Public, private and owner rules by operation.

CREATE_ARTICLE = 'mutation { createArticle(input: {text: "hello"}) { id author } }'
READ_ARTICLE = "query($id: ID!) { readArticle(id: $id) { id text author } }"
EDIT_ARTICLE = 'mutation($id: ID!) { updateArticle(id: $id, input: {text: "edited"}) { text } }'


def test_rules_by_operation(user: Callable[..., LoadedApp], anonymous: LoadedApp) -> None:
    alice, bob = user("alice"), user("bob")

    assert codes(anonymous.errors(CREATE_ARTICLE)) == ["FORBIDDEN"]
    article = alice.data(CREATE_ARTICLE)["createArticle"]
    assert article["author"] == "alice"

    assert anonymous.data(READ_ARTICLE, {"id": article["id"]})["readArticle"]["text"] == "hello"
    assert bob.data(READ_ARTICLE, {"id": article["id"]})["readArticle"]["text"] == "hello"
    listed = anonymous.data("{ listArticle { items { id } } }")["listArticle"]["items"]
    assert [a["id"] for a in listed] == [article["id"]]

    assert "does not exist" in bob.errors(EDIT_ARTICLE, {"id": article["id"]})[0]["message"]
    assert codes(anonymous.errors(EDIT_ARTICLE, {"id": article["id"]})) == ["FORBIDDEN"]
    assert alice.data(EDIT_ARTICLE, {"id": article["id"]})["updateArticle"]["text"] == "edited"


def test_a_group_rule_admits_members_only(
    user: Callable[..., LoadedApp], anonymous: LoadedApp
) -> None:
    create = 'mutation { createSecret(input: {code: "42"}) { id } }'

    assert codes(user("alice").errors(create)) == ["FORBIDDEN"]
    assert codes(anonymous.errors(create)) == ["FORBIDDEN"]
    secret = user("carol", "staff").data(create)["createSecret"]["id"]
    read = "query($id: ID!) { readSecret(id: $id) { code } }"
    assert user("dave", "staff").data(read, {"id": secret})["readSecret"]["code"] == "42"


def test_a_join_relates_only_items_the_caller_may_read(user: Callable[..., LoadedApp]) -> None:
    alice, bob = user("alice"), user("bob")
    note = create_note(alice, "pinned")
    article = bob.data(CREATE_ARTICLE)["createArticle"]["id"]
    pin = "mutation($n: ID!, $a: ID!) { pin(noteId: $n, articleId: $a) }"

    assert "does not exist" in bob.errors(pin, {"n": note, "a": article})[0]["message"]
    assert alice.data(pin, {"n": note, "a": article})["pin"] is True


UNPIN = "mutation($a: ID!) { triggerTaskUnpin(articleId: $a) { taskId } }"
UNPINNED = "query($id: ID!) { taskResultUnpin(taskId: $id) { taskStatus deletedCount } }"


def unpin(app: LoadedApp, caller: LoadedApp, article: str) -> int:
    task = caller.data(UNPIN, {"a": article})["triggerTaskUnpin"]["taskId"]
    app.settle()
    answer = caller.data(UNPINNED, {"id": task})["taskResultUnpin"]
    assert answer["taskStatus"] == "SUCCEEDED", answer
    count: int = answer["deletedCount"]
    return count


def test_a_deletion_task_deletes_only_relations_of_the_callers_items(
    app: LoadedApp, user: Callable[..., LoadedApp], anonymous: LoadedApp
) -> None:
    alice, bob, admin = user("alice"), user("bob"), user("root", "admin")
    article = alice.data(CREATE_ARTICLE)["createArticle"]["id"]
    pin = "mutation($n: ID!, $a: ID!) { pin(noteId: $n, articleId: $a) }"
    for caller in (alice, alice, bob):
        caller.data(pin, {"n": create_note(caller, "n"), "a": article})
    app.settle()

    assert codes(anonymous.errors(UNPIN, {"a": article})) == ["FORBIDDEN"]
    assert unpin(app, bob, article) == 1
    assert unpin(app, bob, article) == 0
    assert unpin(app, admin, article) == 2


# Tasks: identity in SQL, rules on fields, results only for whoever triggered them.

TRIGGER_MINE = "mutation { triggerTaskMyNotes { taskId } }"
RESULT_MINE = "query($id: ID!) { taskResultMyNotes(taskId: $id) { taskStatus result { id } } }"


def finished(app: LoadedApp, caller: LoadedApp, task_id: str) -> dict[str, Any]:
    app.settle()
    answer: dict[str, Any] = caller.data(RESULT_MINE, {"id": task_id})["taskResultMyNotes"]
    assert answer["taskStatus"] == "SUCCEEDED", answer
    return answer


def test_identity_in_sql_gives_each_caller_their_rows(
    app: LoadedApp, user: Callable[..., LoadedApp], anonymous: LoadedApp
) -> None:
    alice, bob = user("alice"), user("bob")
    alices = {create_note(alice, "a1"), create_note(alice, "a2")}
    bobs = {create_note(bob, "b1")}
    app.settle()

    for caller, expected in ((alice, alices), (bob, bobs), (anonymous, set())):
        task = caller.data(TRIGGER_MINE)["triggerTaskMyNotes"]["taskId"]
        assert {row["id"] for row in finished(app, caller, task)["result"]} == expected


def test_a_task_result_is_its_callers_alone(
    app: LoadedApp, user: Callable[..., LoadedApp], anonymous: LoadedApp
) -> None:
    alice, bob = user("alice"), user("bob")
    task = alice.data(TRIGGER_MINE)["triggerTaskMyNotes"]["taskId"]
    finished(app, alice, task)

    for other in (bob, anonymous):
        refused = other.errors(RESULT_MINE, {"id": task})[0]["message"]
        unknown = other.errors(RESULT_MINE, {"id": "no-such-task"})[0]["message"]
        assert refused == unknown.replace("no-such-task", task)


def test_a_task_field_with_rules_admits_only_its_callers(
    app: LoadedApp, user: Callable[..., LoadedApp]
) -> None:
    create_note(user("alice"), "one")
    app.settle()
    trigger = "mutation { triggerTaskAllNotes { taskId } }"

    assert codes(user("alice").errors(trigger)) == ["FORBIDDEN"]
    admin = user("root", "admin")
    task = admin.data(trigger)["triggerTaskAllNotes"]["taskId"]
    app.settle()
    result = "query($id: ID!) { taskResultAllNotes(taskId: $id) { result { id } } }"
    assert len(admin.data(result, {"id": task})["taskResultAllNotes"]["result"]) == 1


def test_sql_reading_an_owner_table_without_identity_is_warned_of(app: LoadedApp) -> None:
    warnings = app.services.model.warnings

    (warning,) = warnings
    assert "Query.noteCount reads note" in warning
    assert "$identity.sub" in warning


# Tokens the local stage refuses: each a 401 that says why and never echoes the token.


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed(local_dir: Path, key: Any = None, **changes: Any) -> str:
    """A token signed by the local key (or ``key``), its claims changed."""
    jwk = signing_key(local_dir)
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": "mallory",
        "iss": local_issuer(PROJECT),
        "aud": LOCAL_CLIENT_ID,
        "token_use": "id",
        "iat": now,
        "exp": now + 600,
        **changes,
    }
    private = key or jwt.PyJWK(jwk, algorithm="RS256")
    return jwt.encode(claims, private, algorithm="RS256", headers={"kid": jwk["kid"]})


def bad_authorizations(local_dir: Path) -> dict[str, str]:
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    valid = signed(local_dir)
    header, claims, _ = valid.split(".")
    none_header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    alices_claims = b64(json.dumps({"sub": "alice"}).encode())
    return {
        "forged signature": f"Bearer {signed(local_dir, key=forger)}",
        "alg none": f"Bearer {none_header}.{claims}.",
        "expired": f"Bearer {signed(local_dir, exp=int(time.time()) - 60)}",
        "wrong issuer": f"Bearer {signed(local_dir, iss='https://evil.example')}",
        "wrong client": f"Bearer {signed(local_dir, aud='another-app')}",
        "access token": "Bearer "
        + mint_token(local_dir, PROJECT, sub="mallory", token_use="access"),
        "not a JWT": "Bearer not-a-token",
        "other scheme": "Basic bWFsbG9yeTpzZWNyZXQ=",
        "bearer without token": "Bearer",
        "tampered claims": f"Bearer {header}.{alices_claims}.{valid.split('.')[2]}",
    }


def test_every_bad_token_is_a_401_that_says_why(
    app: LoadedApp, local_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    messages = {}
    for case, authorization in bad_authorizations(local_dir).items():
        response = app.as_caller(authorization).post(
            json.dumps({"query": "{ listArticle { items { id } } }"})
        )

        assert response.status_code == 401, case
        assert response.headers["WWW-Authenticate"].startswith("Bearer"), case
        (error,) = json.loads(response.body)["errors"]
        assert error["extensions"]["code"] == "UNAUTHENTICATED", case
        token = authorization.partition(" ")[2]
        assert not token or token not in error["message"], case
        if token:
            assert token not in caplog.text, case
        messages[case] = error["message"]
    assert len(set(messages.values())) >= 7, messages
    assert "expired" in messages["expired"]
    assert "issuer" in messages["wrong issuer"]


def test_a_token_is_taken_bare_or_after_bearer(app: LoadedApp, local_dir: Path) -> None:
    token = mint_token(local_dir, PROJECT, sub="alice")
    for authorization in (token, f"Bearer {token}", f"bearer {token}"):
        created = app.as_caller(authorization).data(CREATE_NOTE, {"t": "x"})["createNote"]
        assert created["owner"] == "alice"
