#!/usr/bin/env bash
# The main job: set up the environment (first time only), then run the whole workflow on the
# configured preset (default: the embedded `smoke` preset, offline, CPU). Extra arguments go to
# Snakemake, e.g. `bash scripts/main.sh --config preset=small` or `bash scripts/main.sh -n`. Run again
# after a crash or a kill, unchanged: the dead run's lock goes, its unfinished jobs are redone.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bash scripts/unlock_stale.sh  # a lock left by a killed run: removed; one held by a live run: respected
exec snakemake --cores all all_figures --rerun-incomplete "$@"
