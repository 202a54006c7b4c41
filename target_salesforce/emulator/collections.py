"""sObject Collections (``/composite/sobjects``): create, update, upsert, delete and retrieve up to 200 records
in one call (reference §3).

The answer to a well-formed request is always 200 with one SaveResult per record, in request order, whose
errors say ``statusCode`` (REST single-record errors say ``errorCode``). Only a request that is malformed as a
whole (not JSON, no ``records`` list, more than 200 records, a record without a known type) is a 400 array.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import groupby
from typing import Any

from target_salesforce.emulator.faults import Faults
from target_salesforce.emulator.ids import normalize_id
from target_salesforce.emulator.rest import NOT_FOUND, require_method
from target_salesforce.emulator.schema import ObjectDef
from target_salesforce.emulator.store import Store
from target_salesforce.emulator.wire import ApiError, Request, Response, json_response

MAX_RECORDS = 200
TOO_MANY = ApiError(
    400, "EXCEEDED_ID_LIMIT", f"record limit reached. cannot submit more than {MAX_RECORDS} records into this call"
)
ROLLED_BACK = {
    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "message": "Record rolled back because not all records were valid and the request was using AllOrNone header",
    "fields": [],
}


def _failure(status_code: str, message: str) -> dict[str, Any]:
    return {"id": None, "success": False, "errors": [{"statusCode": status_code, "message": message, "fields": []}]}


class Collections:
    def __init__(self, store: Store, faults: Faults) -> None:
        self.store = store
        self.faults = faults

    def handle(self, req: Request, version: str, path: str) -> Response:
        """``path`` is what follows ``composite/sobjects``: "", "/{Obj}" or "/{Obj}/{ExtField}"."""
        parts = [p for p in path.split("/") if p]
        if not parts:
            require_method(req, "POST", "PATCH", "DELETE")
            if req.method == "DELETE":
                return self._delete(req)
            return self._save(req, "insert" if req.method == "POST" else "update")
        obj = self.store.schema.get(parts[0])
        if obj is None:
            raise NOT_FOUND
        if len(parts) == 1:
            require_method(req, "GET")
            return self._retrieve(req, version, obj)
        if len(parts) == 2:
            require_method(req, "PATCH")
            return self._upsert(req, obj, parts[1])
        raise NOT_FOUND

    # --- request parsing -----------------------------------------------------------------------------

    @staticmethod
    def _records(req: Request) -> tuple[list[dict[str, Any]], bool]:
        body = req.json()
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise ApiError(400, "JSON_PARSER_ERROR", 'The request body must be {"records": [ {record}, ... ]}')
        all_or_none = body.get("allOrNone", False)
        if not isinstance(all_or_none, bool):
            raise ApiError(400, "JSON_PARSER_ERROR", "allOrNone must be true or false")
        if len(records) > MAX_RECORDS:
            raise TOO_MANY
        return records, all_or_none

    def _typed(self, record: dict[str, Any]) -> ObjectDef:
        attributes = record.get("attributes")
        type_name = attributes.get("type") if isinstance(attributes, dict) else None
        if not isinstance(type_name, str) or not type_name:
            raise ApiError(400, "INVALID_TYPE", "Must send a concrete entity type.")
        obj = self.store.schema.get(type_name)
        if obj is None:
            raise ApiError(400, "INVALID_TYPE", f"sObject type '{type_name}' is not supported.")
        return obj

    # --- writes --------------------------------------------------------------------------------------

    def _save(self, req: Request, op: str) -> Response:
        """Create (POST) or update (PATCH): records may mix types, processed in chunks of consecutive same type."""
        records, all_or_none = self._records(req)
        typed = [(self._typed(r), _fields(r)) for r in records]
        jobs = [
            (op, obj, [typed[i][1] for i in positions], None, positions)
            for obj, positions in (
                (o, [i for i, _ in group]) for o, group in groupby(enumerate(typed), key=lambda pair: pair[1][0])
            )
        ]
        return self._run(jobs, [None] * len(typed), all_or_none)

    def _upsert(self, req: Request, obj: ObjectDef, field_name: str) -> Response:
        """One object; the store refuses an unknown (404) or unusable (400) match field for the whole request."""
        records, all_or_none = self._records(req)
        for record in records:
            if self._typed(record) is not obj:
                raise ApiError(400, "INVALID_TYPE", f"All records must be of type {obj.name} in an upsert call")
        rows = [_fields(r) for r in records]
        jobs = [("upsert", obj, rows, field_name, list(range(len(rows))))]
        return self._run(jobs, [None] * len(rows), all_or_none, keep_created=True)

    def _delete(self, req: Request) -> Response:
        ids = [i for i in (req.param("ids") or "").split(",") if i]
        if not ids:
            raise ApiError(400, "MISSING_ARGUMENT", "ids parameter is required")
        if len(ids) > MAX_RECORDS:
            raise TOO_MANY
        all_or_none = (req.param("allOrNone") or "false").lower() == "true"
        results: list[dict[str, Any] | None] = [None] * len(ids)
        targets: list[tuple[ObjectDef, int, str]] = []
        for i, raw in enumerate(ids):
            record_id = normalize_id(raw)
            obj = self.store.schema.by_prefix(record_id[:3]) if record_id else None
            if record_id is None or obj is None:
                results[i] = _failure("MALFORMED_ID", f"malformed id {raw}")
            else:
                targets.append((obj, i, record_id))
        # Deletes of different objects run as one store batch per object, results kept in request order.
        targets.sort(key=lambda t: (t[0].name, t[1]))
        jobs = [
            ("delete", obj, [{"Id": rid} for _, _, rid in group], None, [i for _, i, _ in group])
            for obj, group in ((o, list(g)) for o, g in groupby(targets, key=lambda t: t[0]))
        ]
        return self._run(jobs, results, all_or_none)

    def _run(
        self,
        jobs: list[tuple[str, ObjectDef, list[dict[str, Any]], str | None, list[int]]],
        results: list[dict[str, Any] | None],
        all_or_none: bool,
        *,
        keep_created: bool = False,
    ) -> Response:
        """Write each (op, object, rows, ext_field, positions) batch and place its SaveResults by position.

        The whole request is one store transaction (``Store.atomic``). With allOrNone, a failing batch (or a
        whole-request error) undoes every batch of the request, creates, updates and deletes of other objects
        alike: the failing records keep their errors and every other record is rolled back.
        """
        if all_or_none and any(r is not None for r in results):
            jobs = []
        with self.store.atomic() as roll_back:
            for op, obj, rows, ext_field, positions in jobs:
                saved = self.store.write(
                    op, obj.name, rows, ext_field=ext_field, all_or_none=all_or_none, lock_row=self.faults.lock_row
                )
                for position, result in zip(positions, saved, strict=True):
                    results[position] = result
                if all_or_none and not all(r["success"] for r in saved):
                    roll_back()
                    _mark_rolled_back(results)
                    break
        final = [_shaped(r, keep_created) for r in _filled(results)]
        return json_response(200, final, records=len(final))

    # --- retrieve ------------------------------------------------------------------------------------

    def _retrieve(self, req: Request, version: str, obj: ObjectDef) -> Response:
        """``GET /composite/sobjects/{Obj}?ids=..&fields=..``: records in id order, null for ids not found."""
        ids = [i for i in (req.param("ids") or "").split(",") if i]
        names = [n.strip() for n in (req.param("fields") or "").split(",") if n.strip()]
        if not ids or not names:
            raise ApiError(400, "MISSING_ARGUMENT", "ids and fields parameters are required")
        if len(ids) > MAX_RECORDS:
            raise TOO_MANY
        fields = []
        for name in names:
            field = obj.field(name)
            if field is None:
                raise ApiError(400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {obj.name}")
            fields.append(field.name)
        out: list[dict[str, Any] | None] = []
        for raw in ids:
            record_id = normalize_id(raw)
            record = self.store.get(obj.name, record_id, fields) if record_id else None
            if record is None:
                out.append(None)
                continue
            url = f"/services/data/v{version}/sobjects/{obj.name}/{record_id}"
            shaped = {"attributes": {"type": obj.name, "url": url}}
            shaped.update((k, v) for k, v in record.items() if k != "attributes")
            out.append(shaped)
        return json_response(200, out, records=sum(r is not None for r in out))


def _fields(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "attributes"}


def _mark_rolled_back(results: list[dict[str, Any] | None]) -> None:
    """Records saved by earlier batches are undone: an existing record keeps its id, a created one has none."""
    for position, result in enumerate(results):
        if result is not None and result["success"]:
            rid = None if result.get("created") else result["id"]
            results[position] = {"id": rid, "success": False, "errors": [dict(ROLLED_BACK)]}


def _filled(results: list[dict[str, Any] | None]) -> Iterator[dict[str, Any]]:
    """Every position has a result by now, except records skipped because allOrNone stopped the request."""
    for result in results:
        yield result if result is not None else {"id": None, "success": False, "errors": [dict(ROLLED_BACK)]}


def _shaped(result: dict[str, Any], keep_created: bool) -> dict[str, Any]:
    """Salesforce's SaveResult: ``created`` only for upserts (its documented create/update/delete results have none)."""
    out: dict[str, Any] = {"id": result.get("id"), "success": result["success"], "errors": result["errors"]}
    if keep_created:
        out["created"] = bool(result.get("created")) and result["success"]
    return out
