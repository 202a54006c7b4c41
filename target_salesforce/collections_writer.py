"""Writing rows through sObject Collections: up to 200 records a request, several requests in flight.

Collections answers per record, in request order, so each row's outcome is known without any extra call. Requests
run on a small thread pool because with real network latency a single stream of 200-record calls leaves the org idle.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from target_salesforce.client import OutcomeUnknown
from target_salesforce.outcomes import Outcome

MAX_RECORDS = 200  # Salesforce rejects larger requests with EXCEEDED_ID_LIMIT.
OUTCOME_UNKNOWN = "OUTCOME_UNKNOWN"

logger = logging.getLogger(__name__)


class JsonClient(Protocol):
    def json(self, method: str, path: str, **kwargs: Any) -> Any: ...


def to_sobject(sobject: str, values: dict[str, Any]) -> dict[str, Any]:
    """A row in Collections' record shape: attributes plus fields, ``Rel.Ext`` columns as parent references."""
    record: dict[str, Any] = {"attributes": {"type": sobject}}
    for key, value in values.items():
        relationship, dot, parent_field = key.partition(".")
        if dot:
            record[relationship] = {parent_field: value}
        else:
            record[key] = value
    return record


def _outcome(result: dict[str, Any]) -> Outcome:
    if result.get("success"):
        return Outcome(True, id=result.get("id"), created=bool(result.get("created")))
    error = (result.get("errors") or [{}])[0]
    return Outcome(
        False,
        id=result.get("id"),
        error_code=error.get("statusCode", "UNKNOWN_ERROR"),
        message=error.get("message", ""),
        fields=list(error.get("fields") or []),
    )


class CollectionsWriter:
    def __init__(self, client: JsonClient, *, concurrency: int = 4) -> None:
        self._client = client
        self._concurrency = concurrency

    def write(self, op: str, sobject: str, rows: Sequence[dict], ext_field: str | None = None) -> list[Outcome]:
        """Send ``rows`` with ``op`` (insert, update, upsert, delete); one Outcome per row, in order."""
        chunks = [list(rows[i : i + MAX_RECORDS]) for i in range(0, len(rows), MAX_RECORDS)]
        if len(chunks) <= 1:
            results = [self._send(op, sobject, chunk, ext_field) for chunk in chunks]
        else:
            with ThreadPoolExecutor(max_workers=self._concurrency, thread_name_prefix="collections") as pool:
                results = list(pool.map(lambda chunk: self._send(op, sobject, chunk, ext_field), chunks))
        return [outcome for chunk_outcomes in results for outcome in chunk_outcomes]

    def _send(self, op: str, sobject: str, rows: list[dict], ext_field: str | None) -> list[Outcome]:
        try:
            answer = self._request(op, sobject, rows, ext_field)
        except OutcomeUnknown as exc:
            # Only inserts are sent non-idempotently; re-sending could create the records twice, so the rows are
            # rejected with a reason that tells the user to check before loading them again.
            logger.warning("Collections %s of %d row(s) has an unknown outcome: %s", op, len(rows), exc)
            return [
                Outcome.failed(
                    OUTCOME_UNKNOWN,
                    "The connection dropped after the request was sent; the record "
                    "may or may not have been created. Check Salesforce before re-sending it.",
                )
                for _ in rows
            ]
        return [_outcome(result) for result in answer]

    def _request(self, op: str, sobject: str, rows: list[dict], ext_field: str | None) -> list[dict]:
        if op == "delete":
            ids = ",".join(row["Id"] for row in rows)
            return self._client.json("DELETE", "composite/sobjects", params={"ids": ids, "allOrNone": "false"})
        records = [to_sobject(sobject, row) for row in rows]
        body = {"allOrNone": False, "records": records}
        if op == "insert":
            return self._client.json("POST", "composite/sobjects", json=body, idempotent=False)
        if op == "update":
            return self._client.json("PATCH", "composite/sobjects", json=body)
        if op == "upsert":
            return self._client.json("PATCH", f"composite/sobjects/{sobject}/{ext_field}", json=body)
        raise ValueError(f"unsupported Collections operation {op!r}")
