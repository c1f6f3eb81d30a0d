"""``@auth``: rules on the model, rules refused where they cannot work, and warnings of
task SQL that reads owners' rows for every caller."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.schema import SchemaError, load_schema, public_sdl
from chalicelib.schema.__main__ import main
from chalicelib.schema.model import AuthRule, AuthStrategy, Operation
from tests.schema.test_invalid import Case

ALL = frozenset(Operation)
RULES = (
    '[{allow: owner}, {allow: groups, groups: ["admin"], operations: [read, delete]}, '
    "{allow: public, operations: [read, list]}, {allow: private}]"
)


def post(rules: str = "[{allow: owner}]", owner: str = "owner: String") -> str:
    """An owner-ruled entity on lines 1-5; its first rule's ``{`` is at column 25."""
    return f"type Post @auth(rules: {rules}) {{\n  id: ID!\n  title: String\n  {owner}\n}}\n"


def query(field: str, rules: str = "[{allow: owner}]") -> str:
    """``post(rules)``, then ``type Query`` whose field is on line 7."""
    return post(rules) + "type Query {\n" + field + "}\n"


JOIN = (
    "INSERT INTO $join_table(likes) (postId:Post, linkedId:Post) "
    "VALUES ($args.postId, $args.linkedId)"
)
LIKE = (  # line 7 after post() and "type Mutation {"
    "  like(postId: ID!, linkedId: ID!) @auth(rules: [{allow: private}]) "
    f'@sql_query(query: "{JOIN}")\n'
)


def write(tmp_path: Path, sdl: str) -> Path:
    path = tmp_path / "schema.graphql"
    path.write_text(sdl)
    return path


# --- rules on the model


def test_every_rule_kind_lands_on_the_entity(tmp_path: Path) -> None:
    (entity,) = load_schema(write(tmp_path, post(RULES))).entities
    assert entity.auth == (
        AuthRule(AuthStrategy.OWNER, ALL, owner_field="owner"),
        AuthRule(
            AuthStrategy.GROUPS,
            frozenset({Operation.READ, Operation.DELETE}),
            groups=frozenset({"admin"}),
        ),
        AuthRule(AuthStrategy.PUBLIC, frozenset({Operation.READ, Operation.LIST})),
        AuthRule(AuthStrategy.PRIVATE, ALL),
    )
    assert entity.owner_field == "owner"


def test_an_entity_without_auth_has_no_rules(tmp_path: Path) -> None:
    (entity,) = load_schema(write(tmp_path, "type Note {\n  id: ID!\n}\n")).entities
    assert (entity.auth, entity.owner_field) == (None, None)


def test_a_named_owner_field_of_type_id(tmp_path: Path) -> None:
    sdl = post('[{allow: owner, ownerField: "author"}]', owner="author: ID")
    (entity,) = load_schema(write(tmp_path, sdl)).entities
    assert entity.auth == (AuthRule(AuthStrategy.OWNER, ALL, owner_field="author"),)
    assert entity.owner_field == "author"


def test_one_rule_without_a_list_is_a_list_of_one(tmp_path: Path) -> None:
    (entity,) = load_schema(write(tmp_path, post("{allow: private}"))).entities
    assert entity.auth == (AuthRule(AuthStrategy.PRIVATE, ALL),)


def test_rules_on_a_type_extension(tmp_path: Path) -> None:
    sdl = "type Note {\n  id: ID!\n}\nextend type Note @auth(rules: [{allow: private}])\n"
    (entity,) = load_schema(write(tmp_path, sdl)).entities
    assert entity.auth == (AuthRule(AuthStrategy.PRIVATE, ALL),)


def test_rules_on_tasks_and_join_mutations(tmp_path: Path) -> None:
    admins = '@auth(rules: [{allow: groups, groups: ["admin"]}])'
    delete = "DELETE l FROM $join_table(likes) l WHERE l.postId = $args.postId"
    sdl = (
        query(f'  total: Int {admins} @sql_query(query: "SELECT COUNT(*) FROM post")\n')
        + "type Mutation {\n"
        + LIKE
        + f'  unlike(postId: ID!) {admins} @sql_query(query: "{delete}")\n'
        + '  unruled(postId: ID!) @sql_query(query: "DELETE l FROM $join_table(likes) l")\n'
        + "}\n"
    )
    model = load_schema(write(tmp_path, sdl))
    group = (AuthRule(AuthStrategy.GROUPS, ALL, groups=frozenset({"admin"})),)
    assert [t.auth for t in model.query_tasks] == [group]
    assert [m.auth for m in model.insert_mutations] == [(AuthRule(AuthStrategy.PRIVATE, ALL),)]
    assert [m.auth for m in model.delete_mutations] == [group, None]


def test_the_directive_declared_as_amplify_does_loads(tmp_path: Path) -> None:
    declaration = "directive @auth(rules: [AuthRule!]!) on OBJECT | FIELD_DEFINITION\n"
    (entity,) = load_schema(write(tmp_path, declaration + post())).entities
    assert entity.owner_field == "owner"


def test_the_public_sdl_is_that_of_the_schema_without_auth(tmp_path: Path) -> None:
    ruled = public_sdl(load_schema(write(tmp_path, post(RULES))))
    plain = public_sdl(
        load_schema(write(tmp_path, post(RULES).replace(f" @auth(rules: {RULES})", "")))
    )
    assert ruled == plain
    for name in ("AuthRule", "AuthStrategy", "ModelOperation", "auth", "@"):
        assert name not in ruled


def test_the_directives_types_are_not_the_models(tmp_path: Path) -> None:
    model = load_schema(write(tmp_path, post(RULES)))
    assert [e.name for e in model.entities] == ["Post"]
    assert model.enums == {}
    assert model.task_responses == ()


# --- rules refused

CASES = {
    "unknown owner field": Case(
        post('[{allow: owner, ownerField: "author"}]'), "auth-owner-field", "Post", 1, 25
    ),
    "owner field of a wrong type": Case(
        post(owner="owner: Int"), "auth-owner-field", "Post", 1, 25
    ),
    "owner field a list": Case(post(owner="owner: [String]"), "auth-owner-field", "Post", 1, 25),
    "owner field non-null": Case(post(owner="owner: String!"), "auth-owner-field", "Post", 1, 25),
    "owner field managed": Case(
        post('[{allow: owner, ownerField: "id"}]'), "auth-owner-field", "Post", 1, 25
    ),
    "two owner fields": Case(
        post('[{allow: owner}, {allow: owner, ownerField: "title"}]'),
        "auth-owner-field",
        "Post",
        1,
        41,
    ),
    "groups rule without groups": Case(post("[{allow: groups}]"), "auth-rule", "Post", 1, 25),
    "groups on a private rule": Case(
        post('[{allow: private, groups: ["a"]}]'), "auth-rule", "Post", 1, 25
    ),
    "ownerField on a public rule": Case(
        post('[{allow: public, ownerField: "owner"}]'), "auth-rule", "Post", 1, 25
    ),
    "operations: []": Case(post("[{allow: private, operations: []}]"), "auth-rule", "Post", 1, 25),
    "no rules": Case(post("[]"), "auth-rule", "Post", 1, 11),
    "unknown strategy": Case(post("[{allow: custom}]"), "directive-argument", "Post", 1, 33),
    "unsupported rule field": Case(
        post("[{allow: owner, provider: oidc}]"), "directive-argument", "Post", 1, 40
    ),
    "directive declared differently": Case(
        "directive @auth(rules: [AuthRule]) on OBJECT\n" + post(),
        "directive-declaration",
        "@auth",
        1,
        12,
    ),
    "type named AuthRule": Case(
        post() + "type AuthRule {\n  id: ID!\n}\n", "reserved-type-name", "AuthRule", 6, 6
    ),
    "enum named AuthStrategy": Case(
        "enum AuthStrategy {\n  A\n}\n" + post(), "reserved-type-name", "AuthStrategy", 1, 6
    ),
    "input named ModelOperation": Case(
        post() + "input ModelOperation {\n  a: Int\n}\n",
        "reserved-type-name",
        "ModelOperation",
        6,
        7,
    ),
    "rules on an entity field": Case(
        post(owner="owner: String @auth(rules: [{allow: private}])"),
        "directive-placement",
        "Post.owner",
        4,
        17,
    ),
    "rules on a @task_response type": Case(
        query('  rows: [Row] @sql_query(query: "SELECT 1 AS n")\n')
        + "type Row @task_response @auth(rules: [{allow: private}]) {\n  n: Int\n}\n",
        "directive-placement",
        "Row",
        9,
        25,
    ),
    "rules on a @task_response field": Case(
        query('  rows: [Row] @sql_query(query: "SELECT 1 AS n")\n')
        + "type Row @task_response {\n  n: Int @auth(rules: [{allow: private}])\n}\n",
        "directive-placement",
        "Row.n",
        10,
        10,
    ),
    "rules on the Query type": Case(
        post()
        + "type Query @auth(rules: [{allow: private}]) {\n"
        + '  n: Int @sql_query(query: "SELECT 1")\n}\n',
        "directive-placement",
        "Query",
        6,
        12,
    ),
    "rules on the Mutation type": Case(
        post() + "type Mutation @auth(rules: [{allow: private}]) {\n" + LIKE + "}\n",
        "directive-placement",
        "Mutation",
        6,
        15,
    ),
    "owner rule on a task": Case(
        query('  mine: Int @auth(rules: [{allow: owner}]) @sql_query(query: "SELECT 1")\n'),
        "auth-rule",
        "Query.mine",
        7,
        27,
    ),
    "operations on a task's rule": Case(
        query(
            "  n: Int @auth(rules: [{allow: private, operations: [read]}]) "
            '@sql_query(query: "SELECT 1")\n'
        ),
        "auth-rule",
        "Query.n",
        7,
        24,
    ),
    "owner rule on a join mutation": Case(
        post() + "type Mutation {\n" + LIKE.replace("{allow: private}", "{allow: owner}") + "}\n",
        "auth-rule",
        "Mutation.like",
        7,
        50,
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=list(CASES))
def test_broken_rules_are_reported_where_they_break(tmp_path: Path, case: Case) -> None:
    path = write(tmp_path, case.sdl)
    with pytest.raises(SchemaError) as caught:
        load_schema(path)
    found = [(p.rule, p.field, p.line, p.column) for p in caught.value.problems]
    assert found[0] == (case.rule, case.field, case.line, case.column), str(caught.value)
    assert str(caught.value).splitlines()[0].startswith(f"{path}:{case.line}:{case.column}: ")


def test_a_non_null_owner_field_says_how_to_declare_it(tmp_path: Path) -> None:
    with pytest.raises(SchemaError) as caught:
        load_schema(write(tmp_path, post(owner="owner: String!")))
    (problem,) = caught.value.problems
    assert "from the creator's token" in problem.message
    assert "declare it as `owner: String`" in problem.message


def test_a_reserved_type_name_is_the_only_problem_reported(tmp_path: Path) -> None:
    with pytest.raises(SchemaError) as caught:
        load_schema(write(tmp_path, post() + "type AuthRule {\n  id: ID!\n}\n"))
    assert [p.rule for p in caught.value.problems] == ["reserved-type-name"]


# --- warnings of SQL reading owners' rows

UNFILTERED = "SELECT COUNT(*) FROM post"


def warnings(tmp_path: Path, sdl: str, *, check_sql: bool = True) -> tuple[str, ...]:
    return load_schema(write(tmp_path, sdl), check_sql=check_sql).warnings


def test_a_task_reading_an_owner_table_without_identity_sub_is_warned(tmp_path: Path) -> None:
    path = tmp_path / "schema.graphql"
    (warning,) = warnings(tmp_path, query(f'  total: Int @sql_query(query: "{UNFILTERED}")\n'))
    assert warning == (
        f"{path}:7:54: warning: Query.total reads post, whose items belong to their owners, "
        "without $identity.sub: every caller who may trigger it sees every owner's rows. "
        'Add "WHERE post.owner = $identity.sub" (by its alias, if it has one), or give the '
        "field @auth rules that admit only those who may see all ({allow: groups, ...})"
    )


@pytest.mark.parametrize(
    "field",
    [
        '  mine: Int @sql_query(query: "SELECT COUNT(*) FROM post p WHERE p.owner = '
        '$identity.sub")\n',
        '  mine: Int @sql_query(query: "SELECT COUNT(*) FROM post '
        "WHERE owner = '$identity.sub'\")\n",
    ],
    ids=["filtered", "filtered in a string"],
)
def test_a_task_filtering_by_its_caller_is_not_warned(tmp_path: Path, field: str) -> None:
    assert warnings(tmp_path, query(field)) == ()


@pytest.mark.parametrize(
    "field",
    [
        f'  total: Int @auth(rules: [{{allow: private}}]) @sql_query(query: "{UNFILTERED}")\n',
        f'  total: Int @sql_query(query: "{UNFILTERED} -- $identity.sub")\n',
        f'  total: Int @auth(rules: [{{allow: groups, groups: ["admin"]}}, {{allow: public}}]) '
        f'@sql_query(query: "{UNFILTERED}")\n',
    ],
    ids=["signed-in callers", "identity in a comment", "admins and the public"],
)
def test_a_task_without_identity_sub_is_warned_unless_only_groups_call_it(
    tmp_path: Path, field: str
) -> None:
    (warning,) = warnings(tmp_path, query(field))
    assert "Query.total reads post" in warning


def test_a_task_only_named_groups_may_call_is_not_warned(tmp_path: Path) -> None:
    field = (
        f'  total: Int @auth(rules: [{{allow: groups, groups: ["admin"]}}]) '
        f'@sql_query(query: "{UNFILTERED}")\n'
    )
    assert warnings(tmp_path, query(field)) == ()


def test_a_task_reading_an_owner_table_twice_is_warned_once(tmp_path: Path) -> None:
    sql = "SELECT COUNT(*) FROM post a JOIN Post b ON a.id = b.id"
    (warning,) = warnings(tmp_path, query(f'  n: Int @sql_query(query: "{sql}")\n'))
    assert '"WHERE post.owner = $identity.sub"' in warning


def test_tables_without_owner_rules_are_not_warned(tmp_path: Path) -> None:
    sdl = query(f'  total: Int @sql_query(query: "{UNFILTERED}")\n', rules="[{allow: private}]")
    assert warnings(tmp_path, sdl) == ()


def test_a_deletion_task_joining_an_owner_table_is_warned(tmp_path: Path) -> None:
    delete = "DELETE l FROM $join_table(likes) l JOIN post p ON p.id = l.postId"
    sdl = post() + "type Mutation {\n" + LIKE + f'  purge @sql_query(query: "{delete}")\n}}\n'
    (warning,) = warnings(tmp_path, sdl)
    assert "Mutation.purge reads post" in warning
    assert "acts on every owner's rows" in warning


def test_without_sql_checks_there_are_no_warnings(tmp_path: Path) -> None:
    sdl = query(f'  total: Int @sql_query(query: "{UNFILTERED}")\n')
    assert warnings(tmp_path, sdl, check_sql=False) == ()


def test_the_cli_prints_warnings_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, query(f'  total: Int @sql_query(query: "{UNFILTERED}")\n'))
    assert main([str(path)]) == 0
    captured = capsys.readouterr()
    assert captured.err == "\n".join(load_schema(path).warnings) + "\n"
    assert captured.out == public_sdl(load_schema(path))
