"""Who is calling: users' tokens (Cognito's on AWS, the local stage's own on ``make
run``) checked into an :class:`Identity`, or :data:`PUBLIC` without one."""

from chalicelib.auth.identity import PUBLIC, Identity
from chalicelib.auth.local import local_verifier
from chalicelib.auth.tokens import (
    KeysUnavailable,
    TokenError,
    TokenVerifier,
    bearer_token,
    cognito_verifier,
)

__all__ = [
    "PUBLIC",
    "Identity",
    "KeysUnavailable",
    "TokenError",
    "TokenVerifier",
    "bearer_token",
    "cognito_verifier",
    "local_verifier",
]
