#!/usr/bin/env bash
# Before a run in the current folder: a lock that a dead Snakemake left behind (killed with SIGKILL,
# machine rebooted) is removed, with one line saying so; a lock that a live Snakemake holds is
# respected, with one line naming its process, and the script fails. No lock: nothing to do.
# scripts/main.sh calls it, then runs Snakemake with --rerun-incomplete, so that the unfinished
# jobs of the dead run are redone and the finished ones are not (issue #17).
set -euo pipefail
locks=.snakemake/locks
[[ -d $locks && -n $(ls -A "$locks" 2>/dev/null) ]] || exit 0
here=$(pwd -P)
live=()
for pid in $(pgrep -f -- "(^|/|-m )snakemake( |$)" || true); do
    [[ $pid == "$$" || $pid == "$PPID" ]] && continue
    # a Snakemake whose working folder is this one (jobs it spawns run elsewhere or without the lock)
    if [[ $(readlink "/proc/$pid/cwd" 2>/dev/null) == "$here" ]] && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qv -- "--nolock"; then
        live+=("$pid")
    fi
done
if (( ${#live[@]} )); then
    echo "kdprune: a running Snakemake (pid ${live[*]}) holds the lock of $here; wait for it to finish, or stop it (kill ${live[*]}) and run again" >&2
    exit 1
fi
echo "kdprune: removing the lock a stopped Snakemake run left in $here; its unfinished jobs are redone, its finished ones kept" >&2
snakemake --unlock > /dev/null 2>&1
