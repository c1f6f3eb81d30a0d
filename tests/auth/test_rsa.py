"""The pure-Python RS256 check (chalicelib.auth.rsa) against signatures ``cryptography``
makes, and what it must refuse."""

from __future__ import annotations

import functools
import hashlib
from typing import Any, cast

import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import given, settings
from hypothesis import strategies as st
from jwt.algorithms import RSAAlgorithm
from jwt.exceptions import InvalidKeyError

from chalicelib.auth.rsa import (
    RS256Verification,
    RsaPublicKey,
    public_key_from_jwk,
    rs256_jws,
    verify_pkcs1_sha256,
)

MESSAGE = b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9"


def generate(bits: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def public(private: rsa.RSAPrivateKey) -> RsaPublicKey:
    numbers = private.public_key().public_numbers()
    return RsaPublicKey(numbers.n, numbers.e)


def sign(private: rsa.RSAPrivateKey, message: bytes) -> bytes:
    return private.sign(message, padding.PKCS1v15(), hashes.SHA256())


@pytest.fixture(scope="module")
def keys() -> list[rsa.RSAPrivateKey]:
    """Two 2048-bit keys, one 4096-bit, one 3072-bit with exponent 3."""
    return [
        generate(2048),
        generate(2048),
        generate(4096),
        rsa.generate_private_key(public_exponent=3, key_size=3072),
    ]


@pytest.fixture(scope="module")
def key(keys: list[rsa.RSAPrivateKey]) -> rsa.RSAPrivateKey:
    return keys[0]


def flip(data: bytes, bit: int) -> bytes:
    changed = bytearray(data)
    changed[bit // 8] ^= 1 << (bit % 8)
    return bytes(changed)


def test_signatures_made_by_cryptography_verify(keys: list[rsa.RSAPrivateKey]) -> None:
    for private in keys:
        for message in (MESSAGE, b"", b"\x00" * 1000, "é".encode()):
            assert verify_pkcs1_sha256(public(private), message, sign(private, message))


def test_a_signature_with_a_flipped_bit_is_refused(key: rsa.RSAPrivateKey) -> None:
    signature = sign(key, MESSAGE)
    for bit in (0, 7, 1000, len(signature) * 8 - 1):
        assert not verify_pkcs1_sha256(public(key), MESSAGE, flip(signature, bit))


def test_a_changed_message_is_refused(key: rsa.RSAPrivateKey) -> None:
    signature = sign(key, MESSAGE)
    assert not verify_pkcs1_sha256(public(key), flip(MESSAGE, 3), signature)
    assert not verify_pkcs1_sha256(public(key), MESSAGE + b".", signature)


def test_the_signature_of_another_message_or_key_is_refused(
    keys: list[rsa.RSAPrivateKey],
) -> None:
    first, second = keys[0], keys[1]
    assert not verify_pkcs1_sha256(public(first), MESSAGE, sign(first, b"another message"))
    assert not verify_pkcs1_sha256(public(first), MESSAGE, sign(second, MESSAGE))


def test_other_hashes_and_paddings_are_refused(key: rsa.RSAPrivateKey) -> None:
    """The DigestInfo is compared too: a valid PKCS#1 v1.5 signature over SHA-384 (or a
    SHA-256 PSS signature) of the same message is not an RS256 signature."""
    sha384 = key.sign(MESSAGE, padding.PKCS1v15(), hashes.SHA384())
    pss = key.sign(
        MESSAGE,
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
        hashes.SHA256(),
    )
    assert not verify_pkcs1_sha256(public(key), MESSAGE, sha384)
    assert not verify_pkcs1_sha256(public(key), MESSAGE, pss)


def test_a_signature_not_below_the_modulus_is_refused(key: rsa.RSAPrivateKey) -> None:
    n = public(key).n
    k = (n.bit_length() + 7) // 8
    assert not verify_pkcs1_sha256(public(key), MESSAGE, n.to_bytes(k, "big"))
    assert not verify_pkcs1_sha256(public(key), MESSAGE, (n + 1).to_bytes(k, "big"))
    assert not verify_pkcs1_sha256(public(key), MESSAGE, b"\xff" * k)


def test_a_signature_of_the_wrong_length_is_refused(key: rsa.RSAPrivateKey) -> None:
    signature = sign(key, MESSAGE)
    for wrong in (signature[1:], signature[:-1], b"\x00" + signature, signature + b"\x00", b""):
        assert not verify_pkcs1_sha256(public(key), MESSAGE, wrong)


def test_a_key_under_2048_bits_verifies_nothing_and_is_not_read() -> None:
    weak = generate(1024)
    assert not verify_pkcs1_sha256(public(weak), MESSAGE, sign(weak, MESSAGE))
    with pytest.raises(ValueError, match="the RSA modulus has 1024 bits: at least 2048"):
        public_key_from_jwk(RSAAlgorithm.to_jwk(weak.public_key(), as_dict=True))
    with pytest.raises(InvalidKeyError, match="1024 bits"):
        RS256Verification().prepare_key(public(weak))


def test_a_jwk_is_read_into_its_modulus_and_exponent(keys: list[rsa.RSAPrivateKey]) -> None:
    for private in keys:
        assert public_key_from_jwk(
            RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
        ) == public(private)
        # A private JWK's public half.
        assert public_key_from_jwk(RSAAlgorithm.to_jwk(private, as_dict=True)) == public(private)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kty": "EC"}, "not an RSA key"),
        ({"kty": None}, "not an RSA key"),
        ({"n": None}, "'n' is not a base64url number"),
        ({"n": 12345}, "'n' is not a base64url number"),
        ({"n": ""}, "'n' is not a base64url number"),
        ({"e": "AQAB=="}, "'e' is not a base64url number"),  # padded
        ({"e": "AQ+B"}, "'e' is not a base64url number"),  # base64, not base64url
        ({"e": "A"}, "'e' is not a base64url number"),  # no whole byte
        ({"e": "Ag"}, "exponent must be odd"),  # 2
        ({"e": "AQ"}, "exponent must be odd and from 3"),  # 1
    ],
)
def test_a_jwk_that_is_no_usable_rsa_key_is_refused(
    key: rsa.RSAPrivateKey, change: dict[str, object], message: str
) -> None:
    jwk = {**RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), **change}
    with pytest.raises(ValueError, match=message):
        public_key_from_jwk(jwk)


def test_an_even_modulus_is_refused(key: rsa.RSAPrivateKey) -> None:
    n, e = public(key)
    with pytest.raises(InvalidKeyError, match="modulus is even"):
        RS256Verification().prepare_key((n + 1, e))


def test_only_rs256_is_registered_and_only_on_the_private_instance(
    key: rsa.RSAPrivateKey,
) -> None:
    jws = rs256_jws()
    assert jws.get_algorithms() == ["RS256"]
    assert isinstance(jws.get_algorithm_by_name("RS256"), RS256Verification)
    # PyJWT's global default instance keeps its own algorithms.
    assert not isinstance(jwt.get_algorithm_by_name("RS256"), RS256Verification)
    token = jwt.encode({"sub": "alice"}, key, algorithm="RS256")
    # PyJWT's annotations do not foresee an (n, e) key.
    assert jws.decode(token, key=cast(Any, public(key)), algorithms=["RS256"]) == b'{"sub":"alice"}'
    with pytest.raises(NotImplementedError):
        jws.encode(b"{}", cast(Any, public(key)), algorithm="RS256")


@functools.cache
def property_key() -> rsa.RSAPrivateKey:
    return generate(2048)


@settings(max_examples=40, deadline=None)
@given(message=st.binary(max_size=300), bit=st.integers(min_value=0, max_value=2047))
def test_any_message_verifies_and_any_flipped_bit_does_not(message: bytes, bit: int) -> None:
    private = property_key()
    signature = sign(private, message)
    assert verify_pkcs1_sha256(public(private), message, signature)
    assert not verify_pkcs1_sha256(public(private), message, flip(signature, bit))
    assert not verify_pkcs1_sha256(public(private), hashlib.sha256(message).digest(), signature)
