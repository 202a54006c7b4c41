"""The ``target-salesforce`` command: singer-sdk's CLI, with expected errors reported on one line.

singer-sdk lets every exception reach its excepthook, which logs a traceback. A wrong setting, a refused login or a
malformed input line is not a bug, so such errors are printed as one line naming what to fix, and the exit code is 1
(75 for a clean stop at the API limit, which a rerun from the last STATE resumes).
"""

from __future__ import annotations

import itertools
import json
import logging
import sys

import simplejson
from singer_sdk.exceptions import MissingKeyPropertiesError, RecordsWithoutSchemaException
from singer_sdk.singerlib.exceptions import InvalidInputLine

from target_salesforce.errors import TargetError
from target_salesforce.memory import give_freed_blocks_back
from target_salesforce.target import TargetSalesforce

EXPECTED_ERRORS = (TargetError, InvalidInputLine, RecordsWithoutSchemaException, MissingKeyPropertiesError)


class _DropSinkInitError(logging.Filter):
    """singer-sdk logs a generic "Error initializing target sink" before re-raising; the one-line error says more."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Error initializing target sink")


def _check_config_files(argv: list[str]) -> None:
    """A ``--config`` file that holds JSON but not an object would fail deep inside singer-sdk: name it here."""
    for flag, value in itertools.pairwise(argv):
        if flag != "--config" or value == "ENV":
            continue
        try:
            with open(value, encoding="utf-8") as handle:
                content = json.load(handle)
        except (OSError, ValueError):
            continue  # singer-sdk or main() reports missing and unparsable files
        if not isinstance(content, dict):
            raise TargetError(
                f"the --config file {value} holds a JSON {type(content).__name__}, not an object of settings: "
                "fix the config file"
            )


def main() -> None:
    logging.getLogger(TargetSalesforce.name).addFilter(_DropSinkInitError())
    give_freed_blocks_back()  # the process is the target's alone: its malloc may be tuned for its batches
    try:
        _check_config_files(sys.argv[1:])
        TargetSalesforce.cli()
    except EXPECTED_ERRORS as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"target-salesforce: error: {message}", file=sys.stderr)
        sys.exit(exc.exit_code if isinstance(exc, TargetError) else 1)
    except (json.JSONDecodeError, simplejson.JSONDecodeError) as exc:
        print(
            f"target-salesforce: error: the --config file is not valid JSON ({exc.msg} at line {exc.lineno} "
            f"column {exc.colno}): fix the config file",
            file=sys.stderr,
        )
        sys.exit(1)
    except OSError as exc:
        print(f"target-salesforce: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        sys.exit(1)
