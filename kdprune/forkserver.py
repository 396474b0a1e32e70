"""A fork server for local runs: every `python -m kdprune ...` job of a local workflow starts from a
process that has already imported torch, pandas and the suite, instead of importing them anew
(about 2 s of a 2-core CPU per job: a third of the smoke run's time goes to imports otherwise).

scripts/main.sh starts one server per run (`python -m kdprune forkserver --socket S &`) and exports
KDPRUNE_FORKSERVER=S before it starts Snakemake. A job's `python -m kdprune ...` (the client, which
imports nothing heavy) then connects, sends its arguments, working directory and environment, and
hands over its standard streams (the job's log file); the server forks a child that takes them over,
runs the command and reports its exit status, which the client exits with. Without the variable, or
when the server does not answer (not up yet, gone), the command runs in its own process as before:
the server only ever saves time. Clusters never use it (each job is its own process there anyway).

Safety: the server imports but computes nothing, so no thread pool or CUDA context exists when it
forks (both are created lazily by the child). A child whose client goes away (Snakemake killed the
job) terminates itself, so a killed job never keeps writing files. The server exits when the process
that started it (Snakemake, via `exec`) is gone, and removes its socket."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from pathlib import Path

ENV = "KDPRUNE_FORKSERVER"
PRELOAD = ("torch", "numpy", "pandas", "scipy.stats", "matplotlib.pyplot", "seaborn", "kdprune.jobs.runners", "kdprune.report.verdicts")
STATUS = struct.Struct("!i")  # the child's exit status, sent back when it is done
GONE = 128 + signal.SIGTERM  # what a client reports when its child died without a status


def _send_message(conn: socket.socket, payload: dict, fds: list[int]) -> None:
    blob = json.dumps(payload).encode()
    socket.send_fds(conn, [struct.pack("!I", len(blob))], fds)
    conn.sendall(blob)


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise ConnectionError("the connection closed early")
        data += chunk
    return data


# -- client -----------------------------------------------------------------------------------------


def run_through_server(argv: list[str]) -> int | None:
    """Run `python -m kdprune argv` in a child of the server named by KDPRUNE_FORKSERVER; its exit
    status, or None when there is no server to ask (the caller then runs the command itself)."""
    path = os.environ.get(ENV)
    if not path:
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
        _send_message(conn, {"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}, [0, 1, 2])
    except OSError:
        conn.close()
        return None
    child = STATUS.unpack(_recv_exact(conn, STATUS.size))[0]  # the child's pid, then its exit status

    def forward(signum, frame):  # Snakemake stops a job: stop its child too
        try:
            os.kill(child, signum)
        except ProcessLookupError:
            pass

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(signum, forward)
    try:
        return STATUS.unpack(_recv_exact(conn, STATUS.size))[0]
    except ConnectionError:
        return GONE  # killed before it could report
    finally:
        conn.close()


# -- server -----------------------------------------------------------------------------------------


def _child(conn: socket.socket) -> None:
    """In the forked child: take over the client's streams, directory and environment, run the
    command, report its status. Never returns."""
    status = 1
    try:
        header, fds, _, _ = socket.recv_fds(conn, 4, 3)
        payload = json.loads(_recv_exact(conn, struct.unpack("!I", header)[0]))
        for target, fd in zip((0, 1, 2), fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(payload["cwd"])
        os.environ.clear()
        os.environ.update(payload["env"])
        os.environ.pop(ENV, None)
        conn.sendall(STATUS.pack(os.getpid()))
        threading.Thread(target=_exit_when_client_leaves, args=(conn,), daemon=True).start()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the job's own subprocesses (git) are waited for
        sys.argv = ["kdprune", *payload["argv"]]
        from kdprune.cli import main

        try:
            status = main(payload["argv"]) or 0
        except SystemExit as stop:
            status = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
            if stop.code is not None and not isinstance(stop.code, int):
                print(stop.code, file=sys.stderr)
        except BaseException:
            traceback.print_exc()
            status = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        try:
            conn.sendall(STATUS.pack(status))
        except OSError:
            pass
        os._exit(status)


def _exit_when_client_leaves(conn: socket.socket) -> None:
    """The client sends nothing more; an end of stream means it is gone (its job was killed)."""
    try:
        while conn.recv(1):
            pass
    except OSError:
        pass
    os.kill(os.getpid(), signal.SIGTERM)


def serve(path: str, parent: int | None = None) -> None:
    """Preload, listen on `path`, fork a child per connection; return when `parent` (default: the
    process that started the server) is gone, removing the socket."""
    parent = os.getppid() if parent is None else parent
    if parent <= 1 or not _alive(parent):
        raise SystemExit(f"kdprune forkserver: parent = {parent} is not a running process to serve; pass --parent PID (e.g. $$ before exec)")
    for module in PRELOAD:
        __import__(module)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children reap themselves
    Path(path).unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(64)
    server.settimeout(1.0)
    try:
        while _alive(parent):
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            if os.fork() == 0:
                server.close()
                conn.settimeout(None)
                _child(conn)
            conn.close()
    finally:
        server.close()
        Path(path).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def wait_until_up(path: str, timeout: float = 60.0) -> bool:
    """Whether a server answers on `path` within `timeout` seconds (for tests and benchmarks)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
            return True
        except OSError:
            time.sleep(0.1)
        finally:
            probe.close()
    return False
