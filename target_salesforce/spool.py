"""A sink's batch spooled to an anonymous temporary file as its records arrive, so a batch costs bytes a row.

Each record is one line: the JSON ``[delete, key hash, values]``, a tab, and the JSON source record. msgspec's
float and integer round trip is exact, so the values read back are the ones converted. JSON holds no raw tab (in a
string it is escaped), so the tab splits the line: reading the batch back decodes only the first part, and the source
record (needed only for a reject, the results output or a deferral) stays bytes. In memory stay the line offsets (8
bytes a row) and a two-probe Bloom filter of the match keys (about 2 bytes a row of the batch size) that tells which
keys may have come before: only rows of those keys (found by the key hash in their line, without computing their key
again) are held back while the batch is read and then merged exactly by key (the last record wins, the earlier ones
share its outcome). The file is created already unlinked (``tempfile.TemporaryFile``), so nothing is left in the
temporary directory when a run ends, fails or is killed.
"""

from __future__ import annotations

import os
import tempfile
from array import array
from collections.abc import Callable, Hashable, Iterator
from typing import IO, Any

import msgspec

from target_salesforce.jsonl import ENCODER
from target_salesforce.rows import Row

_HEAD = msgspec.json.Decoder(tuple[bool, int | None, dict[str, Any]])
_TAB = b"\t"
# Filter bits per row of the batch size: with two probes, about 1.4 % of distinct keys are held back needlessly.
_FILTER_BITS_PER_ROW = 16

MergeKey = Callable[[dict[str, Any], bool], Hashable | None]


def read_line(file: IO[bytes], offsets: array, index: int) -> bytes:
    """Line ``index`` of ``file``, which spans ``offsets[index]:offsets[index + 1]`` (read without seeking, so a
    file being read line by line elsewhere keeps its position)."""
    start = offsets[index]
    return os.pread(file.fileno(), offsets[index + 1] - start, start)


def _split(line: bytes) -> tuple[bool, int | None, dict[str, Any], bytes]:
    """A spooled line's delete flag, key hash, values and source record (still JSON bytes)."""
    head, _, source = line.partition(_TAB)
    delete, key_hash, values = _HEAD.decode(head)
    return delete, key_hash, values, source


def anonymous_file() -> IO[bytes]:
    """A temporary file with no name (unlinked at once): it disappears with its last handle, even on a kill."""
    return tempfile.TemporaryFile(prefix="target-salesforce-")  # its owner closes it


class SpooledBatch:
    """The rows of one batch: appended by ``add``, read back once in order, then looked up by ``ref`` (slot)."""

    def __init__(self, merge_key: MergeKey, capacity: int) -> None:
        self._file = anonymous_file()
        self._offsets = array("q", [0])  # line i spans offsets[i]:offsets[i + 1]
        bits = 1 << max(16, min(32, (capacity * _FILTER_BITS_PER_ROW - 1).bit_length()))
        self._filter = bytearray(bits >> 3)
        self._mask = bits - 1
        self._maybe_repeated: set[Hashable] = set()
        self._merge_key = merge_key
        self._line_buffer = bytearray()  # each line is encoded into it, to be written in one call
        self._merged: dict[int, list[int]] = {}  # slot of a merged row → slots of the earlier rows it replaced
        self._outside: dict[int, list[bytes | msgspec.Raw]] = {}  # slot → older records from outside the batch
        self.merged = 0  # records replaced by a later one of the same key (known once the batch is read)

    def add(self, record: dict, values: dict[str, Any], delete: bool, key: Hashable | None) -> None:
        """Spool a row; ``key`` is its merge key (None for a row never merged, e.g. an insert)."""
        h = None if key is None else hash(key)
        line = self._line_buffer
        ENCODER.encode_into((delete, h, values), line)
        line += _TAB
        ENCODER.encode_into(record, line, -1)
        line += b"\n"
        self._file.write(line)
        self._offsets.append(self._offsets[-1] + len(line))
        if h is not None:
            a, b = h & self._mask, (h >> 32) & self._mask
            bits = self._filter
            if bits[a >> 3] >> (a & 7) & 1 and bits[b >> 3] >> (b & 7) & 1:
                self._maybe_repeated.add(key)
            bits[a >> 3] |= 1 << (a & 7)
            bits[b >> 3] |= 1 << (b & 7)

    def __iter__(self) -> Iterator[Row]:
        """Each row once, merged: a row whose key may repeat is given after all others, as the last of its key."""
        self._file.flush()
        self._file.seek(0)
        self._filter = bytearray()  # no more rows come: free it before the write
        held: dict[Hashable, list[int]] = {}
        check = self._maybe_repeated
        check_hashes = {hash(key) for key in check}
        for slot, line in enumerate(self._file):
            delete, h, values, source = _split(line)
            if h in check_hashes:
                key = self._merge_key(values, delete)
                if key in check:
                    held.setdefault(key, []).append(slot)
                    continue
            yield Row(source, values, delete, (), slot)
        for slots in held.values():
            *earlier, last = slots
            if earlier:
                self._merged[last] = earlier
                self.merged += len(earlier)
            yield self.row(last)

    def row(self, ref: int) -> Row:
        """The row in slot ``ref``, with the records merged into it."""
        delete, _, values, source = _split(self._line(ref))
        merged = [*self._outside.get(ref, ()), *(self._line(s).partition(_TAB)[2] for s in self._merged.get(ref, ()))]
        return Row(source, values, delete, merged, ref)

    def merge_outside(self, row: Row, older: list[bytes | msgspec.Raw]) -> None:
        """Records older than the batch (a deferred row it supersedes) share ``row``'s outcome too."""
        self._outside[row.ref] = older
        row.merged = [*older, *row.merged]

    def _line(self, slot: int) -> bytes:
        return read_line(self._file, self._offsets, slot)

    def close(self) -> None:
        self._file.close()
