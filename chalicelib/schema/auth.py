"""``@auth(rules: [...])``: who may do what, a compatible subset of Amplify's rules.

On an entity type the rules say who may create, read, update, delete and list its items;
on a field of ``Query`` or ``Mutation`` (a task or a join mutation), who may call it.
Rules only grant: what no rule grants is refused (docs/auth.md). The loader declares the
directive and its input types, so a schema written for Amplify loads unchanged where it
uses this subset, and one that asks for what cannot work is refused with file and line.

A task's SQL reads the whole lake, past the API's rules: a field whose SQL reads an
owner-ruled table without ``$identity.sub`` gets a warning, since every caller would see
every owner's rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from graphql import (
    DirectiveNode,
    GraphQLError,
    GraphQLField,
    GraphQLObjectType,
    GraphQLSchema,
    ListValueNode,
    Node,
)
from graphql.execution.values import get_argument_values

from chalicelib.schema.model import (
    MANAGED_FIELDS,
    AuthRule,
    AuthRules,
    AuthStrategy,
    Entity,
    Operation,
    TypeKind,
)
from chalicelib.schema.objects import directive
from chalicelib.schema.operations import Operations, SqlField, TableRead
from chalicelib.schema.report import Report
from chalicelib.sql.placeholders import Kind

AUTH = "auth"
DECLARATION = "directive @auth(rules: [AuthRule!]!) on OBJECT | FIELD_DEFINITION"
# The directive's argument types, declared with it. They are the loader's: a user type
# of one of these names is refused, and none of them is part of the public API.
TYPES = {
    "AuthRule": (
        "input AuthRule { allow: AuthStrategy!, ownerField: String, groups: [String!], "
        "operations: [ModelOperation!] }"
    ),
    "AuthStrategy": f"enum AuthStrategy {{ {' '.join(s.value for s in AuthStrategy)} }}",
    "ModelOperation": f"enum ModelOperation {{ {' '.join(o.value for o in Operation)} }}",
}
DEFAULT_OWNER_FIELD = "owner"
OWNER_FIELD_TYPES = ("String", "ID")
# What a caller of a task or deletion task does with the rows its SQL reads.
_READS = {"Query": "sees every owner's rows", "Mutation": "acts on every owner's rows"}


class _Written(NamedTuple):
    """A rule as the user wrote it: where, and which of its fields were given."""

    rule: AuthRule
    node: Node
    given: frozenset[str]


def entity_rules(
    obj: GraphQLObjectType, entity: Entity, schema: GraphQLSchema, report: Report
) -> AuthRules:
    """The type's rules, checked against its fields; None without ``@auth``."""
    check_misplaced_fields(obj, report, "on an entity's field is not supported: put it on the type")
    written = _rules((obj.ast_node, *obj.extension_ast_nodes), obj.name, schema, report)
    if written is None:
        return None
    _check_owner_fields(entity, written, report)
    return tuple(w.rule for w in written)


def field_rules(
    field: GraphQLField, subject: str, schema: GraphQLSchema, report: Report
) -> AuthRules:
    """The rules of a Query or Mutation field: who may call it (no owner: no item)."""
    written = _rules((field.ast_node,), subject, schema, report)
    if written is None:
        return None
    for rule, node, given in written:
        if rule.allow is AuthStrategy.OWNER:
            message = "owner rules belong on entity types: a task or a mutation has no owner"
            report.add(node, subject, "auth-rule", message)
        elif "operations" in given:
            message = "operations belong to rules on entity types: a field is only called"
            report.add(node, subject, "auth-rule", message)
    return tuple(w.rule for w in written)


def check_misplaced(obj: GraphQLObjectType, report: Report, why: str) -> None:
    """``@auth`` on a type where it cannot work: a ``@task_response`` type or a root type."""
    if (node := _directive((obj.ast_node, *obj.extension_ast_nodes))) is not None:
        report.add(node, obj.name, "directive-placement", f"@auth {why}")


def check_misplaced_fields(obj: GraphQLObjectType, report: Report, why: str) -> None:
    """``@auth`` on the fields of a type that is not a root: rules are per type there."""
    for name, field in obj.fields.items():
        if (node := directive(field.ast_node, AUTH)) is not None:
            report.add(node, f"{obj.name}.{name}", "directive-placement", f"@auth {why}")


def owner_tables(entities: Iterable[Entity]) -> dict[str, str]:
    """The lake tables whose rows belong to their owners, with the owner's column."""
    return {e.key: e.owner_field for e in entities if e.owner_field is not None}


def check_owner_reads(operations: Operations, entities: Iterable[Entity], report: Report) -> None:
    """Warn of tasks and deletion tasks whose SQL reads owners' rows for any caller.

    SQL runs in Athena, past the API's rules; only a filter on ``$identity.sub`` keeps
    one user from another's rows. It is a warning, not a problem: a task for admins
    counting every owner's items may be what the author means.
    """
    owners = owner_tables(entities)
    rules: dict[str, AuthRules] = {f"Query.{t.name}": t.auth for t in operations.query_tasks}
    rules |= {f"Mutation.{d.name}": d.auth for d in operations.delete_mutations}
    for subject, field_rules in rules.items():
        field = operations.fields[subject]
        if _filters_by_caller(field) or _groups_only(field_rules):
            continue
        for read in _owned_reads(operations.reads.get(subject, ()), owners):
            _warn_owner_read(field, read, owners[read.table.lower()], report)


def _owned_reads(reads: Iterable[TableRead], owners: Mapping[str, str]) -> list[TableRead]:
    """The first read of each owner-ruled table."""
    first: dict[str, TableRead] = {}
    for read in reads:
        if read.table.lower() in owners:
            first.setdefault(read.table.lower(), read)
    return list(first.values())


def _warn_owner_read(field: SqlField, read: TableRead, owner: str, report: Report) -> None:
    root = field.subject.split(".")[0]
    message = (
        f"reads {read.table.lower()}, whose items belong to their owners, without "
        f"$identity.sub: every caller who may trigger it {_READS[root]}. Add "
        f'"WHERE {read.table}.{owner} = $identity.sub" (by its alias, if it has one), '
        "or give the field @auth rules that admit only those who may see all "
        "({allow: groups, ...})"
    )
    report.warn(report.source.string_offset(field.sql_node, read.offset), field.subject, message)


def _groups_only(rules: AuthRules) -> bool:
    """Rules that admit named groups alone: the author chose who sees every owner's rows."""
    return bool(rules) and all(rule.allow is AuthStrategy.GROUPS for rule in rules or ())


def _filters_by_caller(field: SqlField) -> bool:
    return any(p.kind is Kind.IDENTITY and p.name == "sub" for p in field.placeholders or ())


def _directive(nodes: Iterable[Node | None]) -> DirectiveNode | None:
    """The ``@auth`` of a definition and its extensions (graphql-core allows one)."""
    return next((d for node in nodes if (d := directive(node, AUTH)) is not None), None)


def _rules(
    nodes: Iterable[Node | None], subject: str, schema: GraphQLSchema, report: Report
) -> list[_Written] | None:
    used = _directive(nodes)
    if used is None:
        return None
    declared = schema.get_directive(AUTH)
    assert declared is not None  # the loader declares it, or checked the user's declaration
    try:
        values = get_argument_values(declared, used)
    except GraphQLError as error:  # SDL validation does not check argument values
        report.add((error.nodes or [used])[0], subject, "directive-argument", error.message)
        return []
    raw_rules: Sequence[Mapping[str, Any]] = values["rules"]
    if not raw_rules:
        report.add(used, subject, "auth-rule", "@auth needs at least one rule")
    written = zip(raw_rules, _rule_nodes(used), strict=True)
    return [
        _Written(_rule(raw, node, subject, report), node, frozenset(raw)) for raw, node in written
    ]


def _rule_nodes(used: DirectiveNode) -> Sequence[Node]:
    """Each rule's object in the user's file; one object alone is a list of one."""
    value = next(a.value for a in used.arguments or () if a.name.value == "rules")
    return value.values if isinstance(value, ListValueNode) else (value,)


def _rule(raw: Mapping[str, Any], node: Node, subject: str, report: Report) -> AuthRule:
    allow = AuthStrategy(raw["allow"])
    groups = raw.get("groups")
    owner_field = raw.get("ownerField")
    operations = raw.get("operations")
    if allow is AuthStrategy.GROUPS and not groups:
        report.add(node, subject, "auth-rule", '{allow: groups} needs groups: ["name", ...]')
    elif allow is not AuthStrategy.GROUPS and groups is not None:
        message = f"groups belong to {{allow: groups}} rules, not {{allow: {allow.value}}}"
        report.add(node, subject, "auth-rule", message)
    if allow is not AuthStrategy.OWNER and owner_field is not None:
        message = f"ownerField belongs to {{allow: owner}} rules, not {{allow: {allow.value}}}"
        report.add(node, subject, "auth-rule", message)
    if operations is not None and not operations:
        report.add(node, subject, "auth-rule", "operations: [] grants nothing: leave the rule out")
    return AuthRule(
        allow=allow,
        operations=frozenset(Operation(o) for o in operations or Operation),
        owner_field=(owner_field or DEFAULT_OWNER_FIELD) if allow is AuthStrategy.OWNER else None,
        groups=frozenset(groups or ()),
    )


def _check_owner_fields(entity: Entity, written: Iterable[_Written], report: Report) -> None:
    """One owner field per type, reported at the first rule naming each."""
    named: dict[str, Node] = {}
    for rule, node, _ in written:
        if rule.owner_field is not None:
            named.setdefault(rule.owner_field, node)
    if len(named) > 1:
        message = f"one owner field per type: the rules name {', '.join(sorted(named))}"
        report.add(list(named.values())[1], entity.name, "auth-owner-field", message)
    for name, node in named.items():
        if (problem := _owner_field_problem(entity, name)) is not None:
            report.add(node, entity.name, "auth-owner-field", problem)


def _owner_field_problem(entity: Entity, name: str) -> str | None:
    """Why ``name`` cannot hold the items' owner: the API writes it from the creator's
    token on create, and indexes it to list a user's own items."""
    field = entity.field(name)
    if name in MANAGED_FIELDS:
        return f"ownerField {name!r} is managed by the API: name a field of your own"
    if field is None:
        return (
            f"ownerField {name!r} is not a field of {entity.name}: declare it "
            f"(`{name}: String`), the API sets it from the creator's token"
        )
    ref = field.type
    if ref.kind is not TypeKind.SCALAR or ref.name not in OWNER_FIELD_TYPES or ref.is_list:
        return (
            f"ownerField {name!r} is {ref.sdl()}: an owner field holds one user's id, "
            f"declare it as `{name}: String`"
        )
    if ref.non_null:
        return (
            f"ownerField {name!r} is {ref.sdl()}: the API sets it from the creator's token, "
            f"so it must be optional in inputs: declare it as `{name}: {ref.name}`"
        )
    return None
