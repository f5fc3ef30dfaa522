from __future__ import annotations

from sluice.accounts import hash_secret, new_token, parse_token, secret_matches


def test_a_new_token_parses_back_and_matches_only_its_own_hash() -> None:
    token_id, token, stored = new_token()
    parsed = parse_token(token)
    assert parsed is not None and parsed.token_id == token_id
    assert secret_matches(parsed.secret, stored)
    assert not secret_matches(parsed.secret + "x", stored)
    assert stored == hash_secret(parsed.secret) and parsed.secret.encode() not in stored


def test_malformed_tokens_do_not_parse() -> None:
    for bad in (
        "",
        "Bearer",
        "slc_",
        "slc_abc_def",
        "xyz_0123456789ab_" + "s" * 43,
        "slc_short_" + "s" * 43,
    ):
        assert parse_token(bad) is None
