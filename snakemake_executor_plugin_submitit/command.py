"""The callable submitit runs on the compute node: one Snakemake job command in a shell."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass

from submitit.core.job_environment import JobEnvironment
from submitit.core.utils import DelayedSubmission

from .signals import handlers


class CommandFailed(RuntimeError):
    """The job's command exited non-zero (its own output is in the job's log)."""


@dataclass(frozen=True)
class ShellCommand:
    """Runs `command` (a `snakemake --mode remote ...` line) and fails when it fails.

    Checkpointable in submitit's sense: on preemption or an approaching time limit, submitit's
    signal handler calls `checkpoint()`, stores the returned submission and requeues the SLURM
    job, which then runs the same command again. Resuming is the command's business (the
    workflow's training jobs continue from their own checkpoint file).
    """

    command: str
    # Seconds the command gets to exit after SIGTERM (time to save a checkpoint) before its
    # process group is killed; below SLURM's default KillWait of 30 s.
    grace_s: float = 20.0

    def __call__(self) -> None:
        # The command ignores submitit's preemption signal (USR2 by default), which SLURM sends
        # to every process of the job step: only this process should react to it (checkpoint,
        # requeue), and then stop the command below with SIGTERM. A new session lets us stop
        # the whole tree (bash, snakemake, the rule's processes) as one process group.
        guarded = f"trap '' {JobEnvironment.USR_SIG}; {self.command}"
        # scancel's SIGTERM stops the tree as Ctrl-C does: submitit only logs SIGTERM, and the
        # new session below is out of reach of a site whose proctrack signals process groups.
        with handlers(signal.SIGTERM):
            proc = subprocess.Popen(["/bin/bash", "-c", guarded], start_new_session=True)
            try:
                returncode = proc.wait()
            except BaseException:  # SystemExit from submitit's requeue, KeyboardInterrupt on cancel
                # a repeated SIGINT/SIGTERM must not cut the stop short and orphan the tree
                with handlers(signal.SIGINT, signal.SIGTERM, handler=signal.SIG_IGN):
                    _stop_group(proc, self.grace_s)
                raise
        if returncode != 0:
            raise CommandFailed(f"the Snakemake job command exited with status {returncode}")

    def checkpoint(self) -> DelayedSubmission:
        """Resubmit unchanged: the command itself knows how to resume."""
        return DelayedSubmission(self)


def _stop_group(proc: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM the command's process group, SIGKILL what is left of it after `grace_s`."""
    pgid = proc.pid  # start_new_session: the group id is the leader's pid
    try:
        os.killpg(pgid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            proc.poll()  # reap the leader, or the group never looks empty
            os.killpg(pgid, 0)  # raises ProcessLookupError once every member is gone
            time.sleep(0.1)
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
