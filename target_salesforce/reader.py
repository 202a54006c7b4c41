"""A Singer message reader that names the input line of every malformed message.

singer-sdk's reader logs the whole line with a traceback and raises a generic error. This one counts lines, skips
blank ones, parses each line's bytes with msgspec (the standard library only re-reads a line msgspec refuses) and
raises errors whose one-line message starts with ``line N:``. The errors keep
singer-sdk's types (``InvalidInputLine``, ``RecordsWithoutSchemaException``) and are also ``TargetError``s, so the
CLI prints them on one line.
"""

from __future__ import annotations

import json
import sys
import typing as t
from collections import Counter
from decimal import Decimal

import msgspec
from singer_sdk.exceptions import RecordsWithoutSchemaException
from singer_sdk.singerlib.encoding import SimpleSingerReader
from singer_sdk.singerlib.exceptions import InvalidInputLine
from singer_sdk.singerlib.json import deserialize_json

from target_salesforce.errors import TargetError

# Decimals for JSON fractions, as singer-sdk's own reader gives: a float would round values like 0.1 before the
# converters apply the field's scale. msgspec parses several times faster than the standard library.
_DECODER = msgspec.json.Decoder(float_hook=Decimal)

REQUIRED_KEYS = {
    "RECORD": ("stream", "record"),
    "SCHEMA": ("stream", "schema"),
    "STATE": ("value",),
    "ACTIVATE_VERSION": ("stream", "version"),
    "BATCH": ("stream",),
}


class BadInputLine(TargetError, InvalidInputLine):
    """A line of the input is not a valid Singer message."""


class RecordBeforeSchema(TargetError, RecordsWithoutSchemaException):
    """A RECORD arrived for a stream that has had no SCHEMA."""


def _too_deep(number: int) -> BadInputLine:
    return BadInputLine(f"line {number}: values are nested too deeply to read: flatten the record in the tap")


class LineCountingReader(SimpleSingerReader):
    """Reads Singer messages, naming the line number in every input error.

    ``line`` is the message being handled as read (bytes msgspec parsed; None otherwise): a sink keeps it as the
    record's source instead of encoding the record again.
    """

    line: bytes | None = None

    def process_lines(
        self,
        file_input: t.IO[t.Any] | None,
        callbacks: dict[str, t.Callable[[dict], None]],
    ) -> Counter[str]:
        stats: Counter[str] = Counter()
        filein = file_input if file_input is not None else sys.stdin.buffer
        decode = _DECODER.decode
        for number, raw in enumerate(filein, start=1):
            try:
                message = decode(raw)
                self.line = raw if raw.__class__ is bytes else None
            except (msgspec.DecodeError, UnicodeDecodeError):
                if not raw.strip():
                    continue  # a blank line, which msgspec refuses: only then is the line stripped
                message = self._parse_slowly(raw, number)
                self.line = None
            except RecursionError:
                raise _too_deep(number) from None
            if (
                message.__class__ is dict
                and message.get("type") == "RECORD"
                and message.get("stream").__class__ is str
                and message.get("record").__class__ is dict
            ):
                record_type = "RECORD"  # the usual RECORD, well-formed: what _check would find, in four look-ups
            else:
                message = self._check(message, number)
                record_type = message["type"]
            callback = callbacks.get(record_type)
            if callback is None:
                raise BadInputLine(
                    f"line {number}: unknown Singer message type {record_type!r}: "
                    f"expected one of {', '.join(sorted(callbacks))}"
                )
            try:
                callback(message)
            except RecordBeforeSchema:
                raise
            except RecordsWithoutSchemaException:
                raise RecordBeforeSchema(
                    f"line {number}: RECORD for stream {message.get('stream')!r} arrived before any SCHEMA "
                    "for that stream: the tap must send the stream's SCHEMA message first"
                ) from None
            stats[record_type] += 1
        return stats

    @staticmethod
    def _decode(raw: str | bytes, number: int) -> str:
        if isinstance(raw, str):
            return raw
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadInputLine(
                f"line {number}: not valid UTF-8 (byte {exc.start + 1}): the tap must write UTF-8 JSON"
            ) from None

    @classmethod
    def _parse_slowly(cls, raw: str | bytes, number: int) -> t.Any:
        """The standard library's reading of a line msgspec refused: it accepts a little more (NaN, Infinity), and
        where it too fails its error says what is wrong and where in terms a user can find in the line."""
        try:
            return deserialize_json(cls._decode(raw, number))
        except RecursionError:
            raise _too_deep(number) from None
        except json.JSONDecodeError as exc:
            raise BadInputLine(
                f"line {number}: not valid JSON ({exc.msg} at column {exc.colno}): fix the tap output"
            ) from None

    @staticmethod
    def _check(message: t.Any, number: int) -> dict[str, t.Any]:
        if not isinstance(message, dict):
            raise BadInputLine(
                f"line {number}: a Singer message must be a JSON object, got {type(message).__name__}: "
                "fix the tap output"
            )
        if "type" not in message:
            raise BadInputLine(f"line {number}: message has no 'type' key: fix the tap output")
        record_type = message["type"]
        if not isinstance(record_type, str):
            raise BadInputLine(f"line {number}: message 'type' must be a string, got {record_type!r}")
        missing = [key for key in REQUIRED_KEYS.get(record_type, ()) if key not in message]
        if missing:
            raise BadInputLine(
                f"line {number}: {record_type} message is missing the {', '.join(repr(k) for k in missing)} "
                "key(s): fix the tap output"
            )
        if "stream" in message and not isinstance(message["stream"], str):
            raise BadInputLine(
                f"line {number}: 'stream' must be a string, got {message['stream']!r}: fix the tap output"
            )
        if record_type == "RECORD" and not isinstance(message["record"], dict):
            raise BadInputLine(
                f"line {number}: RECORD's 'record' must be a JSON object of fields, got "
                f"{type(message['record']).__name__}: fix the tap output"
            )
        if record_type == "SCHEMA":
            schema = message["schema"]
            if not isinstance(schema, dict) or "properties" not in schema:
                raise BadInputLine(
                    f"line {number}: SCHEMA for stream {message['stream']!r} is missing required properties key "
                    "'properties': the schema must be a JSON Schema object listing the stream's fields"
                )
        return message
