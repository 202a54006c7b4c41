"""Writing rows through sObject Collections: up to 200 records a request, several requests in flight.

Collections answers per record, in request order, so each row's outcome is known without any extra call. Requests
run on a small thread pool because with real network latency a single stream of 200-record calls leaves the org idle.
Updates, upserts and deletes are re-sent by the client when an answer is lost (doing them twice changes nothing); an
insert is not, and is settled here by looking the rows up by their match field when they have one.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from target_salesforce.client import OutcomeUnknown
from target_salesforce.lookup import find_ids, match_key
from target_salesforce.outcomes import Outcome

MAX_RECORDS = 200  # Salesforce rejects larger requests with EXCEEDED_ID_LIMIT.
OUTCOME_UNKNOWN = "OUTCOME_UNKNOWN"

logger = logging.getLogger(__name__)


# Lost answers to inserts of the same rows that are checked and re-sent before the rows are rejected.
RECONCILE_ATTEMPTS = 3


class JsonClient(Protocol):
    def json(self, method: str, path: str, **kwargs: Any) -> Any: ...

    def query_all(self, soql: str) -> list[dict]: ...


@dataclass(frozen=True)
class MatchField:
    """The field whose value identifies a row's record in Salesforce, for checking inserts whose answer was lost."""

    name: str
    case_sensitive: bool = False


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


def _unknown(what: str) -> Outcome:
    return Outcome.failed(OUTCOME_UNKNOWN, f"The answer to the insert request was lost after it was sent; {what}")


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

    def write(
        self,
        op: str,
        sobject: str,
        rows: Sequence[dict],
        ext_field: str | None = None,
        *,
        match: MatchField | None = None,
    ) -> list[Outcome]:
        """Send ``rows`` with ``op`` (insert, update, upsert, delete); one Outcome per row, in order.

        ``match`` names a field that identifies an inserted row's record: an insert whose answer is lost is then
        checked through SOQL and only the rows not in Salesforce are sent again.
        """
        chunks = [list(rows[i : i + MAX_RECORDS]) for i in range(0, len(rows), MAX_RECORDS)]
        if len(chunks) <= 1:
            results = [self._send(op, sobject, chunk, ext_field, match) for chunk in chunks]
        else:
            with ThreadPoolExecutor(max_workers=self._concurrency, thread_name_prefix="collections") as pool:
                results = list(pool.map(lambda chunk: self._send(op, sobject, chunk, ext_field, match), chunks))
        return [outcome for chunk_outcomes in results for outcome in chunk_outcomes]

    def _send(
        self, op: str, sobject: str, rows: list[dict], ext_field: str | None, match: MatchField | None
    ) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(rows)
        pending = list(range(len(rows)))
        for _ in range(RECONCILE_ATTEMPTS):
            try:
                answer = self._request(op, sobject, [rows[i] for i in pending], ext_field)
            except OutcomeUnknown as exc:
                # Only inserts are sent non-idempotently: re-sending blindly could create the records twice.
                logger.warning("Collections %s of %d row(s) has an unknown outcome: %s", op, len(pending), exc)
                pending = self._reconcile(sobject, rows, pending, outcomes, match)
                if not pending:
                    break
                continue
            for index, result in zip(pending, answer, strict=True):
                outcomes[index] = _outcome(result)
            return outcomes  # type: ignore[return-value]
        for index in pending:
            # Checked absent after the last lost answer: safe to send again, in a later run.
            outcomes[index] = _unknown(
                f"the record was looked up and not found, but {RECONCILE_ATTEMPTS} answers in a row were lost, so it "
                "was not sent again. Send it again."
            )
        return outcomes  # type: ignore[return-value]

    def _reconcile(
        self,
        sobject: str,
        rows: list[dict],
        pending: list[int],
        outcomes: list[Outcome | None],
        match: MatchField | None,
    ) -> list[int]:
        """Settle the rows of an insert whose answer was lost; the indexes of the rows to send again.

        A row whose match value one record holds now was created by the lost request; a row whose value no record
        holds was not, and is safe to send again. Without a match value (or when several rows or records share
        it) nothing tells, so the row is rejected as OUTCOME_UNKNOWN.
        """
        if match is None:
            for index in pending:
                outcomes[index] = _unknown(
                    "the record may or may not have been created, and with no match_field it cannot be looked up. "
                    "Check Salesforce before sending it again."
                )
            return []
        keys = {i: match_key(rows[i][match.name], match.case_sensitive) for i in pending if rows[i].get(match.name)}
        shared = {key for key, n in Counter(keys.values()).items() if n > 1}
        found = find_ids(
            self._client, sobject, match.name, (rows[i][match.name] for i in keys), case_sensitive=match.case_sensitive
        )
        resend = []
        created = 0
        for index in pending:
            key = keys.get(index)
            ids = found.get(key, []) if key is not None else []
            if key is None or key in shared or len(ids) > 1:
                outcomes[index] = _unknown(
                    f"its {match.name} value does not identify one record, so whether the record was created cannot "
                    "be checked. Check Salesforce before sending it again."
                )
            elif ids:
                outcomes[index] = Outcome(True, id=ids[0], created=True)
                created += 1
            else:
                resend.append(index)
        logger.info(
            "Lost insert answer checked by %s: %d row(s) were created, %d go again", match.name, created, len(resend)
        )
        return resend

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
