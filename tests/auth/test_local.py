"""The local stage's tokens (chalicelib.auth.local): its signing key, minted tokens and
``python -m chalicelib.auth token``."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from chalicelib.auth import Identity, TokenError, local_verifier
from chalicelib.auth.__main__ import main
from chalicelib.auth.local import KEY_FILE, _create_key, mint_token, signing_key
from tests.conftest import ROOT

PROJECT = "shop"  # .chalice/config.json's


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * 4))
    return decoded


def test_the_key_is_made_once_readable_by_its_owner_only(tmp_path: Path) -> None:
    key = signing_key(tmp_path)
    path = tmp_path / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert key["kty"] == "RSA" and key["alg"] == "RS256" and "d" in key
    assert key["kid"].startswith("local-")
    assert signing_key(tmp_path) == key
    assert json.loads(path.read_text()) == key
    assert [entry.name for entry in path.parent.iterdir()] == [path.name]


def test_creators_racing_end_up_with_one_key(tmp_path: Path) -> None:
    creators = 6
    barrier = threading.Barrier(creators)
    found: list[str] = []

    def create() -> None:
        barrier.wait()
        found.append(signing_key(tmp_path)["kid"])

    threads = [threading.Thread(target=create) for _ in range(creators)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == creators
    assert set(found) == {signing_key(tmp_path)["kid"]}
    assert [entry.name for entry in (tmp_path / KEY_FILE).parent.iterdir()] == [KEY_FILE.name]


def test_a_creator_that_comes_second_takes_the_first_ones_key(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE
    first = _create_key(path)
    assert _create_key(path) == first
    assert signing_key(tmp_path) == first


def test_a_minted_token_verifies(tmp_path: Path) -> None:
    verifier = local_verifier(tmp_path, PROJECT)
    assert verifier.issuer == "http://localhost/ocg/shop"
    assert verifier.client_id == "local"
    alice = mint_token(tmp_path, PROJECT, sub="alice")
    assert verifier.verify(alice) == Identity("alice", "alice", frozenset())
    bob = mint_token(tmp_path, PROJECT, sub="b-42", username="bob", groups=["admin", "editors"])
    assert verifier.verify(bob) == Identity("b-42", "bob", frozenset({"admin", "editors"}))
    claims = claims_of(bob)
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["aud"] == "local" and claims["token_use"] == "id"


def test_minted_tokens_are_refused_where_they_do_not_belong(tmp_path: Path) -> None:
    token = mint_token(tmp_path, PROJECT, sub="alice", lifetime_seconds=60)
    with pytest.raises(TokenError, match="another issuer"):
        local_verifier(tmp_path, "other-project").verify(token)
    claims = claims_of(token)
    with pytest.raises(TokenError, match="expired"):
        local_verifier(tmp_path, PROJECT).verify(token, now=claims["exp"])
    access = mint_token(tmp_path, PROJECT, sub="alice", token_use="access")
    assert claims_of(access)["client_id"] == "local" and "aud" not in claims_of(access)
    with pytest.raises(TokenError, match="is an access token"):
        local_verifier(tmp_path, PROJECT).verify(access)


def test_mint_token_refuses_an_empty_sub_or_lifetime(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sub cannot be empty"):
        mint_token(tmp_path, PROJECT, sub="")
    with pytest.raises(ValueError, match="lifetime_seconds must be positive"):
        mint_token(tmp_path, PROJECT, sub="alice", lifetime_seconds=0)
    assert not (tmp_path / KEY_FILE).exists()


def test_the_verifier_finds_a_key_made_after_it_and_forgets_a_removed_one(
    tmp_path: Path,
) -> None:
    """The server starts before the first token is minted; ``make reset`` removes the key
    with the rest of the state."""
    verifier = local_verifier(tmp_path, PROJECT)
    other = tmp_path / "elsewhere"
    with pytest.raises(TokenError, match="not one of its issuer's keys"):
        verifier.verify(mint_token(other, PROJECT, sub="alice"))
    assert not (tmp_path / KEY_FILE).exists()  # verifying makes no key
    token = mint_token(tmp_path, PROJECT, sub="alice")
    assert verifier.verify(token).sub == "alice"
    (tmp_path / KEY_FILE).unlink()
    assert verifier.verify(mint_token(tmp_path, PROJECT, sub="bob")).sub == "bob"
    with pytest.raises(TokenError, match="not one of its issuer's keys"):
        verifier.verify(token)


def test_a_damaged_key_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE
    path.parent.mkdir()
    path.write_text('{"kty": "RSA"}')
    with pytest.raises(ValueError, match=f"{path} does not hold an RSA signing key"):
        signing_key(tmp_path)


def test_tokens_verify_without_cryptography(tmp_path: Path) -> None:
    """As on Lambda, where ``cryptography`` is not packaged: the same RS256 path."""
    token = mint_token(tmp_path, PROJECT, sub="alice", groups=["admin"])
    program = f"""
import sys
from pathlib import Path


class NoCryptography:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "cryptography":
            raise ModuleNotFoundError(f"No module named {{name!r}}")
        return None


sys.meta_path.insert(0, NoCryptography())
from chalicelib.auth import TokenError, local_verifier

verifier = local_verifier(Path({str(tmp_path)!r}), {PROJECT!r})
print(verifier.verify(sys.argv[1]))
try:
    verifier.verify(sys.argv[1][:-4] + "AAAA")
except TokenError as error:
    print(error)
assert not any(module.startswith("cryptography") for module in sys.modules)
"""
    result = subprocess.run(
        [sys.executable, "-c", program, token],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.splitlines() == [
        "Identity(sub='alice', username='alice', groups=frozenset({'admin'}))",
        "the token's signature is not valid",
    ]


def test_the_cli_prints_a_token_of_the_local_stage(tmp_path: Path) -> None:
    """The stage's variables win over the process's, as under ``chalice local``."""
    environment = {
        **os.environ,
        "OCG_LOCAL_DIR": str(tmp_path),
        "OCG_PROJECT": "not-the-stage",
        "OCG_MODE": "aws",
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "chalicelib.auth",
            "token",
            "--sub",
            "alice",
            "--groups",
            "admin, editors",
            "--minutes",
            "5",
        ],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.count("\n") == 1
    token = result.stdout.strip()
    identity = local_verifier(tmp_path, PROJECT).verify(token)
    assert identity == Identity("alice", "alice", frozenset({"admin", "editors"}))
    claims = claims_of(token)
    assert claims["exp"] - claims["iat"] == 300


def test_the_cli_takes_a_username_and_refuses_bad_arguments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OCG_LOCAL_DIR", str(tmp_path))
    assert main(["token", "--sub", "u-1", "--username", "carol"]) == 0
    token = capsys.readouterr().out.strip()
    assert local_verifier(tmp_path, PROJECT).verify(token).username == "carol"
    for arguments in (["token", "--sub", " "], ["token", "--sub", "a", "--minutes", "0"], []):
        with pytest.raises(SystemExit) as exited:
            main(arguments)
        assert exited.value.code == 2
    assert capsys.readouterr().out == ""
