"""The interpreter's switch interval during a run and during Bulk transfers (pure logic, no Salesforce).

Python keeps the interval in whole microseconds, so a value read back is compared within a rounding.
"""

from __future__ import annotations

import sys
import threading

from pytest import approx

from target_salesforce.interpreter import (
    SWITCH_INTERVAL_SECONDS,
    TRANSFER_SWITCH_INTERVAL_SECONDS,
    brisk_handovers,
    interpreter_tuned_for_records,
)


def test_transfers_take_short_turns_until_the_last_one_ends_in_any_thread() -> None:
    before = sys.getswitchinterval()
    with interpreter_tuned_for_records():
        assert sys.getswitchinterval() == approx(SWITCH_INTERVAL_SECONDS, rel=1e-3)
        first_started, second_started, first_may_end = threading.Event(), threading.Event(), threading.Event()
        seen: list[float] = []

        def first() -> None:
            with brisk_handovers():
                first_started.set()
                first_may_end.wait(5)

        thread = threading.Thread(target=first)
        thread.start()
        first_started.wait(5)
        with brisk_handovers():
            second_started.set()
            first_may_end.set()
            thread.join(5)  # the first transfer ends while this one goes on
            seen.append(sys.getswitchinterval())
            with brisk_handovers():  # nested
                seen.append(sys.getswitchinterval())
            seen.append(sys.getswitchinterval())
        assert seen == approx([TRANSFER_SWITCH_INTERVAL_SECONDS] * 3, rel=1e-2)
        assert sys.getswitchinterval() == approx(SWITCH_INTERVAL_SECONDS, rel=1e-3)
    assert sys.getswitchinterval() == approx(before, rel=1e-3)
