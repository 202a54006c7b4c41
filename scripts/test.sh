#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what is missing, then pytest (which starts the
# Salesforce emulator itself). Extra arguments go to pytest, e.g. scripts/test.sh -k bulk
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/python -m pytest "$@"
