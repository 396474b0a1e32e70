"""Batched job-state queries: one sacct (or squeue) call per polling round for all jobs."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

# SLURM states after which a job will not run again. Anything else (PENDING, RUNNING,
# REQUEUED, COMPLETING, SUSPENDED, ...) is still in progress: a requeued job goes back to
# PENDING under the same id, and sacct shows its newest run.
SUCCESS = "COMPLETED"
FAILED_STATES = frozenset(
    {
        "BOOT_FAIL",
        "CANCELLED",
        "DEADLINE",
        "FAILED",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
        "PREEMPTED",
        "TIMEOUT",
        "REVOKED",
        "SPECIAL_EXIT",
    }
)
# States SLURM writes to the accounting for a run that it may requeue (preemption with
# PreemptMode=REQUEUE, a node failure of a --requeue job): sacct shows them as the job's newest
# record until the requeued run is recorded, seconds to minutes later. Only the controller
# (squeue) knows then whether the job is over or pending again.
MAYBE_REQUEUED = frozenset({"PREEMPTED", "NODE_FAIL"})
# squeue no longer lists a job some minutes after it ended (MinJobAge); the plugin then
# decides from the result file submitit wrote.
GONE = "GONE"


class StatusQueryError(RuntimeError):
    pass


def is_finished(state: str | None) -> bool:
    return state == SUCCESS or state in FAILED_STATES


def _run(command: list[str], timeout_s: float) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise StatusQueryError(f"{command[0]}: {error}") from error
    if done.returncode != 0:
        raise StatusQueryError(f"{' '.join(command)} exited {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def _parse(output: str) -> dict[str, str]:
    """'123|CANCELLED by 0' lines -> {'123': 'CANCELLED'}."""
    states: dict[str, str] = {}
    for line in output.splitlines():
        job_id, _, state = line.strip().partition("|")
        if job_id and state:
            states[job_id] = state.split()[0].rstrip("+")
    return states


def sacct_states(job_ids: Sequence[str], timeout_s: float = 60) -> dict[str, str]:
    """States of the given jobs from the accounting database. With -j, sacct searches from
    the epoch, so jobs older than today are found too; -X skips the job steps."""
    command = ["sacct", "-X", "-n", "-P", "-o", "JobIDRaw,State", "-j", ",".join(job_ids)]
    return _parse(_run(command, timeout_s))


def squeue_states(job_ids: Sequence[str], timeout_s: float = 60) -> dict[str, str]:
    """States from the controller (works without accounting). Jobs it no longer lists are
    reported as GONE."""
    command = ["squeue", "-h", "--states=all", "-o", "%i|%T", "-j", ",".join(job_ids)]
    try:
        listed = _parse(_run(command, timeout_s))
    except StatusQueryError as error:
        if "Invalid job id" not in str(error):  # squeue's answer when none of the ids is left
            raise
        listed = {}
    return {job_id: listed.get(job_id, GONE) for job_id in job_ids}
