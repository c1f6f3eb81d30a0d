"""Who is calling: what the API's rules (``@auth``) and a task's ``$identity`` see.

An identity comes from a verified token (chalicelib.auth.tokens) or is :data:`PUBLIC`:
a caller who did not sign in, an API key holder or, on the local stage, a request
without a token. It carries only what the rules use, so nothing else of the token is
kept around a request.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Identity:
    sub: str | None  # None: not signed in (API key holder, or local request without token)
    username: str | None
    groups: frozenset[str]

    @property
    def signed_in(self) -> bool:
        return self.sub is not None


PUBLIC = Identity(None, None, frozenset())
