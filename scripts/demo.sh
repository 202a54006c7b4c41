#!/usr/bin/env bash
# The first thing to try: installs what is missing (scripts/bootstrap.sh), then syncs a sample PostgreSQL table
# into the bundled Salesforce emulator with tap-postgres and target-salesforce, and shows what landed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python scripts/demo.py
