#!/usr/bin/env bash
# Regenerate requirements/lock.txt: the exact versions CI installs and published numbers use.
# Resolves pyproject's bounds afresh in a throwaway venv (Python 3.11, CPU), then freezes it.
# Usage: bash scripts/update_lock.sh      (then run `.ci/run` and commit the lock if it passes)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="$(mktemp -d)/venv"
trap 'rm -rf "$(dirname "$VENV")"' EXIT
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -e ".[dev]"
{
  echo "# Exact versions goalax is tested with (CI installs them): Python 3.11, CPU."
  echo "# Install: pip install -c requirements/lock.txt -e \".[dev]\""
  echo "# Regenerate: bash scripts/update_lock.sh"
  "$VENV/bin/python" -m pip freeze --exclude-editable | LC_ALL=C sort -f
} > requirements/lock.txt
