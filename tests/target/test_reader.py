"""The line reader's parsing, as pure logic: msgspec first, the standard library for what msgspec refuses."""

from __future__ import annotations

import io
import math
from decimal import Decimal
from typing import Any

import pytest

from target_salesforce.reader import BadInputLine, LineCountingReader


def read(*lines: bytes) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    callbacks = {kind: seen.append for kind in ("SCHEMA", "RECORD", "STATE")}
    LineCountingReader().process_lines(io.BytesIO(b"".join(lines)), callbacks)
    return seen


def test_numbers_keep_their_digits() -> None:
    (message,) = read(
        b'{"type":"RECORD","stream":"s","record":{"a":0.1,"b":2.50,"c":123456789012345678901234567890}}\n'
    )
    assert message["record"] == {"a": Decimal("0.1"), "b": Decimal("2.50"), "c": 123456789012345678901234567890}
    assert str(message["record"]["b"]) == "2.50"


def test_lines_msgspec_refuses_but_python_reads_still_count() -> None:
    (message,) = read(b'{"type":"RECORD","stream":"s","record":{"a":NaN}}\n')
    assert math.isnan(message["record"]["a"])


def test_invalid_utf8_inside_a_string_is_named_with_its_line_and_byte() -> None:
    with pytest.raises(BadInputLine, match=r"^line 2: not valid UTF-8 \(byte 46\)"):
        read(b"\n", b'{"type":"RECORD","stream":"s","record":{"a":"\xff"}}\n')


def test_blank_lines_are_skipped_and_still_counted() -> None:
    record = b'{"type":"RECORD","stream":"s","record":{"a":1}}\n'
    assert read(b"\n", b"  \r\n", record) == [{"type": "RECORD", "stream": "s", "record": {"a": 1}}]
    with pytest.raises(BadInputLine, match=r"^line 3: RECORD's 'record' must be a JSON object"):
        read(b"\n", b"\t\n", b'{"type":"RECORD","stream":"s","record":[1]}\n')
