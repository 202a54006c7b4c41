"""A record on its way through a batch, and the in-memory row source the writers read it back from.

A row holds its source record as JSON bytes, for the few that a reject or the results output needs back; numbers
keep their digits (Decimal in, JSON number out, Decimal back). The bytes are a JSON object whose ``record`` key holds
the record: the Singer message as the tap wrote it, when the record reached the sink unchanged (so it is not encoded
again), else ``{"record": ...}`` made for it. Writers name a row by ``ref`` and ask its source for it again only when
an outcome needs the record, so a Bulk job never keeps its rows in memory.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any, Protocol

import msgspec

from target_salesforce.jsonl import ENCODER


class _Message(msgspec.Struct):
    """What a row's source bytes are read as: any JSON object with a ``record``, other keys skipped."""

    record: dict[str, Any]


_SOURCE_DECODER = msgspec.json.Decoder(_Message, float_hook=Decimal)


def decode_source(source: bytes | msgspec.Raw) -> dict[str, Any]:
    """The record a row's source bytes hold."""
    return _SOURCE_DECODER.decode(source).record


def encode_source(record: dict[str, Any], buffer: bytearray) -> None:
    """Append the source bytes of a record that has no message line to stand for it."""
    buffer += b'{"record":'
    ENCODER.encode_into(record, buffer, -1)
    buffer += b"}"


class Row(msgspec.Struct, gc=False):
    """A record on its way: the source record (for the reject file) and the values to send.

    ``delete`` marks a record that deletes its Salesforce record; ``merged`` holds the source records (JSON) of the
    earlier records of the batch it replaced (same match value), which share its outcome in the results output.
    ``ref`` names the row in the source it came from (``RowSource.row``).

    A msgspec Struct, not a dataclass: one is made for every row of every batch, and a Struct is made in C, in
    about half the time; ``gc=False`` because a row refers to no object that refers back to it (no cycle), so the
    cyclic garbage collector need not track the rows.
    """

    source: bytes | msgspec.Raw
    values: dict[str, Any]
    delete: bool = False
    merged: Sequence[bytes | msgspec.Raw] = ()
    ref: int = -1

    @property
    def record(self) -> dict:
        """The source record, decoded anew on each use: only rejected or reported rows ever ask."""
        return decode_source(self.source)

    @property
    def records(self) -> list[dict]:
        """The merged records, oldest first, then this row's own: all share this row's outcome."""
        return [*map(decode_source, self.merged), self.record]


class RowSource(Protocol):
    """Rows to write: read in order once, then looked up again by ``ref`` for the outcomes that need the record."""

    def __iter__(self) -> Iterator[Row]: ...

    def row(self, ref: int) -> Row: ...


class MemoryRows:
    """Rows already in memory (those deferred for a parent record), numbered by their position."""

    def __init__(self, rows: list[Row]) -> None:
        self._rows = rows
        for ref, row in enumerate(rows):
            row.ref = ref

    def __iter__(self) -> Iterator[Row]:
        return iter(self._rows)

    def row(self, ref: int) -> Row:
        return self._rows[ref]
