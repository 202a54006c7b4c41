"""Writing rows through Bulk API 2.0 ingest jobs, and reading every row's outcome back.

A job is created, its CSV uploaded, closed, polled until Salesforce has processed it, and then its successful and
failed results are read and matched to the rows sent: the sink may only return (and STATE may only move on) once
every row has an answer. Results come back in no guaranteed order and echo the columns as uploaded, so rows are
matched to outcomes by their echoed cells (``bulk_results.ResultMatcher``). Rows that hit a record lock, or that a
failed job left unprocessed, go again in a new job. A job whose answers get lost is resumed by its id (its state
read back), never re-run with the same data: see ``_start_job`` and ``_set_state``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import IO, Any, Protocol

import requests

from target_salesforce.bulk_results import ResultMatcher, count_successes
from target_salesforce.bulk_upload import BulkUpload, FileBody
from target_salesforce.client import OutcomeUnknown
from target_salesforce.errors import TargetError
from target_salesforce.interpreter import brisk_handovers
from target_salesforce.outcomes import LOCK_ERROR, LOCK_RETRIES, Outcome, wait_before_lock_retry
from target_salesforce.spool import anonymous_file

FINAL_STATES = frozenset({"JobComplete", "Failed", "Aborted"})
# Lost answers in a row to a job's upload or state change (or broken-off result downloads) before the run gives up.
UPLOAD_ATTEMPTS = 3
# Rows a second the first job of a run is assumed to be processed at, to sleep before its first poll: faster than
# Salesforce or the emulator, so the sleep never outlasts the job; its progress paces the polls that follow.
FIRST_JOB_ROWS_PER_SECOND = 50_000

logger = logging.getLogger(__name__)


class RequestClient(Protocol):
    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response: ...


def _parse_error(text: str) -> tuple[str, str, list[str]]:
    """Split Bulk's ``CODE:message:field1,field2 --`` error text into its parts."""
    code, _, rest = text.partition(":")
    message, _, fields = rest.rstrip().removesuffix("--").rstrip().rpartition(":")
    if not message:
        message, fields = fields, ""
    return code, message.strip(), [f for f in fields.split(",") if f.strip()]


def _outcome(successful: bool, sf_id: str, second: str) -> Outcome:
    """A result line's outcome from its first two cells: sf__Id, then sf__Created or sf__Error."""
    if successful:
        return Outcome(True, id=sf_id, created=second.lower() == "true")
    code, message, fields = _parse_error(second)
    return Outcome(False, id=sf_id or None, error_code=code, message=message, fields=fields)


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

    def run(
        self,
        op: str,
        sobject: str,
        upload: BulkUpload,
        ext_field: str | None = None,
        counted: Callable[[int, int], None] | None = None,
    ) -> Iterator[tuple[int, Outcome]]:
        """Send ``upload`` with ``op`` (insert, update, upsert, delete, hardDelete): (ref, Outcome) for every row.

        Rows that hit UNABLE_TO_LOCK_ROW go again up to LOCK_RETRIES times after a growing pause, and rows a
        failed job left unprocessed up to ``failed_job_retries`` times, each time in a new job of just those rows.

        ``counted``, for a caller that wants no row's Id: a job whose every row succeeded is answered by one call,
        ``counted(created, not_created)``, instead of an Outcome a row (see ``_count``).
        """
        locked_rounds = failed_rounds = 0
        try:
            while True:
                with brisk_handovers():
                    job_id = self._start_job(op, sobject, ext_field, upload.body())
                info = self._wait(job_id, len(upload))
                with brisk_handovers():
                    if counted is not None and self._count(job_id, info, len(upload), counted):
                        return
                matcher = ResultMatcher(upload)
                again: list[int] = []
                for index, outcome in self._results(job_id, matcher, failed=info.get("numberRecordsFailed") != 0):
                    if outcome.error_code == LOCK_ERROR and locked_rounds < LOCK_RETRIES:
                        again.append(index)
                    else:
                        yield upload.refs[index], outcome
                locked = len(again)
                unprocessed = matcher.unanswered()
                if unprocessed and info["state"] != "JobComplete":
                    reason = info.get("errorMessage") or info["state"]
                    logger.warning(
                        "Bulk job %s ended %s (%s); %d row(s) unprocessed",
                        job_id,
                        info["state"],
                        reason,
                        len(unprocessed),
                    )
                    if failed_rounds < self._failed_job_retries:
                        failed_rounds += 1
                        again.extend(unprocessed)
                    else:
                        failure = Outcome.failed(
                            "BULK_JOB_FAILED", f"Bulk job {job_id} ended {info['state']}: {reason}"
                        )
                        yield from ((upload.refs[i], failure) for i in unprocessed)
                else:
                    missing = Outcome.failed("BULK_RESULT_MISSING", "Salesforce reported no result for this row")
                    yield from ((upload.refs[i], missing) for i in unprocessed)
                if not again:
                    return
                if locked:
                    locked_rounds += 1
                    wait_before_lock_retry(locked, locked_rounds)
                previous, upload = upload, upload.subset(sorted(again))
                previous.close()
        finally:
            upload.close()

    def _start_job(self, op: str, sobject: str, ext_field: str | None, body: FileBody) -> str:
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
        """Poll until the job ends, first sleeping most of the time it should take.

        That time is the last job's, scaled down to a smaller job (big loads send jobs of one size, so a job costs
        a poll or two), or for the first job of a run what FIRST_JOB_ROWS_PER_SECOND gives. While the job runs, its
        progress (``numberRecordsProcessed``) tells how long the rest should take, so a large first job costs a
        few polls too, and a job of ten rows is polled at once. Without progress, polls space out as the wait grows.
        """
        last_rows, last_seconds = self._last_job
        expected = last_seconds * min(1.0, rows / last_rows) if last_rows else rows / FIRST_JOB_ROWS_PER_SECOND
        started = time.monotonic()
        time.sleep(0.9 * expected)
        delay = max(self._poll_initial, expected / 10)
        while True:
            info = self._client.request("GET", f"jobs/ingest/{job_id}").json()
            if info["state"] in FINAL_STATES:
                self._last_job = (rows, time.monotonic() - started)
                return info
            done = info.get("numberRecordsProcessed") or 0
            elapsed = time.monotonic() - started
            rest = elapsed * (rows - done) / done if 0 < done < rows else 0.0
            time.sleep(max(delay, rest))
            # A job still queued after a long wait is polled a quarter of its wait apart, not every few seconds.
            delay = min(delay * 1.5, max(self._poll_max, expected / 4, elapsed / 4))

    def _count(self, job_id: str, info: dict, rows: int, counted: Callable[[int, int], None]) -> bool:
        """Whether every row succeeded, by the job's counts and its successful results counted (not matched to rows:
        a fifth of the CPU a Bulk row costs), and then told to ``counted``.

        Salesforce counts a failed row as processed too, so a complete job that processed every row and failed
        none succeeded for each. Should the file's lines not add up to that, the caller matches them one by one.
        """
        if not (
            info["state"] == "JobComplete"
            and info.get("numberRecordsFailed") == 0
            and info.get("numberRecordsProcessed") == rows
        ):
            return False
        with self._download(f"jobs/ingest/{job_id}/successfulResults/") as file:
            created, not_created = count_successes(file)
        if created + not_created != rows:
            logger.warning(
                "Bulk job %s: %d successful result lines for %d rows; matching them one by one",
                job_id,
                created + not_created,
                rows,
            )
            return False
        counted(created, not_created)
        return True

    def _results(self, job_id: str, matcher: ResultMatcher, failed: bool) -> Iterator[tuple[int, Outcome]]:
        """(uploaded line, outcome) of each result line; the failed file is skipped (a call saved) when the job
        counted no failures."""
        for kind in ("successfulResults", "failedResults") if failed else ("successfulResults",):
            successful = kind == "successfulResults"
            with self._download(f"jobs/ingest/{job_id}/{kind}/") as file:
                for index, sf_id, second in matcher.read(file, successful):
                    yield index, _outcome(successful, sf_id, second)

    def _download(self, path: str) -> IO[bytes]:
        """A result file, streamed into an anonymous temporary file; fetched whole again if it breaks off."""
        for attempt in range(1, UPLOAD_ATTEMPTS + 1):
            file = anonymous_file()
            try:
                with brisk_handovers(), self._client.request("GET", path, stream=True) as response:
                    for chunk in response.iter_content(1 << 20):
                        file.write(chunk)
            except requests.RequestException as exc:
                file.close()
                logger.warning(
                    "GET %s broke off (%s); attempt %d of %d", path, type(exc).__name__, attempt, UPLOAD_ATTEMPTS
                )
                continue
            file.flush()
            file.seek(0)
            return file
        raise TargetError(f"GET {path}: the download broke off {UPLOAD_ATTEMPTS} times in a row; giving up")
