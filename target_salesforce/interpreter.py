"""How the Python interpreter is tuned while records stream through: the garbage collector, and how long a thread
may keep the interpreter while another wants it."""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# How long a thread may keep the interpreter while another wants it, during a run (see interpreter_tuned_for_records).
SWITCH_INTERVAL_SECONDS = 0.05
# The same during a Bulk upload or result download (see brisk_handovers).
TRANSFER_SWITCH_INTERVAL_SECONDS = 0.0001

_transfers = 0  # Bulk transfers under way, in any thread
_interval_before = SWITCH_INTERVAL_SECONDS  # the switch interval the first of them found
_transfers_lock = threading.Lock()


@contextmanager
def interpreter_tuned_for_records() -> Iterator[None]:
    """Make the cyclic garbage collector cheap and thread switches rarer while records stream through; both are
    restored afterwards.

    A batch holds tens of thousands of rows (dicts) at once, and with the default thresholds the collector ran 800
    times per 100,000 records, each time walking the rows it holds and, at full collections, every object imports
    made: about 3 µs of CPU per record. Records, rows and their values are freed by reference counting (they form no
    cycles), so the collector only has stragglers to find: objects made before the first record are frozen out of
    its walks and it runs once per 200,000 new container objects instead of 700. At 50,000 it still ran about 2,600
    times per million records, its full collections taking 35 ms each (0.85 µs a record; 0.2 µs at 200,000, measured
    with gc.callbacks on 300,000 records). Restoring matters where the target runs inside another process (singer-sdk's
    standard tests do).

    While a full batch is written in the background, the reading thread and the writing thread both want the CPU,
    and Python hands the interpreter from one to the other every 5 ms by default; every 50 ms costs less in
    hand-overs (1M upsert-bulk records: 25 against 28 µs of CPU a record, mean of 3 runs against 2). Only a Bulk
    transfer needs shorter turns, and takes them (see brisk_handovers).
    """
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(200_000, 20, 10)
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    try:
        yield
    finally:
        sys.setswitchinterval(switch_interval)
        gc.set_threshold(*thresholds)
        gc.unfreeze()


@contextmanager
def brisk_handovers() -> Iterator[None]:
    """Hand the interpreter over every millisecond while a Bulk job's CSV is uploaded or its results downloaded.

    Over TLS each 16 KB record sent or received releases the interpreter, and the transfer's thread then waits for
    the reading thread's turn to end before it can go on. With 50 ms turns, a 1M upsert-bulk run uploaded its
    second job (483,526 rows) in 4.3 s while records were read, and its third (316,474 rows) in 0.6 s after the end
    of input; Salesforce sat idle meanwhile (timed from the emulator's call log). The rest of a run keeps 50 ms turns.
    """
    global _transfers, _interval_before
    with _transfers_lock:
        if _transfers == 0:
            _interval_before = sys.getswitchinterval()
            sys.setswitchinterval(min(_interval_before, TRANSFER_SWITCH_INTERVAL_SECONDS))
        _transfers += 1
    try:
        yield
    finally:
        with _transfers_lock:
            _transfers -= 1
            if _transfers == 0:
                sys.setswitchinterval(_interval_before)
