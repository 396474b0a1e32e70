#!/usr/bin/env bash
# The main job: set up the environment (first time only), then run the whole workflow on the
# configured preset (default: the embedded `smoke` preset, offline, CPU). Extra arguments go to
# Snakemake, e.g. `bash scripts/main.sh --config preset=small` or `bash scripts/main.sh -n`. Run again
# after a crash or a kill, unchanged: the dead run's lock goes, its unfinished jobs are redone.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bash scripts/unlock_stale.sh  # a lock left by a killed run: removed; one held by a live run: respected
# Local jobs start from a fork server that has torch imported (kdprune/forkserver.py: about 2 s of
# CPU saved per job, a third of the smoke run); it serves while this process, Snakemake after the
# exec, runs. KDPRUNE_FORKSERVER=off runs every job in its own fresh process.
if [ "${KDPRUNE_FORKSERVER:-}" != off ]; then
    export KDPRUNE_FORKSERVER="${TMPDIR:-/tmp}/kdprune-forkserver-$$.sock"
    python -m kdprune forkserver --socket "$KDPRUNE_FORKSERVER" --parent $$ >/dev/null 2>&1 &
else
    unset KDPRUNE_FORKSERVER
fi
# --keep-going: a failed job (a run whose loss turned non-finite, say) stops its own branch only;
# every other job still runs, the ledger marks the claims that needed it `incomplete`, and the exit
# status is still non-zero.
exec snakemake --cores all all_figures --rerun-incomplete --keep-going "$@"
