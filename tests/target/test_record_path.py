"""The lean per-record path (``record_path.RecordPath``) against singer-sdk's own RECORD handling.

A stream with an (identity) ``stream_maps`` entry goes through singer-sdk's ``_process_record_message``; the same
stream without one takes the lean path. Each test runs the same input both ways on a reset org and compares what
Salesforce holds (read back through SOQL), the reject file, the STATE lines and the exit, and also checks what the
outcome must be, so that both paths being wrong the same way still fails.
"""

from __future__ import annotations

import gc
from typing import Any

import pytest

from target_salesforce.interpreter import interpreter_tuned_for_records
from tests.target.conftest import record_msg, schema_msg, state_msg, string_props

STREAM = "contacts"
SINGER_SDK_PATH = {"stream_maps": {STREAM: {}}}  # an identity map: singer-sdk's path, the same records
# Metadata columns singer-sdk fills with the time of processing: compared as present or not.
TIMED = {"_sdc_received_at", "_sdc_batched_at", "_sdc_sequence", "_sdc_sync_started_at"}


def change_log() -> list[dict[str, Any]]:
    """Records with metadata columns, an invalid record, a field the schema lacks and a delete."""
    props = {**string_props("key", "LastName", "Email", "_sdc_deleted_at"), "Level": {"type": ["integer", "null"]}}
    return [
        schema_msg(STREAM, props, ["key"]),
        record_msg(STREAM, {"key": "k1", "LastName": "One", "_sdc_extracted_at": "2024-01-01T00:00:00Z"}),
        record_msg(STREAM, {"key": "k2", "LastName": "Two", "Level": "high"}),  # not an integer: rejected
        record_msg(STREAM, {"key": "k3", "LastName": "Three", "Nickname": "T"}),  # not in the schema
        state_msg({"bookmarks": {STREAM: 1}}),
        record_msg(STREAM, {"key": "k0", "LastName": "Old", "_sdc_deleted_at": "2024-01-02T00:00:00Z"}),
        record_msg(STREAM, {"key": "k4", "LastName": "Bad mail", "Email": "not-an-address", "_sdc_sequence": 7}),
        state_msg({"bookmarks": {STREAM: 2}}),
    ]


def untimed(record: dict[str, Any]) -> dict[str, Any]:
    return {k: (v is not None) if k in TIMED else v for k, v in record.items()}


def outcome(
    emulator: Any, sf: Any, run_target: Any, config: dict[str, Any], messages: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    emulator.reset()
    sf.Contact.create({"LastName": "Old", "External_Id__c": "k0"})
    result = run_target(config, change_log() if messages is None else messages)
    rows = sf.query_all("SELECT External_Id__c, LastName, Email, IsDeleted FROM Contact", include_deleted=True)
    return {
        "exit": result.returncode,
        "states": result.states,
        "contacts": sorted((r["External_Id__c"], r["LastName"], r["Email"], r["IsDeleted"]) for r in rows["records"]),
        "rejects": [
            {**{k: v for k, v in r.items() if k != "rejected_at"}, "record": untimed(r["record"])}
            for r in result.rejects
        ],
        "warned": result.stderr.count("No schema for record field 'Nickname'"),
    }


@pytest.mark.parametrize("process_deletes", [False, True])
def test_lean_path_writes_and_rejects_what_singer_sdks_path_does(
    emulator, sf, run_target, base_config, process_deletes
) -> None:
    config = {
        **base_config,
        "object": "Contact",
        "sync_mode": "upsert",
        "match_field": "External_Id__c",
        "field_mapping": {"key": "External_Id__c", "LastName": "LastName", "Email": "Email"},
        "process_deletes": process_deletes,
        "api": "bulk",
    }
    lean = outcome(emulator, sf, run_target, config)
    sdk = outcome(emulator, sf, run_target, {**config, **SINGER_SDK_PATH})
    for key in lean:
        assert lean[key] == sdk[key], (key, lean[key], sdk[key])

    assert lean["exit"] == 0
    assert lean["states"] == [{"bookmarks": {STREAM: 2}}]
    assert lean["warned"] == 1
    assert [(r["error_code"], r["record"]["key"]) for r in lean["rejects"]] == [
        ("INVALID_RECORD", "k2"),
        ("INVALID_EMAIL_ADDRESS", "k4"),
    ]
    # process_deletes keeps singer-sdk's metadata columns (it reads _sdc_deleted_at); otherwise they are stripped
    kept = [sorted(name for name in r["record"] if name.startswith("_sdc_")) for r in lean["rejects"]]
    assert (
        kept
        == [sorted(TIMED | {"_sdc_extracted_at", "_sdc_deleted_at", "_sdc_table_version"}) if process_deletes else []]
        * 2
    )
    expected = [("k1", "One", None, False), ("k3", "Three", None, False)]
    old = ("k0", "Old", None, process_deletes)  # deleted (Recycle Bin) only with process_deletes
    assert lean["contacts"] == sorted([*expected, old])


def test_records_of_a_shape_already_seen_are_still_judged_each_on_its_own(
    emulator, sf, run_target, base_config
) -> None:
    """The lean path skips the checks for a record shaped like one that passed them (same keys, same value classes):
    a record of another shape is still checked, a field the schema lacks is warned about once it holds a value, and
    metadata columns are stripped every time."""
    props = {**string_props("key", "LastName"), "Level": {"type": ["integer", "null"]}}
    rows = [
        {"key": "s1", "LastName": "A", "Level": 3},
        {"key": "s2", "LastName": "B", "Level": 4.5},  # not an integer: rejected
        {"key": "s3", "LastName": "C", "Level": "x"},  # nor this, after an integer of the same field passed
        {"key": "s4", "LastName": "D", "Level": 4},  # the shape of s1
        {"key": "s10", "LastName": "B", "Level": 5.5},  # the shape of s2, rejected again
        {"key": "s5", "LastName": "E", "Level": 5, "Nickname": None},
        {"key": "s6", "LastName": "F", "Level": 6, "Nickname": "x"},  # warned now that it holds a value
        {"key": "s7", "LastName": "G", "Level": 7, "Nickname": "y"},
        # metadata stripped from each: s9, of s8's shape, is rejected for its too long name without its metadata
        *(
            {"key": k, "LastName": name, "Level": 8, "_sdc_extracted_at": "2024-01-01T00:00:00Z"}
            for k, name in (("s8", "H"), ("s9", "H" * 100))
        ),
    ]
    messages = [schema_msg(STREAM, props, ["key"]), *(record_msg(STREAM, r) for r in rows)]
    config = {
        **base_config,
        "object": "Contact",
        "sync_mode": "upsert",
        "match_field": "External_Id__c",
        "field_mapping": {"key": "External_Id__c", "LastName": "LastName"},
    }
    lean = outcome(emulator, sf, run_target, config, messages)
    sdk = outcome(emulator, sf, run_target, {**config, **SINGER_SDK_PATH}, messages)
    assert lean == sdk

    assert [(r["error_code"], r["record"]["key"]) for r in lean["rejects"]] == [
        ("INVALID_RECORD", "s2"),
        ("INVALID_RECORD", "s3"),
        ("INVALID_RECORD", "s10"),
        ("STRING_TOO_LONG", "s9"),
    ]
    assert sorted(lean["rejects"][-1]["record"]) == ["LastName", "Level", "key"]
    assert lean["warned"] == 1
    written = {"s1": "A", "s4": "D", "s5": "E", "s6": "F", "s7": "G", "s8": "H"}
    assert lean["contacts"] == sorted([("k0", "Old", None, False), *((k, n, None, False) for k, n in written.items())])


def test_lean_path_stops_on_a_missing_key_property_as_singer_sdk_does(emulator, sf, run_target, base_config) -> None:
    config = {**base_config, "object": "Contact", "sync_mode": "upsert", "match_field": "External_Id__c"}
    messages = [
        schema_msg(STREAM, string_props("External_Id__c", "LastName"), ["External_Id__c"]),
        record_msg(STREAM, {"External_Id__c": "k1", "LastName": "One"}),
        record_msg(STREAM, {"LastName": "No key"}),
    ]
    results = []
    for extra in ({}, SINGER_SDK_PATH):
        emulator.reset()
        result = run_target({**config, **extra}, messages)
        count = sf.query("SELECT COUNT() FROM Contact")["totalSize"]
        results.append((result.returncode, result.error_lines(), count))
    assert results[0] == results[1]
    returncode, errors, count = results[0]
    assert returncode != 0 and count == 0
    assert len(errors) == 1 and "key_properties" in errors[0]


def test_collector_settings_are_restored_after_a_run() -> None:
    before = gc.get_threshold()
    with interpreter_tuned_for_records():
        assert gc.get_threshold() != before
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
