"""Token verification (chalicelib.auth.tokens) on real RS256 signatures: what is accepted,
each refusal and its message, the Authorization header, and Cognito's published keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from chalicelib.auth import (
    PUBLIC,
    Identity,
    KeysUnavailable,
    TokenError,
    TokenVerifier,
    bearer_token,
    cognito_verifier,
)
from chalicelib.auth.tokens import MALFORMED, NOT_A_JWT, REFETCH_SECONDS, JwksKeys, fetch_url

REGION = "eu-west-1"
POOL = "eu-west-1_AbC123"
ISSUER = f"https://cognito-idp.{REGION}.amazonaws.com/{POOL}"
JWKS_URL = f"{ISSUER}/.well-known/jwks.json"
CLIENT = "4abcdefghijklmnop"
KID = "key-1"
NOW = 1_750_000_000


def generate(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def numbers(private: rsa.RSAPrivateKey) -> tuple[int, int]:
    public = private.public_key().public_numbers()
    return public.n, public.e


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return generate()


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return generate()


class Keys:
    """A KeySource holding fixed keys."""

    def __init__(self, keys: Mapping[str, tuple[int, int]]) -> None:
        self.keys = dict(keys)

    def key(self, kid: str) -> tuple[int, int] | None:
        return self.keys.get(kid)


@pytest.fixture
def verifier(key: rsa.RSAPrivateKey) -> TokenVerifier:
    return TokenVerifier(Keys({KID: numbers(key)}), issuer=ISSUER, client_id=CLIENT)


def id_claims(**changes: Any) -> dict[str, Any]:
    """An ID token's claims as Cognito writes them, changed; a None value removes one."""
    claims: dict[str, Any] = {
        "sub": "7f1c-alice",
        "cognito:groups": ["admin", "editors"],
        "iss": ISSUER,
        "cognito:username": "alice",
        "aud": CLIENT,
        "token_use": "id",
        "auth_time": NOW - 10,
        "iat": NOW - 10,
        "exp": NOW + 3600,
        "email": "alice@example.com",
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def sign(private: rsa.RSAPrivateKey, claims: Mapping[str, Any], kid: str | None = KID) -> str:
    headers = {} if kid is None else {"kid": kid}
    return jwt.encode(dict(claims), private, algorithm="RS256", headers=headers)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def by_hand(header: Mapping[str, Any], claims: Mapping[str, Any], signature: bytes) -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}.{b64(signature)}"


def refusal(verifier: TokenVerifier, token: str, now: float = NOW) -> str:
    """The refusal's message, checked to hold nothing of the token."""
    with pytest.raises(TokenError) as refused:
        verifier.verify(token, now=now)
    message = str(refused.value)
    assert not token or token not in message
    for segment in token.split("."):
        assert len(segment) < 8 or segment not in message
    return message


def test_a_valid_id_token_is_its_identity(key: rsa.RSAPrivateKey, verifier: TokenVerifier) -> None:
    identity = verifier.verify(sign(key, id_claims()), now=NOW)
    assert identity == Identity("7f1c-alice", "alice", frozenset({"admin", "editors"}))
    assert identity.signed_in
    assert not PUBLIC.signed_in


def test_username_and_groups_may_be_missing(
    key: rsa.RSAPrivateKey, verifier: TokenVerifier
) -> None:
    token = sign(key, id_claims(**{"cognito:username": None, "cognito:groups": None}))
    assert verifier.verify(token, now=NOW) == Identity("7f1c-alice", None, frozenset())
    token = sign(key, id_claims(**{"cognito:username": None, "username": "al"}))
    assert verifier.verify(token, now=NOW).username == "al"


def test_the_clock_is_the_real_one_unless_given(
    key: rsa.RSAPrivateKey, verifier: TokenVerifier
) -> None:
    now = int(time.time())
    assert verifier.verify(sign(key, id_claims(iat=now, exp=now + 60))).sub == "7f1c-alice"
    assert "expired" in refusal(verifier, sign(key, id_claims()), now=time.time())


def test_a_4096_bit_key_is_accepted() -> None:
    big = generate(4096)
    verifier = TokenVerifier(Keys({KID: numbers(big)}), issuer=ISSUER, client_id=CLIENT)
    assert verifier.verify(sign(big, id_claims()), now=NOW).username == "alice"


def test_a_signature_by_another_key_under_the_same_kid_is_refused(
    other_key: rsa.RSAPrivateKey, verifier: TokenVerifier
) -> None:
    forged = sign(other_key, id_claims())
    assert refusal(verifier, forged) == "the token's signature is not valid"


def test_changed_claims_break_the_signature(
    key: rsa.RSAPrivateKey, verifier: TokenVerifier
) -> None:
    header, _, signature = sign(key, id_claims()).split(".")
    claims = b64(json.dumps(id_claims(**{"cognito:groups": ["admin", "root"]})).encode())
    assert refusal(verifier, f"{header}.{claims}.{signature}") == (
        "the token's signature is not valid"
    )


def test_alg_none_is_refused(verifier: TokenVerifier) -> None:
    token = by_hand({"alg": "none", "typ": "JWT", "kid": KID}, id_claims(), b"")
    assert token.endswith(".")
    assert refusal(verifier, token) == (
        "the token's algorithm 'none' (alg) is not accepted: tokens must be signed with RS256"
    )


def test_hs256_signed_with_the_public_key_is_refused(
    key: rsa.RSAPrivateKey, verifier: TokenVerifier
) -> None:
    """The classic confusion: the public key (which anyone may fetch) used as an HMAC
    secret, for a verifier that would hand "the key" to whatever alg the token names."""
    header = {"alg": "HS256", "typ": "JWT", "kid": KID}
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    unsigned = by_hand(header, id_claims(), b"").rstrip(".")
    token = f"{unsigned}.{b64(hmac.new(pem, unsigned.encode(), hashlib.sha256).digest())}"
    assert refusal(verifier, token) == (
        "the token's algorithm 'HS256' (alg) is not accepted: tokens must be signed with RS256"
    )


def test_other_algs_are_refused_by_name_or_not_repeated(
    key: rsa.RSAPrivateKey, verifier: TokenVerifier
) -> None:
    rs512 = jwt.encode(id_claims(), key, algorithm="RS512", headers={"kid": KID})
    assert "'RS512'" in refusal(verifier, rs512)
    odd = by_hand({"alg": "<script>" * 10, "kid": KID}, id_claims(), b"x")
    assert refusal(verifier, odd) == (
        "the token's algorithm (alg) is not accepted: tokens must be signed with RS256"
    )
    missing = by_hand({"kid": KID}, id_claims(), b"x")
    assert "the token's algorithm (alg) is not accepted" in refusal(verifier, missing)


def test_an_expired_token_is_refused(key: rsa.RSAPrivateKey, verifier: TokenVerifier) -> None:
    expired = "the token has expired: sign in again"
    assert refusal(verifier, sign(key, id_claims(exp=NOW - 1))) == expired
    assert refusal(verifier, sign(key, id_claims(exp=NOW))) == expired
    assert verifier.verify(sign(key, id_claims(exp=NOW + 1)), now=NOW).sub


def test_a_token_issued_in_the_future_is_refused(
    key: rsa.RSAPrivateKey, verifier: TokenVerifier
) -> None:
    assert refusal(verifier, sign(key, id_claims(iat=NOW + 60))) == (
        "the token's issue time (iat) is in the future: check the clock"
    )
    assert verifier.verify(sign(key, id_claims(iat=NOW)), now=NOW).sub


def test_the_leeway_applies_to_both_times(key: rsa.RSAPrivateKey) -> None:
    lenient = TokenVerifier(
        Keys({KID: numbers(key)}), issuer=ISSUER, client_id=CLIENT, leeway_seconds=30
    )
    assert lenient.verify(sign(key, id_claims(iat=NOW + 30, exp=NOW - 29)), now=NOW).sub
    assert "in the future" in refusal(lenient, sign(key, id_claims(iat=NOW + 31)))
    assert "expired" in refusal(lenient, sign(key, id_claims(exp=NOW - 30)))
    with pytest.raises(ValueError, match="leeway_seconds cannot be negative"):
        TokenVerifier(Keys({}), issuer=ISSUER, client_id=CLIENT, leeway_seconds=-1)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"exp": None}, "the token has no valid expiry time (exp)"),
        ({"exp": "tomorrow"}, "the token has no valid expiry time (exp)"),
        ({"exp": True}, "the token has no valid expiry time (exp)"),
        ({"exp": float("inf")}, "the token has no valid expiry time (exp)"),
        ({"exp": float("nan")}, "the token has no valid expiry time (exp)"),
        ({"iat": None}, "the token has no valid issue time (iat)"),
        ({"iat": float("nan")}, "the token has no valid issue time (iat)"),
        (
            {"iss": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Other"},
            "the token is from another issuer than the one this API trusts (iss)",
        ),
        ({"iss": None}, "the token is from another issuer than the one this API trusts (iss)"),
        ({"aud": "another-client"}, "the token was issued to another app client (aud)"),
        ({"aud": [CLIENT]}, "the token was issued to another app client (aud)"),
        ({"aud": None}, "the token was issued to another app client (aud)"),
        ({"token_use": None}, "the token is not an ID token (token_use must be 'id')"),
        ({"token_use": "refresh"}, "the token is not an ID token (token_use must be 'id')"),
        ({"sub": None}, "the token names no subject (sub)"),
        ({"sub": ""}, "the token names no subject (sub)"),
        ({"sub": 42}, "the token names no subject (sub)"),
        ({"cognito:username": ["alice"]}, "the token's username is not a string"),
        (
            {"cognito:groups": "admin"},
            "the token's groups (cognito:groups) are not a list of names",
        ),
        (
            {"cognito:groups": ["admin", 1]},
            "the token's groups (cognito:groups) are not a list of names",
        ),
    ],
)
def test_a_claim_that_does_not_hold_is_refused(
    key: rsa.RSAPrivateKey, verifier: TokenVerifier, changes: dict[str, Any], message: str
) -> None:
    assert refusal(verifier, sign(key, id_claims(**changes))) == message


def test_an_access_token_is_refused_as_not_an_id_token(
    key: rsa.RSAPrivateKey, verifier: TokenVerifier
) -> None:
    access = id_claims(
        token_use="access",
        aud=None,
        client_id=CLIENT,
        username="alice",
        scope="aws.cognito.signin.user.admin",
        **{"cognito:username": None},
    )
    assert refusal(verifier, sign(key, access)) == (
        "the token is an access token: this API expects the ID token of the sign-in"
    )


def test_an_unknown_or_missing_kid_is_refused(
    key: rsa.RSAPrivateKey, verifier: TokenVerifier
) -> None:
    assert refusal(verifier, sign(key, id_claims(), kid="key-2")) == (
        "the token's signing key (kid) is not one of its issuer's keys: sign in again"
    )
    assert refusal(verifier, sign(key, id_claims(), kid=None)) == (
        "the token names no signing key (kid)"
    )
    assert refusal(verifier, by_hand({"alg": "RS256", "kid": ""}, id_claims(), b"x")) == (
        "the token names no signing key (kid)"
    )
    numeric = by_hand({"alg": "RS256", "kid": 1}, id_claims(), b"x")
    assert refusal(verifier, numeric) == MALFORMED


def test_a_weak_key_from_the_key_source_is_refused() -> None:
    weak = generate(1024)
    verifier = TokenVerifier(Keys({KID: numbers(weak)}), issuer=ISSUER, client_id=CLIENT)
    with pytest.warns(jwt.InsecureKeyLengthWarning):
        token = sign(weak, id_claims())
    assert refusal(verifier, token) == (
        "the token's signing key cannot be used: the RSA modulus has 1024 bits: at least "
        "2048 are needed"
    )


def test_malformed_tokens_are_refused(key: rsa.RSAPrivateKey, verifier: TokenVerifier) -> None:
    good = sign(key, id_claims())
    header, claims, signature = good.split(".")
    for token in ("abc", "a.b", f"{good}.x", f"{header}.{claims}", f" {good}", f"{good}=", ""):
        assert refusal(verifier, token) == NOT_A_JWT
    not_json = f"{b64(b'not json')}.{claims}.{signature}"
    assert refusal(verifier, not_json) == MALFORMED
    array = f"{b64(b'[1]')}.{claims}.{signature}"
    assert refusal(verifier, array) == MALFORMED
    bad_claims = f"{header}.A.{signature}"  # base64url of no whole byte
    assert refusal(verifier, bad_claims) == MALFORMED
    crit = by_hand({"alg": "RS256", "kid": KID, "crit": ["exp"], "exp": 1}, id_claims(), b"x")
    assert refusal(verifier, crit) == MALFORMED


def test_claims_that_are_no_json_object_are_refused(
    key: rsa.RSAPrivateKey, verifier: TokenVerifier
) -> None:
    for payload in (b"[1, 2]", b"not json", b'"alice"'):
        token = jwt.api_jws.encode(payload, key, algorithm="RS256", headers={"kid": KID})
        assert refusal(verifier, token) == "the token is malformed: its claims cannot be read"


@pytest.mark.parametrize(
    ("header", "token"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ("Bearer a.b.c", "a.b.c"),
        ("bearer a.b.c", "a.b.c"),
        ("BEARER   a.b.c  ", "a.b.c"),
        ("a.b.c", "a.b.c"),
        ("Bearer a.b.", "a.b."),  # alg none has no signature: verify names the alg
    ],
)
def test_the_token_of_an_authorization_header(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (
            "Basic abc",
            "the Authorization header's scheme 'Basic' is not Bearer: send 'Bearer <token>'",
        ),
        (
            "Digest a.b.c",
            "the Authorization header's scheme 'Digest' is not Bearer: send 'Bearer <token>'",
        ),
        ("Bearer", "the Authorization header has no token after 'Bearer'"),
        (
            "Bearer a b",
            "the Authorization header holds more than one token: send 'Bearer <token>'",
        ),
        (
            "Bearer a.b.c d.e.f",
            "the Authorization header holds more than one token: send 'Bearer <token>'",
        ),
        ("abc", NOT_A_JWT),
        ("Bearer abc", NOT_A_JWT),
        ("Bearer a.b", NOT_A_JWT),
        ("Bearer a.b.c.d", NOT_A_JWT),
        ("Bearer a+b.c.d", NOT_A_JWT),
        ("Bearer .b.c", NOT_A_JWT),
    ],
)
def test_a_malformed_authorization_header_is_refused(header: str, message: str) -> None:
    with pytest.raises(TokenError) as refused:
        bearer_token(header)
    assert str(refused.value) == message


def test_a_scheme_that_is_no_short_word_is_not_repeated() -> None:
    with pytest.raises(TokenError) as refused:
        bearer_token("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlc2lnbmF0dXJl x")
    assert str(refused.value) == (
        "the Authorization header's scheme is not Bearer: send 'Bearer <token>'"
    )


# Cognito's published keys.


def jwk(private: rsa.RSAPrivateKey, kid: str, **more: Any) -> dict[str, Any]:
    return {
        **RSAAlgorithm.to_jwk(private.public_key(), as_dict=True),
        "kid": kid,
        "alg": "RS256",
        "use": "sig",
        **more,
    }


def jwks(*keys: dict[str, Any]) -> bytes:
    return json.dumps({"keys": list(keys)}).encode()


class Published:
    """A fake JWKS endpoint and clock: what it serves, what was asked of it, the time."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.fetched: list[str] = []
        self.failing = False
        self.time = 1000.0

    def fetch(self, url: str) -> bytes:
        self.fetched.append(url)
        if self.failing:
            raise OSError("connection refused")
        return self.body

    def clock(self) -> float:
        return self.time


def test_cognito_keys_are_fetched_on_first_use_then_kept(key: rsa.RSAPrivateKey) -> None:
    published = Published(jwks(jwk(key, KID)))
    verifier = cognito_verifier(REGION, POOL, CLIENT, fetch=published.fetch)
    assert verifier.issuer == ISSUER
    assert published.fetched == []
    for _ in range(3):
        assert verifier.verify(sign(key, id_claims()), now=NOW).username == "alice"
    assert published.fetched == [JWKS_URL]


def test_an_unknown_kid_fetches_the_keys_again_at_most_once_a_minute(
    key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey
) -> None:
    published = Published(jwks(jwk(key, KID)))
    keys = JwksKeys(JWKS_URL, fetch=published.fetch, clock=published.clock)
    verifier = TokenVerifier(keys, issuer=ISSUER, client_id=CLIENT)
    verifier.verify(sign(key, id_claims()), now=NOW)
    # The pool rotates its keys less than a minute after the first fetch.
    published.body = jwks(jwk(key, KID), jwk(other_key, "key-2"))
    published.time += REFETCH_SECONDS - 1
    rotated = sign(other_key, id_claims(), kid="key-2")
    assert "not one of its issuer's keys" in refusal(verifier, rotated)
    assert len(published.fetched) == 1
    published.time += 1
    assert verifier.verify(rotated, now=NOW).sub == "7f1c-alice"
    assert len(published.fetched) == 2
    # Made-up kids: one fetch, then none for a minute.
    published.time += REFETCH_SECONDS
    for kid in ("made-up-1", "made-up-2", "made-up-3"):
        assert "not one of its issuer's keys" in refusal(verifier, sign(key, id_claims(), kid))
    assert len(published.fetched) == 3
    # Known kids never fetch.
    published.time += REFETCH_SECONDS
    verifier.verify(sign(key, id_claims()), now=NOW)
    assert len(published.fetched) == 3


def test_keys_that_cannot_be_read_are_a_server_error_until_read(
    key: rsa.RSAPrivateKey,
) -> None:
    published = Published(jwks(jwk(key, KID)))
    published.failing = True
    keys = JwksKeys(JWKS_URL, fetch=published.fetch, clock=published.clock)
    verifier = TokenVerifier(keys, issuer=ISSUER, client_id=CLIENT)
    token = sign(key, id_claims())
    for _ in range(2):
        with pytest.raises(KeysUnavailable) as unavailable:
            verifier.verify(token, now=NOW)
        assert str(unavailable.value) == (
            f"the signing keys at {JWKS_URL} cannot be read: connection refused"
        )
    published.failing = False
    assert verifier.verify(token, now=NOW).sub
    assert len(published.fetched) == 3


def test_a_failed_refetch_keeps_the_keys_already_read(
    key: rsa.RSAPrivateKey, caplog: pytest.LogCaptureFixture
) -> None:
    published = Published(jwks(jwk(key, KID)))
    keys = JwksKeys(JWKS_URL, fetch=published.fetch, clock=published.clock)
    verifier = TokenVerifier(keys, issuer=ISSUER, client_id=CLIENT)
    verifier.verify(sign(key, id_claims()), now=NOW)
    published.failing = True
    published.time += REFETCH_SECONDS
    with caplog.at_level(logging.WARNING, logger="chalicelib.auth.tokens"):
        assert "not one of its issuer's keys" in refusal(verifier, sign(key, id_claims(), "new"))
    assert caplog.messages == [f"the signing keys at {JWKS_URL} cannot be read: connection refused"]
    assert verifier.verify(sign(key, id_claims()), now=NOW).sub
    assert len(published.fetched) == 2


def test_only_usable_rs256_signing_keys_are_taken(
    key: rsa.RSAPrivateKey, caplog: pytest.LogCaptureFixture
) -> None:
    weak = generate(1024)
    published = Published(
        jwks(
            jwk(key, "encryption", use="enc"),
            jwk(key, "rs512", alg="RS512"),
            jwk(weak, "weak"),
            {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"},
            {"kty": "RSA", "n": "AQAB", "e": "AQAB"},  # no kid
            jwk(key, KID),
        )
    )
    keys = JwksKeys(JWKS_URL, fetch=published.fetch)
    with caplog.at_level(logging.WARNING, logger="chalicelib.auth.tokens"):
        assert keys.key(KID) == numbers(key)
    for kid in ("encryption", "rs512", "weak", "ec"):
        assert keys.key(kid) is None
    assert any("'weak'" in message and "1024 bits" in message for message in caplog.messages)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<html>", "cannot be read: Expecting value: line 1 column 1 (char 0)"),
        (b"[]", "are not a JWKS document"),
        (b'{"keys": {}}', "are not a JWKS document"),
        (b'{"keys": []}', "hold no usable RS256 key"),
    ],
)
def test_a_document_that_is_no_jwks_is_a_server_error(body: bytes, reason: str) -> None:
    keys = JwksKeys(JWKS_URL, fetch=Published(body).fetch)
    with pytest.raises(KeysUnavailable) as unavailable:
        keys.key(KID)
    assert str(unavailable.value) == f"the signing keys at {JWKS_URL} {reason}"


@pytest.mark.parametrize(
    ("region", "pool", "message"),
    [
        ("eu-west-1/x#", POOL, "is not an AWS region"),
        ("evil.example.com", POOL, "is not an AWS region"),
        (REGION, "AbC123", "is not a Cognito user pool id"),
        (REGION, "eu-west-1_../x", "is not a Cognito user pool id"),
        (REGION, "eu-west-1_AbC123/../../x", "is not a Cognito user pool id"),
    ],
)
def test_cognito_verifier_refuses_what_is_no_region_or_pool(
    region: str, pool: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        cognito_verifier(region, pool, CLIENT)


class JwksHandler(BaseHTTPRequestHandler):
    bodies: ClassVar[dict[str, bytes]] = {}

    def do_GET(self) -> None:
        body = self.bodies.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body or b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def jwks_server(key: rsa.RSAPrivateKey) -> Iterator[Callable[[str], str]]:
    """An HTTP server on 127.0.0.1 serving the key's JWKS and a body too large."""
    JwksHandler.bodies = {
        "/.well-known/jwks.json": jwks(jwk(key, KID)),
        "/large": b" " * (1024 * 1024 + 1),
    }
    server = ThreadingHTTPServer(("127.0.0.1", 0), JwksHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield lambda path: f"http://127.0.0.1:{server.server_address[1]}{path}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_keys_are_fetched_over_http_by_default(
    key: rsa.RSAPrivateKey, jwks_server: Callable[[str], str]
) -> None:
    url = jwks_server("/.well-known/jwks.json")
    assert json.loads(fetch_url(url))["keys"][0]["kid"] == KID
    verifier = TokenVerifier(JwksKeys(url), issuer=ISSUER, client_id=CLIENT)
    assert verifier.verify(sign(key, id_claims()), now=NOW).username == "alice"
    with pytest.raises(KeysUnavailable, match="HTTP Error 404"):
        JwksKeys(jwks_server("/missing")).key(KID)
    with pytest.raises(KeysUnavailable, match="more than 1048576 bytes"):
        JwksKeys(jwks_server("/large")).key(KID)
