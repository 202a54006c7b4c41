"""A full batch is written in the background while the next one is read, and nothing about the result changes.

The emulator holds each Bulk job for a while (``bulk_processing_delay_ms``), so the target reads on while a job
runs. What must hold, read back through SOQL, the reject file and the emulator's call log: records read after a
full batch are taken while its job runs (a record rejected on reading is filed before the job's failures); one
stream's jobs never run at once, so a newer version of a record lands last; a STATE is printed only once every
record before it is written or rejected, and the last STATE covers the whole input.
"""

from __future__ import annotations

from typing import Any

from tests.target.conftest import record_msg, schema_msg, state_msg

BATCH = 50
PROPERTIES = {"External_Id__c": {"type": "string"}, "Name": {"type": ["string", "null"], "maxLength": 80}}


def test_reading_goes_on_while_a_full_batch_is_written(sf, emulator, run_target, base_config) -> None:
    config = {**base_config, "object": "Account", "match_field": "External_Id__c", "api": "bulk"}
    config["batch_size_rows"] = BATCH
    # Three batches of the same records, each a newer version. In the first, one record has no Name: Salesforce
    # refuses to create an Account without one. In the second, one record breaks the schema's maxLength: the target
    # rejects it as it reads it.
    messages: list[dict[str, Any]] = [schema_msg("accounts", PROPERTIES)]
    for version in (1, 2, 3):
        for index in range(BATCH):
            name = f"Account {index} v{version}"
            if (version, index) == (1, 1):
                name = None
            elif (version, index) == (2, 0):
                name = "x" * 81
            messages.append(record_msg("accounts", {"External_Id__c": f"bg{index:03d}", "Name": name}))
        messages.append(state_msg({"bookmarks": {"accounts": {"version": version}}}))
    emulator.set_faults(bulk_processing_delay_ms=1500)

    result = run_target(config, messages)

    result.assert_ok()
    rows = sf.query_all("SELECT External_Id__c, Name FROM Account WHERE External_Id__c LIKE 'bg%'")["records"]
    assert sorted((r["External_Id__c"], r["Name"]) for r in rows) == [
        (f"bg{i:03d}", f"Account {i} v3") for i in range(BATCH)
    ]
    # The second batch was read (and its bad record filed) while the first batch's job was still running.
    assert [(r["error_code"], r["record"]["External_Id__c"]) for r in result.rejects] == [
        ("INVALID_RECORD", "bg000"),
        ("REQUIRED_FIELD_MISSING", "bg001"),
    ]
    # One job at a time: each job's calls (upload, close, polls, results) end before the next job's begin.
    jobs = [c["path"].split("/jobs/ingest/")[1].split("/")[0] for c in result.calls if "/jobs/ingest/" in c["path"]]
    assert len(set(jobs)) == 3
    assert jobs == sorted(jobs, key=jobs.index)
    # STATE never moves backwards and the last covers the whole input (a STATE held for a running job may be
    # superseded by a newer one before it is printed).
    versions = [s["bookmarks"]["accounts"]["version"] for s in result.states]
    assert versions == sorted(versions)
    assert versions[-1] == 3
