"""The emulator's request and response values and the API error every handler may raise.

Handlers are plain functions from a ``Request`` to a ``Response`` so that each protocol module
(OAuth, REST, Collections, Bulk, SOQL) can be read and tested without the HTTP server around it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgspec

JSON_TYPE = "application/json;charset=UTF-8"
_EXACT_JSON = msgspec.json.Encoder(decimal_format="number")
CSV_TYPE = "text/csv"


@dataclass
class Request:
    """An HTTP request as the server read it. ``headers`` keys are lower-case."""

    method: str
    path: str
    query: dict[str, list[str]] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        """The body parsed as JSON; a body that is not JSON is Salesforce's JSON_PARSER_ERROR.

        A number with a fraction or an exponent is read as a Decimal, digit for digit, not as its nearest float:
        a Salesforce number field has up to 18 digits and Salesforce takes the digits it is sent (see "Numbers" in
        docs/emulator-design.md), so the field's rounding and range check must see the digits the client wrote.
        """
        try:
            return json.loads(self.body or b"null", parse_float=Decimal)
        except ValueError as exc:
            raise ApiError(400, "JSON_PARSER_ERROR", f"Unexpected character: {exc}") from None


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str | None = JSON_TYPE
    headers: dict[str, str] = field(default_factory=dict)
    # How many records the call carried, for the emulator's call log (benchmarks count it).
    records: int = 0
    # A Composite call's subrequests ({method, path, status} each), for the call log: one call, several resources.
    subrequests: list[dict[str, Any]] | None = None


def encode_json(value: Any) -> bytes:
    """``value`` as JSON, a Decimal (see ``Request.json``) as the number of exactly its digits: how a body read by
    ``Request.json`` is passed on (Composite's subrequests) without losing any."""
    return _EXACT_JSON.encode(value)


def json_response(status: int, payload: Any, records: int = 0) -> Response:
    return Response(status, json.dumps(payload).encode("utf-8"), JSON_TYPE, records=records)


class ApiError(Exception):
    """A whole-request failure, answered as Salesforce does: a JSON array of one error."""

    def __init__(self, status: int, error_code: str, message: str, fields: list[str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message
        self.fields = fields

    def response(self) -> Response:
        body: dict[str, Any] = {"message": self.message, "errorCode": self.error_code}
        if self.fields is not None:
            body["fields"] = self.fields
        return json_response(self.status, [body])
