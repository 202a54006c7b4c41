"""Writing rows through Bulk API 2.0 ingest jobs, and reading every row's outcome back.

A job is created, its CSV uploaded, closed, polled until Salesforce has processed it, and then its successful,
failed and unprocessed results are read and matched to the rows sent: the sink may only return (and STATE may only
move on) once every row has an answer. Results come back in no guaranteed order and echo the columns as uploaded,
so rows are matched to outcomes by their CSV values.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections import defaultdict, deque
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import requests

from target_salesforce.outcomes import Outcome

# Salesforce accepts up to 150 MB of base64 per job, i.e. about 100 MB of raw CSV.
MAX_UPLOAD_BYTES = 100 * 1024 * 1024
FINAL_STATES = frozenset({"JobComplete", "Failed", "Aborted"})
NULL = "#N/A"  # Bulk CSV's way of setting a field to null; an empty cell leaves it unchanged.

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
    return [csv_cell(row[c]) if c in row else "" for c in columns]


def _encode(columns: list[str], rows: Sequence[dict]) -> Iterator[tuple[bytes, list[int]]]:
    """CSV uploads of at most MAX_UPLOAD_BYTES each, with the row indexes each one carries.

    CRLF line endings: simple-salesforce's and some of Salesforce's tooling mishandle a lone CR inside a value under
    LF endings; with CRLF and RFC 4180 quoting every character of a value round-trips.
    """
    header = _csv_line(columns)
    buffer, indexes, size = [header], [], len(header)
    for index, row in enumerate(rows):
        line = _csv_line(_cells(row, columns))
        if indexes and size + len(line) > MAX_UPLOAD_BYTES:
            yield b"".join(buffer), indexes
            buffer, indexes, size = [header], [], len(header)
        buffer.append(line)
        indexes.append(index)
        size += len(line)
    if indexes:
        yield b"".join(buffer), indexes


def _csv_line(cells: list[str]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL).writerow(cells)
    return out.getvalue().encode("utf-8")


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

    def write(self, op: str, sobject: str, rows: Sequence[dict], ext_field: str | None = None) -> list[Outcome]:
        """Send ``rows`` with ``op`` (insert, update, upsert, delete, hardDelete); one Outcome per row, in order."""
        columns: dict[str, None] = {}
        for row in rows:
            columns.update(dict.fromkeys(row))
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
            job = self._create_job(op, sobject, ext_field)
            job_id = job["id"]
            self._client.request(
                "PUT", f"jobs/ingest/{job_id}/batches", data=body, headers={"Content-Type": "text/csv"}
            )
            self._client.request("PATCH", f"jobs/ingest/{job_id}", json={"state": "UploadComplete"})
            info = self._wait(job_id)
            by_key = self._index_rows(columns, rows, pending)
            yield from self._results(job_id, by_key)
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

    def _create_job(self, op: str, sobject: str, ext_field: str | None) -> dict:
        spec: dict[str, Any] = {"object": sobject, "operation": op, "contentType": "CSV", "lineEnding": "CRLF"}
        if op == "upsert":
            spec["externalIdFieldName"] = ext_field
        # An Open job with no data does nothing, so re-creating one after a dropped answer is harmless.
        return self._client.request("POST", "jobs/ingest", json=spec, idempotent=True).json()

    def _wait(self, job_id: str) -> dict:
        delay = self._poll_initial
        while True:
            info = self._client.request("GET", f"jobs/ingest/{job_id}").json()
            if info["state"] in FINAL_STATES:
                return info
            time.sleep(delay)
            delay = min(delay * 1.5, self._poll_max)

    @staticmethod
    def _index_rows(columns: list[str], rows: Sequence[dict], indexes: list[int]) -> dict[tuple, deque[int]]:
        by_key: dict[tuple, deque[int]] = defaultdict(deque)
        for index in indexes:
            by_key[tuple(_cells(rows[index], columns))].append(index)
        return by_key

    def _results(self, job_id: str, by_key: dict[tuple, deque[int]]) -> Iterator[tuple[int, Outcome]]:
        for kind in ("successfulResults", "failedResults"):
            text = self._client.request("GET", f"jobs/ingest/{job_id}/{kind}/").content.decode("utf-8")
            reader = csv.reader(io.StringIO(text, newline=""))
            next(reader, None)
            for cells in reader:
                queue = by_key.get(tuple(cells[2:]))
                if not queue:
                    continue
                index = queue.popleft()
                if kind == "successfulResults":
                    yield index, Outcome(True, id=cells[0], created=cells[1].lower() == "true")
                else:
                    code, message, fields = _parse_error(cells[1])
                    yield index, Outcome(False, id=cells[0] or None, error_code=code, message=message, fields=fields)
