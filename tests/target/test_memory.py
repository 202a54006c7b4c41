"""The malloc setting the CLI makes: held on glibc, skipped elsewhere (its effect is measured in benchmarks/)."""

from __future__ import annotations

import platform

from target_salesforce.memory import give_freed_blocks_back


def test_the_mmap_threshold_is_held_exactly_where_glibc_runs() -> None:
    assert give_freed_blocks_back() is (platform.libc_ver()[0] == "glibc")
