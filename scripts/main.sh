#!/usr/bin/env bash
# The main job: set up the environment (first time only), then run the whole workflow on the
# configured preset (default: the embedded `smoke` preset, offline, CPU). Extra arguments go to
# Snakemake, e.g. `bash scripts/main.sh --config preset=small` or `bash scripts/main.sh -n`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
exec snakemake --cores all all_figures "$@"
