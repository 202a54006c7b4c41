"""Bulk API 2.0 ingest jobs (``/services/data/vXX.X/jobs/ingest``): lifecycle, CSV parsing, asynchronous
processing in 10,000-row batches, and the three result CSVs.

A job is created Open, takes one CSV upload, is closed (UploadComplete) and is then processed by a background
thread (InProgress) until JobComplete, Failed or Aborted, exactly as a client polling a real org sees it.
Uploads and results live in temporary files so that a 100 MB job never sits in memory as Python objects.

Facts taken from public captures of a real org (cited where used): the create/close response shapes, the
``INVALIDJOB`` / ``API_ERROR`` create errors, the one-upload-per-job ``BULK_API_ERROR``, ``INVALIDJOBSTATE``
on aborting a completed job, the ``InvalidBatch : Field name not found : X`` and ``ClientInputError :
LineEnding is invalid on user data`` job failures, the ``sf__Error`` format and the quoting of result files.
Everything marked "inferred" is a deliberate choice where no public source shows Salesforce's answer.
"""

from __future__ import annotations

import csv
import io
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

from target_salesforce.emulator.faults import Faults
from target_salesforce.emulator.ids import new_id
from target_salesforce.emulator.schema import ObjectDef, Schema
from target_salesforce.emulator.store import Store
from target_salesforce.emulator.validation import usable_as_key
from target_salesforce.emulator.wire import CSV_TYPE, ApiError, Request, Response, json_response

OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")
DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^", "BACKQUOTE": "`"}
LINE_ENDINGS = {"LF": b"\n", "CRLF": b"\r\n"}
FINAL_STATES = frozenset({"JobComplete", "Failed", "Aborted"})
# "To be deleted, a job must have a state of UploadComplete, JobComplete, Aborted, or Failed." (Delete a Job)
DELETABLE_STATES = FINAL_STATES | {"UploadComplete"}
# Salesforce splits a job into internal batches of 10,000 records; each is one store transaction here.
CHUNK_ROWS = 10_000
# "A request can provide CSV data that does not in total exceed 150 MB of base64 encoded content."
MAX_BASE64_BYTES = 150 * 1024 * 1024
# How many jobs may write to the store at once ("concurrencyMode": "Parallel"); waiting jobs cost nothing.
PROCESSING_SLOTS = 2
# The result resources; Salesforce documents ``unprocessedrecords`` and simple-salesforce asks for the
# camel-case spelling, so both are served.
RESULT_PATHS = {
    "successfulResults": "success",
    "failedResults": "failed",
    "unprocessedrecords": "unprocessed",
    "unprocessedRecords": "unprocessed",
}
RESULT_TYPE = f"{CSV_TYPE};charset=UTF-8"  # inferred: without a charset, requests decodes text/csv as Latin-1

NOT_FOUND = ApiError(404, "NOT_FOUND", "The requested resource does not exist")
# The documented Bulk API error "Unknown: Exception with unknown cause occurred.", for the injected failure.
UNKNOWN_FAILURE = "Unknown : Exception with unknown cause occurred."
NO_DATA = "ClientInputError : Unable to find any data to create batch"  # inferred: Bulk 1.0's empty batch
_SCAN_BLOCK = 1 << 20

log = logging.getLogger("salesforce_emulator")


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


@dataclass
class Job:
    """One ingest job. Mutable fields change only under ``BulkIngest._lock``."""

    id: str
    object: str
    operation: str
    external_id_field: str | None
    line_ending: str
    column_delimiter: str
    api_version: str
    created_by: str
    directory: Path
    created: str = field(default_factory=_now)
    modstamp: str = field(default_factory=_now)
    state: str = "Open"
    uploaded: bool = False
    # Set at upload when the data's record terminators do not match ``line_ending``: the job fails on close.
    upload_error: str | None = None
    processed: int = 0
    failed: int = 0
    error_message: str | None = None
    total_ms: int = 0
    api_ms: int = 0
    result_rows: dict[str, int] = field(default_factory=dict)
    removed: bool = False  # deleted or reset: processing stops without writing anything more
    cancel: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    @property
    def data_path(self) -> Path:
        return self.directory / "data.csv"

    def result_path(self, kind: str) -> Path:
        return self.directory / f"{kind}.csv"

    def summary(self) -> dict[str, Any]:
        """The job as the close/abort answer shows it (captured from a real org)."""
        out: dict[str, Any] = {
            "id": self.id,
            "operation": self.operation,
            "object": self.object,
            "createdById": self.created_by,
            "createdDate": self.created,
            "systemModstamp": self.modstamp,
            "state": self.state,
        }
        if self.external_id_field:
            out["externalIdFieldName"] = self.external_id_field
        return out | {"concurrencyMode": "Parallel", "contentType": "CSV", "apiVersion": float(self.api_version)}

    def description(self) -> dict[str, Any]:
        """The summary plus the data format: the create answer and each entry of the job list."""
        out = self.summary()
        if self.state == "Open":  # the upload URL is offered while data may still be uploaded
            out["contentUrl"] = f"services/data/v{self.api_version}/jobs/ingest/{self.id}/batches"
        return out | {"jobType": "V2Ingest", "lineEnding": self.line_ending, "columnDelimiter": self.column_delimiter}

    def info(self) -> dict[str, Any]:
        """``GET /jobs/ingest/{id}``: the description plus progress, timings and the failure message."""
        out = self.description()
        if self.state == "Failed":
            out["errorMessage"] = self.error_message
        return out | {
            "numberRecordsProcessed": self.processed,
            "numberRecordsFailed": self.failed,
            "retries": 0,
            "totalProcessingTime": self.total_ms,
            "apiActiveProcessingTime": self.api_ms,
            "apexProcessingTime": 0,
        }


class JobFailure(Exception):
    """The whole job fails with ``errorMessage``; rows not yet written become unprocessed records."""


class BulkIngest:
    """Every ingest job of the emulated org and the threads that process them."""

    def __init__(self, store: Store, faults: Faults) -> None:
        self.store = store
        self.faults = faults
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}  # keyed by the case-sensitive 15-character id, so both forms resolve
        self._slots = threading.Semaphore(PROCESSING_SLOTS)
        self._root = Path(tempfile.mkdtemp(prefix="sf-bulk-"))
        # inferred: the Bulk engine does not see which token made a call, so one user creates every job.
        self._user_id = new_id("005")

    # --- routing -------------------------------------------------------------------------------------

    def handle(self, req: Request, version: str, rest: str) -> Response:
        parts = [p for p in rest.split("/") if p]
        if not parts:
            return _dispatch(req, {"GET": self._list, "POST": lambda: self._create(req, version)})
        job = self._job(parts[0])
        if len(parts) == 1:
            return _dispatch(
                req,
                {
                    "GET": lambda: json_response(200, job.info()),
                    "PATCH": lambda: self._patch(job, req),
                    "DELETE": lambda: self._delete(job),
                },
            )
        if len(parts) == 2 and parts[1] == "batches":
            return _dispatch(req, {"PUT": lambda: self._upload(job, req.body)})
        if len(parts) == 2 and parts[1] in RESULT_PATHS:
            return _dispatch(req, {"GET": lambda: self._results(job, RESULT_PATHS[parts[1]])})
        raise NOT_FOUND

    def _job(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id[:15])
        if job is None or (len(job_id) != 15 and job_id != job.id):
            raise NOT_FOUND
        return job

    # --- create and list -----------------------------------------------------------------------------

    def _create(self, req: Request, version: str) -> Response:
        body = req.json()
        if not isinstance(body, dict):
            raise ApiError(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
        # Captured order: property values are checked first (API_ERROR), then the object and field (INVALIDJOB).
        operation = _enum(body, "operation", OPERATIONS, None)
        _enum(body, "contentType", ("CSV",), "CSV")
        line_ending = _enum(body, "lineEnding", tuple(LINE_ENDINGS), "LF")
        delimiter = _enum(body, "columnDelimiter", tuple(DELIMITERS), "COMMA")
        name = str(body.get("object") or "")
        obj = self.store.schema.get(name)
        if obj is None:
            raise ApiError(400, "INVALIDJOB", f"InvalidJob : Unable to find object: {name}")
        ext_field = None
        if operation == "upsert":
            ext_name = str(body.get("externalIdFieldName") or "")
            ext = obj.field(ext_name)
            if ext is None or not usable_as_key(ext):
                raise ApiError(
                    400,
                    "INVALIDJOB",
                    f"InvalidJob : Field name provided, {ext_name} does not match an External ID for {obj.name}",
                )
            ext_field = ext.name
        job_id = new_id("750")
        directory = self._root / job_id
        directory.mkdir()
        job = Job(job_id, obj.name, operation, ext_field, line_ending, delimiter, version, self._user_id, directory)
        with self._lock:
            self._jobs[job_id[:15]] = job
        return json_response(200, job.description())

    def _list(self) -> Response:
        with self._lock:
            records = [job.description() for job in self._jobs.values()]
        return json_response(200, {"done": True, "records": records, "nextRecordsUrl": None})

    # --- upload, close, abort, delete ----------------------------------------------------------------

    def _upload(self, job: Job, data: bytes) -> Response:
        if -(-len(data) // 3) * 4 > MAX_BASE64_BYTES:
            # inferred: the code and wording; the limit itself is documented (Upload Job Data).
            raise ApiError(400, "BULK_API_ERROR", f"Exceeded max size limit of {MAX_BASE64_BYTES} bytes")
        # Under the lock, so that a close racing the upload always finds the data written.
        with self._lock:
            if job.state != "Open":
                raise _state_error(f"Job {job.id} is not Open: it is {job.state}")  # inferred wording
            if job.uploaded:
                # Captured from a real org: a job takes exactly one PUT of data.
                raise ApiError(
                    400,
                    "BULK_API_ERROR",
                    f"Found multipe contents for job: <{job.id[:15]}>, please 'Close' / 'Abort' / 'Delete' the "
                    "current Job then create a new Job and make sure you only do 'PUT' once on a given Job.",
                )
            records, endings_ok = _scan(data, LINE_ENDINGS[job.line_ending])
            job.data_path.write_bytes(data)
            job.uploaded = True
            if not endings_ok:
                job.upload_error = (
                    "ClientInputError : LineEnding is invalid on user data. "
                    f"Current LineEnding setting is {job.line_ending}"
                )
        return Response(201, b"", None, records=max(records - 1, 0))

    def _patch(self, job: Job, req: Request) -> Response:
        body = req.json()
        state = body.get("state") if isinstance(body, dict) else None
        with self._lock:
            if state == "UploadComplete":
                if job.state != "Open":
                    raise _state_error(f"Closing a job in state {job.state} is not allowed")  # inferred wording
                job.state = "UploadComplete"
                job.thread = threading.Thread(target=self._run, args=(job,), name=f"bulk-{job.id}", daemon=True)
                job.thread.start()
            elif state == "Aborted":
                if job.state in FINAL_STATES:
                    # Captured from a real org (said of JobComplete; Failed and Aborted are inferred alike).
                    raise _state_error("Aborting already Completed Job not allowed")
                job.state = "Aborted"
                job.cancel.set()
            else:
                raise _state_error(f"Invalid state: {state}")  # inferred wording
            job.modstamp = _now()
            return json_response(200, job.summary())

    def _delete(self, job: Job) -> Response:
        with self._lock:
            if job.state not in DELETABLE_STATES:
                raise _state_error(f"Deleting a job in state {job.state} is not allowed")  # inferred wording
            self._forget(job)
        shutil.rmtree(job.directory, ignore_errors=True)
        return Response(204, b"", None)

    def _forget(self, job: Job) -> None:
        """Drop ``job`` (caller holds the lock); its thread, if any, stops at its next check."""
        self._jobs.pop(job.id[:15], None)
        job.removed = True
        job.cancel.set()

    # --- results -------------------------------------------------------------------------------------

    def _results(self, job: Job, kind: str) -> Response:
        with self._lock:
            if job.state not in FINAL_STATES:
                # inferred: the documentation offers results of completed jobs only.
                raise _state_error(f"Results are not available while the job is {job.state}")
        if job.thread is not None:
            job.thread.join()  # an aborted job's thread is still moving its last rows to unprocessed
        path = job.result_path(kind)
        body = path.read_bytes() if path.exists() else b""
        return Response(200, body, RESULT_TYPE, records=job.result_rows.get(kind, 0))

    # --- processing ----------------------------------------------------------------------------------

    def _run(self, job: Job) -> None:
        """The job's life after close: queued for half the fault delay, InProgress for at least the other half.

        Splitting ``bulk_processing_delay_ms`` this way lets a polling client see both intermediate states.
        """
        half_delay = self.faults.bulk_processing_delay_ms / 2000
        if job.cancel.wait(half_delay):
            return
        with self._slots:
            with self._lock:
                if job.state != "UploadComplete":
                    return
                job.state = "InProgress"
                job.modstamp = _now()
            started = time.monotonic()
            try:
                error = self._process(job)
            except Exception:
                log.exception("Bulk job %s failed unexpectedly", job.id)
                error = UNKNOWN_FAILURE
        job.cancel.wait(half_delay - (time.monotonic() - started))
        with self._lock:
            job.total_ms = job.api_ms = int((time.monotonic() - started) * 1000)
            if job.state == "InProgress":
                job.state, job.error_message = ("Failed", error) if error else ("JobComplete", None)
            job.modstamp = _now()

    def _process(self, job: Job) -> str | None:
        """Write the job's rows to the store and the result files; the failure message, if the job fails."""
        if not job.uploaded:
            return NO_DATA
        # Java's decoder, like errors="replace", substitutes malformed UTF-8 (inferred: Salesforce runs Java).
        with (
            job.data_path.open(encoding="utf-8-sig", errors="replace", newline="") as source,
            _Results(job) as results,
        ):
            rows = csv.reader(source, delimiter=DELIMITERS[job.column_delimiter], strict=True)
            header = next(_chunks(rows, 1), [None])[0]
            if header is None:
                return NO_DATA
            if isinstance(header, str):
                return f"InvalidBatch : {header}"  # inferred wording: the header row itself is malformed
            results.start(header)
            try:
                if self.faults.take_fail_next_bulk_job():
                    raise JobFailure(UNKNOWN_FAILURE)
                if job.upload_error:
                    raise JobFailure(job.upload_error)
                self._check_header(job, header)
                for chunk in _chunks(rows, CHUNK_ROWS):
                    if job.removed:
                        return None
                    if job.cancel.is_set():  # aborted: the rest is never processed
                        results.unprocessed(chunk)
                    else:
                        self._write_chunk(job, header, chunk, results)
            except JobFailure as failure:
                for chunk in _chunks(rows, CHUNK_ROWS):
                    results.unprocessed(chunk)
                return str(failure)
        return None

    def _check_header(self, job: Job, header: list[str]) -> None:
        """Fail the job for a column the object does not have, as Salesforce does before writing any row."""
        if job.operation in ("delete", "hardDelete"):
            if [name.lower() for name in header] != ["id"]:
                # inferred wording, after the client-side check simple-salesforce makes before a delete.
                raise JobFailure(f"InvalidBatch : The '{job.operation}' batch must contain only 'Id'")
            return
        obj = self.store.schema.get(job.object)
        assert obj is not None  # checked when the job was created
        seen: set[str] = set()
        for name in header:
            if not _column_exists(self.store.schema, obj, name):
                raise JobFailure(f"InvalidBatch : Field name not found : {name}")
            if name.lower() in seen:
                raise JobFailure(f"InvalidBatch : Duplicate field name: {name}")  # inferred wording
            seen.add(name.lower())

    def _write_chunk(self, job: Job, header: list[str], chunk: list[list[str] | str], results: _Results) -> None:
        """One internal batch: malformed rows fail on their own, the rest go to the store in one call."""
        width = len(header)
        good: list[list[str]] = []
        malformed: list[list[str]] = []
        for row in chunk:
            if isinstance(row, str):
                malformed.append(["", _row_error(f"Malformed CSV row: {row}")])
            elif len(row) != width:
                malformed.append(["", _row_error(f"Expected {width} columns but found {len(row)}"), *row])
            else:
                good.append(row)
        results.add("failed", malformed)  # written even if the store then fails the job
        try:
            outcomes = self.store.write_table(
                job.operation,
                job.object,
                header,
                good,
                ext_field=job.external_id_field,
                # Without the fault no row draws from its generator: the store need not ask row by row.
                lock_row=self.faults.lock_row if self.faults.lock_row_fraction > 0 else None,
            )
        except ApiError as exc:
            raise JobFailure(f"InvalidBatch : {exc.message}") from None
        succeeded: list[list[str]] = []
        failed: list[list[str]] = []
        for row, record_id, created, error in zip(good, *outcomes, strict=True):
            if error is None:
                succeeded.append([record_id, "true" if created else "false", *row])
            else:
                failed.append(["", _error_text([error.as_dict()]), *row])
        results.add("success", succeeded)
        results.add("failed", failed)
        failures = len(malformed) + len(failed)
        with self._lock:
            job.processed += len(chunk)
            job.failed += failures

    # --- lifecycle -----------------------------------------------------------------------------------

    def reset(self) -> None:
        """Drop every job, stopping their threads first so that none writes to the store after the reset."""
        with self._lock:
            jobs = list(self._jobs.values())
            for job in jobs:
                self._forget(job)
        for job in jobs:
            if job.thread is not None:
                job.thread.join()
            shutil.rmtree(job.directory, ignore_errors=True)

    def shutdown(self) -> None:
        self.reset()
        shutil.rmtree(self._root, ignore_errors=True)


def _dispatch(req: Request, handlers: dict[str, Callable[[], Response]]) -> Response:
    handler = handlers.get(req.method)
    if handler is None:
        allowed = ",".join(handlers)
        raise ApiError(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{req.method}' not allowed. Allowed are {allowed}")
    return handler()


# --- job creation helpers ----------------------------------------------------------------------------


def _enum(body: dict[str, Any], name: str, allowed: tuple[str, ...], default: str | None) -> str:
    """A job property that must take one of ``allowed``; the error is the one a real org answers."""
    value = body.get(name, default)
    if value not in allowed:
        shown = "" if value is None else value
        raise ApiError(400, "API_ERROR", f"Invalid value: '{shown}' supplied for property: '{name}'")
    return str(value)


def _state_error(message: str) -> ApiError:
    return ApiError(400, "INVALIDJOBSTATE", message)


def _column_exists(schema: Schema, obj: ObjectDef, name: str) -> bool:
    """A field of ``obj``, or ``Relationship.Field`` naming a field of the related object."""
    if "." not in name:
        return obj.field(name) is not None
    relationship, _, target_field = name.partition(".")
    ref = obj.relationship(relationship)
    if ref is None:
        return False
    parent = schema.get(ref.reference_to[0])
    return parent is not None and parent.field(target_field) is not None


# --- CSV parsing -------------------------------------------------------------------------------------


def _scan(data: bytes, terminator: bytes) -> tuple[int, bool]:
    """(records including the header, whether every record ends with ``terminator``), looking outside quotes.

    Works on bytes in 1 MB blocks: quote, CR and LF are single bytes in UTF-8, and splitting on the quote
    character leaves the text outside quoted values in every other piece (a doubled quote toggles twice).
    Those pieces are joined back with a quote between them, so that a CR and an LF on either side of a quoted
    value never count as a CRLF, and counted in C. Salesforce rejects a job whose rows end otherwise
    ("LineEnding is invalid on user data"); line breaks inside quoted values are data and are kept as they are.
    """
    inside = False
    newlines = carriages = crlfs = 0
    start = 0
    while start < len(data):
        end = start + _SCAN_BLOCK
        while end < len(data) and data[end - 1] == 0x0D:  # never split a CR from the LF after it
            end += 1
        pieces = data[start:end].split(b'"')
        outside = b'"'.join(pieces[1 if inside else 0 :: 2])
        newlines += outside.count(b"\n")
        carriages += outside.count(b"\r")
        crlfs += outside.count(b"\r\n")
        inside ^= len(pieces) % 2 == 0
        start = end
    ends = newlines + carriages - crlfs
    records = ends + (1 if data and data[-1:] not in (b"\n", b"\r") else 0)
    endings_ok = carriages == 0 if terminator == b"\n" else carriages == crlfs == newlines
    return records, endings_ok


def _chunks(reader: Iterator[list[str]], size: int) -> Iterator[list[list[str] | str]]:
    """Parsed rows ``size`` at a time; a row the strict parser refuses becomes its error text, and blank lines
    are skipped. Rows are read only as chunks are asked for, so a job that fails leaves the rest to read.

    Salesforce: "A space before or after a double quote generates an error for the row."
    """
    chunk: list[list[str] | str] = []
    while True:
        try:
            for row in reader:
                if row:
                    chunk.append(row)
                    if len(chunk) == size:
                        yield chunk
                        chunk = []
        except csv.Error as exc:
            chunk.append(str(exc))
            if len(chunk) == size:
                yield chunk
                chunk = []
            continue
        break
    if chunk:
        yield chunk


def _error_text(errors: Iterable[dict[str, Any]]) -> str:
    """``sf__Error`` as a real org writes it.

    Captured: ``REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --`` and, with no fields,
    ``INVALID_CROSS_REFERENCE_KEY:invalid cross reference id:--``: each field is followed by a space, then
    ``--`` closes the error (inferred from those two: several fields, several errors simply concatenate).
    """
    return "".join(
        f"{e['statusCode']}:{e['message']}:{''.join(f + ' ' for f in e.get('fields') or ())}--" for e in errors
    )


def _row_error(message: str) -> str:
    """A row the parser could not use. inferred: Salesforce documents that such a row fails on its own
    but not with which code; INVALID_FIELD is our choice."""
    return _error_text([{"statusCode": "INVALID_FIELD", "message": message, "fields": []}])


# --- result files ------------------------------------------------------------------------------------


def _header_line(prefix: str, header: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(header)
    return prefix + buffer.getvalue()


def _result_lines(rows: list[list[str]]) -> bytes:
    """Lines of the success or failed results in UTF-8, every value quoted as ``csv.QUOTE_ALL`` quotes (see
    ``_Results``).

    Built with string methods over the whole chunk, since a csv writer costs several microseconds a row and a
    job has a million rows: cells are joined by NUL and rows by SOH, one pass doubles every quote, and the two
    separators then become ``","`` and ``"\\n"``; on the encoded bytes, where each pass is a byte search whatever
    characters the values hold. Rows whose values hold either separator are quoted cell by cell.
    """
    if not rows:
        return b""
    text = "\x01".join(map("\0".join, rows)).encode("utf-8")
    if text.count(b"\0") == sum(map(len, rows)) - len(rows) and text.count(b"\x01") == len(rows) - 1:
        return b'"' + text.replace(b'"', b'""').replace(b"\0", b'","').replace(b"\x01", b'"\n"') + b'"\n'
    return "".join('"' + '","'.join([cell.replace('"', '""') for cell in row]) + '"\n' for row in rows).encode("utf-8")


class _Results:
    """The three result CSVs of a job, written as it runs.

    Real results quote the ``sf__`` header names and every value but repeat the uploaded header as it was
    (captured: ``"sf__Id","sf__Error",Id,Phone`` then ``"","INVALID_CROSS_REFERENCE_KEY:…:--","001…","5"``);
    unprocessed records repeat the upload's header and rows. They use commas and LF whatever the job's
    format (inferred, as simple-salesforce parses them that way).
    """

    def __init__(self, job: Job) -> None:
        self._job = job
        self._files: dict[str, BinaryIO] = {}  # success and failed: lines built as bytes (``_result_lines``)
        self._counts = {"success": 0, "failed": 0, "unprocessed": 0}

    def __enter__(self) -> _Results:
        for kind in ("success", "failed"):
            self._files[kind] = self._job.result_path(kind).open("wb")
        self._unprocessed_file = self._job.result_path("unprocessed").open("w", encoding="utf-8", newline="")
        self._unprocessed = csv.writer(self._unprocessed_file, lineterminator="\n")
        return self

    def start(self, header: list[str]) -> None:
        self._files["success"].write(_header_line('"sf__Id","sf__Created",', header).encode("utf-8"))
        self._files["failed"].write(_header_line('"sf__Id","sf__Error",', header).encode("utf-8"))
        self._unprocessed_file.write(_header_line("", header))

    def add(self, kind: str, rows: list[list[str]]) -> None:
        """Rows of the ``success`` or ``failed`` results (id, outcome, then the uploaded cells), in row order."""
        self._files[kind].write(_result_lines(rows))
        self._counts[kind] += len(rows)

    def unprocessed(self, rows: list[list[str] | str]) -> None:
        kept = [row for row in rows if not isinstance(row, str)]
        self._unprocessed.writerows(kept)
        self._counts["unprocessed"] += len(kept)

    def __exit__(self, *exc: object) -> None:
        for handle in (*self._files.values(), self._unprocessed_file):
            handle.close()
        self._job.result_rows = dict(self._counts)
