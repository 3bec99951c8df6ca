#!/usr/bin/env bash
# Install everything the tests need (scripts/setup.sh), then run them.
# Extra arguments go to pytest, e.g. scripts/test.sh -k quickstart
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python scripts/unasync.py --check
.venv/bin/ruff check src tests scripts bench examples
.venv/bin/mypy   # strict on client/ and _protocol/ ([tool.mypy] in pyproject.toml)
exec .venv/bin/python -m pytest "$@"
