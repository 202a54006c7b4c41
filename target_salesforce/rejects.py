"""The reject file: one JSON line per record that Salesforce (or our own pre-flight) refused, with the reason.

One writer is shared by every sink of a run; sinks drain in parallel threads, so writes are serialised by a lock.
The file is opened on the first reject only, so a clean run leaves no empty file behind.
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

import msgspec

# Decimals stay JSON numbers (exactly as the tap sent them) and datetimes become RFC 3339 text, so a rejected record
# reads like the source record; anything else unexpected is written as its text rather than failing the reject.
_ENCODER = msgspec.json.Encoder(decimal_format="number", enc_hook=str)


class RejectWriter:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.count = 0
        self._lock = threading.Lock()
        self._file: TextIO | None = None

    def write(
        self,
        *,
        stream: str,
        sobject: str,
        sync_mode: str,
        record: Mapping[str, Any],
        error_code: str,
        message: str,
        fields: list[str] | None = None,
    ) -> None:
        line = _ENCODER.encode(
            {
                "stream": stream,
                "object": sobject,
                "sync_mode": sync_mode,
                "error_code": error_code,
                "message": message,
                "fields": fields or [],
                "record": record,
                "rejected_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            }
        ).decode("utf-8")
        with self._lock:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("a", encoding="utf-8")
            self._file.write(line + "\n")
            self._file.flush()
            self.count += 1

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
