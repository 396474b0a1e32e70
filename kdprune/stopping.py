"""How a job stops early, and what the CLI says: a non-finite loss (the run fails, exit 1, one line)
and a stop signal (state saved, exit 75, a rerun resumes).

Stop signals (SLURM preemption, time limit):
SLURM (and submitit's requeue, through the executor plugin) sends SIGUSR2 or SIGTERM. Inside
`stop_on_signals()` those signals only set a flag; the long loops (training steps, distillation
iterations) poll `requested()` at points where their state is consistent, write a checkpoint at
once and raise `Preempted`. The CLI turns that into exit status 75 (EX_TEMPFAIL: try again), and
the rerun, requeued or by hand, resumes from the checkpoint."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

PREEMPTED_EXIT = 75  # sysexits' EX_TEMPFAIL
SIGNALS = (signal.SIGTERM, signal.SIGUSR2)

_received: list[int] = []


class NonFiniteLoss(FloatingPointError):
    """A run's loss became NaN or infinite: the run stops, its last good checkpoint stays."""


class Preempted(Exception):
    """The job was asked to stop and saved its state; rerunning it resumes."""


def requested() -> str | None:
    """The name of the stop signal received inside `stop_on_signals()`, or None."""
    return signal.Signals(_received[0]).name if _received else None


def request(signum: int = signal.SIGTERM) -> None:
    """Ask the running loop to stop as if `signum` arrived (tests, and the handler below)."""
    if not _received:
        _received.append(signum)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """While inside, SIGTERM and SIGUSR2 ask the loop to stop at its next safe point instead of
    killing the process; the previous handlers come back on exit."""
    _received.clear()
    previous = {sig: signal.signal(sig, lambda signum, frame: request(signum)) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _received.clear()
