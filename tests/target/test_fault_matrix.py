"""The fault matrix: each fault the emulator can inject, on 10,000 records, through each write path and mode.

Whatever goes wrong, every input record must end up exactly once in Salesforce or in the reject file with its reason,
and never twice in Salesforce. Each case resets the shared emulator, aims one fault at the calls where it matters
(``only_calls``/``skip_calls``), runs the real CLI and reads the org back through SOQL. Retry pauses are shrunk
through TARGET_SALESFORCE_RETRY_PAUSE_SCALE so that the retries, not the sleeping, are what is tested.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from target_salesforce.client import OutcomeUnknown
from target_salesforce.collections_writer import CollectionsWriter, MatchField
from target_salesforce.errors import ConfigError
from target_salesforce.retry_pause import ENV_VAR as PAUSE_SCALE
from target_salesforce.retry_pause import scale
from tests.target.conftest import record_msg, schema_msg, string_props

RECORDS = 10_000
# The ways a row is written: a plain insert (no match field: a lost answer cannot be checked), an insert with a
# match_field (a lost answer is checked by it), an upsert Salesforce matches itself (external id), and an upsert the
# target matches through SOQL (Email, an idLookup field) and then inserts what it did not find.
MODES: dict[str, dict[str, Any]] = {
    "insert": {"sync_mode": "insert"},
    "keyed-insert": {"sync_mode": "insert", "match_field": "External_Id__c"},
    "upsert": {"sync_mode": "upsert", "match_field": "External_Id__c"},
    "lookup": {"sync_mode": "upsert", "match_field": "Email"},
}
COLLECTIONS_INSERT = r"^POST composite/sobjects$"
COLLECTIONS_WRITE = r"^(POST|PATCH) composite/sobjects"


def aimed(calls: str, skip: int = 0, **counters: int) -> dict[str, Any]:
    """Counted faults that hit only the calls ``calls`` (a regex on "METHOD path") selects, after ``skip`` of them."""
    return {"only_calls": calls, "skip_calls": skip, **counters}


# Two Collections inserts mid-run (after 10) lose their connection; the emulator drops one before handling the
# request, the other after storing its records. To the client both are a request sent and an answer lost.
INSERTS_UNANSWERED = aimed(COLLECTIONS_INSERT, 10, drop_connection_next=2)
INSERTS_LOST = aimed(COLLECTIONS_INSERT, 10, drop_after_processing_next=2)

# (fault, api, mode, faults)
CASES: list[tuple[str, str, str, dict[str, Any]]] = [
    ("session-expiry", "rest", "insert", {"expire_sessions_after_calls": 20}),
    # describe, job create, then the upload is refused: the streamed CSV is sent whole again after the new login.
    ("session-expiry", "bulk", "upsert", {"expire_sessions_after_calls": 2}),
    ("503-burst", "rest", "insert", aimed(COLLECTIONS_WRITE, 10, http_503_next=4)),
    ("503-burst", "bulk", "insert", aimed("jobs/ingest", 2, http_503_next=4)),
    ("drop-before", "rest", "insert", INSERTS_UNANSWERED),
    ("drop-before", "rest", "lookup", INSERTS_UNANSWERED),
    ("drop-before-upload", "bulk", "insert", aimed("^PUT ", drop_connection_next=1)),
    ("drop-before-close", "bulk", "upsert", aimed("^PATCH ", drop_connection_next=1)),
    ("drop-after", "rest", "insert", INSERTS_LOST),
    ("drop-after", "rest", "keyed-insert", INSERTS_LOST),
    ("drop-after", "rest", "lookup", INSERTS_LOST),
    ("drop-after", "rest", "upsert", aimed(COLLECTIONS_WRITE, 10, drop_after_processing_next=2)),
    ("drop-after-upload", "bulk", "insert", aimed("^PUT ", drop_after_processing_next=1)),
    ("drop-after-close", "bulk", "insert", aimed("^PATCH ", drop_after_processing_next=1)),
    ("drop-after-poll", "bulk", "upsert", aimed(r"^GET jobs/ingest/\w+$", drop_after_processing_next=1)),
    ("drop-after-results", "bulk", "insert", aimed("Results/$", drop_after_processing_next=1)),
    ("row-locks", "rest", "upsert", {"lock_row_fraction": 0.1}),
    ("row-locks", "bulk", "insert", {"lock_row_fraction": 0.1}),
    ("failed-job", "bulk", "insert", {"fail_next_bulk_job": True}),
    ("failed-job", "bulk", "lookup", {"fail_next_bulk_job": True}),
]


def source_record(i: int) -> dict[str, str]:
    return {"External_Id__c": f"k{i:05d}", "Email": f"p{i:05d}@x.com", "LastName": f"L{i}"}


@pytest.mark.parametrize(("fault", "api", "mode", "faults"), CASES, ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in CASES])
def test_every_record_lands_once_or_is_rejected(
    sf, emulator, run_target, base_config, monkeypatch, fault, api, mode, faults
) -> None:
    monkeypatch.setenv(PAUSE_SCALE, "0.01")
    emulator.set_faults(**faults)
    config = {**base_config, "object": "Contact", "api": api, "max_retries": 5, **MODES[mode]}
    messages = [
        schema_msg("contacts", string_props("External_Id__c", "Email", "LastName")),
        *(record_msg("contacts", source_record(i)) for i in range(RECORDS)),
    ]
    result = run_target(config, messages)
    result.assert_ok()

    sf = emulator.salesforce()  # a new session: the expiry fault ends every session issued before it
    stored = Counter(r["External_Id__c"] for r in sf.query_all("SELECT External_Id__c FROM Contact")["records"])
    rejected = Counter(r["record"]["External_Id__c"] for r in result.rejects)
    assert not [key for key, n in stored.items() if n > 1], "records created twice"
    assert not [key for key, n in rejected.items() if n > 1], "records rejected twice"
    assert all(r["error_code"] and r["message"] for r in result.rejects)
    unknown = {r["record"]["External_Id__c"] for r in result.rejects if r["error_code"] == "OUTCOME_UNKNOWN"}
    for i in range(RECORDS):
        key = source_record(i)["External_Id__c"]
        if key in unknown:
            continue  # the request reached Salesforce and its answer was lost: in the org at most once (above)
        assert (key in stored) != (key in rejected), f"{key}: stored {key in stored}, rejected {key in rejected}"
    assert sf.query("SELECT COUNT() FROM Contact")["totalSize"] == sum(stored.values())
    if mode == "insert" and api == "rest" and fault.startswith("drop"):
        # A plain insert has nothing to look its records up by: the rows of both lost answers are rejected. They
        # are in the org when the emulator dropped the connection after storing them, and not when before.
        assert len(unknown) == 2 * 200
        assert all((key in stored) == (fault == "drop-after") for key in unknown)
        assert all("may or may not have been created" in r["message"] for r in result.rejects)
    else:
        # Retried, resumed or looked up: nothing may be left in doubt.
        assert not unknown, f"{len(unknown)} rows rejected as OUTCOME_UNKNOWN"
    assert len(rejected) - len(unknown) < RECORDS / 100, Counter(r["error_code"] for r in result.rejects)
    assert_fault_fired(emulator, api, faults, result.calls)


def assert_fault_fired(emulator, api: str, faults: dict[str, Any], calls: list[dict[str, Any]]) -> None:
    """The case tested what it says: the injected fault was used up during the run."""
    left = emulator.http.get(emulator.url("/_emulator/faults"), timeout=30).json()
    assert left["expire_sessions_after_calls"] is None
    assert left["fail_next_bulk_job"] is False
    assert left["http_503_next"] == left["drop_connection_next"] == left["drop_after_processing_next"] == 0
    if faults.get("lock_row_fraction"):
        # Locked rows go again: more Collections requests (200 rows each) or Bulk jobs than the first pass needs.
        sent = [
            c
            for c in calls
            if "/composite/sobjects" in c["path"]
            or (c["method"] == "POST" and c["path"].rstrip("/").endswith("/jobs/ingest"))
        ]
        assert len(sent) > (RECORDS // 200 if api == "rest" else 1), "no locked row was sent again"


# --- pure logic: settling a lost Collections insert, and the pause scale ----------------------------------------


class LosingClient:
    """Loses the answer to the first insert, after storing its first ``stored_before_loss`` rows; answers the rest.

    Queries see what is stored, matched as Salesforce matches text: ignoring case.
    """

    def __init__(self, stored: list[dict[str, Any]], stored_before_loss: int) -> None:
        self.stored = stored
        self.stored_before_loss = stored_before_loss
        self.inserts: list[list[str]] = []

    def _store(self, record: dict[str, Any]) -> str:
        record_id = f"003{len(self.stored) + 100:015d}"
        self.stored.append({"Id": record_id, "Email": record.get("Email")})
        return record_id

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        records = kwargs["json"]["records"]
        self.inserts.append([r["LastName"] for r in records])
        if len(self.inserts) == 1:
            for record in records[: self.stored_before_loss]:
                self._store(record)
            raise OutcomeUnknown(method, path, "no answer (RemoteDisconnected)")
        return [{"success": True, "id": self._store(record)} for record in records]

    def query_all(self, soql: str) -> list[dict[str, Any]]:
        return [r for r in self.stored if r["Email"] and f"'{r['Email'].lower()}'" in soql.lower()]


def test_lost_insert_is_settled_by_the_match_field() -> None:
    # Already in the org before the insert: a record holding "dup@x.com", which one row also carries.
    client = LosingClient([{"Id": "003000000000000999", "Email": "dup@x.com"}], stored_before_loss=5)
    rows = [
        {"LastName": "created", "Email": "a@x.com"},
        {"LastName": "twin1", "Email": "t@x.com"},
        {"LastName": "twin2", "Email": "T@x.com"},
        {"LastName": "no value"},
        {"LastName": "ambiguous", "Email": "dup@x.com"},
    ]
    outcomes = CollectionsWriter(client).write("insert", "Contact", rows, match=MatchField("Email"))
    assert client.inserts == [[r["LastName"] for r in rows]]  # nothing was missing, so nothing went again
    assert outcomes[0].success and outcomes[0].created and outcomes[0].id == client.stored[1]["Id"]
    assert [o.error_code for o in outcomes[1:]] == ["OUTCOME_UNKNOWN"] * 4  # shared, absent or ambiguous values


def test_lost_insert_sends_only_the_rows_not_created() -> None:
    client = LosingClient([], stored_before_loss=1)
    rows = [{"LastName": f"r{i}", "Email": f"r{i}@x.com"} for i in range(3)]
    outcomes = CollectionsWriter(client).write("insert", "Contact", rows, match=MatchField("Email"))
    assert client.inserts == [["r0", "r1", "r2"], ["r1", "r2"]]
    assert [o.id for o in outcomes] == [r["Id"] for r in client.stored]
    assert all(o.success for o in outcomes)


def test_lost_insert_without_match_field_is_rejected_not_resent() -> None:
    client = LosingClient([], stored_before_loss=1)
    outcomes = CollectionsWriter(client).write("insert", "Contact", [{"LastName": "x", "Email": "x@x.com"}])
    assert client.inserts == [["x"]]
    assert outcomes[0].error_code == "OUTCOME_UNKNOWN" and "may or may not" in (outcomes[0].message or "")


@pytest.mark.parametrize(("value", "factor"), [(None, 1.0), ("0.01", 0.01), ("0", 0.0)])
def test_retry_pause_scale(monkeypatch, value, factor) -> None:
    if value is None:
        monkeypatch.delenv(PAUSE_SCALE, raising=False)
    else:
        monkeypatch.setenv(PAUSE_SCALE, value)
    assert scale() == factor


@pytest.mark.parametrize("value", ["fast", "2", "-1"])
def test_retry_pause_scale_refuses_bad_values(monkeypatch, value) -> None:
    monkeypatch.setenv(PAUSE_SCALE, value)
    with pytest.raises(ConfigError, match=PAUSE_SCALE):
        scale()
