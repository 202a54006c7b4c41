"""Keeping the target's resident memory close to what it holds, where the C library allows it.

A batch keeps a few arrays of several megabytes (line offsets, key hashes, the Bulk job's line index) that grow row
by row and are freed when the batch is written. glibc serves such blocks from mmap, but after the first one is freed
it raises its mmap threshold to that block's size, so the next batch's arrays come from the heap, whose freed middle
is not given back: measured on 1M upsert-bulk records, peak RSS 108 MB against 98 MB with the threshold held at its
default (128 KiB), for no measurable CPU. Holding it is one ``mallopt`` call (glibc's documented
``M_MMAP_THRESHOLD``, the same as setting ``MALLOC_MMAP_THRESHOLD_``); on other C libraries nothing is done.
"""

from __future__ import annotations

import ctypes

M_MMAP_THRESHOLD = -3  # glibc's malloc.h
MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's default, which a fixed setting keeps from moving


def give_freed_blocks_back() -> bool:
    """Hold glibc's mmap threshold at its default for this process; False where that is not possible."""
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the interpreter runs on
    except (OSError, AttributeError):
        return False  # not glibc (musl and others have no mallopt)
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
