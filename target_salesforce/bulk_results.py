"""Matching a Bulk job's result lines back to the lines uploaded, in any order, without parsing the common line.

Each result line is ``sf__Id,sf__Created`` (or ``sf__Error``) followed by the uploaded cells, echoed. Salesforce
promises no order, though it keeps the upload's as far as anyone has seen, and quotes every cell; so a line of the
successful results is first taken as the answer for the next uploaded line no result has reached: its two cells are
split off at the ``","`` after each (an id and ``true``/``false`` hold no quote), and the rest of the line, up to the
line ending (LF or CRLF), is compared byte for byte with that uploaded line, read from the job's file a chunk at a
time alongside the results (nothing per line is kept in memory for this).

Every other line (failed results, lines out of order, an upload line with empty cells, which Salesforce echoes as
``""``, or a result file quoted otherwise) is parsed as CSV, rendered as its upload line would be, and matched
exactly, byte for byte, to the next line, to a line passed over earlier or to one further on (the lines skipped are
kept by their hash until a result takes them). So any order is matched correctly, and memory grows only with the
disorder.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from itertools import chain
from typing import IO

from target_salesforce.bulk_upload import CRLF, BulkUpload, render

_CHUNK = 1 << 20
_SPLIT = b'","'
_CREATED = {b"true": "true", b"false": "false"}
# The start of a successful result line: right after the line feed before it, its quoted 18-character Id and
# sf__Created. Inside a quoted value a quote always comes doubled, so these lone quotes never match inside a value.
_SUCCESS_LINE = re.compile(rb'\n"[0-9A-Za-z]{18}","(true|false)"')


def _record_end(data: bytes, start: int) -> int:
    """Where the CSV record starting at ``start`` ends (past its line feed); -1 when ``data`` ends first.

    A line feed ends the record when an even number of quotes precede it: inside a quoted cell the count is odd.
    """
    quotes, position = 0, start
    while (feed := data.find(b"\n", position)) >= 0:
        quotes += data.count(b'"', position, feed)
        if not quotes & 1:
            return feed + 1
        position = feed + 1
    return -1


def count_successes(file: IO[bytes]) -> tuple[int, int]:
    """(created, not created): the lines of a ``successfulResults`` file, counted in C without reading a line.

    Enough when the job says every row it was given succeeded and no row's Id is wanted: the caller compares the
    sum with the rows uploaded, and matches line by line (``ResultMatcher``) when they differ.
    """
    created = total = 0
    tail = b""
    while True:
        chunk = file.read(_CHUNK)
        data = tail + chunk
        # A line start right at the last line feed is counted with the next chunk, which may hold the rest of it.
        end = data.rfind(b"\n") if chunk else len(data)
        found = _SUCCESS_LINE.findall(data, 0, max(end, 0))
        created += found.count(b"true")
        total += len(found)
        if not chunk:
            return created, total - created
        tail = data[end:] if end >= 0 else data


def _parse(record: bytes) -> list[str]:
    return next(csv.reader([record.decode("utf-8")]), [])


class ResultMatcher:
    """Which uploaded line each result line is for; one matcher reads all the result files of one job."""

    def __init__(self, upload: BulkUpload) -> None:
        self._upload = upload
        self._next = 0  # the first uploaded line no result has reached in order
        self._passed: dict[int, list[int]] = {}  # key of a line passed over → such lines not answered yet

    def read(self, file: IO[bytes], successful: bool) -> Iterator[tuple[int, str, str]]:
        """(uploaded line, first cell, second cell) of each result line of ``file`` that is for an uploaded line.

        ``successful``: the file is ``successfulResults``, whose lines may take the fast path described above.
        """
        data, eof = b"", False
        while (position := _record_end(data, 0)) < 0:  # past the header (a column name holds no line feed)
            if eof:
                return  # no result lines
            more = file.read(_CHUNK)
            data, eof = data + more, not more
        upload = self._upload
        offsets, count = upload.offsets, len(upload)
        block, base = b"", 0  # a stretch of the job's file, from byte ``base``: the lines results are expected for
        while True:
            index = self._next
            if successful and index < count and data.startswith(b'"', position):
                first = data.find(_SPLIT, position)
                second = data.find(_SPLIT, first + 3) if first > 0 else -1
                created = _CREATED.get(data[first + 3 : second]) if second > 0 else None
                start = second + 2
                line_start, line_end = offsets[index], offsets[index + 1] - 2  # without its CRLF
                end = start + line_end - line_start
                ending = 1 if data.startswith(b"\n", end) else 2 if data.startswith(CRLF, end) else 0
                if line_end > base + len(block):
                    block, base = upload.read(line_start, max(_CHUNK, line_end - line_start)), line_start
                if created and ending and data[start:end] == block[line_start - base : line_end - base]:
                    self._next = index + 1
                    yield index, data[position + 1 : first].decode("utf-8"), created
                    position = end + ending
                    continue
            end = _record_end(data, position)
            if end < 0:
                if not eof:
                    more = file.read(_CHUNK)
                    data, position, eof = data[position:] + more, 0, not more
                    continue
                if position >= len(data):
                    return
                end = len(data)  # a last line without a line feed
            cells = _parse(data[position:end])
            position = end
            if len(cells) >= 2 and (index := self.find(cells[2:])) is not None:
                yield index, cells[0], cells[1]

    def find(self, cells: list[str]) -> int | None:
        """The line whose cells are exactly ``cells`` and that no earlier result took; None when no line has them."""
        line = render(cells) + CRLF
        key = hash(line)
        lines = self._passed.get(key)
        for position, index in enumerate(lines or ()):
            if self._upload.line(index) == line:
                del lines[position]  # type: ignore[union-attr]
                if not lines:
                    del self._passed[key]
                return index
        for index in range(self._next, len(self._upload)):
            uploaded = self._upload.line(index)
            if uploaded == line:
                self._next = index + 1
                return index
            self._passed.setdefault(hash(uploaded), []).append(index)
        self._next = len(self._upload)
        return None

    def unanswered(self) -> list[int]:
        """The lines no result was found for, in upload order."""
        rest = range(self._next, len(self._upload))
        return sorted(chain(chain.from_iterable(self._passed.values()), rest))
