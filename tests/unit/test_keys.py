from __future__ import annotations

import pytest

from chalicelib.keys import KEY_REGEX, bearer_token, generate_key, hash_key, is_well_formed


def test_generated_keys_match_the_published_regex_and_checksum() -> None:
    keys = {generate_key() for _ in range(200)}
    assert len(keys) == 200
    for key in keys:
        assert KEY_REGEX.match(key)
        assert is_well_formed(key)


@pytest.mark.parametrize("position", [4, 10, 33, 39])
def test_any_single_character_typo_fails_the_checksum(position: int) -> None:
    key = generate_key()
    replacement = "a" if key[position] != "a" else "b"
    typo = key[:position] + replacement + key[position + 1 :]
    assert not is_well_formed(typo)


def test_foreign_tokens_are_not_well_formed() -> None:
    assert not is_well_formed("sk-proj-abc")
    assert not is_well_formed("gpc_short")
    assert not is_well_formed(generate_key() + "x")


def test_hash_is_sha256_hex() -> None:
    assert hash_key("gpc_x") == "78040bd74903d12b4c4fd2bcef9fb9f320089523c51006b8faec8aa77ba69906"


def test_bearer_token_parsing() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer   abc  ") == "abc"
    assert bearer_token("Basic abc") is None
    assert bearer_token("Bearer ") is None
    assert bearer_token(None) is None
