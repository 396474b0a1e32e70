#!/usr/bin/env bash
# The test suite: set up the environment (first time only), then run every test. Extra
# arguments go to pytest, e.g. `bash scripts/test.sh -m "not workflow"` for the fast unit tests.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
exec python -m pytest -ra "$@"
