"""Fault injection: the misbehaviours a test can ask the emulator for through ``POST /_emulator/faults``.

A client that writes to Salesforce has to survive expired sessions, 503s, dropped connections, row locks and
failed Bulk jobs; a real org produces those only by bad luck, so the emulator produces them on request.
Every counter is consumed under one lock so that concurrent requests never take the same fault twice.
The row-lock draw uses a seeded RNG, reseeded on every change, so a test run is reproducible.

``only_calls`` and ``skip_calls`` aim the counted faults (503, drops) at one kind of call in the middle of a run,
e.g. the upload of a Bulk job's data after two jobs went through: a client's handling of a lost answer differs
per endpoint, and a run's first calls (describe, limits) are not where it matters.
"""

from __future__ import annotations

import random
import re
import threading
from decimal import Decimal
from typing import Any

# Setting name -> (type accepted from JSON, cleared value). bool is checked before int (bool is an int in Python).
_SETTINGS: dict[str, tuple[type, Any]] = {
    "expire_sessions_after_calls": (int, None),
    "http_503_next": (int, 0),
    "drop_connection_next": (int, 0),
    "drop_after_processing_next": (int, 0),
    "lock_row_fraction": (float, 0.0),
    "fail_next_bulk_job": (bool, False),
    "daily_api_limit": (int, None),
    "latency_ms": (int, None),
    "bulk_processing_delay_ms": (int, 0),
    "only_calls": (str, None),
    "skip_calls": (int, 0),
}

# Counters that a request consumes one unit of; see ``take``.
COUNTERS = ("http_503_next", "drop_connection_next", "drop_after_processing_next")

DEFAULT_SEED = 0


class Faults:
    """The current fault settings. ``None`` for a limit means "not overridden": the server's own setting applies."""

    expire_sessions_after_calls: int | None
    http_503_next: int
    drop_connection_next: int
    drop_after_processing_next: int
    lock_row_fraction: float
    fail_next_bulk_job: bool
    daily_api_limit: int | None
    latency_ms: int | None
    bulk_processing_delay_ms: int
    only_calls: str | None
    skip_calls: int

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(DEFAULT_SEED)
        self.clear()

    def clear(self) -> None:
        """Back to no faults at all (and a freshly seeded row-lock RNG)."""
        with self._lock:
            for name, (_, cleared) in _SETTINGS.items():
                setattr(self, name, cleared)
            self._rng.seed(DEFAULT_SEED)

    def replace(self, settings: dict[str, Any]) -> None:
        """Set exactly ``settings`` (everything else cleared); ``seed`` reseeds the row-lock RNG.

        Replacing rather than merging makes a test's fault set the one it posted, whatever ran before.
        Raises ValueError naming the first bad key or value, before changing anything.
        """
        seed = settings.get("seed", DEFAULT_SEED)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError("seed must be an integer")
        checked = {name: _checked(name, value) for name, value in settings.items() if name != "seed"}
        with self._lock:
            for name, (_, cleared) in _SETTINGS.items():
                setattr(self, name, checked.get(name, cleared))
            self._rng.seed(seed)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {name: getattr(self, name) for name in _SETTINGS}

    def targets(self, call: str) -> bool:
        """Whether the counted faults may hit ``call`` ("METHOD path", the path after ``/services/data/vXX.X/``).

        Asked once per API call: a call that ``only_calls`` (a regular expression searched in ``call``) selects
        first uses up one of ``skip_calls``; the calls after those are the targets.
        """
        with self._lock:
            if self.only_calls is not None and not re.search(self.only_calls, call):
                return False
            if self.skip_calls > 0:
                self.skip_calls -= 1
                return False
            return True

    def take(self, counter: str) -> bool:
        """Consume one unit of ``counter`` (one of COUNTERS); true when the current request gets that fault."""
        with self._lock:
            remaining = getattr(self, counter)
            if remaining <= 0:
                return False
            setattr(self, counter, remaining - 1)
            return True

    def session_expires_now(self) -> bool:
        """Count one authenticated API call; true once, on the call after ``expire_sessions_after_calls`` calls.

        The caller then invalidates every issued access token, so the client must log in again, as after
        a real org's session timeout or an admin revoking sessions.
        """
        with self._lock:
            remaining = self.expire_sessions_after_calls
            if remaining is None:
                return False
            if remaining == 0:
                self.expire_sessions_after_calls = None
                return True
            self.expire_sessions_after_calls = remaining - 1
            return False

    def lock_row(self) -> bool:
        """One draw per written row: true means the row fails with UNABLE_TO_LOCK_ROW."""
        with self._lock:
            return self.lock_row_fraction > 0 and self._rng.random() < self.lock_row_fraction

    def take_fail_next_bulk_job(self) -> bool:
        """True for exactly one Bulk job after the fault was set."""
        with self._lock:
            fail, self.fail_next_bulk_job = self.fail_next_bulk_job, False
            return fail


def _checked(name: str, value: Any) -> Any:
    if name not in _SETTINGS:
        raise ValueError(f"unknown fault {name!r}; known: {', '.join(sorted(_SETTINGS))}")
    kind, cleared = _SETTINGS[name]
    if value is None:
        return cleared
    if kind is str:
        try:
            re.compile(value)
        except (TypeError, re.error):
            raise ValueError(f"{name} must be a regular expression") from None
        return value
    if kind is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal) or value < 0:
        raise ValueError(f"{name} must be a non-negative number")
    if kind is int and value != int(value):
        raise ValueError(f"{name} must be a whole number")
    if kind is float and value > 1:
        raise ValueError(f"{name} must be between 0 and 1")
    return kind(value)
