"""A run that reaches the API limit stops cleanly and resumes from its last STATE.

The emulator's daily limit is set so that it is reached mid-run, either by the run's own budget
(``max_api_usage_percent``) or by Salesforce's 403 REQUEST_LIMIT_EXCEEDED. Everything is read back independently:
the org's usage from ``/limits``, the data through SOQL, the reject file from disk.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from target_salesforce.budget import ApiBudget, ApiBudgetReached
from target_salesforce.client import SalesforceClient
from tests.target.conftest import (
    PARENT_CHILD_SCHEMAS,
    RUN_TIMEOUT_SECONDS,
    TargetResult,
    encode,
    parent_child_config,
    record_msg,
    schema_msg,
    start_target,
    state_msg,
    string_props,
    write_calls,
)

RECORDS = 10_000  # the fault matrix's size: the limit is reached mid-run on 10,000 records in each write path
BATCH = 500  # rows per batch, and a STATE after every BATCH records
REJECTED_INDEX = 740  # a record our own checks reject (name too long), in the second batch
# API calls per batch: three Collections requests (200 rows each), or a Bulk job (create, upload, close, polls,
# two result reads).
CALLS_PER_BATCH = {"rest": 3, "bulk": 8}
SETUP_CALLS = 1  # the describe, before the first write (a named object needs no object list)
EXIT_API_LIMIT = 75
CONTACTS_WRITE = "/composite/sobjects/Contact/External_Id__c"


def key(index: int) -> str:
    return f"b{index:04d}"


def messages(start: int = 0) -> list[dict[str, Any]]:
    """SCHEMA, then the records from ``start`` on, with a STATE bookmark (the position) after every BATCH records."""
    out = [schema_msg("Account", string_props("External_Id__c", "Name"))]
    for index in range(start, RECORDS):
        name = "x" * 300 if index == REJECTED_INDEX else f"Account {index}"
        out.append(record_msg("Account", {"External_Id__c": key(index), "Name": name}))
        if (index + 1) % BATCH == 0:
            out.append(state_msg({"bookmarks": {"Account": {"position": index + 1}}}))
    return out


def accounts(sf: Any) -> list[tuple[str, str]]:
    rows = sf.query_all("SELECT External_Id__c, Name FROM Account")["records"]
    return sorted((row["External_Id__c"], row["Name"]) for row in rows)


def org_usage(emulator: Any) -> tuple[int, int]:
    """The org's (used, limit) before this request, from the header every answer carries (403s included)."""
    resp = emulator.http.get(emulator.api_url("limits"), headers=emulator.auth_headers(), timeout=30)
    used, limit = (int(n) for n in resp.headers["Sforce-Limit-Info"].removeprefix("api-usage=").split("/"))
    return (used - 1 if resp.ok else used), limit  # an answered request is counted in its own header


def last_position(result: TargetResult) -> int:
    states = result.states
    assert states, f"no STATE printed before the stop\n{result.stderr}"
    return states[-1]["bookmarks"]["Account"]["position"]


@pytest.mark.parametrize("api", ["rest", "bulk"])
@pytest.mark.parametrize("stop_by", ["budget", "org_limit"])
def test_stop_at_api_limit_then_resume(sf, emulator, run_target, base_config, api, stop_by) -> None:
    # Enough calls for about a third of the batches: the stop comes mid-run, after some STATEs.
    calls_allowed = SETUP_CALLS + 6 * CALLS_PER_BATCH[api]
    config = {**base_config, "object": "Account", "match_field": "External_Id__c", "api": api}
    config["batch_size_rows"] = BATCH
    if stop_by == "budget":
        config["max_api_usage_percent"] = 50
        emulator.set_faults(daily_api_limit=2 * calls_allowed)
    else:
        emulator.set_faults(daily_api_limit=calls_allowed)

    stopped = run_target(config, messages())

    assert stopped.returncode == EXIT_API_LIMIT, stopped.stderr
    assert "Traceback" not in stopped.stderr, stopped.stderr
    [line] = stopped.error_lines()
    reason = "max_api_usage_percent 50" if stop_by == "budget" else "REQUEST_LIMIT_EXCEEDED"
    assert line.startswith("target-salesforce: error: stopped cleanly:"), line
    assert reason in line, line
    assert "1 rejected" in line and "record(s) written" in line, line
    assert "to resume, run again from that STATE" in line, line
    used, limit = org_usage(emulator)
    assert f"org API usage {used}/{limit}" in line, line
    if stop_by == "budget":
        # The budget is checked before each group of calls (a Bulk job, or one round of parallel Collections
        # requests); a group that started finishes, so the overshoot is at most one group.
        assert used <= calls_allowed + CALLS_PER_BATCH[api], (used, calls_allowed)

    emulator.set_faults()  # the org's limit frees up (and the budget with it), so the checks can query

    position = last_position(stopped)
    assert 0 < position < RECORDS
    in_salesforce = dict(accounts(sf))
    covered = {key(i) for i in range(position) if i != REJECTED_INDEX}
    assert covered <= set(in_salesforce), sorted(covered - set(in_salesforce))
    # Only the record our checks refused is in the reject file: records left unwritten by the stop are not rejects.
    assert [(r["error_code"], r["record"]["External_Id__c"]) for r in stopped.rejects] == [
        ("STRING_TOO_LONG", key(REJECTED_INDEX))
    ]
    written = int(line.split("Progress: ")[1].split(" record(s) written")[0])
    assert written >= len(covered)

    resumed = run_target(config, messages(start=position))

    resumed.assert_ok()
    assert last_position(resumed) == RECORDS
    assert resumed.rejects == []
    expected = sorted((key(i), f"Account {i}") for i in range(RECORDS) if i != REJECTED_INDEX)
    assert accounts(sf) == expected  # every record once, with its values: nothing lost, nothing duplicated


def test_budget_reached_before_the_first_write_writes_nothing(sf, emulator, run_target, base_config) -> None:
    emulator.set_faults(daily_api_limit=100)
    config = {**base_config, "object": "Account", "match_field": "External_Id__c", "max_api_usage_percent": 1}

    result = run_target(config, messages())

    assert result.returncode == EXIT_API_LIMIT, result.stderr
    [line] = result.error_lines()
    # One batch holds every record: our own checks rejected one while reading, Salesforce got none.
    assert "Progress: 0 record(s) written and 1 rejected" in line, line
    assert [r["error_code"] for r in result.rejects] == ["STRING_TOO_LONG"]
    assert "or at once after raising max_api_usage_percent" in line, line
    assert result.states == []
    assert accounts(sf) == []
    assert write_calls(result.calls) == []


def run_paced(
    emulator: Any, workdir: Path, config: dict[str, Any], first: list, then: list, *, after: str
) -> tuple[int, str, str]:
    """Run the CLI with ``first`` on stdin, then ``then`` once the emulator has answered a call to a path ending in
    ``after``: (exit code, stdout, stderr)."""
    proc = start_target(emulator, workdir, config)
    assert proc.stdin is not None
    proc.stdin.write(encode(first).encode("utf-8"))
    proc.stdin.flush()
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    while not any(c["path"].endswith(after) for c in emulator.calls()) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # the target reads the answer and defers the row
    stdout, stderr = proc.communicate(encode(then).encode("utf-8"), timeout=RUN_TIMEOUT_SECONDS)
    return proc.returncode, stdout.decode("utf-8"), stderr.decode("utf-8", errors="replace")


def test_no_state_covers_a_child_waiting_for_its_parent_when_the_run_stops(
    sf, emulator, run_target, base_config, tmp_path
):
    config = parent_child_config(base_config, "rest", batch_size_rows=2)
    head = [
        *PARENT_CHILD_SCHEMAS,
        record_msg("accounts", {"key": "a0", "name": "A0"}),
        record_msg("contacts", {"key": "c0", "name": "C0", "account_key": "a5"}),  # a5 comes later: c0 waits
        record_msg("contacts", {"key": "c1", "name": "C1", "account_key": "a0"}),  # full: a0, then c1 written
    ]
    tail = [
        state_msg({"bookmark": 1}),  # every sink is drained, but c0 is not written yet
        record_msg("accounts", {"key": "a5", "name": "A5"}),
        record_msg("accounts", {"key": "a6", "name": "A6"}),  # full: its write is refused
    ]
    # How many calls the run makes up to c1's write, measured on a run of the head alone.
    calibration = run_target(config, head)
    calibration.assert_ok()
    metered = [c for c in calibration.calls if c["path"].startswith("/services/data/")]
    contacts_write = next(i for i, c in enumerate(metered) if c["path"].endswith(CONTACTS_WRITE))
    emulator.reset()
    emulator.set_faults(daily_api_limit=contacts_write + 1, latency_ms=300)

    # Slow answers keep the contacts' batch being written in the background when the STATE is read, so the STATE is
    # held for that write. a6 (the record after which the target next looks at the held STATE) is sent only once
    # the write has been answered, c0 deferred: the held STATE is judged with c0 waiting every time, not by luck.
    rejects = Path(config["rejects_path"])
    rejected_before = rejects.read_text(encoding="utf-8") if rejects.exists() else ""  # the calibration's c0
    first, then = [*head, *tail[:2]], tail[2:]
    returncode, stdout, stderr = run_paced(emulator, tmp_path, config, first, then, after=CONTACTS_WRITE)

    assert returncode == EXIT_API_LIMIT, stderr
    assert "REQUEST_LIMIT_EXCEEDED" in stderr
    assert "1 deferred until their parents are written" in stderr
    assert stdout.strip() == ""  # a STATE {"bookmark": 1} would let a resumed run skip c0
    assert rejects.read_text(encoding="utf-8") == rejected_before  # c0 waits, and the stop rejects nothing
    emulator.set_faults()
    resumed = run_target(config, [*head, *tail])
    resumed.assert_ok()
    rows = sf.query_all("SELECT External_Id__c, Account.External_Id__c FROM Contact")["records"]
    assert sorted((r["External_Id__c"], r["Account"]["External_Id__c"]) for r in rows) == [("c0", "a5"), ("c1", "a0")]


@pytest.mark.parametrize(
    ("percent", "used", "stops"), [(50, 499, False), (50, 500, True), (100, 999, False), (1, 10, True)]
)
def test_budget_stops_at_its_share_of_the_daily_limit(percent, used, stops) -> None:
    budget = ApiBudget(percent)
    if stops:
        with pytest.raises(ApiBudgetReached, match=f"max_api_usage_percent {percent}: the org has used {used} of"):
            budget.check(used, 1000)
    else:
        budget.check(used, 1000)
    ApiBudget(None).check(10**6, 1000)  # unset: no limit of its own


def test_client_asks_limits_only_before_its_first_answer(emulator, monkeypatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", emulator.ca_bundle)
    emulator.reset()
    emulator.set_faults(daily_api_limit=10)
    config = {key: emulator[key] for key in ("client_id", "client_secret", "refresh_token", "login_url")}
    client = SalesforceClient({**config, "max_api_usage_percent": 50})

    client.check_budget()  # no answer yet: one GET /limits
    client.check_budget()  # known from that answer's header: no call
    for _ in range(3):
        client.json("GET", "sobjects")
    client.check_budget()  # 4 of 10 used, the budget is 5
    client.json("GET", "sobjects")
    with pytest.raises(ApiBudgetReached, match="the org has used 5 of its 10 daily API requests, the budget allows 5"):
        client.check_budget()

    paths = [c["path"].rsplit("/", 1)[-1] for c in emulator.calls() if c["path"].startswith("/services/data/")]
    assert paths == ["limits", "sobjects", "sobjects", "sobjects", "sobjects"]
