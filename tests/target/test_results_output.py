"""The results output (``results_path``): one line per input record, whatever became of it, read against SOQL.

Every record the target reads must appear exactly once, with its stream's key property values, the Salesforce Id
(checked against what the emulator holds) and the outcome; rejects carry their error code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.target.conftest import record_msg, schema_msg, string_props, write_calls

APIS = ("rest", "bulk")


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def contact_ids(sf: Any) -> dict[str, str]:
    """External_Id__c → Id of every live Contact."""
    return {r["External_Id__c"]: r["Id"] for r in sf.query_all("SELECT Id, External_Id__c FROM Contact")["records"]}


def upsert_input() -> list[dict[str, Any]]:
    props = {"key": {"type": "integer"}, **string_props("ext", "name", "email")}
    return [
        schema_msg("contacts", props, ["key"]),
        record_msg("contacts", {"key": 1, "ext": "e1", "name": "Existing"}),
        record_msg("contacts", {"key": 2, "ext": "e2", "name": "First"}),
        record_msg("contacts", {"key": 3, "ext": "e2", "name": "Last"}),  # same match value as key 2: merged
        record_msg("contacts", {"key": 4, "ext": "e4", "name": None}),  # Salesforce: REQUIRED_FIELD_MISSING
        record_msg("contacts", {"key": 5, "ext": "e5", "name": "Bad", "email": "not-an-email"}),  # our conversion
        record_msg("contacts", {"key": "six", "ext": "e6", "name": "Schema"}),  # fails the stream's schema
    ]


@pytest.mark.parametrize("api", APIS)
def test_jsonl_results_give_every_record_its_id_and_outcome(sf, run_target, base_config, tmp_path, api) -> None:
    existing = sf.Contact.create({"LastName": "Old", "External_Id__c": "e1"})["id"]
    results_path = tmp_path / "results.jsonl"
    config = {
        **base_config,
        "object": "Contact",
        "sync_mode": "upsert",
        "match_field": "External_Id__c",
        "field_mapping": {"ext": "External_Id__c", "name": "LastName", "email": "Email"},
        "api": api,
        "results_path": str(results_path),
    }
    result = run_target(config, upsert_input())
    result.assert_ok()

    ids = contact_ids(sf)
    lines = sorted(read_lines(results_path), key=lambda line: str(line["key"]["key"]))
    assert [(line["key"], line["outcome"], line["id"], line["error_code"]) for line in lines] == [
        ({"key": 1}, "updated", existing, None),
        ({"key": 2}, "created", ids["e2"], None),  # merged into key 3: the same record, the same Id
        ({"key": 3}, "created", ids["e2"], None),
        ({"key": 4}, "rejected", None, "REQUIRED_FIELD_MISSING"),
        ({"key": 5}, "rejected", None, "INVALID_EMAIL_ADDRESS"),
        ({"key": "six"}, "rejected", None, "INVALID_RECORD"),
    ]
    assert {(line["stream"], line["object"]) for line in lines} == {("contacts", "Contact")}
    assert sorted(str(r["record"]["key"]) for r in result.rejects) == ["4", "5", "six"]


def test_deleted_and_not_found_outcomes(sf, run_target, base_config, tmp_path) -> None:
    keep = sf.Contact.create({"LastName": "Keep", "External_Id__c": "e1"})["id"]
    drop = sf.Contact.create({"LastName": "Drop", "External_Id__c": "e2"})["id"]
    results_path = tmp_path / "results.jsonl"
    props = {"id": {"type": "integer"}, **string_props("ext", "LastName")}
    deleted_at = {"_sdc_deleted_at": {"type": ["string", "null"]}}
    config = {
        **base_config,
        "object": "Contact",
        "sync_mode": "update",
        "match_field": "External_Id__c",
        "field_mapping": {"ext": "External_Id__c", "LastName": "LastName"},
        "process_deletes": True,
        "results_path": str(results_path),
    }
    messages = [
        schema_msg("contacts", {**props, **deleted_at}, ["id"]),
        record_msg("contacts", {"id": 1, "ext": "e1", "LastName": "Kept"}),
        record_msg("contacts", {"id": 2, "ext": "e2", "_sdc_deleted_at": "2026-11-28T10:00:00Z"}),
        record_msg("contacts", {"id": 3, "ext": "e3", "LastName": "Nobody"}),
        record_msg("contacts", {"id": 4, "ext": "e4", "_sdc_deleted_at": "2026-11-28T10:00:00Z"}),
    ]
    run_target(config, messages).assert_ok()

    lines = sorted(read_lines(results_path), key=lambda line: line["key"]["id"])
    assert [(line["key"]["id"], line["outcome"], line["id"]) for line in lines] == [
        (1, "updated", keep),
        (2, "deleted", drop),
        (3, "not_found", None),
        (4, "not_found", None),
    ]
    deleted = sf.query_all(f"SELECT IsDeleted FROM Contact WHERE Id = '{drop}'", include_deleted=True)["records"]
    assert [r["IsDeleted"] for r in deleted] == [True]


def test_singer_results_are_a_loadable_singer_stream(sf, run_target, base_config, tmp_path) -> None:
    results_path = tmp_path / "results.singer"
    config = {
        **base_config,
        "object": "Contact",
        "sync_mode": "upsert",
        "match_field": "External_Id__c",
        "field_mapping": {"ext": "External_Id__c", "name": "LastName", "email": "Email"},
        "api": "rest",
        "results_path": str(results_path),
        "results_format": "singer",
    }
    result = run_target(config, upsert_input())
    result.assert_ok()

    messages = read_lines(results_path)
    schemas = [m for m in messages if m["type"] == "SCHEMA"]
    records = [m for m in messages if m["type"] == "RECORD"]
    # One SCHEMA per source stream, before its records; the key properties are the source stream's.
    assert messages[0]["type"] == "SCHEMA" and len(schemas) == 1
    assert schemas[0]["stream"] == "contacts_results" and schemas[0]["key_properties"] == ["key"]
    assert len(records) == 6 and {m["stream"] for m in records} == {"contacts_results"}
    validator = jsonschema.Draft7Validator(schemas[0]["schema"])
    valid = [m["record"] for m in records if not list(validator.iter_errors(m["record"]))]
    # The record rejected for its schema still has its line; only its key fails the key's declared type.
    assert [m["record"]["key"] for m in records if m["record"] not in valid] == ["six"]
    ids = contact_ids(sf)
    outcomes = {m["record"]["key"]: m["record"] for m in records}
    assert outcomes[3] == {
        "key": 3,
        "salesforce_object": "Contact",
        "salesforce_id": ids["e2"],
        "salesforce_outcome": "created",
        "salesforce_error_code": None,
    }
    assert outcomes[4]["salesforce_outcome"] == "rejected"
    assert outcomes[4]["salesforce_error_code"] == "REQUIRED_FIELD_MISSING"


def test_several_streams_share_one_results_file(sf, run_target, base_config, tmp_path) -> None:
    results_path = tmp_path / "results.jsonl"
    config = {
        **base_config,
        "streams": {
            "accounts": {"object": "Account", "sync_mode": "insert"},
            "contacts": {"object": "Contact", "sync_mode": "insert"},
        },
        "results_path": str(results_path),
    }
    messages = [
        schema_msg("accounts", {"n": {"type": "integer"}, **string_props("Name")}, ["n"]),
        schema_msg("contacts", {"n": {"type": "integer"}, **string_props("LastName")}, ["n"]),
    ]
    for n in range(30):
        messages.append(record_msg("accounts", {"n": n, "Name": f"A{n}"}))
        messages.append(record_msg("contacts", {"n": n, "LastName": f"C{n}"}))
    run_target(config, messages).assert_ok()

    lines = read_lines(results_path)
    accounts = {r["Id"] for r in sf.query_all("SELECT Id FROM Account")["records"]}
    contacts = {r["Id"] for r in sf.query_all("SELECT Id FROM Contact")["records"]}
    assert sorted(line["key"]["n"] for line in lines if line["stream"] == "accounts") == list(range(30))
    assert {line["id"] for line in lines if line["stream"] == "accounts"} == accounts
    assert {line["id"] for line in lines if line["stream"] == "contacts"} == contacts
    assert {line["outcome"] for line in lines} == {"created"}


def test_dry_run_writes_no_results(sf, run_target, base_config, tmp_path) -> None:
    results_path = tmp_path / "results.jsonl"
    config = {**base_config, "object": "Contact", "sync_mode": "insert", "dry_run": True}
    messages = [schema_msg("contacts", string_props("LastName")), record_msg("contacts", {"LastName": "X"})]
    run_target({**config, "results_path": str(results_path)}, messages).assert_ok()
    assert not results_path.exists()


def test_a_key_property_named_like_a_results_column_is_a_config_error(run_target, base_config, tmp_path) -> None:
    config = {
        **base_config,
        "object": "Contact",
        "sync_mode": "insert",
        "results_path": str(tmp_path / "results.singer"),
        "results_format": "singer",
    }
    messages = [
        schema_msg("contacts", string_props("salesforce_id", "LastName"), ["salesforce_id"]),
        record_msg("contacts", {"salesforce_id": "1", "LastName": "X"}),
    ]
    result = run_target(config, messages)
    assert result.returncode != 0
    assert result.error_lines() == [
        "target-salesforce: error: Stream 'contacts': key propert(ies) salesforce_id clash with the results columns "
        "of results_format singer; rename them with a stream map or use results_format jsonl."
    ]
    assert write_calls(result.calls) == []
