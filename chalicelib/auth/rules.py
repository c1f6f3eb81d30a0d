"""What ``@auth`` grants a caller: the one place the schema's rules meet an identity.

Rules only grant, and what no rule grants is refused (deny by default); a type or field
without ``@auth`` grants everything to every caller the stage lets in. A grant is one of
three: nothing, the caller's own items (an owner rule), or every item. The resolvers
turn :attr:`Grant.OWN` into conditions DynamoDB checks (an update or delete of an item
whose owner is someone else fails as if the item did not exist) and into a query of the
owner's index for lists, so no one's items are read to be filtered out.

``{allow: public}`` admits every caller, signed in or not: a token adds rights, it never
takes any away (Amplify differs here: its public rules admit API-key requests only).
"""

from __future__ import annotations

from enum import Enum

from chalicelib.auth.identity import Identity
from chalicelib.schema.model import AuthRule, AuthRules, AuthStrategy, Operation


class Grant(Enum):
    NONE = "none"
    OWN = "own"
    ALL = "all"


def grant(rules: AuthRules, operation: Operation, identity: Identity) -> Grant:
    """What ``identity`` may do of ``operation`` on a type with ``rules``."""
    if rules is None:
        return Grant.ALL
    granted = Grant.NONE
    for rule in rules:
        if operation not in rule.operations:
            continue
        if _admits_all(rule, identity):
            return Grant.ALL
        if rule.allow is AuthStrategy.OWNER and identity.signed_in:
            granted = Grant.OWN
    return granted


def may_call(rules: AuthRules, identity: Identity) -> bool:
    """Whether ``identity`` may call a Query or Mutation field with ``rules`` (a task's
    trigger and result, a join mutation): fields have no owner, only callers."""
    return rules is None or any(_admits_all(rule, identity) for rule in rules)


def may_assign_owner(rules: AuthRules, operation: Operation, identity: Identity) -> bool:
    """Whether ``identity`` may write the owner field itself (creating an item for
    someone else, or handing it over): only a member of a group ruled for the operation.
    Everyone else's items are owned by whoever created them."""
    return any(
        rule.allow is AuthStrategy.GROUPS
        and operation in rule.operations
        and bool(rule.groups & identity.groups)
        for rule in rules or ()
    )


def _admits_all(rule: AuthRule, identity: Identity) -> bool:
    if rule.allow is AuthStrategy.PUBLIC:
        return True
    if rule.allow is AuthStrategy.PRIVATE:
        return identity.signed_in
    if rule.allow is AuthStrategy.GROUPS:
        return bool(rule.groups & identity.groups)
    return False
