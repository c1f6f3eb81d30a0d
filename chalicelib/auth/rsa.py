"""RS256 signature verification in pure Python, for PyJWT, on Lambda.

PyJWT verifies RS256 with the ``cryptography`` package, a compiled wheel of more than
10 MiB: packaged with the GraphQL function it would blow its package budget
(docs/deploying.md). A signature check needs far less: one modular exponentiation and a
comparison. So this module verifies RSASSA-PKCS1-v1_5 with SHA-256 (RFC 8017 §8.2.2)
itself and registers it with a private PyJWS instance as its only algorithm, ``RS256``:
the same code path runs locally, in the tests and on AWS, and PyJWT's global default
instance is never touched.

The check is the "encode and compare" form the RFC gives: the expected encoded message
(EMSA-PKCS1-v1_5: ``00 01 FF…FF 00 DigestInfo(SHA-256) hash``) is computed from the
message and compared, whole and in constant time, with ``s^e mod n``. The decrypted block
is never parsed, which is what has let forged signatures through parsing verifiers
(Bleichenbacher's 2006 attack on sloppy padding checks, and its later variants). It only
verifies: tokens are signed by Cognito, or, on the local stage, by chalicelib.auth.local
with ``cryptography``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any, NamedTuple, NoReturn

from jwt import PyJWS
from jwt.algorithms import Algorithm
from jwt.exceptions import InvalidKeyError

ALGORITHM = "RS256"
MIN_MODULUS_BITS = 2048
# DER of DigestInfo { AlgorithmIdentifier { id-sha256, NULL }, OCTET STRING (32 bytes) },
# the prefix RFC 8017 §9.2 note 1 gives for SHA-256.
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


class RsaPublicKey(NamedTuple):
    n: int  # modulus
    e: int  # public exponent


def public_key(n: int, e: int) -> RsaPublicKey:
    """The key, checked: a modulus of at least MIN_MODULUS_BITS bits, an odd exponent
    from 3 to n - 1; ValueError otherwise."""
    if n.bit_length() < MIN_MODULUS_BITS:
        raise ValueError(
            f"the RSA modulus has {n.bit_length()} bits: at least {MIN_MODULUS_BITS} are needed"
        )
    if n % 2 == 0:
        raise ValueError("the RSA modulus is even")
    if not 3 <= e < n or e % 2 == 0:
        raise ValueError("the RSA public exponent must be odd and from 3 to n - 1")
    return RsaPublicKey(n, e)


def public_key_from_jwk(jwk: Mapping[str, Any]) -> RsaPublicKey:
    """The RSA public key of a JWK (RFC 7517/7518: ``kty`` RSA, base64url ``n`` and
    ``e``); ValueError when it is not one or is too weak. A private JWK's public half
    is read the same way."""
    if jwk.get("kty") != "RSA":
        raise ValueError("the key is not an RSA key (kty)")
    return public_key(_base64url_uint(jwk.get("n"), "n"), _base64url_uint(jwk.get("e"), "e"))


def _base64url_uint(value: object, name: str) -> int:
    if not isinstance(value, str) or not _BASE64URL.fullmatch(value) or len(value) % 4 == 1:
        raise ValueError(f"the key's {name!r} is not a base64url number")
    return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")


def _emsa_pkcs1_v1_5_sha256(message: bytes, length: int) -> bytes:
    """EMSA-PKCS1-v1_5 encoding (RFC 8017 §9.2) of the message's SHA-256, ``length`` bytes
    long: ``00 01``, ``FF`` bytes, ``00``, then DigestInfo and the hash."""
    t = SHA256_DIGEST_INFO + hashlib.sha256(message).digest()
    return b"\x00\x01" + b"\xff" * (length - len(t) - 3) + b"\x00" + t


def verify_pkcs1_sha256(key: RsaPublicKey, message: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is the key's RSASSA-PKCS1-v1_5 SHA-256 signature of
    ``message`` (RFC 8017 §8.2.2), checked by encoding and comparing. A key under
    MIN_MODULUS_BITS verifies nothing."""
    n, e = key
    if n.bit_length() < MIN_MODULUS_BITS:
        return False
    k = (n.bit_length() + 7) // 8
    if len(signature) != k:
        return False
    s = int.from_bytes(signature, "big")
    if s >= n:
        return False
    decrypted = pow(s, e, n).to_bytes(k, "big")
    return hmac.compare_digest(decrypted, _emsa_pkcs1_v1_5_sha256(message, k))


class RS256Verification(Algorithm):
    """PyJWT's ``RS256``, verify only, on :func:`verify_pkcs1_sha256`. Its key is an
    :class:`RsaPublicKey` or an ``(n, e)`` pair of integers."""

    def prepare_key(self, key: Any) -> RsaPublicKey:
        if not (
            isinstance(key, tuple) and len(key) == 2 and all(type(part) is int for part in key)
        ):
            raise InvalidKeyError("an RS256 verification key is an RSA public key (n, e)")
        try:
            return public_key(*key)
        except ValueError as error:
            raise InvalidKeyError(str(error)) from None

    def sign(self, msg: bytes, key: Any) -> NoReturn:
        raise NotImplementedError("RS256 here verifies only: chalicelib.auth.local signs")

    def verify(self, msg: bytes, key: RsaPublicKey, sig: bytes) -> bool:
        return verify_pkcs1_sha256(key, msg, sig)

    @staticmethod
    def to_jwk(key_obj: Any, as_dict: bool = False) -> NoReturn:
        raise NotImplementedError("RS256 here verifies only")

    @staticmethod
    def from_jwk(jwk: str | dict[str, Any]) -> NoReturn:
        raise NotImplementedError("keys are read by public_key_from_jwk")


def rs256_jws() -> PyJWS:
    """A private PyJWS that knows one algorithm, ``RS256``, verified by this module."""
    jws = PyJWS(algorithms=[])
    jws.register_algorithm(ALGORITHM, RS256Verification())
    return jws
