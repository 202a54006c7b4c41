"""Salesforce record ids: minting, the 15→18 character checksum, and parsing what clients send.

A Salesforce id is 15 case-sensitive characters (3 key-prefix characters naming the object, 2 for the pod,
1 reserved, 9 for the record) plus a 3-character suffix that encodes the case of the first 15 so that the
18-character form survives case-insensitive tools. Clients may send either form, so every id that enters
the emulator goes through ``normalize_id`` and is stored in its canonical 18-character form.
"""

from __future__ import annotations

import re
import threading
import time

# The checksum alphabet: each suffix character encodes which of 5 id characters are upper-case.
_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_SUFFIX_INDEX = {ch: i for i, ch in enumerate(_SUFFIX_ALPHABET)}
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID_SHAPE = re.compile(r"[0-9A-Za-z]{15}(?:[0-9A-Za-z]{3})?\Z")

# Pod/instance characters and the reserved character of every id this org mints (a real org's ids
# carry their instance, e.g. ``0015g00000...``).
POD = "5g0"
_RECORD_SPACE = 62**9
_TAIL_SPACE = 62**5

# Upper-case letters → "1", every other id character → "0": one translate gives all 15 case bits.
_CASE_BITS = str.maketrans({ch: "1" if ch.isupper() else "0" for ch in _BASE62})
# Every 2-character base-62 string, and the case bits of single characters and of pairs, so that minting
# an id is a few table look-ups.
_PAIRS = [a + b for a in _BASE62 for b in _BASE62]
_CHAR_BITS = [int(ch.isupper()) for ch in _BASE62]
_PAIR_BITS = [int(a.isupper()) | int(b.isupper()) << 1 for a in _BASE62 for b in _BASE62]

# Seeded from the clock so that an emulator reopening an on-disk store never mints an id it minted in an
# earlier run: microseconds since the epoch stay far below 62**9 for centuries and grow faster than ids
# are minted.
_next = time.time_ns() // 1000
_mint_lock = threading.Lock()


def checksum(id15: str) -> str:
    """The 3-character suffix Salesforce appends to a 15-character id.

    Each suffix character encodes, as a 5-bit number, which of 5 id characters are upper-case letters
    (bit 0 for the first of the five).
    """
    bits = id15.translate(_CASE_BITS)
    return (
        _SUFFIX_ALPHABET[int(bits[4::-1], 2)]
        + _SUFFIX_ALPHABET[int(bits[9:4:-1], 2)]
        + _SUFFIX_ALPHABET[int(bits[14:9:-1], 2)]
    )


def to_18(id15: str) -> str:
    """The 18-character form of a well-formed 15-character id."""
    return id15 + checksum(id15)


def new_ids(prefix: str, count: int) -> list[str]:
    """``count`` fresh, consecutive 18-character ids of the object (or job, query locator…) ``prefix``.

    Any 3-character prefix works: records use their object's (001, 003…), Bulk jobs 750, query locators
    01g. The 9 record characters are a 4-character head, which changes once per 62**5 ids, and a
    5-character tail whose case bits come from tables, so a batch of 10,000 costs milliseconds.
    """
    global _next
    if len(prefix) != 3 or not prefix.isalnum():
        raise ValueError(f"a key prefix is 3 letters or digits, not {prefix!r}")
    with _mint_lock:
        first, _next = _next, _next + count
    out: list[str] = []
    number, end = first, first + count
    while number < end:
        # One run: the ids that share everything but the last pair (at most 3,844 of them).
        high, low = divmod(number % _RECORD_SPACE, _TAIL_SPACE)
        head = prefix + POD + _PAIRS[high // 3844] + _PAIRS[high % 3844]
        head_suffix = checksum(head + "00000")[:2]
        first_char, rest = divmod(low, 3844 * 3844)
        pair1, pair2 = divmod(rest, 3844)
        stem = head + _BASE62[first_char] + _PAIRS[pair1]
        bits = _CHAR_BITS[first_char] | _PAIR_BITS[pair1] << 1
        run = min(3844 - pair2, end - number)
        last_pairs = zip(_PAIRS[pair2 : pair2 + run], _PAIR_BITS[pair2 : pair2 + run], strict=True)
        out += [stem + pair + head_suffix + _SUFFIX_ALPHABET[bits | pair_bits << 3] for pair, pair_bits in last_pairs]
        number += run
    return out


def new_id(prefix: str) -> str:
    """A fresh 18-character id of ``prefix`` (see ``new_ids``)."""
    return new_ids(prefix, 1)[0]


def normalize_id(value: str) -> str | None:
    """The canonical 18-character id ``value`` names, or None when it is not an id at all (MALFORMED_ID).

    A 15-character id is taken as written (it is case-sensitive). An 18-character id is read the way
    Salesforce reads it: the suffix is authoritative for the case of the first 15 characters, which is
    what makes 18-character ids safe to pass through case-insensitive tools (e.g. all lower case).
    """
    if not isinstance(value, str) or not _ID_SHAPE.match(value):
        return None
    if len(value) == 15:
        return to_18(value)
    suffix = value[15:].upper()
    chars = list(value[:15])
    for chunk, ch in enumerate(suffix):
        bits = _SUFFIX_INDEX.get(ch)
        if bits is None:
            return None
        for i in range(5):
            pos = chunk * 5 + i
            chars[pos] = chars[pos].upper() if bits >> i & 1 else chars[pos].lower()
    recased = "".join(chars)
    # A suffix that asks for an upper-case digit cannot have come from Salesforce.
    return recased + suffix if checksum(recased) == suffix else None


def key_prefix(record_id: str) -> str:
    """The key prefix (first 3 characters) that tells which object an id belongs to."""
    return record_id[:3]
