"""The /_emulator/ controls, every fault, the API usage header and the daily limit."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceExpiredSession, SalesforceRefusedRequest

from target_salesforce.emulator.faults import Faults
from tests.conftest import EmulatorProcess


def create_contact(emulator: EmulatorProcess, token: str, name: str = "Ng") -> requests.Response:
    # A fresh session per call: a dropped connection must not poison the next request's connection pool.
    with emulator.new_session() as http:
        return http.post(
            emulator.api_url("sobjects/Contact"),
            json={"LastName": name},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )


def contact_count(sf: Salesforce) -> int:
    return sf.query("SELECT COUNT() FROM Contact")["totalSize"]


# --- reset and the call log ------------------------------------------------------------------------------


def test_reset_clears_records_calls_faults_and_usage(emulator: EmulatorProcess, sf: Salesforce) -> None:
    sf.Contact.create({"LastName": "Ng"})
    emulator.set_faults(http_503_next=5)
    emulator.reset()
    assert emulator.calls() == []
    assert emulator.http.get(emulator.url("/_emulator/faults")).json()["http_503_next"] == 0
    assert contact_count(sf) == 0
    assert sf.limits()["DailyApiRequests"]["Remaining"] == 100_000 - 2  # the two calls just made
    assert "Contact" in {s["name"] for s in sf.describe()["sobjects"]}  # schema stays


def test_call_log_has_method_path_status_records(emulator: EmulatorProcess, sf: Salesforce) -> None:
    sf.Contact.create({"LastName": "Ng"})
    sf.query("SELECT Id FROM Contact WHERE LastName = 'Ng'")
    emulator.token()
    assert emulator.calls() == [
        {"method": "POST", "path": "/services/oauth2/token", "status": 200, "records": 0},  # the sf fixture's
        {"method": "POST", "path": "/services/data/v62.0/sobjects/Contact/", "status": 201, "records": 1},
        {"method": "GET", "path": "/services/data/v62.0/query/", "status": 200, "records": 1},
        {"method": "POST", "path": "/services/oauth2/token", "status": 200, "records": 0},
    ]


def test_faults_get_post_and_clear(emulator: EmulatorProcess) -> None:
    emulator.reset()
    shown = emulator.set_faults(http_503_next=2, lock_row_fraction=0.25, fail_next_bulk_job=True)
    assert shown["http_503_next"] == 2 and shown["lock_row_fraction"] == 0.25 and shown["fail_next_bulk_job"] is True
    assert emulator.http.get(emulator.url("/_emulator/faults")).json() == shown
    # Posting replaces the whole set: what was not posted is cleared.
    assert emulator.set_faults(latency_ms=0)["http_503_next"] == 0
    cleared = emulator.set_faults()
    assert cleared == Faults().snapshot()


@pytest.mark.parametrize(
    "bad", [{"nope": 1}, {"http_503_next": -1}, {"lock_row_fraction": 2}, {"fail_next_bulk_job": 1}]
)
def test_bad_fault_settings_are_400(emulator: EmulatorProcess, bad: dict[str, Any]) -> None:
    resp = emulator.http.post(emulator.url("/_emulator/faults"), json=bad)
    assert resp.status_code == 400 and "error" in resp.json()


# --- faults ----------------------------------------------------------------------------------------------


def test_http_503_next(emulator: EmulatorProcess) -> None:
    emulator.reset()
    token = emulator.token()
    emulator.set_faults(http_503_next=2)
    for _ in range(2):
        resp = create_contact(emulator, token)
        assert resp.status_code == 503
        assert resp.json()[0]["errorCode"] == "SERVER_UNAVAILABLE" and resp.json()[0]["message"]
    assert create_contact(emulator, token).status_code == 201
    assert [c["status"] for c in emulator.calls() if c["path"].endswith("Contact")] == [503, 503, 201]


def test_drop_connection_next_closes_before_processing(emulator: EmulatorProcess, sf: Salesforce) -> None:
    token = emulator.token()
    emulator.set_faults(drop_connection_next=1)
    with pytest.raises(requests.ConnectionError):
        create_contact(emulator, token)
    assert contact_count(sf) == 0
    assert create_contact(emulator, token).status_code == 201
    statuses = [c["status"] for c in emulator.calls() if c["path"].endswith("Contact")]
    assert statuses == [0, 201]  # a dropped call is logged with status 0


def test_drop_after_processing_next_closes_after_the_write(emulator: EmulatorProcess, sf: Salesforce) -> None:
    token = emulator.token()
    emulator.set_faults(drop_after_processing_next=1)
    with pytest.raises(requests.ConnectionError):
        create_contact(emulator, token)
    assert contact_count(sf) == 1  # the write happened; only the answer was lost
    assert [c["status"] for c in emulator.calls() if c["path"].endswith("Contact")] == [201]


def test_expire_sessions_after_calls(emulator: EmulatorProcess, sf: Salesforce) -> None:
    emulator.set_faults(expire_sessions_after_calls=2)
    sf.Contact.create({"LastName": "one"})
    sf.Contact.create({"LastName": "two"})
    with pytest.raises(SalesforceExpiredSession):
        sf.Contact.create({"LastName": "three"})
    assert emulator.salesforce().Contact.create({"LastName": "after re-login"})["success"] is True
    assert emulator.http.get(emulator.url("/_emulator/faults")).json()["expire_sessions_after_calls"] is None


def test_lock_row_fraction_one_fails_every_write(emulator: EmulatorProcess, sf: Salesforce) -> None:
    emulator.set_faults(lock_row_fraction=1.0)
    resp = create_contact(emulator, emulator.token())
    assert resp.status_code == 400
    assert resp.json()[0]["errorCode"] == "UNABLE_TO_LOCK_ROW"
    results = sf.restful(
        "composite/sobjects", method="POST", json={"records": [{"attributes": {"type": "Contact"}, "LastName": "x"}]}
    )
    assert results[0]["errors"][0]["statusCode"] == "UNABLE_TO_LOCK_ROW"


def test_lock_row_fraction_is_reproducible(emulator: EmulatorProcess, sf: Salesforce) -> None:
    records = [{"attributes": {"type": "Contact"}, "LastName": f"c{i}"} for i in range(200)]

    def outcome() -> list[bool]:
        emulator.set_faults(lock_row_fraction=0.3)
        results = sf.restful("composite/sobjects", method="POST", json={"records": records})
        return [r["success"] for r in results]

    first, second = outcome(), outcome()
    assert first == second
    assert 20 < first.count(False) < 100


def test_faults_object_bulk_helpers() -> None:
    faults = Faults()
    faults.replace({"fail_next_bulk_job": True, "bulk_processing_delay_ms": 250})
    assert faults.bulk_processing_delay_ms == 250
    assert faults.take_fail_next_bulk_job() is True
    assert faults.take_fail_next_bulk_job() is False
    faults.clear()
    assert faults.bulk_processing_delay_ms == 0 and faults.lock_row() is False


def test_faults_take_is_thread_safe() -> None:
    faults = Faults()
    faults.replace({"http_503_next": 500})
    taken: list[bool] = []

    def worker() -> None:
        taken.extend(faults.take("http_503_next") for _ in range(100))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert taken.count(True) == 500


# --- usage header, daily limit, latency ------------------------------------------------------------------


def test_limit_info_header_counts_api_calls(emulator: EmulatorProcess, sf: Salesforce) -> None:
    token = emulator.token()
    first = create_contact(emulator, token).headers["Sforce-Limit-Info"]
    second = create_contact(emulator, token).headers["Sforce-Limit-Info"]
    assert first == "api-usage=1/100000" and second == "api-usage=2/100000"
    contacts = sf.Contact  # simple-salesforce keeps the parsed header on the SFType that made the call
    contacts.create({"LastName": "x"})
    assert contacts.api_usage["api-usage"] == (3, 100_000)
    token_resp = emulator.http.post(emulator.login_url + "/services/oauth2/token", data={"grant_type": "x"})
    assert "Sforce-Limit-Info" not in token_resp.headers
    assert "Sforce-Limit-Info" not in emulator.http.get(emulator.url("/_emulator/calls")).headers


def test_daily_api_limit_gives_403(emulator: EmulatorProcess, sf: Salesforce) -> None:
    emulator.set_faults(daily_api_limit=2)
    token = emulator.token()
    assert create_contact(emulator, token).status_code == 201
    assert create_contact(emulator, token).status_code == 201
    refused = create_contact(emulator, token)
    assert refused.status_code == 403
    assert refused.json() == [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    assert refused.headers["Sforce-Limit-Info"] == "api-usage=2/2"
    with pytest.raises(SalesforceRefusedRequest):
        sf.Contact.create({"LastName": "x"})


def test_latency_is_slept_outside_locks(emulator: EmulatorProcess) -> None:
    emulator.reset()
    token = emulator.token()
    emulator.set_faults(latency_ms=300)
    statuses: list[int] = []

    def call() -> None:
        statuses.append(create_contact(emulator, token).status_code)

    started = time.monotonic()
    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    assert statuses == [201] * 8
    assert 0.3 <= elapsed < 1.5  # 8 calls overlapped; serialised they would take 2.4 s


# --- aiming the counted faults at chosen calls -----------------------------------------------------------------


def test_only_calls_and_skip_calls_aim_counted_faults(emulator: EmulatorProcess, sf: Salesforce) -> None:
    token = emulator.token()
    emulator.set_faults(only_calls=r"^POST sobjects/Contact", skip_calls=1, http_503_next=1)
    assert sf.query("SELECT Id FROM Contact")["totalSize"] == 0  # not selected: neither skipped nor failed
    assert create_contact(emulator, token).status_code == 201  # selected, skipped
    assert create_contact(emulator, token).status_code == 503  # selected: takes the fault
    assert create_contact(emulator, token).status_code == 201


def test_only_calls_must_be_a_regular_expression(emulator: EmulatorProcess) -> None:
    resp = emulator.http.post(emulator.url("/_emulator/faults"), json={"only_calls": "("})
    assert resp.status_code == 400 and "only_calls" in resp.json()["error"]


def _bulk_call(emulator: EmulatorProcess, token: str, method: str, path: str, **kwargs: Any) -> requests.Response:
    with emulator.new_session() as http:
        headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
        return http.request(method, emulator.api_url(f"jobs/ingest{path}"), headers=headers, timeout=30, **kwargs)


def test_drop_after_processing_applies_a_bulk_upload_and_close(emulator: EmulatorProcess, sf: Salesforce) -> None:
    token = emulator.token()
    job = _bulk_call(emulator, token, "POST", "", json={"object": "Contact", "operation": "insert"}).json()["id"]
    csv_headers = {"Content-Type": "text/csv"}
    emulator.set_faults(only_calls="^PUT ", drop_after_processing_next=1)
    with pytest.raises(requests.ConnectionError):
        _bulk_call(emulator, token, "PUT", f"/{job}/batches", data=b"LastName\nNg\n", headers=csv_headers)
    # The data landed: Salesforce takes one upload per job and refuses the second.
    again = _bulk_call(emulator, token, "PUT", f"/{job}/batches", data=b"LastName\nNg\n", headers=csv_headers)
    assert again.status_code == 400 and "only do 'PUT' once" in again.json()[0]["message"]
    emulator.set_faults(only_calls="^PATCH ", drop_after_processing_next=1)
    with pytest.raises(requests.ConnectionError):
        _bulk_call(emulator, token, "PATCH", f"/{job}", json={"state": "UploadComplete"})
    # The job was closed, so it is processed: the one uploaded row is written once.
    deadline = time.monotonic() + 10
    while _bulk_call(emulator, token, "GET", f"/{job}").json()["state"] != "JobComplete":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert contact_count(sf) == 1
