"""Writing rows through Bulk API 2.0 ingest jobs, and reading every row's outcome back.

A job is created, its CSV uploaded, closed, polled until Salesforce has processed it, and then its successful,
failed and unprocessed results are read and matched to the rows sent: the sink may only return (and STATE may only
move on) once every row has an answer. Results come back in no guaranteed order and echo the columns as uploaded,
so rows are matched to outcomes by their CSV values. A job whose answers get lost is resumed by its id (its state
read back), never re-run with the same data: see ``_start_job`` and ``_set_state``.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from itertools import chain, repeat
from types import SimpleNamespace
from typing import Any, Protocol

import requests

from target_salesforce.client import OutcomeUnknown
from target_salesforce.errors import TargetError
from target_salesforce.outcomes import Outcome

# Salesforce accepts up to 150 MB of base64 per job, i.e. about 100 MB of raw CSV.
MAX_UPLOAD_BYTES = 100 * 1024 * 1024
FINAL_STATES = frozenset({"JobComplete", "Failed", "Aborted"})
# Lost answers in a row to a job's upload or state change before the run gives up.
UPLOAD_ATTEMPTS = 3
NULL = "#N/A"  # Bulk CSV's way of setting a field to null; an empty cell leaves it unchanged.
_ABSENT = object()  # a column the row does not have

logger = logging.getLogger(__name__)


class RequestClient(Protocol):
    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response: ...


def csv_cell(value: Any) -> str:
    # An empty string sets the field to null through Collections (Salesforce stores no empty text), while an empty
    # CSV cell would leave it unchanged: both mean null, so Bulk must say so explicitly too.
    if value is None or value == "":
        return NULL
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def _cells(row: dict, columns: list[str]) -> list[str]:
    """A row's CSV cells; a column the row lacks is an empty cell, which leaves the field unchanged."""
    # Non-empty text, most cells, is taken as it is: this runs once per cell of every row sent.
    return [
        value if value.__class__ is str and value else "" if value is _ABSENT else csv_cell(value)
        for value in map(row.get, columns, repeat(_ABSENT))
    ]


def _encode(columns: list[str], rows: Sequence[dict]) -> Iterator[tuple[bytes, list[int]]]:
    """CSV uploads of at most MAX_UPLOAD_BYTES each, with the row indexes each one carries.

    CRLF line endings: simple-salesforce's and some of Salesforce's tooling mishandle a lone CR inside a value under
    LF endings; with CRLF and RFC 4180 quoting every character of a value round-trips.
    """
    lines: list[str] = []
    # One writer for all rows, writing each line into ``lines`` to be measured and encoded on its own.
    writer = csv.writer(SimpleNamespace(write=lines.append), lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(columns)
    header = lines.pop().encode("utf-8")
    buffer, indexes, size = [header], [], len(header)
    for index, row in enumerate(rows):
        writer.writerow(_cells(row, columns))
        line = lines.pop().encode("utf-8")
        if indexes and size + len(line) > MAX_UPLOAD_BYTES:
            yield b"".join(buffer), indexes
            buffer, indexes, size = [header], [], len(header)
        buffer.append(line)
        indexes.append(index)
        size += len(line)
    if indexes:
        yield b"".join(buffer), indexes


def _parse_error(text: str) -> tuple[str, str, list[str]]:
    """Split Bulk's ``CODE:message:field1,field2 --`` error text into its parts."""
    code, _, rest = text.partition(":")
    message, _, fields = rest.rstrip().removesuffix("--").rstrip().rpartition(":")
    if not message:
        message, fields = fields, ""
    return code, message.strip(), [f for f in fields.split(",") if f.strip()]


class BulkWriter:
    def __init__(
        self,
        client: RequestClient,
        *,
        poll_initial: float = 0.05,
        poll_max: float = 2.0,
        failed_job_retries: int = 1,
    ) -> None:
        self._client = client
        self._poll_initial = poll_initial
        self._poll_max = poll_max
        self._failed_job_retries = failed_job_retries
        self._last_job = (0, 0.0)  # rows and seconds to a final state of the last job, for the next one's first poll

    def write(self, op: str, sobject: str, rows: Sequence[dict], ext_field: str | None = None) -> list[Outcome]:
        """Send ``rows`` with ``op`` (insert, update, upsert, delete, hardDelete); one Outcome per row, in order."""
        columns = dict.fromkeys(chain.from_iterable(rows))  # every row's keys, in order of first appearance
        outcomes: list[Outcome | None] = [None] * len(rows)
        for body, indexes in _encode(list(columns), rows):
            for index, outcome in self._run_job(op, sobject, ext_field, list(columns), body, indexes, rows):
                outcomes[index] = outcome
        missing = [i for i, o in enumerate(outcomes) if o is None]
        for index in missing:
            outcomes[index] = Outcome.failed("BULK_RESULT_MISSING", "Salesforce reported no result for this row")
        return outcomes  # type: ignore[return-value]

    def _run_job(
        self,
        op: str,
        sobject: str,
        ext_field: str | None,
        columns: list[str],
        body: bytes,
        indexes: list[int],
        rows: Sequence[dict],
    ) -> Iterator[tuple[int, Outcome]]:
        pending = indexes
        for attempt in range(self._failed_job_retries + 1):
            job_id = self._start_job(op, sobject, ext_field, body)
            info = self._wait(job_id, len(pending))
            by_key = self._index_rows(columns, rows, pending)
            yield from self._results(job_id, by_key, failed=info.get("numberRecordsFailed") != 0)
            unprocessed = [i for queue in by_key.values() for i in queue]
            if info["state"] == "JobComplete" or not unprocessed:
                for index in unprocessed:
                    yield index, Outcome.failed("BULK_RESULT_MISSING", "Salesforce reported no result for this row")
                return
            reason = info.get("errorMessage") or info["state"]
            logger.warning(
                "Bulk job %s ended %s (%s); %d row(s) unprocessed", job_id, info["state"], reason, len(unprocessed)
            )
            if attempt == self._failed_job_retries:
                for index in unprocessed:
                    yield index, Outcome.failed("BULK_JOB_FAILED", f"Bulk job {job_id} ended {info['state']}: {reason}")
                return
            pending = sorted(unprocessed)
            # The retried rows are a subset of one upload, so they fit in one again.
            body, _ = next(_encode(columns, [rows[i] for i in pending]))

    def _start_job(self, op: str, sobject: str, ext_field: str | None, body: bytes) -> str:
        """Create a job, upload ``body`` and close it; the id of the job that holds the data exactly once.

        Salesforce takes one upload per job (a second PUT is refused) and says nothing about the data of an Open
        job, so a lost answer to the upload leaves it unknown whether the data is in. An Open job is never
        processed, though: that job is aborted and the data goes to a new one, never to two jobs that both run.
        """
        for _ in range(UPLOAD_ATTEMPTS):
            job_id = self._create_job(op, sobject, ext_field)
            try:
                self._client.request(
                    "PUT",
                    f"jobs/ingest/{job_id}/batches",
                    data=body,
                    headers={"Content-Type": "text/csv"},
                    idempotent=False,
                )
            except OutcomeUnknown as exc:
                logger.warning("Bulk job %s: %s; aborting the job and uploading to a new one", job_id, exc)
                self._set_state(job_id, "Aborted")
                continue
            self._set_state(job_id, "UploadComplete")
            return job_id
        raise TargetError(f"Bulk upload to {sobject}: the answer was lost {UPLOAD_ATTEMPTS} times in a row; giving up")

    def _create_job(self, op: str, sobject: str, ext_field: str | None) -> str:
        spec: dict[str, Any] = {"object": sobject, "operation": op, "contentType": "CSV", "lineEnding": "CRLF"}
        if op == "upsert":
            spec["externalIdFieldName"] = ext_field
        # An Open job with no data does nothing, so re-creating one after a dropped answer is harmless.
        return self._client.request("POST", "jobs/ingest", json=spec, idempotent=True).json()["id"]

    def _set_state(self, job_id: str, state: str) -> None:
        """Close or abort an Open job; after a lost answer, the job itself says whether the change took.

        Re-sending blindly would fail the run: Salesforce refuses to close a job that is no longer Open, or to abort
        one already aborted. So the job is read by id, and the change is sent again only while the job is still Open.
        """
        for _ in range(UPLOAD_ATTEMPTS):
            try:
                self._client.request("PATCH", f"jobs/ingest/{job_id}", json={"state": state}, idempotent=False)
                return
            except OutcomeUnknown as exc:
                current = self._client.request("GET", f"jobs/ingest/{job_id}").json()["state"]
                logger.warning("Bulk job %s: %s; the job is now %s", job_id, exc, current)
                if current != "Open":
                    return
        raise TargetError(f"Bulk job {job_id}: setting it {state} lost its answer {UPLOAD_ATTEMPTS} times; giving up")

    def _wait(self, job_id: str, rows: int) -> dict:
        """Poll until the job ends, first waiting most of what the last job took, scaled down to a smaller job.

        Big loads send jobs of one size, so a job then costs a poll or two instead of one every couple of seconds;
        the estimate never grows with this job's size, so a job is never waited on for longer than the last took.
        """
        last_rows, last_seconds = self._last_job
        expected = last_seconds * min(1.0, rows / last_rows) if last_rows else 0.0
        started = time.monotonic()
        time.sleep(0.9 * expected)
        delay = max(self._poll_initial, expected / 10)
        while True:
            info = self._client.request("GET", f"jobs/ingest/{job_id}").json()
            if info["state"] in FINAL_STATES:
                self._last_job = (rows, time.monotonic() - started)
                return info
            time.sleep(delay)
            delay = min(delay * 1.5, max(self._poll_max, expected / 4))

    @staticmethod
    def _index_rows(columns: list[str], rows: Sequence[dict], indexes: list[int]) -> dict[tuple, list[int]]:
        # Lists, not deques: a deque is 600 bytes even for the one index nearly every key has.
        by_key: dict[tuple, list[int]] = defaultdict(list)
        for index in indexes:
            by_key[tuple(_cells(rows[index], columns))].append(index)
        return by_key

    def _results(self, job_id: str, by_key: dict[tuple, list[int]], failed: bool) -> Iterator[tuple[int, Outcome]]:
        """Outcomes from the result files; the failed file is skipped (a call saved) when the job counted none."""
        for kind in ("successfulResults", "failedResults") if failed else ("successfulResults",):
            content = self._client.request("GET", f"jobs/ingest/{job_id}/{kind}/").content
            # Decoded a chunk at a time: the whole file as one str plus StringIO's copy of it took 2 KB a row.
            reader = csv.reader(io.TextIOWrapper(io.BytesIO(content), encoding="utf-8", newline=""))
            next(reader, None)
            for cells in reader:
                queue = by_key.get(tuple(cells[2:]))
                if not queue:
                    continue
                index = queue.pop(0)
                if kind == "successfulResults":
                    yield index, Outcome(True, id=cells[0], created=cells[1].lower() == "true")
                else:
                    code, message, fields = _parse_error(cells[1])
                    yield index, Outcome(False, id=cells[0] or None, error_code=code, message=message, fields=fields)
