"""Verifying a user's token: a Cognito ID token, or one minted by the local stage.

A request may carry ``Authorization: Bearer <token>``. The token is accepted only when
every rule holds: signed with RS256 (nothing else, so ``alg: none`` and the HS256
"public key as secret" confusion are refused before any key is used) by a key its
issuer publishes, not expired, not issued in the future, from the issuer this API
trusts, an ID token (``token_use`` ``id``: it names the app client in ``aud`` and
carries the user's name and groups; an access token does not), for this app client,
about a subject. What is left of it is an :class:`~chalicelib.auth.identity.Identity`.

PyJWT parses the token and checks its signature through a private instance that knows
only RS256 (chalicelib.auth.rsa: no ``cryptography`` on Lambda); the claims are checked
here, against a clock a test can set, each rule with its own message. A refusal is a
:class:`TokenError` whose message is safe to send back (HTTP 401) and to log: it never
holds the token or any part of it. Not being able to read the issuer's keys is no fault
of the token: it is :class:`KeysUnavailable`, a server error.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeGuard, cast

from jwt.exceptions import InvalidKeyError, InvalidSignatureError, PyJWTError

from chalicelib.auth.identity import Identity
from chalicelib.auth.rsa import ALGORITHM, RsaPublicKey, public_key_from_jwk, rs256_jws

logger = logging.getLogger(__name__)

# Cognito publishes its keys at a fixed place under the issuer.
FETCH_TIMEOUT_SECONDS = 5
MAX_JWKS_BYTES = 1024 * 1024
# A token naming a key not yet known makes the keys be fetched again, at most this often.
REFETCH_SECONDS = 60.0
# Cognito's clock and Lambda's differ by a little: a token issued this very second must
# not be "issued in the future".
COGNITO_LEEWAY_SECONDS = 5

_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
# What of a token's header or an Authorization header a message may name: a short word.
_NAMEABLE = re.compile(r"[A-Za-z0-9._+-]{1,32}")
# Shapes only: they go into the URL the keys are fetched from.
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]+")
_USER_POOL_ID = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]+_[0-9A-Za-z]+")

NOT_A_JWT = "the token is not a JSON Web Token (three base64url segments separated by dots)"
MALFORMED = "the token is malformed: its segments cannot be decoded"


class TokenError(Exception):
    """A refused token: str(error) is a clear message safe to show a client (HTTP 401) and
    to log; it never contains the token or any part of it."""


class KeysUnavailable(Exception):
    """The issuer's signing keys could not be read (network, or a bad answer): the server
    cannot check tokens for now, which says nothing about the token."""


class KeySource(Protocol):
    def key(self, kid: str) -> tuple[int, int] | None:
        """The RSA public key ``(n, e)`` the issuer publishes under ``kid``; None when it
        publishes none."""
        ...


def bearer_token(authorization: str | None) -> str | None:
    """The token of an Authorization header, bare or after 'Bearer ' (case-insensitive
    scheme); None when the header is absent or empty; TokenError when malformed (another
    scheme such as 'Basic x', more than one token, not three base64url segments)."""
    words = (authorization or "").split()
    if not words:
        return None
    if words[0].lower() == "bearer":
        if len(words) == 1:
            raise TokenError("the Authorization header has no token after 'Bearer'")
        words = words[1:]
    elif len(words) > 1:
        raise TokenError(
            f"the Authorization header's scheme{_quoted(words[0])} is not Bearer: send "
            "'Bearer <token>'"
        )
    if len(words) > 1:
        raise TokenError(
            "the Authorization header holds more than one token: send 'Bearer <token>'"
        )
    if not _COMPACT_JWS.fullmatch(words[0]):
        raise TokenError(NOT_A_JWT)
    return words[0]


def _quoted(value: object) -> str:
    """A value from a request, quoted after a space when it is a short word; else nothing:
    it is not repeated."""
    return f" '{value}'" if isinstance(value, str) and _NAMEABLE.fullmatch(value) else ""


class TokenVerifier:
    """Checks tokens of one issuer for one app client; see the module's rules."""

    def __init__(
        self, keys: KeySource, *, issuer: str, client_id: str, leeway_seconds: int = 0
    ) -> None:
        if leeway_seconds < 0:
            raise ValueError("leeway_seconds cannot be negative")
        self.issuer = issuer
        self.client_id = client_id
        self._keys = keys
        self._leeway = leeway_seconds
        self._jws = rs256_jws()

    def verify(self, token: str, *, now: float | None = None) -> Identity:
        """The identity the token is about; TokenError when it is refused."""
        if not _COMPACT_JWS.fullmatch(token):
            raise TokenError(NOT_A_JWT)
        try:
            header = self._jws.get_unverified_header(token)
        except PyJWTError:
            raise TokenError(MALFORMED) from None
        alg = header.get("alg")
        if alg != ALGORITHM:
            raise TokenError(
                f"the token's algorithm{_quoted(alg)} (alg) is not accepted: tokens must be "
                f"signed with {ALGORITHM}"
            )
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenError("the token names no signing key (kid)")
        key = self._keys.key(kid)
        if key is None:
            raise TokenError(
                "the token's signing key (kid) is not one of its issuer's keys: sign in again"
            )
        try:
            # The key is an (n, e) pair, which PyJWT's annotations do not foresee.
            payload = self._jws.decode(token, key=cast(Any, key), algorithms=[ALGORITHM])
        except InvalidSignatureError:
            raise TokenError("the token's signature is not valid") from None
        except InvalidKeyError as error:
            raise TokenError(f"the token's signing key cannot be used: {error}") from None
        except PyJWTError:
            raise TokenError(MALFORMED) from None
        try:
            claims = json.loads(payload)
        except ValueError:
            claims = None
        if not isinstance(claims, dict):
            raise TokenError("the token is malformed: its claims cannot be read")
        return self._identity(claims, time.time() if now is None else now)

    def _identity(self, claims: Mapping[str, Any], now: float) -> Identity:
        exp, iat = claims.get("exp"), claims.get("iat")
        if not _is_time(exp):
            raise TokenError("the token has no valid expiry time (exp)")
        if exp <= now - self._leeway:
            raise TokenError("the token has expired: sign in again")
        if not _is_time(iat):
            raise TokenError("the token has no valid issue time (iat)")
        if iat > now + self._leeway:
            raise TokenError("the token's issue time (iat) is in the future: check the clock")
        if claims.get("iss") != self.issuer:
            raise TokenError("the token is from another issuer than the one this API trusts (iss)")
        token_use = claims.get("token_use")
        if token_use == "access":
            raise TokenError(
                "the token is an access token: this API expects the ID token of the sign-in"
            )
        if token_use != "id":
            raise TokenError("the token is not an ID token (token_use must be 'id')")
        if claims.get("aud") != self.client_id:
            raise TokenError("the token was issued to another app client (aud)")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise TokenError("the token names no subject (sub)")
        username = claims.get("cognito:username") or claims.get("username")
        if username is not None and not isinstance(username, str):
            raise TokenError("the token's username is not a string")
        groups = claims.get("cognito:groups", [])
        if not isinstance(groups, list) or not all(isinstance(group, str) for group in groups):
            raise TokenError("the token's groups (cognito:groups) are not a list of names")
        return Identity(sub, username, frozenset(groups))


def _is_time(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def fetch_url(url: str) -> bytes:
    """The body at ``url`` (GET, FETCH_TIMEOUT_SECONDS at most, MAX_JWKS_BYTES at most)."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT_SECONDS) as response:
        body: bytes = response.read(MAX_JWKS_BYTES + 1)
    if len(body) > MAX_JWKS_BYTES:
        raise ValueError(f"more than {MAX_JWKS_BYTES} bytes")
    return body


class JwksKeys:
    """The RS256 keys of a JWKS document (RFC 7517), as Cognito publishes a user pool's.

    Fetched on the first look-up and kept for the life of the process (a Lambda
    container's); a look-up of a kid it does not hold fetches them again, at most once
    every REFETCH_SECONDS (failed fetches included), so that a rotated key is found and
    tokens naming made-up kids cannot make it fetch on every request. Until a first
    fetch succeeds, every look-up tries and fails with KeysUnavailable; a later failed
    fetch is logged and the keys already read are kept.
    """

    def __init__(
        self,
        url: str,
        *,
        fetch: Callable[[str], bytes] = fetch_url,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._fetch = fetch
        self._clock = clock
        self._keys: dict[str, RsaPublicKey] | None = None
        self._fetched_at = 0.0
        self._lock = threading.Lock()

    def key(self, kid: str) -> RsaPublicKey | None:
        with self._lock:
            if self._keys is None:
                self._keys = self._read()
                self._fetched_at = self._clock()
            elif kid not in self._keys and self._clock() - self._fetched_at >= REFETCH_SECONDS:
                self._fetched_at = self._clock()
                try:
                    self._keys = self._read()
                except KeysUnavailable as error:
                    logger.warning("%s", error)
            return self._keys.get(kid)

    def _read(self) -> dict[str, RsaPublicKey]:
        try:
            document = json.loads(self._fetch(self.url))
        except (OSError, ValueError) as error:
            raise KeysUnavailable(
                f"the signing keys at {self.url} cannot be read: {error}"
            ) from None
        entries = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            raise KeysUnavailable(f"the signing keys at {self.url} are not a JWKS document")
        keys: dict[str, RsaPublicKey] = {}
        for jwk in entries:
            if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str):
                continue
            if jwk.get("use", "sig") != "sig" or jwk.get("alg", ALGORITHM) != ALGORITHM:
                continue
            try:
                keys[jwk["kid"]] = public_key_from_jwk(jwk)
            except ValueError as error:
                logger.warning("key %r at %s is skipped: %s", jwk["kid"], self.url, error)
        if not keys:
            raise KeysUnavailable(f"the signing keys at {self.url} hold no usable RS256 key")
        return keys


def cognito_verifier(
    region: str,
    user_pool_id: str,
    client_id: str,
    *,
    fetch: Callable[[str], bytes] = fetch_url,
) -> TokenVerifier:
    """The verifier of the user pool's ID tokens for the app client; keys from
    ``{issuer}/.well-known/jwks.json``."""
    if not _REGION.fullmatch(region):
        raise ValueError(f"{region!r} is not an AWS region")
    if not _USER_POOL_ID.fullmatch(user_pool_id):
        raise ValueError(f"{user_pool_id!r} is not a Cognito user pool id (region_id)")
    issuer = f"https://cognito-idp.{region}.amazonaws.com/{user_pool_id}"
    return TokenVerifier(
        JwksKeys(f"{issuer}/.well-known/jwks.json", fetch=fetch),
        issuer=issuer,
        client_id=client_id,
        leeway_seconds=COGNITO_LEEWAY_SECONDS,
    )
