"""The run's own API budget: how much of the org's daily API limit may be used up before the run stops.

The org's daily limit is shared by every integration. A large load that uses it all up breaks the others until the
rolling 24-hour window frees calls, so a user can stop the run once the org's usage reaches ``max_api_usage_percent``
of the limit. The usage comes for free with every answer (``Sforce-Limit-Info: api-usage=USED/LIMIT``); the sink
asks the budget before each group of writes, so a group already started finishes (its rows get their outcomes) and
no new one starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from target_salesforce.errors import ApiLimitReached

SETTING = "max_api_usage_percent"


class ApiBudgetReached(ApiLimitReached):
    """The run has used its share of the org's daily API limit; nothing more is written."""

    def __init__(self, percent: int, used: int, limit: int) -> None:
        super().__init__(
            f"the run's API budget is used up ({SETTING} {percent}: the org has used {used} of its "
            f"{limit} daily API requests, the budget allows {allowed_calls(percent, limit)})"
        )


def allowed_calls(percent: int, limit: int) -> int:
    """The org's usage at which the run stops: ``percent`` of ``limit``, rounded down (never more than the share)."""
    return limit * percent // 100


class ApiBudget:
    """``max_api_usage_percent`` of the org's daily limit, or no budget of our own when it is unset."""

    def __init__(self, percent: int | None) -> None:
        self.percent = percent

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ApiBudget:
        value = config.get(SETTING)
        return cls(None if value is None else int(value))

    @property
    def enabled(self) -> bool:
        return self.percent is not None

    def check(self, used: int, limit: int) -> None:
        """Raise ApiBudgetReached once the org's usage has reached the run's share of ``limit``."""
        if self.percent is not None and used >= allowed_calls(self.percent, limit):
            raise ApiBudgetReached(self.percent, used, limit)


def stop_message(reason: ApiLimitReached, written: int, rejected: int, usage: tuple[int, int] | None) -> str:
    """The one line a run that stopped at the API limit ends with: why, how far it got, and how to go on."""
    when = (
        f"once the org's usage has fallen below the budget, or at once after raising {SETTING}"
        if isinstance(reason, ApiBudgetReached)
        else "once the org has API requests left"
    )
    return (
        f"stopped cleanly: {reason}. Progress: {written} record(s) written and {rejected} rejected before the stop"
        f"{f'; org API usage {usage[0]}/{usage[1]}' if usage else ''}. Records after the last STATE this run printed "
        "may not be written yet (none was rejected because of the stop): to resume, run again from that STATE "
        f"(Meltano does this by itself) {when}."
    )
