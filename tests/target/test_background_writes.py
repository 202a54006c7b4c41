"""A full batch is written in the background while the next one is read, and nothing about the result changes.

The emulator holds each Bulk job for a while (``bulk_processing_delay_ms``), so the target reads on while a job
runs. What must hold, read back through SOQL, the reject file and the emulator's call log: records read after a
full batch are taken while its job runs (a record rejected on reading is filed before the job's failures); one
stream's jobs never run at once, so a newer version of a record lands last; a STATE is printed only once every
record before it is written or rejected, and the last STATE covers the whole input.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

from tests.target.conftest import (
    assert_no_secrets,
    encode,
    record_msg,
    schema_msg,
    secret_values,
    state_msg,
    string_props,
    target_env,
)

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


# The real CLI, with the Bulk batch sizes of a million-row run scaled down a thousandfold.
SCALED_DOWN_CLI = (
    "import sys; from target_salesforce.sinks import SalesforceSink as S; "
    "S.BULK_FIRST_SIZE_DEFAULT = 200; S.BULK_MAX_SIZE_DEFAULT = 500; "
    "from target_salesforce.cli import main; sys.exit(main())"
)


def test_a_batch_ends_early_once_the_job_before_it_has_ended(sf, emulator, tmp_path, base_config) -> None:
    """Once Salesforce has finished a job, the batch being read ends as soon as it holds 1.5 times that job's rows,
    rather than at its full size: Salesforce starts on it then. Records are fed in stages: the first batch, more
    records while its job runs, a few one by one once its results are fetched, then the rest at once. Job sizes
    read back from Salesforce's list of ingest jobs, the records through SOQL."""
    config = {**base_config, "object": "Contact", "sync_mode": "insert", "api": "bulk"}
    (tmp_path / "config.json").write_text(json.dumps(config))
    emulator.set_faults(bulk_processing_delay_ms=1000)
    before = {job["id"] for job in sf.restful("jobs/ingest")["records"]}
    calls_before = len(emulator.calls())
    proc = subprocess.Popen(
        [sys.executable, "-c", SCALED_DOWN_CLI, "--config", str(tmp_path / "config.json")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=target_env(emulator["ca_bundle"]),
        cwd=tmp_path,
    )
    assert proc.stdin is not None
    names = iter(f"Early{i}" for i in range(10_000))

    def feed(count: int, pause: float = 0.0) -> None:
        for _ in range(count):
            proc.stdin.write(encode([record_msg("contacts", {"LastName": next(names)})]).encode())
            proc.stdin.flush()
            time.sleep(pause)

    proc.stdin.write(encode([schema_msg("contacts", string_props("LastName"))]).encode())
    feed(200 + 250)  # the first batch (a job), then 250 records read while its job runs
    deadline = time.monotonic() + 60
    while not any("successfulResults" in c["path"] for c in emulator.calls()[calls_before:]):
        assert time.monotonic() < deadline, "the first job never ended"
        time.sleep(0.05)
    time.sleep(0.5)  # the target counts the results
    feed(10, pause=0.2)  # read while the target takes in the ended job: the second batch is to end at 300 rows
    feed(400)  # the second batch ends within these; the rest, read while its job runs, is a third job
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr.decode()
    assert_no_secrets({"stdout": stdout.decode(), "stderr": stderr.decode()}, secret_values(emulator, config))

    jobs = [job for job in sf.restful("jobs/ingest")["records"] if job["id"] not in before]
    sizes = [sf.restful(f"jobs/ingest/{job['id']}")["numberRecordsProcessed"] for job in jobs]
    assert sizes == [200, 300, 360]  # without the early end: 200, 500 (a full batch), 160
    assert sf.query("SELECT COUNT() FROM Contact WHERE LastName LIKE 'Early%'")["totalSize"] == 860
