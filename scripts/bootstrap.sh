#!/usr/bin/env bash
# Creates .venv with the pinned versions of requirements-dev.lock (runtime + dev tools, compiled
# from pyproject.toml by `make lock`), then installs the project itself, editable, without
# resolving anything again. Needs only Python 3.11 and pip.
set -euo pipefail
cd "$(dirname "$0")/.."
quiet() { "$@" 2>&1 | grep -v "^WARNING: Location" || true; }
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
quiet .venv/bin/pip install --quiet --upgrade pip
quiet .venv/bin/pip install --quiet -r requirements-dev.lock
quiet .venv/bin/pip install --quiet --no-deps -e .
test -x .venv/bin/circulate || { echo "error: installing the project into .venv failed (see pip's output above)" >&2; exit 1; }
