"""The target's error types.

Every error a user can cause or meet carries a one-line message that names the setting, record or field and says
what to do; the CLI prints that line without a traceback. None of them may carry a secret.
"""

from __future__ import annotations


class TargetError(Exception):
    """An expected failure that ends the run with a one-line message and a non-zero exit code."""

    exit_code = 1


class ConfigError(TargetError):
    """The configuration cannot work (bad or conflicting settings, unknown object or field): checked before writing."""


class AuthError(TargetError):
    """Salesforce refused the credentials, or the login URL is not a Salesforce login endpoint."""


class SalesforceApiError(TargetError):
    """A whole API call failed with an answer from Salesforce, after any retries."""

    def __init__(self, status: int, error_code: str, message: str) -> None:
        super().__init__(f"Salesforce answered HTTP {status} {error_code}: {message}")
        self.status = status
        self.error_code = error_code
        self.message = message


class ApiLimitReached(TargetError):
    """The run's API budget or the org's daily limit is used up: stop cleanly after what was written.

    Its own exit code (75, EX_TEMPFAIL: "try again later") lets a scheduler tell a run to resume from one to fix.
    """

    exit_code = 75
