"""JSON lines appended to a file by every sink of a run: the reject file and the results output.

Sinks drain in parallel threads, so appends are serialised by a lock; the file is opened on the first line only, so
a run with nothing to say leaves no empty file behind.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

import msgspec

# Decimals stay JSON numbers (exactly as the tap sent them) and datetimes become RFC 3339 text, so a record written
# back out reads like the source record; anything else unexpected is written as its text rather than failing.
ENCODER = msgspec.json.Encoder(decimal_format="number", enc_hook=str)


class LineFile:
    """An append-only file of lines (JSON documents encoded by ``ENCODER``), shared by threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.lines = 0  # written so far
        self._lock = threading.Lock()
        self._file: BinaryIO | None = None

    def append(self, lines: Iterable[bytes], *, flush: bool = False) -> None:
        with self._lock:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("ab")
            for line in lines:
                self._file.write(line + b"\n")
                self.lines += 1
            if flush:
                self._file.flush()

    def flush(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.flush()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
