"""The ``target-salesforce`` command: singer-sdk's CLI, with expected errors reported on one line.

singer-sdk lets every exception reach its excepthook, which logs a traceback. A wrong setting or a refused login is
not a bug, so such errors are printed as one line naming what to fix, and the exit code is 1.
"""

from __future__ import annotations

import sys

from target_salesforce.errors import TargetError
from target_salesforce.target import TargetSalesforce


def main() -> None:
    try:
        TargetSalesforce.cli()
    except TargetError as exc:
        print(f"target-salesforce: error: {exc}", file=sys.stderr)
        sys.exit(1)
