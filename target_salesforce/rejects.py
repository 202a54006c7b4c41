"""The reject file: one JSON line per record that Salesforce (or our own pre-flight) refused, with the reason.

Each line is flushed as it is written, so that a run that dies leaves every reject it made on disk.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from target_salesforce.jsonl import ENCODER, LineFile


class RejectWriter:
    def __init__(self, path: str | Path) -> None:
        self._file = LineFile(path)
        self.path = self._file.path

    @property
    def count(self) -> int:
        """Records rejected so far (one line each)."""
        return self._file.lines

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
        line = ENCODER.encode(
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
        )
        self._file.append([line], flush=True)

    def close(self) -> None:
        self._file.close()
