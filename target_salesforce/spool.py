"""A sink's batch spooled to an anonymous temporary file as its records arrive, so a batch costs bytes a row.

Each record is one line: the JSON ``[delete, values]`` (nothing, for a row whose values went into its Bulk job: see
``add``), a tab, and the source record (``rows.Row.source``).
Values read back keep every digit written: integers come back as int and fractions as Decimal (``float_hook``), so a
number converted to a Decimal for its 16 to 18 digits (``convert._number``) keeps them; a float comes back as the
Decimal of its shortest form, the same number, which the JSON body and the Bulk CSV write digit for digit. JSON holds
no raw tab (in a string it is escaped), so the first tab splits the line: reading the batch back decodes only the first
part, and the source record (needed only for a reject, the results output or a deferral) stays bytes. In memory stay
the line offsets (4 bytes a row), 32 bits of each row's match key hash (4 bytes a row) and a one-probe Bloom filter
of the match keys (2 bytes a row of the batch size) that tells which keys may have come before. Before the
batch is read back, the rows of those keys (found by their hash, then by their exact key) are merged: the last
record of a key is the row, the earlier ones share its outcome. The file is created already unlinked
(``tempfile.TemporaryFile``), so nothing is left in the temporary directory when a run ends, fails or is killed.
"""

from __future__ import annotations

import os
import tempfile
from array import array
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator
from decimal import Decimal
from itertools import accumulate, repeat
from operator import add
from typing import IO, Any

import msgspec

from target_salesforce.jsonl import ENCODER
from target_salesforce.rows import Row, decode_source, encode_source

_HEAD = msgspec.json.Decoder(tuple[bool, dict[str, Any]], float_hook=Decimal)
_TAB = b"\t"
# Filter bits per row of the batch size, one probe: at most 6 % of distinct keys are flagged needlessly (3 % on
# average while the batch fills), each costing a line read back before the write.
_FILTER_BITS_PER_ROW = 16
# Lines are gathered in memory and written this many bytes at a time: a write call a line cost a microsecond each.
_WRITE_BYTES = 1 << 20
_HASH_MASK = 0xFFFFFFFF  # the bits of a key's hash kept per row

MergeKey = Callable[[dict[str, Any], bool], Hashable | None]


def read_line(file: IO[bytes], offsets: array, index: int) -> bytes:
    """Line ``index`` of ``file``, which spans ``offsets[index]:offsets[index + 1]`` (read without seeking, so a
    file being read line by line elsewhere keeps its position)."""
    start = offsets[index]
    return os.pread(file.fileno(), offsets[index + 1] - start, start)


def anonymous_file() -> IO[bytes]:
    """A temporary file with no name (unlinked at once): it disappears with its last handle, even on a kill."""
    return tempfile.TemporaryFile(prefix="target-salesforce-")  # its owner closes it


class SpooledBatch:
    """The rows of one batch: appended by ``add``, read back once in order, then looked up by ``ref`` (slot)."""

    def __init__(
        self, merge_key: MergeKey, capacity: int, convert: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    ) -> None:
        """``convert`` gives a record's values again, for rows spooled without them (see ``add``)."""
        self._file = anonymous_file()
        # Line i spans offsets[i]:offsets[i + 1]; 4 bytes an offset, 8 once the file passes 4 GB.
        self._offsets = array("I", [0])
        self._hashes = array("I")  # the low bits of each row's key hash (0 for a row never merged)
        bits = 1 << max(16, min(32, (capacity * _FILTER_BITS_PER_ROW - 1).bit_length()))
        self._filter = bytearray(bits >> 3)
        self._mask = bits - 1
        self._maybe_repeated: set[Hashable] = set()
        self._merge_key = merge_key
        self._convert = convert
        self._pending = bytearray()  # lines not written to the file yet
        self._written = 0  # bytes written to the file
        self._merged: dict[int, list[int]] | None = None  # slot of a merged row → slots of the rows it replaced
        self._replaced: set[int] = set()  # slots of rows replaced by a later one of their key
        self._outside: dict[int, list[bytes | msgspec.Raw]] = {}  # slot → older records from outside the batch
        self.merged = 0  # records replaced by a later one of the same key (known once ``merge`` has run)

    def _split(self, line: bytes) -> tuple[bool, dict[str, Any], bytes]:
        """A spooled line's delete flag, values and source record (still JSON bytes)."""
        head, _, source = line.partition(_TAB)
        if not head:
            return False, self._convert(decode_source(source)), source  # type: ignore[misc]
        delete, values = _HEAD.decode(head)
        return delete, values, source

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def add(
        self,
        record: dict,
        values: dict[str, Any],
        delete: bool,
        key: Hashable | None,
        message: bytes | None = None,
        *,
        values_kept_elsewhere: bool = False,
    ) -> int:
        """Spool a row and return its slot; ``key`` is its merge key (None for a row never merged, e.g. an insert),
        ``message`` the record's Singer message as read, when the record is unchanged since.

        ``values_kept_elsewhere``: the values went into a Bulk job's CSV, so that few rows are ever read back from
        here; a row given its message then spools that alone (an empty head), and its values, should it be read
        back, are converted again from the record in the message, which is what they were converted from.
        """
        pending = self._pending
        if message is None or not values_kept_elsewhere or delete or self._convert is None:
            ENCODER.encode_into((delete, values), pending, -1)
        pending += _TAB
        if message is None:
            encode_source(record, pending)
            pending += b"\n"
        else:
            pending += message
            if message[-1:] != b"\n":
                pending += b"\n"
        self._end_lines([self._written + len(pending)])
        slot = len(self._offsets) - 2
        self._note_key(key)
        return slot

    def add_kept(self, messages: list[bytes], keys: list[Hashable | None]) -> None:
        """``add`` of rows whose values went into a Bulk job's CSV (``values_kept_elsewhere``), each with its message
        and key, in one step: each spools its message alone (the batch has a converter to read values back with)."""
        assert self._convert is not None
        pending = self._pending
        start = self._written + len(pending)
        lines = messages
        if not all(map(bytes.endswith, messages, repeat(b"\n"))):
            lines = [message if message[-1:] == b"\n" else message + b"\n" for message in messages]
        pending += _TAB + _TAB.join(lines)
        self._end_lines(list(accumulate(map(add, map(len, lines), repeat(len(_TAB))), initial=start))[1:])
        deque(map(self._note_key, keys), maxlen=0)

    def _end_lines(self, ends: list[int]) -> None:
        """Record where the lines just added to ``_pending`` end in the file, and write the pending bytes once they
        are many."""
        count = len(self._offsets)
        try:
            self._offsets.extend(ends)
        except OverflowError:  # the file passed 4 GB: offsets of 8 bytes from now on
            self._offsets = array("q", self._offsets[:count])  # without those appended before the overflow
            self._offsets.extend(ends)
        if len(self._pending) >= _WRITE_BYTES:
            self._write_pending()

    def _note_key(self, key: Hashable | None) -> None:
        """Keep a new row's key hash bits, and flag its key as maybe repeated when the filter has seen its bit."""
        if key is None:
            self._hashes.append(0)
            return
        h = hash(key)
        self._hashes.append(h & _HASH_MASK)
        bit = h & self._mask
        bits = self._filter
        if bits[bit >> 3] & 1 << (bit & 7):
            self._maybe_repeated.add(key)
        else:
            bits[bit >> 3] |= 1 << (bit & 7)

    def _write_pending(self) -> None:
        self._file.write(self._pending)
        self._written += len(self._pending)
        self._pending.clear()

    def merge(self) -> set[int]:
        """Merge the rows of each repeated key into its last one, once; the slots of the rows replaced.

        Only rows whose key the filter flagged, and whose hash bits are those of a flagged key, are read back to
        compare their exact keys.
        """
        if self._merged is not None:
            return self._replaced
        self._write_pending()
        self._file.flush()
        # No more rows come: what finds repeated keys is freed before the write.
        hashes, check = self._hashes, self._maybe_repeated
        self._filter, self._hashes, self._maybe_repeated = bytearray(), array("I"), set()
        self._merged = {}
        if not check:
            return self._replaced
        check_hashes = {hash(key) & _HASH_MASK for key in check}
        slots: dict[Hashable, list[int]] = {}
        for slot, h in enumerate(hashes):
            if h in check_hashes:
                delete, values, _ = self._split(self._line(slot))
                key = self._merge_key(values, delete)
                if key in check:
                    slots.setdefault(key, []).append(slot)
        for *earlier, last in slots.values():
            if earlier:
                self._merged[last] = earlier
                self._replaced.update(earlier)
                self.merged += len(earlier)
        return self._replaced

    def __iter__(self) -> Iterator[Row]:
        """Each row once, in order, merged (see ``merge``)."""
        replaced = self.merge()
        merged = self._merged
        self._file.seek(0)
        for slot, line in enumerate(self._file):
            if slot in replaced:
                continue
            if merged and slot in merged:
                yield self.row(slot)
            else:
                delete, values, source = self._split(line)
                yield Row(source, values, delete, (), slot)

    def rows_at(self, slots: Iterable[int]) -> Iterator[Row]:
        """The rows in ``slots``, in the order given, merged, each read by its offsets (not the whole file)."""
        replaced = self.merge()
        return (self.row(slot) for slot in slots if slot not in replaced)

    def row(self, ref: int) -> Row:
        """The row in slot ``ref``, with the records merged into it."""
        delete, values, source = self._split(self._line(ref))
        earlier = self._merged.get(ref, ()) if self._merged else ()
        merged = [*self._outside.get(ref, ()), *(self._line(s).partition(_TAB)[2] for s in earlier)]
        return Row(source, values, delete, merged, ref)

    def merge_outside(self, row: Row, older: list[bytes | msgspec.Raw]) -> None:
        """Records older than the batch (a deferred row it supersedes) share ``row``'s outcome too."""
        self._outside[row.ref] = older
        row.merged = [*older, *row.merged]

    def _line(self, slot: int) -> bytes:
        return read_line(self._file, self._offsets, slot)

    def close(self) -> None:
        self._file.close()
