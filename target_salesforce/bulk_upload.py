"""One Bulk job's CSV, written a row at a time to an anonymous temporary file.

A job can carry 100 MB of CSV, so the upload is not kept in memory but sent as a streamed body from its file. Each
line is its cells as ``render`` writes them: every non-empty cell quoted, an empty one bare. RFC 4180 lets any cell
be quoted, and it is the form Salesforce's own Data Loader sends to Bulk jobs (forcedotcom/dataloader,
``BulkLoadVisitor.writeColumnToCsv``: each value quoted, ``#N/A`` included; a value left out is an empty cell).
Salesforce echoes the uploaded cells in its result files with every cell quoted, so the echo of a line without empty
cells is that line's bytes, and ``bulk_results`` matches results to lines by comparing those bytes with the file's,
without parsing them. The price is about 10 % more bytes than quoting only the cells that need it (fewer rows fit a
100 MB job); the gain is that neither the upload nor the common result line is parsed, and lines are built by C
string methods, several times faster than ``csv.writer`` quoting cell by cell.
"""

from __future__ import annotations

import csv
import io
import os
from array import array
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from itertools import accumulate, repeat
from operator import add, itemgetter
from typing import Any

from target_salesforce.spool import anonymous_file, read_line

# Salesforce accepts up to 150 MB of base64 per job, i.e. about 100 MB of raw CSV.
MAX_UPLOAD_BYTES = 100 * 1024 * 1024
NULL = "#N/A"  # Bulk CSV's way of setting a field to null; an empty cell leaves it unchanged.
CRLF = b"\r\n"
_ABSENT = object()  # a column the row does not have
_BOOLEAN_CELLS = {True: "true", False: "false"}
_CHUNK = 1 << 20
_LINES_A_WRITE = 1024


def csv_cell(value: Any) -> str:
    # An empty string sets the field to null through Collections (Salesforce stores no empty text), while an empty
    # CSV cell would leave it unchanged: both mean null, so Bulk must say so explicitly too.
    cls = value.__class__
    if cls is str:
        return value or NULL
    if cls is bool:
        return "true" if value else "false"
    if cls is Decimal:
        # A number of more digits than a float keeps (see ``convert._number``), written positionally and digit for
        # digit: str() could write 1E+2, an exponent the cell need not carry.
        return format(value, "f")
    return NULL if value is None else str(value)


def _cells(row: dict, columns: list[str]) -> list[str]:
    """A row's CSV cells; a column the row lacks is an empty cell, which leaves the field unchanged."""
    return [
        value if value.__class__ is str and value else "" if value is _ABSENT else csv_cell(value)
        for value in map(row.get, columns, repeat(_ABSENT))
    ]


def _getter(columns: list[str]) -> Callable[[dict], tuple]:
    """A row's values of ``columns``, in order, fetched in C; KeyError when the row lacks one."""
    if len(columns) > 1:
        return itemgetter(*columns)
    return lambda row: tuple(row[column] for column in columns)


def render(cells: list[str]) -> bytes:
    """A CSV line without its line ending: each non-empty cell quoted (its quotes doubled), each empty one bare.

    A lone empty cell is quoted, as ``csv.writer`` does, so that the line is not blank.
    """
    if "" not in cells:
        return render_filled(cells)
    if cells == [""]:
        return b'""'
    return _render_each(cells)


def render_filled(cells: list[str]) -> bytes:
    """``render`` of cells none of which is empty (a row with a value in every column, the usual one).

    One join and two replaces over the whole line, with NUL as the cell separator while quotes are doubled; a line
    with a NUL in a value (rare) is built cell by cell.
    """
    text = "\x00".join(cells).encode("utf-8")  # bytes: their replace is faster than str's on non-ASCII text
    if text.count(b"\x00") == len(cells) - 1:
        return _quoted(text)
    return _render_each(cells)


def _quoted(text: bytes) -> bytes:
    """Cells joined by NUL (none holding a NUL) as a CSV line: each cell quoted, its quotes doubled."""
    return b'"' + text.replace(b'"', b'""').replace(b"\x00", b'","') + b'"'


def _column_cells(column: list[Any]) -> list[str]:
    """``csv_cell`` of each value of a column, in C for the usual columns (of text, of checkboxes, of numbers)."""
    classes = set(map(type, column))
    if classes == {str} and "" not in column:
        return column
    if classes == {bool}:
        return list(map(_BOOLEAN_CELLS.__getitem__, column))
    if classes and classes <= {int, float}:
        return list(map(str, column))
    return list(map(csv_cell, column))


def render_block(columns: list[list[Any]]) -> list[bytes] | None:
    """``render_filled`` of each row of a block given a column at a time (``RecordConverter.block``), built over the
    whole block at once: rows joined by SOH as cells are by NUL, so that one pass doubles the quotes of every row.
    None when a value holds either separator (the rows are then rendered one by one).
    """
    cells = list(map(_column_cells, columns))
    rows = len(cells[0])
    text = "\x01".join(map("\x00".join, zip(*cells, strict=True))).encode("utf-8")
    if text.count(b"\x00") != rows * (len(cells) - 1) or text.count(b"\x01") != rows - 1:
        return None
    return _quoted(text).replace(b"\x01", b'"\x01"').split(b"\x01")


def _render_each(cells: list[str]) -> bytes:
    return ",".join(['"' + cell.replace('"', '""') + '"' if cell else "" for cell in cells]).encode("utf-8")


def _header(columns: list[str]) -> bytes:
    """The header line; API names need no quoting, so it is written as ``csv.writer`` writes it (once a job)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(columns)
    return buffer.getvalue().encode("utf-8")


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
    row for the caller. In memory stay 4 bytes a line for its offset, and 4 for its ref only once a line's ref is not
    its index (a job built as its batch is read names each row by its slot, and nearly every row of a batch is in it).
    """

    def __init__(self) -> None:
        self._file = anonymous_file()
        self.columns: list[str] = []
        self._values_of = _getter(self.columns)
        self._known: dict[str, None] = {}
        # 4 bytes each: an upload stays under MAX_UPLOAD_BYTES, and a batch under 2**32 rows.
        self._refs: array | None = None  # each line's ref, once one is not its line's index
        self._count = 0
        self.offsets = array("I", [0])  # data line i spans offsets[i]:offsets[i + 1], its CRLF included
        self._widths: list[tuple[int, int]] = [(0, 0)]  # (first line, columns) each time a column was added
        self._padding = 0  # commas the lines written before a column was added still lack
        self._room = MAX_UPLOAD_BYTES  # bytes the data lines may take: the limit less the header and the padding
        self._unwritten: list[bytes] = []  # lines added but not yet written, without their CRLFs
        self._longest = 0  # bytes of the longest line added
        # Whether a row as long as the last one added would not fit: the job is as full as it is likely to get.
        self.full = False

    def __len__(self) -> int:
        return self._count

    @property
    def refs(self) -> Sequence[int]:
        """The ref of each line, in line order."""
        return range(self._count) if self._refs is None else self._refs

    def add(self, values: dict[str, Any], ref: int) -> bool:
        """Append a row; False, appending nothing, when it would take a non-empty upload past MAX_UPLOAD_BYTES."""
        columns = self.columns
        if len(values) == len(columns):  # the usual row: every column, and so no other key
            try:
                row = self._values_of(values)
            except KeyError:
                return self._add_widening(values, ref)
            # No cell is empty: csv_cell makes an empty or null value #N/A.
            line = render_filled([value if value.__class__ is str and value else csv_cell(value) for value in row])
        else:
            cells = _cells(values, columns)
            # Each key of the row is a column when the cells hold as many values (a column it lacks is empty).
            if len(values) != len(columns) - cells.count(""):
                return self._add_widening(values, ref)
            line = render(cells)
        return self.add_line(line, ref)

    def add_line(self, line: bytes, ref: int) -> bool:
        """``add`` for a row already rendered with a cell for each column, in order (see ``takes_lines_of``)."""
        return self.add_lines([line], ref)

    def add_lines(self, lines: list[bytes], first_ref: int) -> bool:
        """``add_line`` of each of ``lines``, naming rows ``first_ref`` on, in one step; all or none: False, adding
        nothing, when they would take a non-empty upload past MAX_UPLOAD_BYTES (a lone row always fits an empty
        one: Salesforce is left to refuse it)."""
        sizes = list(map(len, lines))
        ends = list(accumulate(map(add, sizes, repeat(len(CRLF))), initial=self.offsets[-1]))
        if ends[-1] > self._room and (self._count or len(lines) > 1):
            return False
        self.full = ends[-1] + sizes[-1] + len(CRLF) > self._room
        self._longest = max(self._longest, max(sizes))
        self._unwritten += lines
        if len(self._unwritten) >= _LINES_A_WRITE:
            self._write_lines()
        self._index_lines(ends[1:], first_ref)
        return True

    def takes_lines_of(self, columns: list[str]) -> bool:
        """Whether rows rendered with a cell for each of ``columns``, in that order, can be given to ``add_line``:
        these are the upload's columns, or it has none yet and takes them."""
        if not self.columns and not self._count:
            self._widen(list(columns), MAX_UPLOAD_BYTES - len(_header(columns)), 0)
        return self.columns == columns

    def has_room_for(self, rows: int) -> bool:
        """Whether ``rows`` more lines as long as the longest so far would fit."""
        return self.offsets[-1] + rows * (self._longest + len(CRLF)) <= self._room

    def _add_widening(self, values: dict[str, Any], ref: int) -> bool:
        """``add`` for a row with keys that are not columns yet: they become the last columns if the row fits."""
        added = [key for key in values if key not in self._known]
        columns = [*self.columns, *added]
        line = render(_cells(values, columns))
        end = self.offsets[-1] + len(line) + 2
        padding = self._padding + self._count * len(added)
        room = MAX_UPLOAD_BYTES - len(_header(columns)) - padding
        if end > room and self._count:
            return False
        self._widen(columns, room, padding)
        return self.add_lines([line], ref)

    def _widen(self, columns: list[str], room: int, padding: int) -> None:
        """Make ``columns`` (the present ones, then new ones) the header from the next line on."""
        self.columns, self._room, self._padding = columns, room, padding
        self._values_of = _getter(columns)
        self._known.update(dict.fromkeys(columns))
        self._widths.append((self._count, len(columns)))

    def _index_lines(self, ends: list[int], first_ref: int) -> None:
        """Count lines that end at ``ends`` in the file and name rows ``first_ref`` on."""
        self.offsets.extend(ends)
        if self._refs is None and first_ref != self._count:
            self._refs = array("I", range(self._count))
        if self._refs is not None:
            self._refs.extend(range(first_ref, first_ref + len(ends)))
        self._count += len(ends)

    def _write_lines(self) -> None:
        """Write the lines added since the last write, with their CRLFs, in one call (a call a line costs more)."""
        self._file.write(CRLF.join(self._unwritten) + CRLF)
        self._unwritten.clear()

    def body(self) -> FileBody:
        """The whole CSV, lines written before a column was added padded with its empty cells first."""
        if self._unwritten:
            self._write_lines()
        if self._padding:
            self._pad()
        self._file.flush()
        return FileBody(_header(self.columns), self._file, self.offsets[-1])

    def _pad(self) -> None:
        """Rewrite the lines that lack trailing (empty) cells of columns added after them; rare, so done once."""
        width = len(self.columns)
        self._file.flush()
        old, self._file = self._file, anonymous_file()
        offsets = array("I", [0])
        bounds = [*self._widths[1:], (self._count, width)]
        for (start, columns), (end, _) in zip(self._widths, bounds, strict=True):
            for index in range(start, end):
                line = read_line(old, self.offsets, index)
                if columns < width:
                    cells = b"" if line == b'""\r\n' else line[:-2]  # a lone empty cell is empty among others
                    line = cells + b"," * (width - columns) + CRLF
                self._file.write(line)
                offsets.append(offsets[-1] + len(line))
        old.close()
        self.offsets, self._widths, self._padding = offsets, [(0, width)], 0
        self._file.flush()

    def subset(self, lines: list[int]) -> BulkUpload:
        """A new upload of some of this one's lines (in the order given), for rows sent again (after ``body``)."""
        other = BulkUpload()
        other.columns, other._known, other._values_of = self.columns, self._known, self._values_of
        other._widths = [(0, len(self.columns))]
        for index in lines:
            line = self.line(index)
            other._file.write(line)
            other._index_lines([other.offsets[-1] + len(line)], self.refs[index])
        return other

    def read(self, start: int, size: int) -> bytes:
        """Up to ``size`` bytes of the data lines from byte ``start`` (after ``body``)."""
        return os.pread(self._file.fileno(), size, start)

    def line(self, index: int) -> bytes:
        """Data line ``index`` as uploaded, its CRLF included (after ``body``)."""
        return read_line(self._file, self.offsets, index)

    def close(self) -> None:
        self._file.close()
