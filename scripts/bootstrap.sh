#!/usr/bin/env bash
# Installs everything the tests and the demo need on a fresh machine:
#   .venv          target-salesforce (editable) with its test tools and tap-postgres (same singer-sdk, `pip check` clean)
#   .venv-meltano  Meltano, kept apart because it is an orchestrator with a large dependency tree of its own; it
#                  installs its plugins into venvs of their own anyway
#   PostgreSQL     server binaries only; the tests and the demo start private throwaway servers
# Safe to run again: each part is redone only when what it installs from changed (stamp files keyed on a hash).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
MELTANO_SPEC="meltano>=4.4,<5"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Debian keeps initdb/pg_ctl under /usr/lib/postgresql/<major>/bin; tests/postgres.py looks there, then on PATH.
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && ! command -v initdb >/dev/null; then
  echo "bootstrap: installing PostgreSQL (apt-get)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi

# install_venv DIR STAMP_SOURCE PIP_ARGS...: (re)install PIP_ARGS into DIR when STAMP_SOURCE's hash changed.
install_venv() {
  local dir=$1 stamp_source=$2
  shift 2
  if [ ! -x "$dir/bin/python" ]; then
    "$PYTHON" -m venv "$dir"
  fi
  local stamp
  stamp="$dir/.installed-$(printf '%s' "$stamp_source" | sha256sum | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    "$dir/bin/python" -m pip install --quiet --upgrade pip
    "$dir/bin/python" -m pip install --quiet "$@"
    rm -f "$dir"/.installed-*
    touch "$stamp"
  fi
}

install_venv .venv "$(cat pyproject.toml)" -e '.[dev]'
install_venv .venv-meltano "$MELTANO_SPEC" "$MELTANO_SPEC"
# .gitignore names .venv/ only; this keeps the second venv out of git without touching it.
echo '*' >.venv-meltano/.gitignore
