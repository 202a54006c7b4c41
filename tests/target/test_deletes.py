"""Deletes end to end: sync modes delete and hard_delete, and ``_sdc_deleted_at`` records with process_deletes.

Each test runs the real CLI against the emulator and reads back through SOQL: ``queryAll`` shows soft-deleted rows
with ``IsDeleted = true`` (Recycle Bin), a hard-deleted row is gone from ``queryAll`` too.
"""

from __future__ import annotations

from typing import Any

import pytest

from target_salesforce.emulator.builtin_objects import builtin_schema
from target_salesforce.errors import ConfigError
from target_salesforce.mapping import build_plan
from target_salesforce.settings import StreamSettings
from tests.target.conftest import record_msg, schema_msg, string_props, write_calls

APIS = ("rest", "bulk")


def every_contact(sf: Any) -> dict[str, dict[str, Any]]:
    """Id → {LastName, IsDeleted} of every Contact, deleted ones included (queryAll)."""
    rows = sf.query_all("SELECT Id, LastName, IsDeleted FROM Contact", include_deleted=True)["records"]
    return {r["Id"]: {"LastName": r["LastName"], "IsDeleted": r["IsDeleted"]} for r in rows}


def summary(stderr: str) -> str:
    return next(line for line in stderr.splitlines() if "Run summary:" in line)


def paths(calls: list[dict[str, Any]]) -> list[str]:
    return [f"{c['method']} {c['path'].split('/services/data/')[-1]}" for c in write_calls(calls)]


def seed(sf: Any) -> dict[str, str]:
    ids = {}
    for name, email in (("Keep", "keep@x.com"), ("Drop", "drop@x.com"), ("Dup1", "dup@x.com"), ("Dup2", "DUP@x.com")):
        ids[name] = sf.Contact.create({"LastName": name, "Email": email, "External_Id__c": f"ext-{name}"})["id"]
    gone = sf.Contact.create({"LastName": "Gone", "External_Id__c": "ext-Gone"})["id"]
    sf.Contact.delete(gone)
    ids["Gone"] = gone
    return ids


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("kind", ["Id", "External_Id__c", "Email"])
def test_delete_moves_matched_records_to_the_recycle_bin(sf, run_target, base_config, api, kind) -> None:
    ids = seed(sf)
    value = {
        "Id": lambda name: ids[name],
        "External_Id__c": lambda name: f"ext-{name}",
        "Email": lambda name: f"{name.lower()}@x.com",
    }[kind]
    records = [
        {kind: value("Drop")},
        {kind: value("Drop")},  # the same record twice in one batch: merged, deleted once
        {kind: value("Gone")},  # already in the Recycle Bin: not found
        {kind: "003000000000000AAA" if kind == "Id" else "nobody@x.com"},  # matches nothing: not found
    ]
    if kind == "Email":
        records.append({"Email": "dup@x.com"})  # two records hold it: rejected, neither deleted
    config = {**base_config, "object": "Contact", "sync_mode": "delete", "match_field": kind, "api": api}
    result = run_target(
        config, [schema_msg("contacts", string_props(kind)), *(record_msg("contacts", r) for r in records)]
    )
    result.assert_ok()

    contacts = every_contact(sf)
    assert contacts[ids["Drop"]]["IsDeleted"] is True
    assert {name: contacts[ids[name]]["IsDeleted"] for name in ("Keep", "Dup1", "Dup2", "Gone")} == {
        "Keep": False,
        "Dup1": False,
        "Dup2": False,
        "Gone": True,
    }
    line = summary(result.stderr)
    assert "1 deleted" in line and "2 not found" in line and "1 merged" in line
    assert [r["error_code"] for r in result.rejects] == (["AMBIGUOUS_MATCH"] if kind == "Email" else [])
    written = paths(result.calls)
    if api == "bulk":
        assert written and all("jobs/ingest" in p for p in written)
    else:
        assert [p.split("?")[0] for p in written] == ["DELETE v62.0/composite/sobjects"]


@pytest.mark.parametrize("api", ["auto", "bulk"])
def test_hard_delete_erases_through_bulk(sf, run_target, base_config, api) -> None:
    ids = seed(sf)
    # "#N/A" would mean null in a Bulk CSV; a delete sends only the Id, so even this value's record goes by Bulk.
    odd = sf.Contact.create({"LastName": "Odd", "External_Id__c": "#N/A"})["id"]
    records = [{"External_Id__c": v} for v in ("ext-Drop", "ext-Dup1", "ext-missing", "#N/A")]
    config = {
        **base_config,
        "object": "Contact",
        "sync_mode": "hard_delete",
        "match_field": "External_Id__c",
        "api": api,
    }
    result = run_target(
        config, [schema_msg("contacts", string_props("External_Id__c")), *(record_msg("contacts", r) for r in records)]
    )
    result.assert_ok()

    contacts = every_contact(sf)
    assert not {ids["Drop"], ids["Dup1"], odd} & set(contacts)  # gone, not even in the Recycle Bin
    assert contacts[ids["Keep"]]["IsDeleted"] is False
    assert "3 deleted, 1 not found" in summary(result.stderr)
    written = paths(result.calls)
    # Collections cannot hard-delete: even a 2-record batch in api auto goes through a Bulk 2.0 job.
    assert written and all("jobs/ingest" in p for p in written), written


def test_hard_delete_with_api_rest_is_a_config_error(run_target, base_config) -> None:
    config = {**base_config, "object": "Contact", "sync_mode": "hard_delete", "api": "rest"}
    result = run_target(config, [schema_msg("contacts", string_props("Id"))])
    assert result.returncode != 0
    assert result.error_lines() == [
        "target-salesforce: error: Invalid configuration: sync_mode hard_delete cannot use api rest (sObject "
        "Collections has no hard delete; Bulk API 2.0 does it): set api to auto or bulk."
    ]
    assert write_calls(result.calls) == []


DELETED_AT = "2026-11-28T10:00:00Z"


def change_log(key: str) -> list[dict[str, Any]]:
    """A log-based replication stream: upserts of ext-New and ext-Keep, a delete of ext-Drop."""
    props = {**string_props(key, "LastName"), "_sdc_deleted_at": {"type": ["string", "null"], "format": "date-time"}}
    return [
        schema_msg("contacts", props, [key]),
        record_msg("contacts", {key: "ext-Keep", "LastName": "Kept", "_sdc_deleted_at": None}),
        record_msg("contacts", {key: "ext-New", "LastName": "New"}),
        record_msg("contacts", {key: "ext-Drop", "LastName": None, "_sdc_deleted_at": DELETED_AT}),
        record_msg("contacts", {key: "ext-Never", "LastName": None, "_sdc_deleted_at": DELETED_AT}),
    ]


@pytest.mark.parametrize("api", APIS)
def test_process_deletes_deletes_records_carrying_sdc_deleted_at(sf, run_target, base_config, api) -> None:
    ids = seed(sf)
    config = {
        **base_config,
        "object": "Contact",
        "sync_mode": "upsert",
        "match_field": "External_Id__c",
        "field_mapping": {"key": "External_Id__c", "LastName": "LastName"},
        "process_deletes": True,
        "api": api,
    }
    result = run_target(config, change_log("key"))
    result.assert_ok()

    contacts = every_contact(sf)
    assert contacts[ids["Drop"]]["IsDeleted"] is True
    assert contacts[ids["Keep"]] == {"LastName": "Kept", "IsDeleted": False}
    assert [c["LastName"] for c in contacts.values() if c["LastName"] == "New"] == ["New"]
    assert "1 created, 1 updated, 1 deleted, 1 not found" in summary(result.stderr)
    assert result.rejects == []


def test_without_process_deletes_sdc_deleted_at_is_ignored(sf, run_target, base_config) -> None:
    ids = seed(sf)
    config = {**base_config, "object": "Contact", "sync_mode": "upsert", "match_field": "External_Id__c", "api": "rest"}
    result = run_target(config, change_log("External_Id__c"))
    result.assert_ok()

    contacts = every_contact(sf)
    assert contacts[ids["Drop"]]["IsDeleted"] is False  # written as usual (its null LastName is rejected)
    assert "1 created, 1 updated, 0 not found" in summary(result.stderr)
    assert {r["record"]["External_Id__c"]: r["error_code"] for r in result.rejects} == {
        "ext-Drop": "REQUIRED_FIELD_MISSING",
        "ext-Never": "REQUIRED_FIELD_MISSING",
    }


def test_process_deletes_on_insert_matches_on_the_match_field(sf, run_target, base_config) -> None:
    ids = seed(sf)
    config = {
        **base_config,
        "object": "Contact",
        "sync_mode": "insert",
        "match_field": "External_Id__c",
        "process_deletes": True,
        "api": "bulk",
    }
    result = run_target(config, change_log("External_Id__c"))
    result.assert_ok()

    contacts = every_contact(sf)
    assert contacts[ids["Drop"]]["IsDeleted"] is True
    names = sorted(c["LastName"] for c in contacts.values() if not c["IsDeleted"])
    assert names == ["Dup1", "Dup2", "Keep", "New"]
    # insert never updates: ext-Keep exists already, and External_Id__c is unique on Contact.
    assert [(r["record"]["External_Id__c"], r["error_code"]) for r in result.rejects] == [
        ("ext-Keep", "DUPLICATE_VALUE")
    ]
    assert "1 created, 0 updated, 1 deleted, 1 not found" in summary(result.stderr)


def test_process_deletes_on_insert_without_match_field_is_a_config_error(run_target, base_config) -> None:
    config = {**base_config, "object": "Contact", "sync_mode": "insert", "process_deletes": True}
    result = run_target(config, change_log("External_Id__c"))
    assert result.returncode != 0
    assert len(result.error_lines()) == 1
    assert "process_deletes with sync_mode insert needs match_field" in result.error_lines()[0]
    assert write_calls(result.calls) == []


def test_dry_run_counts_deletes_without_deleting(sf, run_target, base_config) -> None:
    ids = seed(sf)
    config = {**base_config, "object": "Contact", "sync_mode": "delete", "dry_run": True}
    records = [{"Id": ids["Drop"]}, {"Id": ids["Gone"]}]
    result = run_target(
        config, [schema_msg("contacts", string_props("Id")), *(record_msg("contacts", r) for r in records)]
    )
    result.assert_ok()

    assert every_contact(sf)[ids["Drop"]]["IsDeleted"] is False
    assert "1 deleted, 1 not found" in summary(result.stderr)
    assert write_calls(result.calls) == []


# --- the plan for deletes (pure logic, against the emulator's built-in describes) ---------------------------------


def delete_plan(mode: str, object_describe: dict, **settings: Any) -> Any:
    stream = StreamSettings(
        object=None,
        sync_mode=mode,
        match_field=settings.pop("match_field", "Id"),
        field_mapping=settings.pop("field_mapping", None),
        null_policy="clear",
        api="auto",
        **settings,
    )
    sources = {"Id": {}, "External_Id__c": {}, "Email": {}, "LastName": {}, "CreatedDate": {}}
    return build_plan(stream, object_describe, sources, contact_describe)


def contact_describe(name: str = "Contact") -> dict:
    found = builtin_schema().get(name)
    assert found is not None
    return found.describe("62.0")


def test_a_delete_plan_sends_only_the_match_field_and_needs_no_required_field() -> None:
    plan = delete_plan("delete", contact_describe(), match_field="External_Id__c")
    assert [(c.source, c.target) for c in plan.columns] == [("External_Id__c", "External_Id__c")]
    assert (plan.match_field, plan.match_kind) == ("External_Id__c", "external_id")


def test_a_not_deletable_object_cannot_be_deleted_from() -> None:
    locked = {**contact_describe(), "deletable": False}
    for mode, extra in (("hard_delete", {}), ("upsert", {"process_deletes": True})):
        with pytest.raises(ConfigError, match="Contact is not deletable"):
            delete_plan(mode, locked, **extra)
    assert delete_plan("upsert", locked, field_mapping={"Id": "Id", "LastName": "LastName"}).sync_mode == "upsert"
