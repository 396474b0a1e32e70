"""The local fork server (kdprune/forkserver.py): a command run through it gives the same output
and exit status as in its own process; a killed client's job stops; the server leaves with the
process it serves."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kdprune.forkserver import ENV, wait_until_up

REPO = Path(__file__).resolve().parent.parent


def kdprune(*args: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kdprune", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300, **kw)


@pytest.fixture
def server(tmp_path):
    path = str(tmp_path / "fs.sock")
    proc = subprocess.Popen([sys.executable, "-m", "kdprune", "forkserver", "--socket", path, "--parent", str(os.getpid())], cwd=REPO)
    assert wait_until_up(path, timeout=120)
    yield path, proc
    proc.kill()
    proc.wait()


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


def test_a_command_through_the_server_prints_and_exits_as_in_its_own_process(server):
    path, proc = server
    env = {**os.environ, ENV: path}
    for args in (["check-config"], ["check-config", "--preset", "nonsense"], ["no-such-verb"]):
        alone, served = kdprune(*args), kdprune(*args, env=env)
        assert (served.returncode, served.stdout, served.stderr) == (alone.returncode, alone.stdout, alone.stderr)
    assert alone.returncode == 2 and kdprune("check-config", env=env).returncode == 0
    # no server at that path (gone, or not up yet): the command runs in its own process
    assert kdprune("check-config", env={**os.environ, ENV: path + ".absent"}).returncode == 0


def long_job(path: str) -> subprocess.Popen:
    """A command that runs for minutes, through the server."""
    args = [sys.executable, "-m", "kdprune", "error-rates", "--reps", "100000000", "--only", "robust_equal"]
    return subprocess.Popen(args, cwd=REPO, env={**os.environ, ENV: path}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def until(condition, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)


@pytest.mark.parametrize("stop", ["terminate", "kill"])
def test_a_stopped_clients_job_stops(server, stop):
    """terminate: what Snakemake does to a job it cancels, forwarded to the child; kill: the client
    has no chance to forward anything, and the child sees its client gone."""
    path, proc = server
    client = long_job(path)
    until(lambda: children(proc.pid))
    (job,) = children(proc.pid)
    getattr(client, stop)()
    assert client.wait(timeout=30) != 0
    until(lambda: job not in children(proc.pid), seconds=30)
    assert job not in children(proc.pid)


def test_the_server_leaves_with_the_process_it_serves(tmp_path):
    path = tmp_path / "fs.sock"
    shell = subprocess.Popen(["sh", "-c", f"{sys.executable} -m kdprune forkserver --socket {path} --parent $$ & sleep 60"], cwd=REPO)
    assert wait_until_up(str(path), timeout=120)
    shell.kill()
    shell.wait()
    deadline = time.monotonic() + 30
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not path.exists()
    refused = kdprune("forkserver", "--socket", str(tmp_path / "other.sock"), "--parent", "999999999")
    assert refused.returncode != 0 and "is not a running process to serve" in refused.stderr
