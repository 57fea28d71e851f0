#!/usr/bin/env bash
# Creates .venv and installs the project with its development tools from pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
quiet() { "$@" 2>&1 | grep -v "^WARNING: Location" || true; }
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
quiet .venv/bin/pip install --quiet --upgrade pip
quiet .venv/bin/pip install --quiet -e '.[dev]'
test -x .venv/bin/circulate || { echo "error: installing the project into .venv failed (see pip's output above)" >&2; exit 1; }
