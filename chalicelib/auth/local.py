"""Tokens on the local stage, signed by a key of its own.

``make run`` has no Cognito, yet a schema's ``@auth`` rules and a task's ``$identity``
need signed-in users to be tried. So the local state holds a signing key,
``<local_dir>/auth/signing-key.json`` (a private RSA JWK with its ``kid``), made on first
need; :func:`mint_token` signs Cognito-shaped tokens with it (``python -m
chalicelib.auth token``), and :func:`local_verifier` checks them through the same
:class:`~chalicelib.auth.tokens.TokenVerifier` and RS256 code as Cognito's tokens on AWS,
only with the local issuer and app client.

Verifying reads the key's public half, in pure Python; making the key and signing need
``cryptography``, which the development environment has and Lambda does not, so it is
imported only there. The key is written to a temporary file (mode 0600) and linked into
place, which fails when another process got there first: two processes making it at
once both end up with the one that won, never with a key of their own that the file no
longer holds. ``make reset`` removes it with the rest of the state: tokens minted before
are then refused (unknown ``kid``).
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import jwt

from chalicelib.auth.rsa import ALGORITHM, RsaPublicKey, public_key_from_jwk
from chalicelib.auth.tokens import TokenVerifier

KEY_FILE = Path("auth", "signing-key.json")
LOCAL_CLIENT_ID = "local"
KEY_BITS = 2048


def local_issuer(project: str) -> str:
    return f"http://localhost/ocg/{project}"


def local_verifier(local_dir: Path, project: str) -> TokenVerifier:
    """The verifier of tokens minted for ``project`` with the key under ``local_dir``."""
    return TokenVerifier(
        LocalKeys(local_dir / KEY_FILE), issuer=local_issuer(project), client_id=LOCAL_CLIENT_ID
    )


class LocalKeys:
    """The local signing key's public half, read from its file when a token names a kid
    it does not hold (the key may be made after the server starts); never makes one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._known: tuple[str, RsaPublicKey] | None = None

    def key(self, kid: str) -> RsaPublicKey | None:
        known = self._known
        if known is None or known[0] != kid:
            jwk = _read_key(self.path)
            if jwk is None:
                return None
            known = self._known = (jwk["kid"], public_key_from_jwk(jwk))
        return known[1] if known[0] == kid else None


def signing_key(local_dir: Path) -> dict[str, Any]:
    """The local private JWK, made on first need."""
    path = local_dir / KEY_FILE
    return _read_key(path) or _create_key(path)


def mint_token(
    local_dir: Path,
    project: str,
    *,
    sub: str,
    username: str | None = None,
    groups: Iterable[str] = (),
    lifetime_seconds: int = 3600,
    token_use: Literal["id", "access"] = "id",
) -> str:
    """A token shaped like Cognito's for ``sub`` (username: ``sub`` unless given), signed
    RS256 with the local key: an ID token (``aud`` the local client) or, to try a
    refusal, an access token (``client_id``, no ``aud``)."""
    if not sub:
        raise ValueError("sub cannot be empty")
    if lifetime_seconds < 1:
        raise ValueError("lifetime_seconds must be positive")
    jwk = signing_key(local_dir)
    now = int(time.time())
    name = sub if username is None else username
    claims: dict[str, Any] = {
        "sub": sub,
        "iss": local_issuer(project),
        "token_use": token_use,
        "auth_time": now,
        "iat": now,
        "exp": now + lifetime_seconds,
    }
    if token_use == "id":
        claims.update({"aud": LOCAL_CLIENT_ID, "cognito:username": name})
    else:
        claims.update({"client_id": LOCAL_CLIENT_ID, "username": name})
    group_list = list(groups)
    if group_list:
        claims["cognito:groups"] = group_list
    # PyJWK reads the private key with cryptography (development environment only).
    key = jwt.PyJWK(jwk, algorithm=ALGORITHM)
    return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": jwk["kid"]})


def _read_key(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        jwk = json.loads(text)
        if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str) or "d" not in jwk:
            raise ValueError("not a private JWK with a kid")
        public_key_from_jwk(jwk)
    except ValueError as error:
        raise ValueError(
            f"{path} does not hold an RSA signing key ({error}): delete it to make a new one"
        ) from None
    return jwk


def _create_key(path: Path) -> dict[str, Any]:
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwt.algorithms import RSAAlgorithm

    private_key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    jwk = RSAAlgorithm.to_jwk(private_key, as_dict=True)
    jwk.update({"kid": f"local-{secrets.token_hex(8)}", "alg": ALGORITHM, "use": "sig"})
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    temporary = Path(name)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            json.dump(jwk, file)
            file.flush()
            os.fsync(file.fileno())
        try:
            path.hardlink_to(temporary)
        except FileExistsError:
            # Another process made it first: its key is the one (or, were it removed
            # since, a new one is made).
            return _read_key(path) or _create_key(path)
    finally:
        temporary.unlink()
    return jwk
