#!/usr/bin/env bash
# Installs checkov into a virtualenv of its own (.venv-tools), not the project's .venv: checkov pins
# many dependencies exactly and would otherwise fight the project's own. tests/unit/test_terraform_checkov.py
# runs .venv-tools/bin/checkov and skips, saying to run this, when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=.venv-tools
if [ -x "$tools/bin/checkov" ]; then
  exit 0
fi
python3 -m venv "$tools"
"$tools/bin/pip" install --quiet --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
"$tools/bin/pip" install --quiet 'checkov>=3.2,<4' 2>&1 | grep -v "^WARNING: Location" || true
test -x "$tools/bin/checkov" || { echo "error: installing checkov into $tools failed (see pip's output above)" >&2; exit 1; }
