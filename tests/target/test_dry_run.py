"""``dry_run: true`` and the progress line, end to end through the real CLI against the emulator."""

from __future__ import annotations

from typing import Any

import pytest

from tests.target.conftest import reads_only, record_msg, schema_msg, string_props, write_calls

PROPS = string_props("External_Id__c", "Email", "LastName")


def contact_count(sf: Any) -> int:
    return sf.query("SELECT COUNT() FROM Contact")["totalSize"]


def only_reads(calls: list[dict[str, Any]]) -> None:
    """Token, describe (global, per object or several in a Composite call) and query calls, and no write of any kind."""
    assert not write_calls(calls), calls
    for call in calls:
        path = call["path"]
        if call["method"] == "POST":
            assert path == "/services/oauth2/token" or reads_only(call), call
        else:
            assert call["method"] == "GET", call
            assert path.endswith(("/sobjects/", "/describe", "/describe/")) or "/query" in path, call


@pytest.mark.parametrize(
    ("mode", "match_field", "expected"),
    [
        ("insert", None, "3 created, 0 updated, 0 not found, 0 merged"),
        ("update", "External_Id__c", "0 created, 2 updated, 1 not found, 0 merged"),
        ("upsert", "External_Id__c", "1 created, 2 updated, 0 not found, 0 merged"),
        ("update", "Email", "0 created, 2 updated, 1 not found, 0 merged"),
    ],
)
def test_dry_run_writes_nothing_and_reports(sf, run_target, base_config, mode, match_field, expected) -> None:
    sf.Contact.create({"LastName": "One", "Email": "one@x.com", "External_Id__c": "e1"})
    sf.Contact.create({"LastName": "Two", "Email": "two@x.com", "External_Id__c": "e2"})
    before = contact_count(sf)
    config = {**base_config, "object": "Contact", "sync_mode": mode, "dry_run": True}
    if match_field:
        config["match_field"] = match_field
    messages = [
        schema_msg("contacts", PROPS),
        record_msg("contacts", {"External_Id__c": "e1", "Email": "one@x.com", "LastName": "Uno"}),
        record_msg("contacts", {"External_Id__c": "e2", "Email": "two@x.com", "LastName": "Dos"}),
        record_msg("contacts", {"External_Id__c": "e9", "Email": "new@x.com", "LastName": "New"}),
        record_msg("contacts", {"External_Id__c": "e8", "Email": "bad@x.com", "LastName": 42}),
    ]
    result = run_target(config, messages)
    result.assert_ok()
    only_reads(result.calls)
    assert contact_count(sf) == before
    # The record that fails the stream's schema is rejected before any batch; the summary counts it.
    assert f"DRY RUN, nothing written: Contact batch of 3: {expected}, 0 rejected" in result.stderr
    assert f"Run summary: {expected}, 1 rejected (INVALID_RECORD: 1);" in result.stderr
    assert [r["record"]["External_Id__c"] for r in result.rejects] == ["e8"], result.rejects


def test_progress_line_reports_counts(sf, run_target, base_config, monkeypatch) -> None:
    monkeypatch.setenv("TARGET_SALESFORCE_PROGRESS_SECONDS", "0")
    config = {**base_config, "object": "Contact", "sync_mode": "insert"}
    messages = [schema_msg("contacts", PROPS)]
    messages += [record_msg("contacts", {"LastName": f"P{i}"}) for i in range(5)]
    result = run_target(config, messages)
    result.assert_ok()
    progress = [line for line in result.stderr.splitlines() if "Progress:" in line]
    assert len(progress) == 5, result.stderr
    assert "5 record(s) read, 0 written, 0 rejected;" in progress[-1]
    assert "records/s;" in progress[-1] and "API call(s) used" in progress[-1]
    assert "Run summary: 5 created" in result.stderr
