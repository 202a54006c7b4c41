"""The Composite resource (``POST /services/data/vXX.X/composite``): up to 25 subrequests in one API call.

Each subrequest goes through the emulator's own handlers (the server's routing), so a describe, a query or a
Collections write inside a composite answers exactly as it would alone. The whole request counts as one API call
and is one entry of the call log (the server does that; this module never counts). Sources and inferred details are
listed in docs/emulator-design.md ("Composite").

- Subrequests run in request order (``collateSubrequests`` only lets Salesforce reorder unrelated ones).
- ``@{referenceId.field}`` / ``@{referenceId.list[0].field}`` in a later subrequest's url or body is replaced by
  that value of an earlier successful answer; a reference that finds no value fails its subrequest with 400
  ``PROCESSING_HALTED`` ("Invalid reference specified. ...") without running it.
- ``allOrNone: true``: the first failing subrequest (an HTTP status of 400 or more, or a Collections subrequest with
  a failed record) undoes every write of the request; it keeps its own answer and every other subrequest answers
  400 ``PROCESSING_HALTED``. Collections subrequests then run all-or-none whatever their own ``allOrNone`` says.
- Limits: more than 25 subrequests, or more than 5 query operations, answers one LIMIT_EXCEEDED result and runs
  nothing. A malformed body is a 400 error array, also before anything runs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlsplit

from target_salesforce.emulator.rest import MIN_VERSION, NOT_FOUND, require_method
from target_salesforce.emulator.store import Store
from target_salesforce.emulator.wire import JSON_TYPE, ApiError, Request, Response, encode_json, json_response

MAX_SUBREQUESTS = 25
MAX_QUERIES = 5
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# Subrequests inherit these from the top-level request; naming one in httpHeaders fails the whole request.
INHERITED_HEADERS = frozenset({"accept", "authorization", "content-type"})
APOSTROPHE = "\u2019"  # RIGHT SINGLE QUOTATION MARK: Salesforce writes "can\u2019t" in its limit message
ROLLED_BACK = "The transaction was rolled back since another operation in the same transaction failed."
_REFERENCE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_]*\Z")
_REFERENCE = re.compile(r"@\{([A-Za-z0-9_]+)((?:\.[^.\[\]{}]+|\[\d+\])*)\}")
_STEP = re.compile(r"\.([^.\[\]{}]+)|\[(\d+)\]")
_SUBREQUEST_URL = re.compile(r"/services/data/v(\d+\.\d)/(.*)\Z", re.DOTALL)

# The server's routing of an authenticated, counted API call: (request, version, path after the version).
Route = Callable[[Request, str, str], Response]


class _NoValue(Exception):
    """A reference names no value of an earlier successful answer."""


@dataclass
class _Sub:
    method: str
    url: str
    reference_id: str
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class Composite:
    def __init__(self, store: Store, route: Route) -> None:
        self.store = store
        self._route = route

    def handle(self, req: Request, version: str, path: str) -> Response:
        """``path`` is what follows ``composite``: only the resource itself is served here."""
        if path.strip("/"):
            raise NOT_FOUND
        require_method(req, "POST")
        subs, all_or_none = _parse(req.json())
        queries = sum(_resource(s.url).startswith("query") for s in subs)  # query and queryAll
        if len(subs) > MAX_SUBREQUESTS:
            return _limit_exceeded(f"The request can{APOSTROPHE}t contain more than {MAX_SUBREQUESTS} operations.")
        if queries > MAX_QUERIES:
            return _limit_exceeded(f"The request can{APOSTROPHE}t contain more than {MAX_QUERIES} query operations.")
        with self.store.atomic() as roll_back:
            results, log = self._run(req, subs, all_or_none, roll_back)
        resp = json_response(200, {"compositeResponse": results}, records=sum(entry["records"] for entry in log))
        resp.subrequests = [{k: v for k, v in entry.items() if k != "records"} for entry in log]
        return resp

    def _run(
        self, req: Request, subs: list[_Sub], all_or_none: bool, roll_back: Callable[[], None]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Every subrequest's result in request order, and what each one did for the call log."""
        answers: dict[str, Any] = {}  # referenceId → body of a successful answer
        results: list[dict[str, Any]] = []
        log: list[dict[str, Any]] = []
        halted = False
        for sub in subs:
            if halted:
                results.append(_halted(sub.reference_id, ROLLED_BACK))
                continue
            try:
                url = _substitute(sub.url, answers, in_url=True)
                body = _substitute(sub.body, answers, in_url=False)
            except _NoValue as exc:
                result, failed = _halted(sub.reference_id, str(exc)), True
            else:
                resp, path = self._dispatch(req, sub, url, body, all_or_none)
                log.append({"method": sub.method, "path": path, "status": resp.status, "records": resp.records})
                result = _result(sub.reference_id, resp)
                failed = resp.status >= 400 or (all_or_none and _record_failed(path, result["body"]))
                if not failed:
                    answers[sub.reference_id] = result["body"]
            results.append(result)
            if failed and all_or_none:
                roll_back()
                halted = True
                results = [r if r is result else _halted(r["referenceId"], ROLLED_BACK) for r in results]
        return results, log

    def _dispatch(self, req: Request, sub: _Sub, url: str, body: Any, all_or_none: bool) -> tuple[Response, str]:
        """Run one subrequest through the server's routing; an error is its answer, as it would be alone."""
        parts = urlsplit(url)
        query = parse_qs(parts.query, keep_blank_values=True)
        match = _SUBREQUEST_URL.match(parts.path)
        path = match.group(2) if match else ""
        collections = path.rstrip("/") == "composite/sobjects" or path.startswith("composite/sobjects/")
        if all_or_none and collections:
            # The composite's allOrNone overrides each Collections subrequest's own.
            if sub.method == "DELETE":
                query["allOrNone"] = ["true"]
            elif isinstance(body, dict):
                body = {**body, "allOrNone": True}
        headers = {k: v for k, v in req.headers.items() if k in INHERITED_HEADERS}
        headers.update((k.lower(), v) for k, v in sub.headers.items())
        sub_req = Request(
            method=sub.method,
            path=parts.path,
            query=query,
            headers=headers,
            body=b"" if body is None else encode_json(body),
        )
        try:
            if not match or float(match.group(1)) < MIN_VERSION:
                raise NOT_FOUND
            if not (collections or _resource(url).split("/")[0] in ("sobjects", "query", "queryAll")):
                raise NOT_FOUND  # Composite serves sObject resources, query, queryAll and Collections only
            return self._route(sub_req, match.group(1), path), parts.path
        except ApiError as exc:
            return exc.response(), parts.path


# --- the request body --------------------------------------------------------------------------------------


def _parse(payload: Any) -> tuple[list[_Sub], bool]:
    """The subrequests and allOrNone; a malformed body fails the whole request before anything runs."""
    if not isinstance(payload, dict) or not isinstance(payload.get("compositeRequest"), list):
        raise _malformed("'compositeRequest' is a required field.")
    for flag in ("allOrNone", "collateSubrequests"):
        if not isinstance(payload.get(flag, False), bool):
            raise _malformed(f"'{flag}' must be true or false.")
    subs: list[_Sub] = []
    seen: set[str] = set()
    for raw in payload["compositeRequest"]:
        if not isinstance(raw, dict):
            raise _malformed("Each subrequest must be a JSON object.")
        for name in ("method", "url", "referenceId"):
            if not isinstance(raw.get(name), str) or not raw[name]:
                raise _malformed(f"'{name}' is a required field.")
        ref = raw["referenceId"]
        if not _REFERENCE_ID.match(ref):
            raise _malformed(
                f"Provided referenceId ('{ref}') must start with a letter or a number, and it can contain only "
                "letters, numbers and underscores ('_')."
            )
        if ref in seen:
            raise _malformed(f"Duplicate referenceId provided in the request: {ref}")
        seen.add(ref)
        if raw["method"] not in METHODS:
            raise _malformed(f"Invalid HTTP method: {raw['method']}")
        headers = raw.get("httpHeaders") or {}
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            raise _malformed("'httpHeaders' must map header names to strings.")
        inherited = sorted(k for k in headers if k.lower() in INHERITED_HEADERS)
        if inherited:
            raise _malformed(f"A subrequest cannot set the {', '.join(inherited)} header: it is inherited.")
        subs.append(_Sub(raw["method"], raw["url"], ref, raw.get("body"), dict(headers)))
    return subs, payload.get("allOrNone", False)


def _malformed(message: str) -> ApiError:
    return ApiError(400, "JSON_PARSER_ERROR", message)


def _resource(url: str) -> str:
    """The path after ``/services/data/vXX.X/`` (empty for any other URL)."""
    match = _SUBREQUEST_URL.match(urlsplit(url).path)
    return unquote_plus(match.group(2)) if match else ""


# --- references ----------------------------------------------------------------------------------------------


def _substitute(value: Any, answers: dict[str, Any], *, in_url: bool) -> Any:
    """``value`` with every ``@{ref.path}`` replaced; a string that is one whole reference keeps the value's type."""
    if isinstance(value, dict):
        return {k: _substitute(v, answers, in_url=in_url) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, answers, in_url=in_url) for v in value]
    if not isinstance(value, str) or "@{" not in value:
        return value
    whole = _REFERENCE.fullmatch(value)
    if whole and not in_url:
        return _resolve(whole, answers)
    return _REFERENCE.sub(lambda m: _text(_resolve(m, answers)), value)


def _resolve(match: re.Match[str], answers: dict[str, Any]) -> Any:
    ref, steps = match.group(1), match.group(2)
    missing = _NoValue(f"Invalid reference specified. No value for {ref}{steps} found in {ref}")
    if ref not in answers:
        raise missing
    value = answers[ref]
    for step in _STEP.finditer(steps):
        key, index = step.group(1), step.group(2)
        if key is not None and isinstance(value, dict) and key in value:
            value = value[key]
        elif index is not None and isinstance(value, list) and int(index) < len(value):
            value = value[int(index)]
        else:
            raise missing
    if value is None or isinstance(value, dict | list):
        raise missing  # only scalar values (strings, numbers, booleans, dates) can be referenced
    return value


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


# --- the answer ----------------------------------------------------------------------------------------------


def _result(reference_id: str, resp: Response) -> dict[str, Any]:
    body = json.loads(resp.body) if resp.body and resp.content_type == JSON_TYPE else None
    return {"body": body, "httpHeaders": dict(resp.headers), "httpStatusCode": resp.status, "referenceId": reference_id}


def _halted(reference_id: str | None, message: str) -> dict[str, Any]:
    return {
        "body": [{"errorCode": "PROCESSING_HALTED", "message": message}],
        "httpHeaders": {},
        "httpStatusCode": 400,
        "referenceId": reference_id,
    }


def _record_failed(path: str, body: Any) -> bool:
    """A Collections subrequest answers 200 even when records failed: under allOrNone that fails the composite."""
    if "/composite/sobjects" not in path or not isinstance(body, list):
        return False
    return any(isinstance(r, dict) and r.get("success") is False for r in body)


def _limit_exceeded(message: str) -> Response:
    """Too many subrequests: one result with no referenceId, and nothing runs (answer captured from an org)."""
    entry = {
        "body": [{"errorCode": "LIMIT_EXCEEDED", "message": message}],
        "httpHeaders": {},
        "httpStatusCode": 400,
        "referenceId": None,
    }
    resp = json_response(200, {"compositeResponse": [entry]})
    resp.subrequests = []
    return resp
