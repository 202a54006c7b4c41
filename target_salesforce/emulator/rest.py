"""The REST API resources under ``/services/data/vXX.X/``: versions, describeGlobal, describe, sObject CRUD and
upsert by external id, ``/query`` and ``/queryAll`` with server-side cursors, and ``/limits``.

Single-record writes go through the same ``Store.write`` batches as Collections and Bulk, so validation and
error codes are identical everywhere; this module only translates a SaveResult into REST's status codes and
error array (``errorCode`` here, where Collections say ``statusCode``).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_plus

from target_salesforce.emulator import soql
from target_salesforce.emulator.faults import Faults
from target_salesforce.emulator.ids import key_prefix, new_id, normalize_id
from target_salesforce.emulator.schema import ObjectDef
from target_salesforce.emulator.store import Store
from target_salesforce.emulator.wire import ApiError, Request, Response, json_response

MIN_VERSION = 46.0
# The newest version the version list names (Winter '26); any version from MIN_VERSION up is served.
LATEST_VERSION = 65
PAGE_SIZE = 2000
# Query cursors kept for queryMore; the oldest is forgotten first (Salesforce also expires idle cursors).
MAX_CURSORS = 200

NOT_FOUND = ApiError(404, "NOT_FOUND", "The requested resource does not exist")
# Errors of a single-record write that REST answers with 404 rather than 400.
_NOT_FOUND_CODES = frozenset({"NOT_FOUND", "ENTITY_IS_DELETED"})
_LOCATOR = re.compile(r"(01g[0-9A-Za-z]{12}(?:[0-9A-Za-z]{3})?)-(\d+)\Z")


def require_method(req: Request, *allowed: str) -> None:
    if req.method not in allowed:
        raise ApiError(
            405, "METHOD_NOT_ALLOWED", f"HTTP Method '{req.method}' not allowed. Allowed are {','.join(allowed)}"
        )


def versions() -> Response:
    """``GET /services/data/``: every version from 46.0 (Summer '19) to the latest, three releases a year."""
    seasons = ("Summer", "Winter", "Spring")
    out = []
    for number in range(int(MIN_VERSION), LATEST_VERSION + 1):
        i = number - int(MIN_VERSION)
        label = f"{seasons[i % 3]} '{19 + (i + 2) // 3}"
        out.append({"label": label, "url": f"/services/data/v{number}.0", "version": f"{number}.0"})
    return json_response(200, out)


def write_error(result: dict[str, Any]) -> ApiError:
    """A failed SaveResult as REST's single-record error: the first error, ``statusCode`` renamed ``errorCode``."""
    first = result["errors"][0]
    status = 404 if first["statusCode"] in _NOT_FOUND_CODES else 400
    return ApiError(status, first["statusCode"], first["message"], list(first.get("fields") or []))


def record_url(version: str, obj: str, record_id: str) -> str:
    return f"/services/data/v{version}/sobjects/{obj}/{record_id}"


class RestApi:
    """Routes everything under a version that is neither Collections nor Bulk."""

    def __init__(self, store: Store, faults: Faults, *, api_usage: Callable[[], tuple[int, int]]) -> None:
        self.store = store
        self.faults = faults
        self._api_usage = api_usage
        self._cursors: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self._cursor_lock = threading.Lock()

    def reset(self) -> None:
        with self._cursor_lock:
            self._cursors.clear()

    def handle(self, req: Request, version: str, path: str) -> Response:
        segments = [unquote_plus(s) for s in path.split("/")]
        if segments[-1] == "":
            segments.pop()
        if not segments:
            require_method(req, "GET")
            return self._resources(version)
        head, rest = segments[0], segments[1:]
        if head == "sobjects":
            return self._sobjects(req, version, rest)
        if head in ("query", "queryAll"):
            require_method(req, "GET")
            if rest:
                return self._next_page(version, rest)
            return self._query(req, version, include_deleted=head == "queryAll")
        if head == "limits" and not rest:
            require_method(req, "GET")
            return self._limits()
        raise NOT_FOUND

    def _resources(self, version: str) -> Response:
        base = f"/services/data/v{version}"
        names = ("sobjects", "query", "queryAll", "limits", "composite")
        return json_response(200, {name: f"{base}/{name}" for name in names})

    # --- sObjects ------------------------------------------------------------------------------------

    def _object(self, name: str) -> ObjectDef:
        obj = self.store.schema.get(name)
        if obj is None:
            raise NOT_FOUND
        return obj

    def _sobjects(self, req: Request, version: str, parts: list[str]) -> Response:
        if not parts:
            require_method(req, "GET")
            entries = [obj.global_entry(version) for obj in self.store.schema]
            return json_response(200, {"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": entries})
        obj = self._object(parts[0])
        if len(parts) == 1:
            require_method(req, "GET", "POST")
            if req.method == "GET":
                return json_response(200, {"objectDescribe": obj.global_entry(version), "recentItems": []})
            return self._create(req, obj)
        if len(parts) == 2 and parts[1].lower() == "describe":
            require_method(req, "GET")
            return json_response(200, obj.describe(version, self.store.schema.children(obj)))
        if len(parts) == 2:
            require_method(req, "GET", "PATCH", "DELETE")
            record_id = self._record_id(obj, parts[1])
            return self._by_id(req, version, obj, record_id)
        if len(parts) == 3:
            require_method(req, "GET", "PATCH", "DELETE")
            return self._by_external_id(req, version, obj, parts[1], parts[2])
        raise NOT_FOUND

    @staticmethod
    def _record_id(obj: ObjectDef, raw: str) -> str:
        record_id = normalize_id(raw)
        if record_id is None or key_prefix(record_id) != obj.key_prefix:
            # Salesforce reads a segment that is not an id of this object as an external-id field name.
            raise ApiError(404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {raw}")
        return record_id

    def _write(self, op: str, obj: ObjectDef, row: dict[str, Any], ext_field: str | None = None) -> dict[str, Any]:
        result = self.store.write(op, obj.name, [row], ext_field=ext_field, lock_row=self.faults.lock_row)[0]
        if result["success"]:
            return result
        error = write_error(result)
        # INVALID_CROSS_REFERENCE_KEY for an Id that names no record is, in REST, a missing resource.
        # (A deleted record is ENTITY_IS_DELETED, and a bad lookup on a live record stays a 400.)
        missing = error.error_code == "INVALID_CROSS_REFERENCE_KEY" and op != "insert" and "Id" in row
        if missing and not self.store.find_ids(obj.name, "Id", row["Id"]):
            raise NOT_FOUND
        raise error

    def _create(self, req: Request, obj: ObjectDef) -> Response:
        row = _body_record(req)
        result = self._write("insert", obj, row)
        return json_response(201, {"id": result["id"], "success": True, "errors": []}, records=1)

    def _by_id(self, req: Request, version: str, obj: ObjectDef, record_id: str) -> Response:
        if req.method == "GET":
            return self._read(req, version, obj, record_id)
        if req.method == "PATCH":
            row = _body_record(req)
            row["Id"] = record_id
            self._write("update", obj, row)
        else:
            self._write("delete", obj, {"Id": record_id})
        return Response(204, b"", None, records=1)

    def _read(self, req: Request, version: str, obj: ObjectDef, record_id: str) -> Response:
        fields = None
        if req.param("fields"):
            fields = []
            for name in (n.strip() for n in (req.param("fields") or "").split(",")):
                field = obj.field(name)
                if field is None:
                    raise ApiError(400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {obj.name}")
                fields.append(field.name)
        record = self.store.get(obj.name, record_id, fields)
        if record is None:
            raise NOT_FOUND
        body = {"attributes": {"type": obj.name, "url": record_url(version, obj.name, record_id)}}
        body.update((k, v) for k, v in record.items() if k != "attributes")
        return json_response(200, body, records=1)

    def _by_external_id(self, req: Request, version: str, obj: ObjectDef, field_name: str, value: str) -> Response:
        # find_ids raises Salesforce's answers for an unknown (404 NOT_FOUND) or unusable (400) match field.
        matches = self.store.find_ids(obj.name, field_name, value)
        if len(matches) > 1:
            urls = [record_url(version, obj.name, record_id) for record_id in matches]
            return json_response(300, urls)
        if req.method == "PATCH":
            return self._upsert(req, obj, field_name, value)
        if not matches:
            raise NOT_FOUND
        return self._by_id(req, version, obj, matches[0])

    def _upsert(self, req: Request, obj: ObjectDef, ext_field: str, value: str) -> Response:
        row = {k: v for k, v in _body_record(req).items() if k.lower() != ext_field.lower()}
        # The URL names the record; the same field in the body is dropped rather than allowed to disagree.
        row[ext_field] = value
        result = self._write("upsert", obj, row, ext_field=ext_field)
        created = bool(result.get("created"))
        body = {"id": result["id"], "success": True, "errors": [], "created": created}
        return json_response(201 if created else 200, body, records=1)

    # --- SOQL ----------------------------------------------------------------------------------------

    def _query(self, req: Request, version: str, *, include_deleted: bool) -> Response:
        text = req.param("q")
        if not text:
            raise ApiError(400, "MALFORMED_QUERY", "A query string has to be specified")
        records, total = soql.run_query(self.store, text, include_deleted=include_deleted, version=version)
        if len(records) <= PAGE_SIZE:
            return json_response(200, {"totalSize": total, "done": True, "records": records}, records=len(records))
        locator = new_id("01g")
        with self._cursor_lock:
            self._cursors[locator] = records
            while len(self._cursors) > MAX_CURSORS:
                self._cursors.popitem(last=False)
        return self._page(version, locator, records, 0)

    def _next_page(self, version: str, parts: list[str]) -> Response:
        match = _LOCATOR.match(parts[0]) if len(parts) == 1 else None
        with self._cursor_lock:
            records = self._cursors.get(match.group(1)) if match else None
            if match and records is not None:
                self._cursors.move_to_end(match.group(1))
        if match is None or records is None or int(match.group(2)) >= len(records):
            raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._page(version, match.group(1), records, int(match.group(2)))

    @staticmethod
    def _page(version: str, locator: str, records: list[dict[str, Any]], offset: int) -> Response:
        page = records[offset : offset + PAGE_SIZE]
        body: dict[str, Any] = {"totalSize": len(records), "done": offset + PAGE_SIZE >= len(records)}
        if not body["done"]:
            # Salesforce answers queryAll's next pages under /query/ too.
            body["nextRecordsUrl"] = f"/services/data/v{version}/query/{locator}-{offset + PAGE_SIZE}"
        body["records"] = page
        return json_response(200, body, records=len(page))

    # --- limits --------------------------------------------------------------------------------------

    def _limits(self) -> Response:
        used, limit = self._api_usage()
        # Only DailyApiRequests is metered; the others report Salesforce's standard allocations, untouched,
        # so clients that read them find the keys they expect.
        body = {
            "DailyApiRequests": {"Max": limit, "Remaining": max(limit - used, 0)},
            "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
            "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
            "DailyBulkV2QueryFileStorageMB": {"Max": 976562, "Remaining": 976562},
        }
        return json_response(200, body)


def _body_record(req: Request) -> dict[str, Any]:
    """The JSON object of a create/update/upsert body; ``attributes`` describes the record and is not a field."""
    body = req.json()
    if not isinstance(body, dict):
        raise ApiError(400, "JSON_PARSER_ERROR", "The request body must be a JSON object describing one record")
    return {k: v for k, v in body.items() if k != "attributes"}
