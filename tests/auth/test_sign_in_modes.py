"""Who a request is, stage by stage (docs/auth.md#who-is-calling): the Authorization
header read by ``Services.authenticate`` under each ``OCG_AUTH_MODE``, on AWS and locally."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chalicelib.auth import PUBLIC, Identity, TokenError
from chalicelib.auth.local import mint_token
from chalicelib.schema import load_schema
from chalicelib.services import Services
from chalicelib.settings import load_settings
from tests.conftest import EXAMPLE_SCHEMA

AWS = {
    "OCG_PROJECT": "shop",
    "OCG_MODE": "aws",
    "AWS_REGION": "eu-west-1",
    "OCG_ACCOUNT_ID": "210987654321",
}
POOL = {"OCG_COGNITO_USER_POOL_ID": "eu-west-1_AbC123", "OCG_COGNITO_CLIENT_ID": "4abcdef"}
ALICE = Identity("alice", "alice", frozenset({"admin"}))


class FixedVerifier:
    """Stands in for the user pool's verifier: one token it knows, else refused."""

    def verify(self, token: str, *, now: float | None = None) -> Identity:
        if token != "a.b.c":
            raise TokenError("the token's signature does not verify")
        return ALICE


def services(**environ: str) -> Services:
    settings = load_settings(environ)
    built = Services(settings, load_schema(EXAMPLE_SCHEMA, check_sql=False), lambda _: None)
    if not settings.is_local:
        built.token_verifier = FixedVerifier()  # type: ignore[assignment]
    return built


@pytest.mark.parametrize("mode", ["api_key", "both"])
def test_without_a_token_a_key_holder_is_public(mode: str) -> None:
    assert services(**AWS, **POOL, OCG_AUTH_MODE=mode).authenticate(None) is PUBLIC
    assert services(**AWS, **POOL, OCG_AUTH_MODE=mode).authenticate("  ") is PUBLIC


def test_a_cognito_stage_refuses_a_request_without_a_token() -> None:
    with pytest.raises(TokenError, match="needs a signed-in user"):
        services(**AWS, **POOL, OCG_AUTH_MODE="cognito").authenticate(None)


@pytest.mark.parametrize("mode", ["cognito", "both"])
def test_a_stage_with_a_pool_takes_its_tokens(mode: str) -> None:
    stage = services(**AWS, **POOL, OCG_AUTH_MODE=mode)

    assert stage.authenticate("Bearer a.b.c") == ALICE
    assert stage.authenticate("a.b.c") == ALICE
    with pytest.raises(TokenError, match="signature"):
        stage.authenticate("Bearer x.y.z")


def test_an_api_key_stage_refuses_tokens_rather_than_ignore_them() -> None:
    with pytest.raises(TokenError, match="takes no user tokens"):
        services(**AWS, OCG_AUTH_MODE="api_key").authenticate("Bearer a.b.c")


def test_the_gateway_asks_for_the_key_unless_the_stage_is_cognito() -> None:
    def settings(mode: str) -> Any:
        return load_settings({**AWS, **POOL, "OCG_AUTH_MODE": mode})

    assert settings("api_key").api_key_required and not settings("api_key").accepts_tokens
    assert settings("both").api_key_required and settings("both").accepts_tokens
    assert not settings("cognito").api_key_required and settings("cognito").token_required


def test_the_local_stage_takes_its_own_tokens_and_requests_without(tmp_path: Path) -> None:
    stage = services(OCG_MODE="local", OCG_PROJECT="shop", OCG_LOCAL_DIR=str(tmp_path))
    token = mint_token(tmp_path, "shop", sub="alice", groups=["admin"])

    assert stage.authenticate(None) is PUBLIC
    assert stage.authenticate(f"Bearer {token}") == Identity("alice", "alice", frozenset({"admin"}))
    other_project = mint_token(tmp_path, "other", sub="alice")
    with pytest.raises(TokenError, match="issuer"):
        stage.authenticate(other_project)
