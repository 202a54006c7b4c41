"""Bulk API 2.0 ingest: the job engine in process (fast, exact), then through HTTPS with simple-salesforce."""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.bulk2 import ColumnDelimiter, LineEnding, Operation

from target_salesforce.emulator import bulk
from target_salesforce.emulator.builtin_objects import builtin_schema
from target_salesforce.emulator.bulk import BulkIngest
from target_salesforce.emulator.faults import Faults
from target_salesforce.emulator.store import Store
from target_salesforce.emulator.wire import ApiError, Request, Response

VERSION = "62.0"
FINAL = ("JobComplete", "Failed", "Aborted")


# ----- in-process harness ------------------------------------------------------------------------------------


class Engine:
    """A BulkIngest over a real in-memory Store, driven with wire.Requests as the server would drive it."""

    def __init__(self) -> None:
        self.store = Store(builtin_schema())
        self.faults = Faults()
        self.bulk = BulkIngest(self.store, self.faults)

    def call(self, method: str, rest: str = "", body: Any = b"") -> Response:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.bulk.handle(
            Request(method, f"/services/data/v{VERSION}/jobs/ingest{rest}", body=data), VERSION, rest
        )

    def error(self, method: str, rest: str = "", body: Any = b"") -> tuple[int, list[dict[str, Any]]]:
        with pytest.raises(ApiError) as caught:
            self.call(method, rest, body)
        resp = caught.value.response()
        return resp.status, json.loads(resp.body)

    def create(self, obj: str = "Contact", operation: str = "insert", **options: str) -> str:
        resp = self.call("POST", "", {"object": obj, "operation": operation, **options})
        assert resp.status == 200
        return json.loads(resp.body)["id"]

    def info(self, job_id: str) -> dict[str, Any]:
        return json.loads(self.call("GET", f"/{job_id}").body)

    def wait(self, job_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + 30
        while (info := self.info(job_id))["state"] not in FINAL:
            assert time.monotonic() < deadline, info
            time.sleep(0.005)
        return info

    def run(self, csv_text: str | bytes, obj: str = "Contact", operation: str = "insert", **options: str) -> str:
        """Create, upload, close and wait; the job id."""
        job_id = self.create(obj, operation, **options)
        data = csv_text.encode() if isinstance(csv_text, str) else csv_text
        assert self.call("PUT", f"/{job_id}/batches", data).status == 201
        self.call("PATCH", f"/{job_id}", {"state": "UploadComplete"})
        self.wait(job_id)
        return job_id

    def results(self, job_id: str, kind: str) -> list[dict[str, str]]:
        resp = self.call("GET", f"/{job_id}/{kind}/")
        assert resp.status == 200
        rows = list(csv.DictReader(io.StringIO(resp.body.decode())))
        assert resp.records == len(rows)
        return rows

    def record(self, obj: str, record_id: str) -> dict[str, Any] | None:
        return self.store.get(obj, record_id)


@pytest.fixture
def engine() -> Iterator[Engine]:
    eng = Engine()
    yield eng
    eng.bulk.shutdown()


# ----- creating jobs -----------------------------------------------------------------------------------------


def test_create_answers_open_job_info_with_the_real_shape(engine: Engine) -> None:
    resp = engine.call(
        "POST", "", {"object": "contact", "operation": "upsert", "externalIdFieldName": "external_id__c"}
    )
    info = json.loads(resp.body)
    assert resp.status == 200
    assert info["id"].startswith("750") and len(info["id"]) == 18
    assert info | {"id": None, "createdById": None, "createdDate": None, "systemModstamp": None} == {
        "id": None,
        "operation": "upsert",
        "object": "Contact",
        "createdById": None,
        "createdDate": None,
        "systemModstamp": None,
        "state": "Open",
        "externalIdFieldName": "External_Id__c",
        "concurrencyMode": "Parallel",
        "contentType": "CSV",
        "apiVersion": 62.0,
        "contentUrl": f"services/data/v62.0/jobs/ingest/{info['id']}/batches",
        "jobType": "V2Ingest",
        "lineEnding": "LF",
        "columnDelimiter": "COMMA",
    }
    assert info["createdById"].startswith("005")
    assert info["createdDate"].endswith(".000+0000")


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({"object": "Nope__c", "operation": "insert"}, "INVALIDJOB", "InvalidJob : Unable to find object: Nope__c"),
        ({"operation": "insert"}, "INVALIDJOB", "InvalidJob : Unable to find object: "),
        (
            {"object": "Contact", "operation": "upsert"},
            "INVALIDJOB",
            "InvalidJob : Field name provided,  does not match an External ID for Contact",
        ),
        (
            {"object": "Contact", "operation": "upsert", "externalIdFieldName": "LastName"},
            "INVALIDJOB",
            "InvalidJob : Field name provided, LastName does not match an External ID for Contact",
        ),
        ({"object": "Contact", "operation": ""}, "API_ERROR", "Invalid value: '' supplied for property: 'operation'"),
        ({"object": "Contact"}, "API_ERROR", "Invalid value: '' supplied for property: 'operation'"),
        (
            {"object": "Contact", "operation": "merge"},
            "API_ERROR",
            "Invalid value: 'merge' supplied for property: 'operation'",
        ),
        (
            {"object": "Contact", "operation": "insert", "lineEnding": "CR"},
            "API_ERROR",
            "Invalid value: 'CR' supplied for property: 'lineEnding'",
        ),
        (
            {"object": "Contact", "operation": "insert", "columnDelimiter": "COLON"},
            "API_ERROR",
            "Invalid value: 'COLON' supplied for property: 'columnDelimiter'",
        ),
        (
            {"object": "Contact", "operation": "insert", "contentType": "JSON"},
            "API_ERROR",
            "Invalid value: 'JSON' supplied for property: 'contentType'",
        ),
    ],
)
def test_create_refuses_bad_jobs_with_salesforce_errors(
    engine: Engine, body: dict[str, Any], code: str, message: str
) -> None:
    assert engine.error("POST", "", body) == (400, [{"message": message, "errorCode": code}])


def test_upsert_may_match_on_id_and_idlookup_fields(engine: Engine) -> None:
    for field in ("Id", "Email", "External_Id__c"):
        assert engine.create("Contact", "upsert", externalIdFieldName=field)


def test_list_shows_every_job_and_unknown_ids_are_not_found(engine: Engine) -> None:
    first, second = engine.create(), engine.create("Account", "delete")
    listing = json.loads(engine.call("GET", "").body)
    assert listing["done"] is True and listing["nextRecordsUrl"] is None
    assert [(r["id"], r["object"], r["jobType"]) for r in listing["records"]] == [
        (first, "Contact", "V2Ingest"),
        (second, "Account", "V2Ingest"),
    ]
    assert engine.info(first[:15])["id"] == first  # the 15-character form names the same job
    not_found = (404, [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}])
    assert engine.error("GET", "/750000000000000AAA") == not_found
    assert engine.error("GET", f"/{first}/nonsense") == not_found


def test_wrong_method_is_405(engine: Engine) -> None:
    job_id = engine.create()
    status, body = engine.error("POST", f"/{job_id}")
    assert status == 405
    assert body[0]["errorCode"] == "METHOD_NOT_ALLOWED"
    assert body[0]["message"] == "HTTP Method 'POST' not allowed. Allowed are GET,PATCH,DELETE"


# ----- the state machine -------------------------------------------------------------------------------------


def test_a_job_takes_one_upload_only_and_only_while_open(engine: Engine) -> None:
    job_id = engine.create()
    assert engine.call("PUT", f"/{job_id}/batches", b"LastName\nA\n").status == 201
    status, body = engine.error("PUT", f"/{job_id}/batches", b"LastName\nB\n")
    assert (status, body[0]["errorCode"]) == (400, "BULK_API_ERROR")
    assert body[0]["message"].startswith(f"Found multipe contents for job: <{job_id[:15]}>")
    engine.call("PATCH", f"/{job_id}", {"state": "UploadComplete"})
    status, body = engine.error("PUT", f"/{job_id}/batches", b"LastName\nC\n")
    assert (status, body[0]["errorCode"]) == (400, "INVALIDJOBSTATE")
    assert engine.wait(job_id)["numberRecordsProcessed"] == 1


def test_upload_over_150_mb_after_base64_is_refused(engine: Engine) -> None:
    job_id = engine.create()
    too_big = b"x" * (bulk.MAX_BASE64_BYTES // 4 * 3 + 1)
    status, body = engine.error("PUT", f"/{job_id}/batches", too_big)
    assert (status, body[0]["errorCode"]) == (400, "BULK_API_ERROR")
    assert engine.call("PUT", f"/{job_id}/batches", b"LastName\nA\n").status == 201  # nothing was taken


def test_close_answers_the_short_job_info(engine: Engine) -> None:
    job_id = engine.create()
    engine.call("PUT", f"/{job_id}/batches", b"LastName\nA\n")
    resp = engine.call("PATCH", f"/{job_id}", {"state": "UploadComplete"})
    assert list(json.loads(resp.body)) == [
        "id", "operation", "object", "createdById", "createdDate", "systemModstamp", "state",
        "concurrencyMode", "contentType", "apiVersion",
    ]  # fmt: skip
    assert json.loads(resp.body)["state"] == "UploadComplete"


def test_delete_only_in_deletable_states(engine: Engine) -> None:
    job_id = engine.create()
    status, body = engine.error("DELETE", f"/{job_id}")
    assert (status, body[0]["errorCode"]) == (400, "INVALIDJOBSTATE")
    engine.call("PATCH", f"/{job_id}", {"state": "Aborted"})
    resp = engine.call("DELETE", f"/{job_id}")
    assert (resp.status, resp.body, resp.content_type) == (204, b"", None)
    assert engine.error("GET", f"/{job_id}")[0] == 404


def test_abort_of_a_finished_job_and_bad_states_are_refused(engine: Engine) -> None:
    job_id = engine.run("LastName\nA\n")
    assert engine.error("PATCH", f"/{job_id}", {"state": "Aborted"}) == (
        400,
        [{"message": "Aborting already Completed Job not allowed", "errorCode": "INVALIDJOBSTATE"}],
    )
    assert engine.error("PATCH", f"/{job_id}", {"state": "UploadComplete"})[0] == 400
    assert engine.error("PATCH", f"/{job_id}", {"state": "JobComplete"})[0] == 400


def test_results_wait_for_a_final_state(engine: Engine) -> None:
    job_id = engine.create()
    status, body = engine.error("GET", f"/{job_id}/successfulResults")
    assert (status, body[0]["errorCode"]) == (400, "INVALIDJOBSTATE")


def test_aborted_before_processing_writes_nothing(engine: Engine) -> None:
    engine.faults.bulk_processing_delay_ms = 400
    job_id = engine.create()
    engine.call("PUT", f"/{job_id}/batches", b"LastName\nA\n")
    engine.call("PATCH", f"/{job_id}", {"state": "UploadComplete"})
    assert json.loads(engine.call("PATCH", f"/{job_id}", {"state": "Aborted"}).body)["state"] == "Aborted"
    time.sleep(0.3)
    info = engine.info(job_id)
    assert (info["state"], info["numberRecordsProcessed"]) == ("Aborted", 0)
    assert engine.store.read_connection().execute("SELECT COUNT(*) FROM Contact").fetchone() == (0,)
    # "Any data uploaded as part of the aborted job is deleted": nothing is left to report.
    assert engine.call("GET", f"/{job_id}/unprocessedrecords").body == b""


def test_abort_in_progress_leaves_the_rest_unprocessed(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk, "CHUNK_ROWS", 2)
    release = threading.Event()
    writing = threading.Event()
    real_write = engine.store.write_table

    def slow_write(*args: Any, **kwargs: Any) -> Any:
        writing.set()
        release.wait(10)
        return real_write(*args, **kwargs)

    monkeypatch.setattr(engine.store, "write_table", slow_write)
    job_id = engine.create()
    engine.call("PUT", f"/{job_id}/batches", ("LastName\n" + "".join(f"N{i}\n" for i in range(6))).encode())
    engine.call("PATCH", f"/{job_id}", {"state": "UploadComplete"})
    # Abort only once the first chunk is being written: "InProgress" alone can show before the worker reaches it.
    assert writing.wait(10)
    assert engine.info(job_id)["state"] == "InProgress"
    engine.call("PATCH", f"/{job_id}", {"state": "Aborted"})
    release.set()
    assert [r["LastName"] for r in engine.results(job_id, "successfulResults")] == ["N0", "N1"]
    assert [r["LastName"] for r in engine.results(job_id, "unprocessedrecords")] == ["N2", "N3", "N4", "N5"]
    assert engine.info(job_id)["state"] == "Aborted"


def test_delay_shows_upload_complete_then_in_progress(engine: Engine) -> None:
    engine.faults.bulk_processing_delay_ms = 300
    job_id = engine.create()
    engine.call("PUT", f"/{job_id}/batches", b"LastName\nA\n")
    engine.call("PATCH", f"/{job_id}", {"state": "UploadComplete"})
    seen = []
    while (state := engine.info(job_id)["state"]) not in FINAL:
        if not seen or seen[-1] != state:
            seen.append(state)
        time.sleep(0.01)
    assert seen == ["UploadComplete", "InProgress"]
    assert engine.info(job_id)["totalProcessingTime"] >= 100


def test_reset_drops_jobs_and_stops_their_threads(engine: Engine) -> None:
    engine.faults.bulk_processing_delay_ms = 5000
    job_id = engine.create()
    engine.call("PUT", f"/{job_id}/batches", b"LastName\nA\n")
    engine.call("PATCH", f"/{job_id}", {"state": "UploadComplete"})
    started = time.monotonic()
    engine.bulk.reset()
    assert time.monotonic() - started < 1
    assert engine.error("GET", f"/{job_id}")[0] == 404
    assert json.loads(engine.call("GET", "").body)["records"] == []


# ----- CSV ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "char"), sorted(bulk.DELIMITERS.items()))
def test_every_delimiter_with_quoted_values(engine: Engine, name: str, char: str) -> None:
    last = f'Smith{char}"Jr" , \u00e9\U0001f600'
    quoted = '"' + last.replace('"', '""') + '"'
    text = f"LastName{char}Title\n{quoted}{char} padded \n"
    job_id = engine.run(text, columnDelimiter=name)
    [row] = engine.results(job_id, "successfulResults")
    assert (row["LastName"], row["Title"]) == (last, " padded ")
    assert engine.record("Contact", row["sf__Id"])["LastName"] == last


@pytest.mark.parametrize(("ending", "newline"), [("LF", "\n"), ("CRLF", "\r\n")])
def test_line_endings_and_line_breaks_inside_values(engine: Engine, ending: str, newline: str) -> None:
    text = f'LastName,Description{newline}A,"one{newline}two"{newline}B,"lone\rcr and\nlf"{newline}'
    job_id = engine.run(text, lineEnding=ending)
    rows = engine.results(job_id, "successfulResults")
    assert [r["LastName"] for r in rows] == ["A", "B"]
    assert engine.record("Contact", rows[0]["sf__Id"])["Description"] == f"one{newline}two"
    assert engine.record("Contact", rows[1]["sf__Id"])["Description"] == "lone\rcr and\nlf"


@pytest.mark.parametrize(("ending", "data"), [("LF", b"LastName\r\nA\r\n"), ("CRLF", b"LastName\nA\n")])
def test_rows_ending_otherwise_fail_the_job(engine: Engine, ending: str, data: bytes) -> None:
    job_id = engine.run(data, lineEnding=ending)
    info = engine.info(job_id)
    assert info["state"] == "Failed"
    assert info["errorMessage"] == (
        f"ClientInputError : LineEnding is invalid on user data. Current LineEnding setting is {ending}"
    )
    assert [r["LastName"] for r in engine.results(job_id, "unprocessedrecords")] == ["A"]


def test_scan_counts_records_outside_quotes_across_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk, "_SCAN_BLOCK", 3)
    data = b'a,b\r\n"x\r\ny",""""\r\nlast,"q"'
    assert bulk._scan(data, b"\r\n") == (3, True)
    assert bulk._scan(data, b"\n") == (3, False)
    assert bulk._scan(b"", b"\n") == (0, True)


def test_bom_is_stripped_and_values_are_kept_exactly(engine: Engine) -> None:
    job_id = engine.run("\ufeffLastName,FirstName\n  spaced  ,\t\n".encode())
    [row] = engine.results(job_id, "successfulResults")
    saved = engine.record("Contact", row["sf__Id"])
    assert (saved["LastName"], saved["FirstName"]) == ("  spaced  ", "\t")


def test_malformed_rows_fail_alone(engine: Engine) -> None:
    job_id = engine.run('LastName,FirstName\nGood,One\nTooMany,a,b\nShort\n"Quoted" ,x\n')
    assert engine.info(job_id)["numberRecordsFailed"] == 3
    assert [r["LastName"] for r in engine.results(job_id, "successfulResults")] == ["Good"]
    errors = [r["sf__Error"] for r in engine.results(job_id, "failedResults")]
    assert errors[:2] == [
        "INVALID_FIELD:Expected 2 columns but found 3:--",
        "INVALID_FIELD:Expected 2 columns but found 1:--",
    ]
    assert errors[2].startswith("INVALID_FIELD:Malformed CSV row: ")


@pytest.mark.parametrize(
    ("operation", "header", "message"),
    [
        ("insert", "LastName,Foo__c", "InvalidBatch : Field name not found : Foo__c"),
        ("insert", "LastName,Nope.External_Id__c", "InvalidBatch : Field name not found : Nope.External_Id__c"),
        ("insert", "LastName,Account.Nope__c", "InvalidBatch : Field name not found : Account.Nope__c"),
        ("insert", "LastName,lastname", "InvalidBatch : Duplicate field name: lastname"),
        ("delete", "Id,LastName", "InvalidBatch : The 'delete' batch must contain only 'Id'"),
    ],
)
def test_unusable_header_fails_the_whole_job(engine: Engine, operation: str, header: str, message: str) -> None:
    row = ",".join(["x"] * len(header.split(",")))
    job_id = engine.run(f"{header}\n{row}\n", operation=operation)
    info = engine.info(job_id)
    assert (info["state"], info["errorMessage"], info["numberRecordsProcessed"]) == ("Failed", message, 0)
    assert len(engine.results(job_id, "unprocessedrecords")) == 1
    assert engine.results(job_id, "successfulResults") == []


def test_closing_without_data_fails_the_job(engine: Engine) -> None:
    job_id = engine.create()
    engine.call("PATCH", f"/{job_id}", {"state": "UploadComplete"})
    info = engine.wait(job_id)
    assert (info["state"], info["errorMessage"]) == ("Failed", bulk.NO_DATA)


def test_header_only_completes_with_no_records(engine: Engine) -> None:
    job_id = engine.run("LastName\n")
    assert engine.info(job_id)["state"] == "JobComplete"
    assert engine.call("GET", f"/{job_id}/successfulResults").body == b'"sf__Id","sf__Created",LastName\n'


# ----- results -----------------------------------------------------------------------------------------------


def test_failed_results_carry_sf_error_in_salesforce_format(engine: Engine) -> None:
    job_id = engine.run("FirstName,LastName,Email\nNo,,\nBad,Doe,not-an-email\n")
    body = engine.call("GET", f"/{job_id}/failedResults").body.decode()
    assert body == (
        '"sf__Id","sf__Error",FirstName,LastName,Email\n'
        '"","REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --","No","",""\n'
        '"","INVALID_EMAIL_ADDRESS:Email: invalid email address: not-an-email:Email --","Bad","Doe","not-an-email"\n'
    )


def test_result_lines_quote_values_holding_quotes_and_control_characters(engine: Engine) -> None:
    # A chunk's result lines are built at once with NUL between values and SOH between rows; values holding
    # either character must still come out as a csv writer quotes them.
    job_id = engine.run('LastName,Title\n"say ""hi""",plain\nnul,a\x00b\nsoh,c\x01d\n')
    ids = [r["sf__Id"] for r in engine.results(job_id, "successfulResults")]
    assert engine.call("GET", f"/{job_id}/successfulResults").body.decode() == (
        '"sf__Id","sf__Created",LastName,Title\n'
        f'"{ids[0]}","true","say ""hi""","plain"\n'
        f'"{ids[1]}","true","nul","a\x00b"\n'
        f'"{ids[2]}","true","soh","c\x01d"\n'
    )
    assert engine.record("Contact", ids[1])["Title"] == "a\x00b"


def test_error_text_joins_fields_and_errors() -> None:
    errors = [
        {"statusCode": "A", "message": "m1", "fields": ["X", "Y"]},
        {"statusCode": "B", "message": "m2", "fields": []},
    ]
    assert bulk._error_text(errors) == "A:m1:X Y --B:m2:--"


def test_result_paths_accept_both_spellings_and_trailing_slash(engine: Engine) -> None:
    job_id = engine.run("LastName\nA\n")
    for path in ("successfulResults", "failedResults/", "unprocessedrecords", "unprocessedRecords/"):
        resp = engine.call("GET", f"/{job_id}/{path}")
        assert (resp.status, resp.content_type) == (200, "text/csv;charset=UTF-8")


def test_fail_next_bulk_job_fails_one_job_with_everything_unprocessed(engine: Engine) -> None:
    engine.faults.fail_next_bulk_job = True
    failed = engine.run("LastName\nA\nB\n")
    info = engine.info(failed)
    assert (info["state"], info["errorMessage"]) == ("Failed", bulk.UNKNOWN_FAILURE)
    assert [r["LastName"] for r in engine.results(failed, "unprocessedRecords")] == ["A", "B"]
    assert engine.info(engine.run("LastName\nC\n"))["state"] == "JobComplete"


def test_lock_row_fault_fails_rows_with_unable_to_lock_row(engine: Engine) -> None:
    engine.faults.replace({"lock_row_fraction": 0.5, "seed": 7})
    job_id = engine.run("LastName\n" + "".join(f"N{i}\n" for i in range(40)))
    failed = engine.results(job_id, "failedResults")
    succeeded = engine.results(job_id, "successfulResults")
    assert 0 < len(failed) < 40 and len(failed) + len(succeeded) == 40
    assert {r["sf__Error"] for r in failed} == {
        "UNABLE_TO_LOCK_ROW:unable to obtain exclusive access to this record:--"
    }
    assert engine.info(job_id)["numberRecordsFailed"] == len(failed)


def test_upload_call_reports_its_record_count(engine: Engine) -> None:
    job_id = engine.create()
    resp = engine.call("PUT", f"/{job_id}/batches", b'LastName,Description\nA,"x\ny"\nB,\n')
    assert (resp.status, resp.body, resp.content_type, resp.records) == (201, b"", None, 2)


def test_chunks_are_separate_store_calls(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk, "CHUNK_ROWS", 3)
    sizes: list[int] = []
    real_write = engine.store.write_table
    monkeypatch.setattr(
        engine.store,
        "write_table",
        lambda op, obj, header, rows, **kw: sizes.append(len(rows)) or real_write(op, obj, header, rows, **kw),
    )
    engine.run("LastName\n" + "".join(f"N{i}\n" for i in range(7)))
    assert sizes == [3, 3, 1]


# ----- over HTTPS, with simple-salesforce --------------------------------------------------------------------


def _ids(sf: Salesforce, soql: str) -> dict[str, dict[str, Any]]:
    return {r["Id"]: r for r in sf.query_all(soql)["records"]}


def test_insert_update_upsert_delete_and_hard_delete(sf: Salesforce) -> None:
    [ins] = sf.bulk2.Contact.insert(
        records=[{"LastName": f"L{i}", "Email": f"c{i}@x.com"} for i in range(3)], wait=0.05
    )
    assert (ins["numberRecordsProcessed"], ins["numberRecordsFailed"], ins["numberRecordsTotal"]) == (3, 0, 3)
    created = list(csv.DictReader(io.StringIO(sf.bulk2.Contact.get_successful_records(ins["job_id"]))))
    assert {r["sf__Created"] for r in created} == {"true"}
    ids = [r["sf__Id"] for r in created]

    sf.bulk2.Contact.update(records=[{"Id": ids[0], "Title": "Boss"}], wait=0.05)
    sf.bulk2.Contact.upsert(
        records=[{"External_Id__c": "E1", "LastName": "New"}], external_id_field="External_Id__c", wait=0.05
    )
    [up] = sf.bulk2.Contact.upsert(records=[{"Id": ids[1], "LastName": "Renamed"}], external_id_field="Id", wait=0.05)
    updated = list(csv.DictReader(io.StringIO(sf.bulk2.Contact.get_successful_records(up["job_id"]))))
    assert [(r["sf__Id"], r["sf__Created"]) for r in updated] == [(ids[1], "false")]

    live = _ids(sf, "SELECT Id, LastName, Title, External_Id__c FROM Contact")
    assert live[ids[0]]["Title"] == "Boss"
    assert live[ids[1]]["LastName"] == "Renamed"
    assert [r["LastName"] for r in live.values() if r["External_Id__c"] == "E1"] == ["New"]

    sf.bulk2.Contact.delete(records=[{"Id": ids[0]}], wait=0.05)
    sf.bulk2.Contact.hard_delete(records=[{"Id": ids[1]}], wait=0.05)
    remaining = _ids(sf, "SELECT Id FROM Contact")
    assert ids[0] not in remaining and ids[1] not in remaining and ids[2] in remaining
    every = {
        r["Id"]: r["IsDeleted"]
        for r in sf.query_all("SELECT Id, IsDeleted FROM Contact", include_deleted=True)["records"]
    }
    assert every[ids[0]] is True  # soft-deleted: still seen by queryAll
    assert ids[1] not in every  # hard-deleted: gone


def test_deleting_accounts_cascades_soft_or_hard_to_their_contacts(sf: Salesforce) -> None:
    soft, hard = (sf.Account.create({"Name": name})["id"] for name in ("soft", "hard"))
    kept, erased = (sf.Contact.create({"LastName": "Ng", "AccountId": parent})["id"] for parent in (soft, hard))
    sf.bulk2.Account.delete(records=[{"Id": soft}], wait=0.05)
    sf.bulk2.Account.hard_delete(records=[{"Id": hard}], wait=0.05)
    every = {
        r["Id"]: r["IsDeleted"]
        for r in sf.query_all("SELECT Id, IsDeleted FROM Contact", include_deleted=True)["records"]
    }
    assert every[kept] is True  # the soft-deleted account's contact is in the Recycle Bin
    assert erased not in every and len(every) == 1  # the hard-deleted one's is gone


@pytest.mark.parametrize("line_ending", [LineEnding.LF, LineEnding.CRLF])
@pytest.mark.parametrize("delimiter", [ColumnDelimiter.COMMA, ColumnDelimiter.TAB, ColumnDelimiter.SEMICOLON])
def test_awkward_values_round_trip(sf: Salesforce, line_ending: LineEnding, delimiter: ColumnDelimiter) -> None:
    values = ['comma, "quote"', "multi\nline", "tab\tsemi;colon|pipe", "caf\u00e9 \u4e2d\u6587 \U0001f600", " edge "]
    records = [{"LastName": f"R{i}", "Description": v} for i, v in enumerate(values)]
    [res] = sf.bulk2.Contact.insert(records=records, line_ending=line_ending, column_delimiter=delimiter, wait=0.05)
    assert res["numberRecordsFailed"] == 0
    got = {
        r["LastName"]: r["Description"] for r in sf.query_all("SELECT LastName, Description FROM Contact")["records"]
    }
    assert got == {f"R{i}": v for i, v in enumerate(values)}
    results = sf.bulk2.Contact.get_successful_records(res["job_id"])
    assert "caf\u00e9 \u4e2d\u6587 \U0001f600" in results  # the charset reaches requests' decoding


def test_na_sets_null_and_empty_leaves_unchanged(sf: Salesforce) -> None:
    record_id = sf.Contact.create({"LastName": "Keep", "Title": "CTO", "Department": "R&D"})["id"]
    sf.bulk2.Contact.update(records=[{"Id": record_id, "Title": "#N/A", "Department": ""}], wait=0.05)
    saved = sf.Contact.get(record_id)
    assert (saved["Title"], saved["Department"], saved["LastName"]) == (None, "R&D", "Keep")


def test_relationship_column_sets_lookup_through_external_id(sf: Salesforce) -> None:
    account_id = sf.Account.create({"Name": "Parent", "External_Id__c": "ACC-1"})["id"]
    [res] = sf.bulk2.Contact.insert(
        records=[
            {"LastName": "Child", "Account.External_Id__c": "ACC-1"},
            {"LastName": "Orphan", "Account.External_Id__c": "NONE"},
        ],
        wait=0.05,
    )
    assert res["numberRecordsFailed"] == 1
    [child] = sf.query_all("SELECT AccountId FROM Contact WHERE LastName = 'Child'")["records"]
    assert child["AccountId"] == account_id
    [failed] = csv.DictReader(io.StringIO(sf.bulk2.Contact.get_failed_records(res["job_id"])))
    assert (failed["sf__Id"], failed["LastName"], failed["sf__Error"]) == (
        "",
        "Orphan",
        "INVALID_FIELD:Foreign key external ID: NONE not found for field External_Id__c in entity Account:--",
    )


def test_failed_job_reports_through_low_level_client(sf: Salesforce, emulator: Any) -> None:
    emulator.set_faults(fail_next_bulk_job=True)
    client = sf.bulk2.Contact._client
    job_id = client.create_job(Operation.insert)["id"]
    client.upload_job_data(job_id, "LastName\nA\nB\n")
    client.close_job(job_id)
    with pytest.raises(Exception, match="Unknown : Exception with unknown cause occurred"):
        client.wait_for_job(job_id, False, 0.05)
    unprocessed = sf.bulk2.Contact.get_unprocessed_records(job_id)
    assert unprocessed == "LastName\nA\nB\n"
    assert sf.bulk2.Contact.get_failed_records(job_id) == '"sf__Id","sf__Error",LastName\n'


def test_http_statuses_headers_and_call_log(sf: Salesforce, emulator: Any) -> None:
    http, headers = emulator.http, emulator.auth_headers()
    base = emulator.api_url("jobs/ingest")
    created = http.post(base, json={"object": "Contact", "operation": "insert", "lineEnding": "CRLF"}, headers=headers)
    assert created.status_code == 200 and created.headers["Content-Type"].startswith("application/json")
    job = created.json()
    put = http.put(
        emulator.url("/" + job["contentUrl"]),
        data=b"LastName\r\nA\r\nB\r\n",
        headers=headers | {"Content-Type": "text/csv"},
    )
    assert (put.status_code, put.content) == (201, b"")
    closed = http.patch(f"{base}/{job['id']}", json={"state": "UploadComplete"}, headers=headers)
    assert closed.json()["state"] == "UploadComplete"
    deadline = time.monotonic() + 10
    while http.get(f"{base}/{job['id']}", headers=headers).json()["state"] != "JobComplete":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    results = http.get(f"{base}/{job['id']}/successfulResults/", headers=headers)
    assert results.headers["Content-Type"] == "text/csv;charset=UTF-8"
    assert results.text.splitlines()[0] == '"sf__Id","sf__Created",LastName'
    deleted = http.delete(f"{base}/{job['id']}", headers=headers)
    assert (deleted.status_code, deleted.content) == (204, b"")
    gone = http.get(f"{base}/{job['id']}", headers=headers)
    assert gone.status_code == 404 and gone.json() == [
        {"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}
    ]
    log = {(c["method"], c["path"].rstrip("/").rsplit("/", 1)[-1]): c["records"] for c in emulator.calls()}
    assert log[("PUT", "batches")] == 2
    assert log[("GET", "successfulResults")] == 2


def test_processing_delay_is_observable_over_http(sf: Salesforce, emulator: Any) -> None:
    emulator.set_faults(bulk_processing_delay_ms=400)
    client = sf.bulk2.Contact._client
    job_id = client.create_job(Operation.insert)["id"]
    client.upload_job_data(job_id, "LastName\nA\n")
    client.close_job(job_id)
    states = []
    while (state := client.get_job(job_id, False)["state"]) not in FINAL:
        if not states or states[-1] != state:
            states.append(state)
        time.sleep(0.02)
    assert (states, state) == (["UploadComplete", "InProgress"], "JobComplete")


def test_every_widget_field_type_round_trips(sf: Salesforce) -> None:
    account_id = sf.Account.create({"Name": "Acme"})["id"]
    row = {
        "Name": "W-1",
        "Short_Text__c": "short",
        "Notes__c": 'long\nnotes, with "quotes"',
        "Count__c": "42",
        "Score__c": "3.1416",
        "Price__c": "19.99",
        "Discount__c": "12.5",
        "Active__c": "true",
        "Launch_Date__c": "2024-02-29",
        "Launched_At__c": "2024-02-29T13:45:06.000Z",
        "Opens_At__c": "09:30:00.000Z",
        "Contact_Email__c": "w@example.com",
        "Support_Phone__c": "+1 (555) 010-0000",
        "Homepage__c": "https://example.com/w?x=1",
        "Color__c": "Green",
        "Size__c": "Large",
        "Features__c": "Solar;Wireless",
        "Account__c": account_id,
        "Secret__c": "s3cr3t",
        "Widget_Key__c": "WK-1",
    }
    [res] = sf.bulk2.Widget__c.upsert(records=[row], external_id_field="Widget_Key__c", wait=0.05)
    assert res["numberRecordsFailed"] == 0, sf.bulk2.Widget__c.get_failed_records(res["job_id"])
    [saved] = sf.query_all(f"SELECT {', '.join(row)} FROM Widget__c")["records"]
    expected: dict[str, Any] = dict(row)
    expected |= {"Count__c": 42, "Score__c": 3.1416, "Price__c": 19.99, "Discount__c": 12.5, "Active__c": True}
    expected["Launched_At__c"] = "2024-02-29T13:45:06.000+0000"
    assert {k: saved[k] for k in row} == expected
