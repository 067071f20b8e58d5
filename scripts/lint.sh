#!/bin/sh
# Run the linters .ci/run runs before the tests, in the venv scripts/test.sh
# uses: ruff (lint rules, then formatting) and mypy (strict for checks/ and
# probeserver/, defaults for wizard/; the configuration is in pyproject.toml).
# Fix formatting with `.venv/bin/ruff format`, safe lint fixes with
# `.venv/bin/ruff check --fix`.
set -eu
cd "$(dirname "$0")/.."
. scripts/venv.sh
status=0
echo "ruff check"
"$venv/bin/ruff" check --no-cache . || status=1
echo "ruff format --check"
"$venv/bin/ruff" format --no-cache --check . || status=1
echo "mypy"
"$venv/bin/mypy" || status=1
exit $status
