"""Bulk API calls the target spends per job, read from the emulator's call log after real CLI runs.

A job whose info counts no failed records has an empty failed-results file: the target skips that call. A job with
failures must still read it, so that every failed row is rejected with Salesforce's reason.
"""

from __future__ import annotations

import json
import re
from typing import Any

from target_salesforce.sinks import BLOCK_ROWS
from tests.target.conftest import record_msg, schema_msg, string_props, write_calls

CONFIG = {"object": "Contact", "sync_mode": "insert", "api": "bulk"}


def result_files(calls: list[dict[str, Any]]) -> list[str]:
    return [c["path"].rstrip("/").rsplit("/", 1)[-1] for c in calls if c["method"] == "GET" and "Results" in c["path"]]


def run(run_target, base_config: dict[str, Any], last_names: list[str | None]):
    messages = [schema_msg("contacts", string_props("LastName", "Email"))]
    messages += [
        record_msg("contacts", {"LastName": name, "Email": f"c{i}@example.com"}) for i, name in enumerate(last_names)
    ]
    result = run_target({**base_config, **CONFIG}, messages)
    result.assert_ok()
    return result


def test_a_job_without_failures_reads_only_the_successful_results(sf, run_target, base_config) -> None:
    result = run(run_target, base_config, ["Ng", "Ode", "Pim"])
    assert result_files(result.calls) == ["successfulResults"]
    assert result.rejects == []
    assert sf.query("SELECT COUNT() FROM Contact")["totalSize"] == 3


def test_a_job_with_failures_reads_them_and_rejects_those_rows(sf, run_target, base_config) -> None:
    result = run(run_target, base_config, ["Ng", None, "Pim"])  # Contact.LastName is required
    assert sorted(result_files(result.calls)) == ["failedResults", "successfulResults"]
    assert [(r["error_code"], r["record"]["Email"]) for r in result.rejects] == [
        ("REQUIRED_FIELD_MISSING", "c1@example.com")
    ]
    names = {row["LastName"] for row in sf.query("SELECT LastName FROM Contact")["records"]}
    assert names == {"Ng", "Pim"}


def test_a_job_whose_rows_all_succeed_is_tallied_from_its_successful_results(sf, run_target, base_config) -> None:
    """Without a results output no row's Id is wanted: a job that created two records and updated one is counted
    from its successful results, read once, and Salesforce holds the three as sent."""
    sf.Contact.create({"LastName": "Old", "External_Id__c": "K-1"})
    messages = [schema_msg("contacts", string_props("LastName", "External_Id__c"))]
    messages += [record_msg("contacts", {"LastName": f"New{n}", "External_Id__c": f"K-{n}"}) for n in (1, 2, 3)]
    config = {**base_config, **CONFIG, "sync_mode": "upsert", "match_field": "External_Id__c"}
    result = run_target(config, messages)
    result.assert_ok()
    assert result_files(result.calls) == ["successfulResults"]
    assert "2 created, 1 updated, 0 not found" in result.stderr
    rows = sf.query("SELECT External_Id__c, LastName FROM Contact ORDER BY External_Id__c")["records"]
    assert [(r["External_Id__c"], r["LastName"]) for r in rows] == [("K-1", "New1"), ("K-2", "New2"), ("K-3", "New3")]


def test_a_batch_ends_when_its_job_reaches_the_upload_limit(sf, run_target, base_config) -> None:
    """A batch whose Bulk CSV, built as records are read, reaches the 100 MB a job takes is written then, as one
    job, and the records after it start the next batch: no batch is split into a full job and a small one.
    Read back from Salesforce's own list of ingest jobs and SOQL; the batches from the target's log."""
    before = {job["id"] for job in sf.restful("jobs/ingest")["records"]}
    text = "ü" * 32_000  # Contact.Description's length, 64 KB of UTF-8: about 1,600 rows fill a job
    messages = [schema_msg("contacts", string_props("LastName", "Description"))]
    messages += [record_msg("contacts", {"LastName": f"N{i}", "Description": text}) for i in range(1_700)]
    result = run_target({**base_config, **CONFIG}, messages)
    result.assert_ok()
    jobs = [sf.restful(f"jobs/ingest/{job['id']}") for job in sf.restful("jobs/ingest")["records"]]
    sizes = [job["numberRecordsProcessed"] for job in jobs if job["id"] not in before]
    assert len(sizes) == 2 and sum(sizes) == 1_700 and 1_500 < max(sizes) < 1_650
    batches = re.findall(r"Contact batch of (\d+)", result.stderr)
    assert sorted(map(int, batches)) == sorted(sizes)
    assert sf.query("SELECT COUNT() FROM Contact")["totalSize"] == 1_700


class FakeClock:
    """``time`` for the bulk writer: sleeping advances the clock, and each job runs ``job_seconds`` from its close."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 3))
        self.now += seconds


class FakeJobs:
    def __init__(self, clock: FakeClock, job_seconds: float, rows: int = 0) -> None:
        self.clock, self.job_seconds, self.closed_at, self.polls = clock, job_seconds, 0.0, 0
        self.rows = rows  # when set, the job info says how many rows are processed, at an even pace

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        class Answer:
            def __init__(self, body: dict[str, Any]) -> None:
                self.body = body

            def json(self) -> dict[str, Any]:
                return self.body

        if method == "PATCH":
            self.closed_at = self.clock.now
        elif method == "GET":
            self.polls += 1
            progress = min(1.0, (self.clock.now - self.closed_at) / self.job_seconds)
            info = {"state": "JobComplete" if progress == 1.0 else "InProgress"}
            if self.rows:
                info["numberRecordsProcessed"] = int(self.rows * progress)
            return Answer(info)
        return Answer({"id": "750000000000001AAA"})


def test_polls_of_a_job_like_the_last_start_after_most_of_its_time(monkeypatch) -> None:
    """Pure logic with a fake clock: a job the size of the last waits 0.9 of the last one's time before its first
    poll, a job half the size half that; the first job, with nothing to go by, polls almost from the start."""
    from target_salesforce import bulk_writer

    clock = FakeClock()
    jobs = FakeJobs(clock, job_seconds=10.0)
    monkeypatch.setattr(bulk_writer, "time", clock)
    writer = bulk_writer.BulkWriter(jobs, poll_initial=0.05, poll_max=2.0)
    writer._client.request("PATCH", "close")
    writer._wait("job1", 1000)
    first_polls = jobs.polls
    assert first_polls > 5 and clock.sleeps[0] == round(0.9 * 1000 / bulk_writer.FIRST_JOB_ROWS_PER_SECOND, 3)
    elapsed = clock.now
    for rows in (1000, 500):
        clock.sleeps.clear()
        jobs.polls = 0
        writer._client.request("PATCH", "close")
        started = clock.now
        jobs.job_seconds = 10.0 * rows / 1000
        writer._wait("job", rows)
        assert clock.sleeps[0] == round(0.9 * elapsed * rows / 1000, 3)
        assert jobs.polls <= 3 < first_polls
        elapsed = (clock.now - started) * 1000 / rows


def test_a_large_first_job_is_paced_by_its_own_progress(monkeypatch) -> None:
    """Pure logic with a fake clock: the first job of a run (nothing to go by) of 500,000 rows that takes 40 s costs
    a few polls, not one every couple of seconds, because its processed-row count tells how long the rest takes."""
    from target_salesforce import bulk_writer

    clock = FakeClock()
    jobs = FakeJobs(clock, job_seconds=40.0, rows=500_000)
    monkeypatch.setattr(bulk_writer, "time", clock)
    writer = bulk_writer.BulkWriter(jobs, poll_initial=0.05, poll_max=2.0)
    writer._client.request("PATCH", "close")
    writer._wait("job1", 500_000)
    assert jobs.polls <= 3
    assert clock.now < 45.0


def test_identical_insert_rows_each_get_their_own_result_and_no_temp_file_is_left(
    sf, run_target, base_config, tmp_path, monkeypatch
) -> None:
    """Results are matched to rows by their cells: three identical rows are three records with three ids, the row
    Salesforce refuses is rejected, and the batch's spool and job files leave nothing in the temporary directory."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    results_path = tmp_path / "results.jsonl"
    names = ["Same", "Same", None, "Same", "Ng"]
    messages = [schema_msg("contacts", string_props("LastName", "Email"), ["Email"])]
    messages += [record_msg("contacts", {"LastName": n, "Email": "same@example.com"}) for n in names]
    result = run_target({**base_config, **CONFIG, "results_path": str(results_path)}, messages)
    result.assert_ok()
    assert [r["error_code"] for r in result.rejects] == ["REQUIRED_FIELD_MISSING"]
    lines = [json.loads(line) for line in results_path.read_text().splitlines()]
    created = [line["id"] for line in lines if line["outcome"] == "created"]
    assert len(created) == 4 and len(set(created)) == 4
    assert sorted(line["outcome"] for line in lines) == ["created"] * 4 + ["rejected"]
    stored = sf.query("SELECT Id, LastName FROM Contact")["records"]
    assert {r["Id"] for r in stored} == set(created)
    assert sorted(r["LastName"] for r in stored) == ["Ng", "Same", "Same", "Same"]
    assert list(temp.iterdir()) == []


def test_the_first_batch_of_a_stream_is_a_smaller_job(sf, run_target, base_config) -> None:
    """Unset, batch_size_rows is 500,000 but a stream's first batch 200,000: Salesforce works on a first job while
    the rest is read. Read back from Salesforce's own list of ingest jobs."""
    before = {job["id"] for job in sf.restful("jobs/ingest")["records"]}
    messages = [schema_msg("contacts", string_props("LastName"))]
    messages += [record_msg("contacts", {"LastName": f"N{i}"}) for i in range(200_003)]
    result = run_target({**base_config, **CONFIG}, messages)
    result.assert_ok()
    jobs = [job for job in sf.restful("jobs/ingest")["records"] if job["id"] not in before]
    sizes = sorted(sf.restful(f"jobs/ingest/{job['id']}")["numberRecordsProcessed"] for job in jobs)
    assert sizes == [3, 200_000]
    assert sf.query("SELECT COUNT() FROM Contact")["totalSize"] == 200_003


def test_a_job_built_while_reading_leaves_out_replaced_rows_deletes_and_literal_na(
    sf, run_target, base_config, tmp_path
) -> None:
    """An upsert's Bulk CSV is built as records are read. Rows replaced by a later record of their key leave it
    (the last version lands, the earlier ones share its outcome), a literal ``#N/A`` goes through Collections and a
    delete is sent after the writes, each read back from Salesforce and the emulator's call log."""
    gone = sf.Contact.create({"LastName": "Gone", "External_Id__c": "k-gone"})["id"]
    results_path = tmp_path / "results.jsonl"
    versions = [("k1", "One v1"), ("k2", "Two"), ("k1", "One v2"), ("k3", "#N/A"), ("k1", "One v3")]
    props = string_props("LastName", "External_Id__c", "_sdc_deleted_at")
    messages = [schema_msg("contacts", props, ["External_Id__c"])]
    messages += [record_msg("contacts", {"External_Id__c": k, "LastName": name}) for k, name in versions]
    messages.append(record_msg("contacts", {"External_Id__c": "k-gone", "_sdc_deleted_at": "2026-01-01T00:00:00Z"}))
    config = {
        **base_config,
        **CONFIG,
        "sync_mode": "upsert",
        "match_field": "External_Id__c",
        "process_deletes": True,
        "results_path": str(results_path),
    }
    result = run_target(config, messages)
    result.assert_ok()
    stored = sf.query("SELECT Id, External_Id__c, LastName FROM Contact ORDER BY External_Id__c")["records"]
    assert [(r["External_Id__c"], r["LastName"]) for r in stored] == [("k1", "One v3"), ("k2", "Two"), ("k3", "#N/A")]
    writes = write_calls(result.calls)
    assert [c["records"] for c in writes if c["path"].endswith("/batches")] == [2, 1]  # the upserts, then the delete
    assert [c["records"] for c in writes if "/composite/sobjects" in c["path"]] == [1]
    deleted = sf.query_all(f"SELECT IsDeleted FROM Contact WHERE Id = '{gone}'", include_deleted=True)["records"]
    assert [r["IsDeleted"] for r in deleted] == [True]
    lines = [json.loads(line) for line in results_path.read_text().splitlines()]
    k1 = [line for line in lines if line["key"] == {"External_Id__c": "k1"}]
    assert [line["outcome"] for line in k1] == ["created"] * 3  # the replaced records share the last one's outcome
    assert [line["id"] for line in k1] == [stored[0]["Id"]] * 3
    assert "3 created, 0 updated, 1 deleted" in result.stderr and "2 merged" in result.stderr


def test_records_converted_in_blocks_land_as_records_converted_one_by_one(sf, run_target, base_config) -> None:
    """A batch bound for one Bulk job is converted a block of records at a time. Across several blocks, a bad value
    (rejected alone), a literal ``#N/A`` (sent through Collections), a delete in the middle (its block is added
    first) and a key repeated two blocks later (the last version lands) are each read back from Salesforce, the
    reject file and the emulator's call log."""
    gone = sf.Contact.create({"LastName": "Gone", "External_Id__c": "K-gone"})["id"]
    count = 2 * BLOCK_ROWS + 300
    props = string_props("LastName", "Email", "External_Id__c", "_sdc_deleted_at")
    messages = [schema_msg("contacts", props, ["External_Id__c"])]
    for i in range(count):
        key, name = ("K-5", "Five v2") if i == count - 50 else (f"K-{i}", f"Name {i}")
        record = {"External_Id__c": key, "LastName": name, "Email": f"c{i}@example.com"}
        if i == BLOCK_ROWS + 200:
            record["Email"] = "nope"
        if i == BLOCK_ROWS + 500:
            record["LastName"] = "#N/A"
        messages.append(record_msg("contacts", record))
        if i == BLOCK_ROWS + 800:
            messages.append(record_msg("contacts", {"External_Id__c": "K-gone", "_sdc_deleted_at": "2026-01-01"}))
    config = {**base_config, **CONFIG, "sync_mode": "upsert", "match_field": "External_Id__c", "process_deletes": True}
    result = run_target(config, messages)
    result.assert_ok()
    assert [(r["error_code"], r["record"]["Email"]) for r in result.rejects] == [("INVALID_EMAIL_ADDRESS", "nope")]
    assert sf.query("SELECT COUNT() FROM Contact")["totalSize"] == count - 2  # less the merged and the rejected
    five = sf.query("SELECT LastName FROM Contact WHERE External_Id__c = 'K-5'")["records"]
    assert [r["LastName"] for r in five] == ["Five v2"]
    na = sf.query(f"SELECT LastName FROM Contact WHERE External_Id__c = 'K-{BLOCK_ROWS + 500}'")["records"]
    assert [r["LastName"] for r in na] == ["#N/A"]
    deleted = sf.query_all(f"SELECT IsDeleted FROM Contact WHERE Id = '{gone}'", include_deleted=True)["records"]
    assert [r["IsDeleted"] for r in deleted] == [True]
    writes = write_calls(result.calls)
    assert [c["records"] for c in writes if c["path"].endswith("/batches")] == [count - 3, 1]
    assert [c["records"] for c in writes if "/composite/sobjects" in c["path"]] == [1]
