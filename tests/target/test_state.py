"""STATE handling end to end: a STATE reaches stdout only once the records before it are in Salesforce.

The target runs as a real subprocess whose stdin is a pipe fed batch by batch; a reader thread queries the
emulator by SOQL the moment each STATE line appears, while the target may still be running.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from tests.target.conftest import encode, record_msg, schema_msg, start_target, state_msg, string_props


def keys_in_emulator(emulator: Any) -> set[str]:
    sf = emulator.salesforce()
    return {r["External_Id__c"] for r in sf.query_all("SELECT External_Id__c FROM Account")["records"]}


@pytest.mark.parametrize("api", ["rest", "bulk"])
def test_state_only_after_its_records_are_written(sf, emulator, base_config, tmp_path, api) -> None:
    # Slow the emulator down so that a STATE emitted before its records are answered would be caught.
    emulator.set_faults(latency_ms=100, bulk_processing_delay_ms=400)
    config = {**base_config, "object": "Account", "match_field": "External_Id__c", "api": api, "batch_size_rows": 2}
    proc = start_target(emulator, tmp_path, config)
    seen: list[tuple[str, Any, set[str]]] = []  # (raw line, STATE value, keys in the emulator when it appeared)
    stderr_chunks: list[bytes] = []

    def read_stdout() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8").strip()
            if not line:
                continue
            try:
                value = json.loads(line)
            except ValueError:
                value = None
            seen.append((line, value, keys_in_emulator(emulator)))

    reader = threading.Thread(target=read_stdout)
    err_reader = threading.Thread(target=lambda: stderr_chunks.append(proc.stderr.read()))  # type: ignore[union-attr]
    reader.start()
    err_reader.start()

    sent: list[str] = []
    expected_before: dict[int, set[str]] = {}
    assert proc.stdin is not None
    proc.stdin.write(encode([schema_msg("Account", string_props("Name", "External_Id__c"))]).encode())
    for batch in range(3):
        keys = [f"s{batch}-{i}" for i in range(3)]
        sent.extend(keys)
        messages = [record_msg("Account", {"Name": k, "External_Id__c": k}) for k in keys]
        proc.stdin.write(encode([*messages, state_msg({"batch": batch})]).encode())
        proc.stdin.flush()
        expected_before[batch] = set(sent)
        time.sleep(0.3)
    proc.stdin.close()
    returncode = proc.wait(timeout=120)
    reader.join(timeout=30)
    err_reader.join(timeout=30)
    stderr = b"".join(stderr_chunks).decode("utf-8", errors="replace")

    assert returncode == 0, stderr
    assert seen, "no STATE reached stdout"
    for line, value, present in seen:
        assert isinstance(value, dict), line  # stdout carries only STATE values, one JSON object per line
        assert expected_before[value["batch"]] <= present, (value, sorted(present))
    assert seen[-1][1] == {"batch": 2}
    assert keys_in_emulator(emulator) == set(sent)


@pytest.mark.parametrize("api", ["rest", "bulk"])
def test_new_schema_never_lets_an_older_version_win(sf, emulator, run_target, base_config, api) -> None:
    config = {**base_config, "object": "Account", "match_field": "External_Id__c", "api": api, "batch_size_rows": 2}
    messages = [
        schema_msg("Account", string_props("Name", "External_Id__c")),
        record_msg("Account", {"External_Id__c": "k1", "Name": "old"}),
        schema_msg("Account", string_props("Name", "External_Id__c", "AccountNumber")),
        record_msg("Account", {"External_Id__c": "k1", "Name": "new", "AccountNumber": "1"}),
        record_msg("Account", {"External_Id__c": "k2", "Name": "other", "AccountNumber": "2"}),
        state_msg({"done": True}),
    ]
    result = run_target(config, messages)
    result.assert_ok()
    assert result.states == [{"done": True}]
    rows = sf.query_all("SELECT External_Id__c, Name FROM Account ORDER BY External_Id__c")["records"]
    assert [(r["External_Id__c"], r["Name"]) for r in rows] == [("k1", "new"), ("k2", "other")]


def test_stdout_carries_only_state_lines(sf, emulator, run_target, base_config) -> None:
    config = {**base_config, "object": "Account", "match_field": "External_Id__c", "batch_size_rows": 1}
    messages = [
        schema_msg("Account", string_props("Name", "External_Id__c")),
        state_msg({"a": 1}),
        record_msg("Account", {"External_Id__c": "k1", "Name": "one"}),
        state_msg({"a": 2}),
        record_msg("Account", {"External_Id__c": "k2", "Name": "two"}),
        state_msg({"a": 3}),
    ]
    result = run_target(config, messages)
    result.assert_ok()
    assert result.states[-1] == {"a": 3}
    assert sf.query_all("SELECT Id FROM Account")["totalSize"] == 2
