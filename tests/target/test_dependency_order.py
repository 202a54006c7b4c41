"""Several objects in one run: parents are written before the children whose lookups reference them.

The tap emits the child stream (Contact, with ``account_key → Account.External_Id__c``) before the parent stream
(Account); the lookups only resolve if the target writes the Accounts first. Read back through SOQL, and the order
of the writes through the emulator's call log.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from target_salesforce.dependencies import find_cycle, levels
from tests.conftest import start_emulator
from tests.target.conftest import (
    PARENT_CHILD_SCHEMAS,
    encode,
    parent_child_config,
    record_msg,
    schema_msg,
    state_msg,
    string_props,
    target_command,
    target_env,
    write_calls,
)

APIS = ("rest", "bulk")


def contacts_by_account(sf: Any) -> dict[str, str | None]:
    """Contact external id → its Account's external id, read back through SOQL."""
    rows = sf.query_all("SELECT External_Id__c, Account.External_Id__c FROM Contact")["records"]
    return {r["External_Id__c"]: (r["Account"] or {}).get("External_Id__c") for r in rows}


def written_objects(calls: list[dict[str, Any]]) -> list[str]:
    """The object of each write in call order (Collections paths carry no object, so Bulk job creations and
    Collections upserts are what this reads: ``.../composite/sobjects/Contact/External_Id__c``)."""
    out = []
    for call in write_calls(calls):
        path = call["path"]
        if "/composite/sobjects/" in path:
            out.append(path.split("/composite/sobjects/")[1].split("/")[0])
        elif path.endswith("/jobs/ingest"):
            out.append(call.get("object") or "job")
    return out


@pytest.mark.parametrize("api", APIS)
def test_parents_are_written_first_whatever_the_stream_order(sf, run_target, base_config, api) -> None:
    messages = [
        *PARENT_CHILD_SCHEMAS,
        *(record_msg("contacts", {"key": f"c{i}", "name": f"C{i}", "account_key": f"a{i % 2}"}) for i in range(4)),
        *(record_msg("accounts", {"key": f"a{i}", "name": f"A{i}"}) for i in range(2)),
    ]
    result = run_target(parent_child_config(base_config, api), messages)
    result.assert_ok()

    assert contacts_by_account(sf) == {"c0": "a0", "c1": "a1", "c2": "a0", "c3": "a1"}
    assert result.rejects == []
    if api == "rest":
        assert written_objects(result.calls) == ["Account", "Contact"]


def test_a_full_child_batch_drains_its_parents_first(sf, run_target, base_config) -> None:
    messages = [
        *PARENT_CHILD_SCHEMAS,
        record_msg("accounts", {"key": "a0", "name": "A0"}),
        record_msg("contacts", {"key": "c0", "name": "C0", "account_key": "a0"}),
        record_msg("contacts", {"key": "c1", "name": "C1", "account_key": "a0"}),  # contacts full: drains
        record_msg("accounts", {"key": "a1", "name": "A1"}),
        record_msg("contacts", {"key": "c2", "name": "C2", "account_key": "a1"}),
    ]
    result = run_target(parent_child_config(base_config, "rest", batch_size_rows=2), messages)
    result.assert_ok()

    assert contacts_by_account(sf) == {"c0": "a0", "c1": "a0", "c2": "a1"}
    assert written_objects(result.calls) == ["Account", "Contact", "Account", "Contact"]


def results_of(path: Any) -> list[tuple[str, str, str | None]]:
    return sorted((line["key"]["key"], line["outcome"], line["id"]) for line in map(json.loads, path.open()))


def test_children_wait_for_a_parent_not_read_yet(sf, run_target, base_config, tmp_path) -> None:
    """A child batch that fills before its parent record is even read is deferred to the next full drain."""
    results_path = tmp_path / "results.jsonl"
    messages = [
        *PARENT_CHILD_SCHEMAS,
        record_msg("contacts", {"key": "c0", "name": "Old", "account_key": "a0"}),
        record_msg("contacts", {"key": "c1", "name": "C1", "account_key": "a0"}),  # full before a0: deferred
        record_msg("contacts", {"key": "c0", "name": "New", "account_key": "a0"}),  # a newer c0 replaces the deferred
        record_msg("contacts", {"key": "c2", "name": "C2", "account_key": "a0"}),  # full again: deferred again
        record_msg("accounts", {"key": "a0", "name": "A0"}),
    ]
    config = parent_child_config(base_config, "rest", batch_size_rows=2, results_path=str(results_path))
    result = run_target(config, messages)
    result.assert_ok()

    assert contacts_by_account(sf) == {"c0": "a0", "c1": "a0", "c2": "a0"}
    names = {
        r["External_Id__c"]: r["LastName"]
        for r in sf.query_all("SELECT External_Id__c, LastName FROM Contact")["records"]
    }
    assert names["c0"] == "New"  # the old version, deferred, never lands after the new one
    assert result.rejects == []
    ids = {r["External_Id__c"]: r["Id"] for r in sf.query_all("SELECT Id, External_Id__c FROM Contact")["records"]}
    account = sf.query_all("SELECT Id FROM Account")["records"][0]["Id"]
    assert results_of(results_path) == [
        ("a0", "created", account),
        ("c0", "created", ids["c0"]),  # both versions of c0 have a line
        ("c0", "created", ids["c0"]),
        ("c1", "created", ids["c1"]),
        ("c2", "created", ids["c2"]),
    ]


def test_children_whose_parent_never_comes_are_rejected_before_the_state(sf, run_target, base_config) -> None:
    messages = [
        *PARENT_CHILD_SCHEMAS,
        record_msg("accounts", {"key": "a0", "name": "A0"}),
        record_msg("contacts", {"key": "c0", "name": "C0", "account_key": "a9"}),
        record_msg("contacts", {"key": "c1", "name": "C1", "account_key": "a0"}),  # full: c0 deferred, c1 written
        state_msg({"bookmark": 1}),
    ]
    result = run_target(parent_child_config(base_config, "bulk", batch_size_rows=2), messages)
    result.assert_ok()

    assert contacts_by_account(sf) == {"c1": "a0"}
    assert [(r["record"]["key"], r["error_code"]) for r in result.rejects] == [("c0", "INVALID_FIELD")]
    assert "Foreign key external ID: a9 not found" in result.rejects[0]["message"]
    assert result.states == [{"bookmark": 1}]


def cycle_objects() -> dict[str, Any]:
    """Two custom objects that look each other up through external ids."""

    def obj(name: str, prefix: str, other: str) -> dict[str, Any]:
        return {
            "name": name,
            "keyPrefix": prefix,
            "fields": [
                {"name": "Id", "type": "id", "createable": False, "updateable": False, "nillable": False},
                {"name": "Code__c", "type": "string", "length": 20, "externalId": True, "idLookup": True},
                {"name": other, "type": "reference", "referenceTo": [other], "relationshipName": other[:-3] + "__r"},
            ],
        }

    return {"sobjects": [obj("Alpha__c", "a01", "Beta__c"), obj("Beta__c", "a02", "Alpha__c")]}


def test_a_lookup_cycle_is_one_config_error_before_any_write(base_config, tmp_path) -> None:
    objects = tmp_path / "objects.json"
    objects.write_text(json.dumps(cycle_objects()))
    private = start_emulator(tmp_path, "--objects", str(objects))
    try:
        config = {
            **base_config,
            "login_url": private["login_url"],
            "client_id": private["client_id"],
            "client_secret": private["client_secret"],
            "refresh_token": private["refresh_token"],
            "streams": {
                "alphas": {"object": "Alpha__c", "field_mapping": {"id": "Code__c", "b": "Beta__r.Code__c"}},
                "betas": {"object": "Beta__c", "field_mapping": {"id": "Code__c", "a": "Alpha__r.Code__c"}},
            },
            "match_field": "Code__c",
        }
        config_path = tmp_path / "config.json"
        config_path.write_text(json.dumps(config))
        messages = [schema_msg("alphas", string_props("id", "b")), record_msg("alphas", {"id": "x", "b": "y"})]
        proc = subprocess.run(
            [*target_command(), "--config", str(config_path)],
            input=encode(messages).encode("utf-8"),
            capture_output=True,
            env=target_env(private["ca_bundle"]),
            cwd=tmp_path,
            timeout=120,
            check=False,
        )
        stderr = proc.stderr.decode("utf-8")
        assert proc.returncode != 0 and "Traceback" not in stderr
        assert [line for line in stderr.splitlines() if "error" in line.lower()] == [
            "target-salesforce: error: The streams' lookups form a cycle (Alpha__c → Beta__c → Alpha__c): no object "
            "can be written first; load one of these streams in a separate run, or map a lookup to record ids "
            "instead of an external id."
        ]
        assert write_calls(private.calls()) == []
    finally:
        private.stop()


# --- pure logic ---------------------------------------------------------------------------------------------------


def test_find_cycle_names_the_path() -> None:
    assert find_cycle({"Contact": {"Account"}, "Account": set()}) is None
    assert find_cycle({"A": {"B"}, "B": {"C"}, "C": {"A"}}) == ["A", "B", "C", "A"]


def test_levels_put_every_sink_after_its_parents() -> None:
    class FakeSink:
        def __init__(self, name: str, *parents: str) -> None:
            self.object_name, self.parent_objects = name, frozenset(parents)

    opportunity, contact, account, lead = (
        FakeSink("Opportunity", "Account", "Contact"),
        FakeSink("Contact", "Account"),
        FakeSink("Account"),
        FakeSink("Lead"),
    )
    assert levels([opportunity, contact, account, lead]) == [[account, lead], [contact], [opportunity]]
