"""One Bulk job's CSV, written a row at a time to an anonymous temporary file, and its result lines matched back.

A job can carry 100 MB of CSV, so neither the upload nor the results sit in memory: the upload is a file sent as a
streamed body, and results are matched to uploaded lines by reading both in step (Salesforce echoes every uploaded
cell in the result files, in upload order as far as anyone has seen, though it promises no order). A result that
is not the next uploaded line is looked for among the lines passed over, by a hash of its cells and then exactly,
so any order is matched correctly and memory grows only with the disorder.
"""

from __future__ import annotations

import csv
import os
from array import array
from collections.abc import Iterator
from io import StringIO
from itertools import chain, repeat
from types import SimpleNamespace
from typing import Any

from target_salesforce.spool import anonymous_file

# Salesforce accepts up to 150 MB of base64 per job, i.e. about 100 MB of raw CSV.
MAX_UPLOAD_BYTES = 100 * 1024 * 1024
NULL = "#N/A"  # Bulk CSV's way of setting a field to null; an empty cell leaves it unchanged.
_ABSENT = object()  # a column the row does not have
_CHUNK = 1 << 20


def csv_cell(value: Any) -> str:
    # An empty string sets the field to null through Collections (Salesforce stores no empty text), while an empty
    # CSV cell would leave it unchanged: both mean null, so Bulk must say so explicitly too.
    if value is None or value == "":
        return NULL
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def _cells(row: dict, columns: list[str]) -> list[str]:
    """A row's CSV cells; a column the row lacks is an empty cell, which leaves the field unchanged."""
    # Non-empty text, most cells, is taken as it is: this runs once per cell of every row sent.
    return [
        value if value.__class__ is str and value else "" if value is _ABSENT else csv_cell(value)
        for value in map(row.get, columns, repeat(_ABSENT))
    ]


def _parse(line: bytes) -> list[str]:
    return next(csv.reader(StringIO(line.decode("utf-8"), newline="")))


class FileBody:
    """An upload body that requests sends with its Content-Length, read from the start again on every attempt
    (a retry after a refused or renewed-session answer sends it whole again)."""

    def __init__(self, head: bytes, file: Any, size: int) -> None:
        self._head, self._file, self._size = head, file, size

    def __len__(self) -> int:
        return len(self._head) + self._size

    def __iter__(self) -> Iterator[bytes]:
        yield self._head
        self._file.seek(0)
        while chunk := self._file.read(_CHUNK):
            yield chunk


class BulkUpload:
    """The CSV of one job: a header of every column any row has (in order of first appearance) and a line a row.

    CRLF line endings: simple-salesforce's and some of Salesforce's tooling mishandle a lone CR inside a value under
    LF endings; with CRLF and RFC 4180 quoting every character of a value round-trips. ``refs`` names each line's
    row for the caller.
    """

    def __init__(self) -> None:
        self._file = anonymous_file()
        self.columns: list[str] = []
        self._known: dict[str, None] = {}
        # 4 bytes each: an upload stays under MAX_UPLOAD_BYTES, and a batch under 2**32 rows.
        self.refs = array("I")
        self._offsets = array("I", [0])  # data line i spans offsets[i]:offsets[i + 1]
        self._widths: list[tuple[int, int]] = [(0, 0)]  # (first line, columns) each time a column was added
        self._padding = 0  # commas the lines written before a column was added still lack
        self._head_size = 0
        self._lines: list[str] = []
        self._writer = csv.writer(SimpleNamespace(write=self._lines.append), lineterminator="\r\n")

    def __len__(self) -> int:
        return len(self.refs)

    def _header(self, columns: list[str]) -> bytes:
        self._writer.writerow(columns)
        return self._lines.pop().encode("utf-8")

    def add(self, values: dict[str, Any], ref: int) -> bool:
        """Append a row; False, appending nothing, when it would take a non-empty upload past MAX_UPLOAD_BYTES."""
        known = self._known
        added = [] if values.keys() <= known.keys() else [key for key in values if key not in known]
        columns = [*self.columns, *added] if added else self.columns
        self._writer.writerow(_cells(values, columns))
        line = self._lines.pop().encode("utf-8")
        padding = self._padding + len(self.refs) * len(added)
        head = len(self._header(columns)) if added else self._head_size
        if self.refs and head + self._offsets[-1] + padding + len(line) > MAX_UPLOAD_BYTES:
            return False
        if added:
            self.columns, self._head_size = columns, head
            known.update(dict.fromkeys(added))
            self._widths.append((len(self.refs), len(columns)))
            self._padding = padding
        self._file.write(line)
        self._offsets.append(self._offsets[-1] + len(line))
        self.refs.append(ref)
        return True

    def body(self) -> FileBody:
        """The whole CSV, lines written before a column was added padded with its empty cells first."""
        if self._padding:
            self._pad()
        self._file.flush()
        return FileBody(self._header(self.columns), self._file, self._offsets[-1])

    def _pad(self) -> None:
        """Rewrite the lines that lack trailing (empty) cells of columns added after them; rare, so done once."""
        width = len(self.columns)
        self._file.flush()
        old, self._file = self._file, anonymous_file()
        offsets = array("I", [0])
        bounds = [*self._widths[1:], (len(self.refs), width)]
        for (start, columns), (end, _) in zip(self._widths, bounds, strict=True):
            for index in range(start, end):
                line = os.pread(old.fileno(), self._offsets[index + 1] - self._offsets[index], self._offsets[index])
                if columns < width:
                    line = line[:-2] + b"," * (width - columns) + b"\r\n"
                self._file.write(line)
                offsets.append(offsets[-1] + len(line))
        old.close()
        self._offsets, self._widths, self._padding = offsets, [(0, width)], 0
        self._file.flush()

    def subset(self, lines: list[int]) -> BulkUpload:
        """A new upload of some of this one's lines (in the order given), for rows sent again."""
        other = BulkUpload()
        other.columns, other._known = self.columns, self._known
        other._widths = [(0, len(self.columns))]
        for index in lines:
            line = self._line(index)
            other._file.write(line)
            other._offsets.append(other._offsets[-1] + len(line))
            other.refs.append(self.refs[index])
        return other

    def _line(self, index: int) -> bytes:
        start = self._offsets[index]
        return os.pread(self._file.fileno(), self._offsets[index + 1] - start, start)

    def cells(self, index: int) -> list[str]:
        return _parse(self._line(index))

    def sent(self) -> Iterator[list[str]]:
        """Every uploaded line's cells, in order (after ``body``)."""
        with open(self._file.fileno(), encoding="utf-8", newline="", closefd=False) as text:
            text.seek(0)
            yield from csv.reader(text)

    def close(self) -> None:
        self._file.close()


class ResultMatcher:
    """Which uploaded line each result line is for, reading the upload in step with the results."""

    def __init__(self, upload: BulkUpload) -> None:
        self._upload = upload
        self._sent = enumerate(upload.sent())
        self._passed: dict[int, list[int]] = {}  # hash of a passed line's cells → such lines not answered yet

    def find(self, cells: list[str]) -> int | None:
        """The line whose cells are ``cells`` and that no earlier result took; None when no line has them."""
        passed = self._passed
        if passed:
            key = hash(tuple(cells))
            lines = passed.get(key)
            for position, index in enumerate(lines or ()):
                if self._upload.cells(index) == cells:  # exactly, not by the hash alone
                    del lines[position]  # type: ignore[union-attr]
                    if not lines:
                        del passed[key]
                    return index
        for index, sent in self._sent:
            if sent == cells:
                return index
            passed.setdefault(hash(tuple(sent)), []).append(index)
        return None

    def unanswered(self) -> list[int]:
        """The lines no result was found for, in upload order."""
        rest = [index for index, _ in self._sent]
        return sorted(chain(chain.from_iterable(self._passed.values()), rest))
