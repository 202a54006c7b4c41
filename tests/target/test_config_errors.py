"""Configuration mistakes end the run before anything is written, with one line on stderr naming the problem."""

from __future__ import annotations

from typing import Any

import pytest

from tests.target.conftest import record_msg, schema_msg, string_props, write_calls

CONTACT_PROPS = string_props("Id", "LastName", "Email", "acct", "name")
RECORD = {"Id": "003000000000001AAA", "LastName": "Ng", "Email": "ng@example.com", "acct": "a1", "name": "x"}

CASES: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "unknown object": ({"object": "Nope__c"}, ("Nope__c",)),
    "unknown mapped field": (
        {"object": "Contact", "sync_mode": "insert", "field_mapping": {"LastName": "LastName", "name": "Nope__c"}},
        ("Nope__c",),
    ),
    "not updateable for update": (
        {"object": "Contact", "sync_mode": "update", "field_mapping": {"Id": "Id", "name": "Name"}},
        ("Name", "update"),
    ),
    "match field cannot identify": (
        {"object": "Contact", "sync_mode": "upsert", "match_field": "LastName"},
        ("LastName",),
    ),
    "relationship to a non-external-id field": (
        {"object": "Contact", "sync_mode": "insert", "field_mapping": {"LastName": "LastName", "acct": "Account.Name"}},
        ("Account.Name",),
    ),
    "required field unmapped for insert": (
        {"object": "Contact", "sync_mode": "insert", "field_mapping": {"Email": "Email"}},
        ("LastName",),
    ),
    "bad sync_mode": ({"object": "Contact", "sync_mode": "merge"}, ("sync_mode", "merge")),
    "bad stream sync_mode": ({"streams": {"contacts": {"object": "Contact", "sync_mode": "merge"}}}, ("merge",)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_config_mistake_fails_cleanly_and_writes_nothing(sf, run_target, base_config, case) -> None:
    overrides, words = CASES[case]
    messages = [schema_msg("contacts", CONTACT_PROPS), record_msg("contacts", RECORD)]
    result = run_target({**base_config, **overrides}, messages)
    assert_clean_failure(result, words)
    assert sf.query_all("SELECT Id FROM Contact")["totalSize"] == 0


def assert_clean_failure(result: Any, words: tuple[str, ...]) -> None:
    assert result.returncode != 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = result.error_lines()
    assert errors, result.stderr
    naming = [line for line in errors if all(word.lower() in line.lower() for word in words)]
    assert len(naming) == 1, errors
    assert write_calls(result.calls) == []
    assert result.stdout_lines == []


def test_no_complete_auth_group(sf, run_target, base_config) -> None:
    # client_id alone completes no flow (refresh token, JWT, password, client credentials all need more).
    config = {k: v for k, v in base_config.items() if k not in ("refresh_token", "client_secret")}
    result = run_target({**config, "object": "Contact"}, [schema_msg("c", CONTACT_PROPS), record_msg("c", RECORD)])
    assert_clean_failure(result, ("refresh_token", "client_secret"))
    assert result.calls == []  # not even a token request
    assert sf.query_all("SELECT Id FROM Contact")["totalSize"] == 0


def test_wrong_client_secret(sf, run_target, base_config) -> None:
    config = {**base_config, "client_secret": "wrong-secret-value", "object": "Contact"}
    result = run_target(config, [schema_msg("c", CONTACT_PROPS), record_msg("c", RECORD)])
    assert_clean_failure(result, ("client_secret",))
    assert "wrong-secret-value" not in result.stderr
    assert sf.query_all("SELECT Id FROM Contact")["totalSize"] == 0
