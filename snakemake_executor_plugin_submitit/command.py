"""The callable submitit runs on the compute node: one Snakemake job command in a shell."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from types import FrameType
from typing import Any

from submitit.core.job_environment import JobEnvironment
from submitit.core.utils import DelayedSubmission

from .signals import handlers

Handler = Callable[[int, FrameType | None], Any]


class CommandFailed(RuntimeError):
    """The job's command exited non-zero (its own output is in the job's log)."""


@dataclass(frozen=True)
class ShellCommand:
    """Runs `command` (a `snakemake --mode remote ...` line) and fails when it fails.

    Checkpointable in submitit's sense: on preemption or an approaching time limit, submitit's
    signal handler calls `checkpoint()`, stores the returned submission and requeues the SLURM
    job, which then runs the same command again. Resuming is the command's business (the
    workflow's training jobs write a checkpoint on SIGTERM and continue from it).
    """

    command: str
    # Seconds the command gets to exit after SIGTERM (time to save a checkpoint) before its
    # process group is killed; below SLURM's default KillWait of 30 s, which bounds it anyway.
    grace_s: float = 20.0

    def __call__(self) -> None:
        # The command ignores submitit's preemption signal (USR2 by default), which SLURM sends
        # to every process of the job step: its default action would kill bash and Snakemake
        # mid-job. This process reacts instead and tells the command with SIGTERM. A new
        # session lets us signal the whole tree (bash, snakemake, the rule's processes) as one
        # process group.
        guarded = f"trap '' {JobEnvironment.USR_SIG}; {self.command}"
        # scancel's SIGTERM stops the tree as Ctrl-C does: submitit only logs SIGTERM, and the
        # new session below is out of reach of a site whose proctrack signals process groups.
        with handlers(signal.SIGINT, signal.SIGTERM):
            proc = subprocess.Popen(["/bin/bash", "-c", guarded], start_new_session=True)
            preempt = JobEnvironment._usr_sig()
            with handlers(preempt, handler=_terminate_then(proc, signal.getsignal(preempt))):
                try:
                    returncode = proc.wait()
                except BaseException:  # SystemExit from submitit's requeue, KeyboardInterrupt on cancel
                    # a repeated signal must not cut the stop short and orphan the tree (nor a
                    # late USR2 after scancel's or a preemption's SIGTERM requeue the job again)
                    with handlers(signal.SIGINT, signal.SIGTERM, preempt, handler=signal.SIG_IGN):
                        _stop_group(proc, self.grace_s)
                    raise
        if returncode != 0:
            raise CommandFailed(f"the Snakemake job command exited with status {returncode}")

    def checkpoint(self) -> DelayedSubmission:
        """Resubmit unchanged: the command itself knows how to resume."""
        return DelayedSubmission(self)


def _terminate_then(proc: subprocess.Popen[bytes], requeue: Handler | int | None) -> Handler:
    """The preemption signal's handler: SIGTERM to the command's process group at once, then
    submitit's handler `requeue` (checkpoint(), `scontrol requeue`, SystemExit).

    The command is told first so that its checkpoint is written while submitit requeues (which
    can take seconds on a busy controller), within SLURM's KillWait that follows the requeue.
    SIGTERM, not the preemption signal itself: every process of the tree stops on SIGTERM
    (Snakemake finishes its job, a training job checkpoints), it is what SLURM sends at the
    end of any job, and a site whose process tracking misses the command's session sends
    nothing else to it."""

    def handler(signum: int, frame: FrameType | None) -> None:
        # The job ends from here on, requeued or failed (out of timeouts): neither SLURM's
        # SIGTERM after the requeue nor a second USR2 may cut submitit's handler short. The
        # `handlers` blocks in ShellCommand.__call__ restore the three afterwards.
        for sig in (signal.SIGINT, signal.SIGTERM, signum):
            signal.signal(sig, signal.SIG_IGN)
        with suppress(ProcessLookupError):  # the command has just ended by itself
            os.killpg(proc.pid, signal.SIGTERM)
        if callable(requeue):
            requeue(signum, frame)

    return handler


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
