"""How long retries pause, scaled by one environment variable.

The pauses give Salesforce time to recover (a 503 burst, a row lock held by another transaction). Against the
emulator, which recovers at once, tests and trials set ``TARGET_SALESFORCE_RETRY_PAUSE_SCALE`` (e.g. 0.01) to shrink
every pause the target chooses itself; a ``Retry-After`` Salesforce sends is still honoured as sent.
"""

from __future__ import annotations

import os

from target_salesforce.errors import ConfigError

ENV_VAR = "TARGET_SALESFORCE_RETRY_PAUSE_SCALE"


def scale() -> float:
    """The factor every retry pause is multiplied by: 1 unless the environment variable says otherwise."""
    value = os.environ.get(ENV_VAR)
    if not value:
        return 1.0
    try:
        factor = float(value)
    except ValueError:
        factor = -1.0
    if not 0 <= factor <= 1:
        raise ConfigError(f"{ENV_VAR} must be a number between 0 and 1 (e.g. 0.01); got {value!r}")
    return factor
