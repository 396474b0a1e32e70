#!/usr/bin/env bash
# How fast the workflow plans: what every `snakemake` call and every cluster job pays before any
# work (docs/architecture.md). Run from the repository root, with nothing else running:
#   bash scripts/bench_plan.sh            # 5 runs of each figure, median reported
# Prints: the dry run of the `paper` and `smoke` presets (parse + whole DAG), the parse cost of one
# job (a dry run of a single teacher target: what `snakemake --mode remote` repeats in every job on
# a cluster, roughly), the import time of the planning layer, and the longest command line of the
# `paper` dry run in bytes.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
runs=${RUNS:-5}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
timed() {  # label, command...: the median wall seconds of $runs runs (after one warm-up)
    local label=$1; shift
    "$@" >/dev/null 2>&1 || { echo "$label: the command failed: $*" >&2; exit 1; }
    for _ in $(seq "$runs"); do
        /usr/bin/time -f "%e" "$@" 2>&1 >/dev/null | tail -1
    done | median | xargs printf "%-44s %s s (median of $runs)\n" "$label"
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
teacher=$(python -c "from kdprune.plan import Plan; p = Plan.from_config('config.yaml'); print(p.outputs('teacher', next(iter(p.jobs('teacher'))))['metrics'])")
timed "dry run, preset paper" snakemake all_figures -n --quiet all --config preset=paper
timed "dry run, preset smoke" snakemake all_figures -n --quiet all --config preset=smoke
timed "one job's parse (dry run of one teacher)" snakemake "$teacher" -n --quiet all --no-hooks
timed "import kdprune.plan + the paper plan" python -c "from kdprune.plan import Plan; Plan.from_config('config.yaml', {'preset': 'paper'})"
snakemake all_figures -n -p --config preset=paper > "$tmp/paper.txt" 2>&1
grep -E "^\s*(python|Shell command)" "$tmp/paper.txt" | awk '{ if (length($0) > n) n = length($0) } END { printf "%-44s %d bytes\n", "longest command line, preset paper", n }'
