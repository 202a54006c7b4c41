"""A record on its way through a batch, held compactly until Salesforce has answered for it.

A batch holds each source record as JSON bytes, a quarter of a dict's memory, for the few that a reject or the
results output needs back; numbers keep their digits (Decimal in, JSON number out, Decimal back).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import msgspec

from target_salesforce.jsonl import ENCODER

_RECORD_DECODER = msgspec.json.Decoder(float_hook=Decimal)


@dataclass(slots=True)
class Row:
    """A record on its way: the source record (for the reject file) and the values to send.

    ``delete`` marks a record that deletes its Salesforce record; ``merged`` holds the earlier records of the batch
    it replaced (same match value), which share its outcome in the results output.
    """

    source: bytes
    values: dict[str, Any]
    delete: bool = False
    merged: Sequence[dict] = ()

    @classmethod
    def of(cls, record: dict, values: dict[str, Any], delete: bool = False) -> Row:
        return cls(ENCODER.encode(record), values, delete)

    @property
    def record(self) -> dict:
        """The source record, decoded anew on each use: only rejected or reported rows ever ask."""
        return _RECORD_DECODER.decode(self.source)
