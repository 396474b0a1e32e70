"""Stopping signals routed to Python's Ctrl-C path (KeyboardInterrupt).

Snakemake cancels a run's jobs only on KeyboardInterrupt (SIGINT). Its answer to SIGTERM is to
wait for every submitted job, and SIGHUP kills it outright: right for local processes, wrong for a
queue of pending cluster jobs, which would then run with nobody to collect them. Routing both
signals to the same exception gives `kill <pid>` and a closed terminal the effect of Ctrl-C.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


def interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")


def route_to_interrupt(*signals: signal.Signals) -> list[signal.Signals]:
    """Make each signal raise KeyboardInterrupt, except where it is ignored: under `nohup` the
    user asked for SIGHUP to be survived. Returns the signals routed; none outside the main
    thread, where Python cannot set handlers."""
    if threading.current_thread() is not threading.main_thread():
        return []
    routed = [s for s in signals if signal.getsignal(s) is not signal.SIG_IGN]
    for sig in routed:
        signal.signal(sig, interrupt)
    return routed


@contextmanager
def handlers(*signals: signal.Signals, handler: signal.Handlers | None = None) -> Iterator[None]:
    """Inside the block, `signals` raise KeyboardInterrupt (handler None) or get `handler`;
    the previous handlers come back after it. A no-op outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in signals}
    if handler is None:
        route_to_interrupt(*signals)
    else:
        for sig in signals:
            signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            if old is not None:  # None: set outside Python, cannot be restored from here
                signal.signal(sig, old)
