"""Fixtures of the executor-plugin and SLURM tests (helpers live in cluster_helpers.py)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cluster_helpers import SCRIPT, Background, StatusCalls, cluster_is_up, status_shims


@pytest.fixture
def background() -> Iterator[Callable[..., Background]]:
    """Start Snakemake runs in the background; any still running at the end are interrupted
    (which cancels their jobs), so a failing test leaves nothing behind."""
    runs: list[Background] = []

    def start(workdir: Path, *args: str, env: dict[str, str] | None = None, ignored: tuple[signal.Signals, ...] = ()) -> Background:
        runs.append(Background(workdir, *args, env=env, ignored=ignored))
        return runs[-1]

    yield start
    for run in runs:
        run.stop()


# --- the SLURM test cluster ------------------------------------------------------------------
@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A running single-node SLURM with accounting and 4 fake GPUs. One already running is used
    as it is; otherwise the script installs (apt) and starts one for the session, and stops
    exactly the daemons it started when the session ends."""
    if cluster_is_up():
        yield
        return
    if os.geteuid() != 0:
        pytest.skip("the test SLURM cluster needs root: it starts munge, MariaDB and SLURM daemons")
    if shutil.which("slurmctld") is None and shutil.which("apt-get") is None:
        pytest.skip("SLURM is not installed and there is no apt-get to install it")
    env = {
        **os.environ,
        # 8 CPUs on a 2-core CI machine: several one-CPU test jobs run at once.
        "SLURM_CPUS": "8",
        "STATE": str(tmp_path_factory.mktemp("slurm") / "started.pids"),
    }

    def script(step: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(SCRIPT), step], env=env, capture_output=True, text=True, timeout=900)

    for step in ("install", "start"):
        done = script(step)
        if done.returncode != 0:
            script("stop")
            pytest.fail(f"test-cluster.sh {step} failed:\n{done.stdout}\n{done.stderr}")
    try:
        yield
    finally:
        script("stop")


@pytest.fixture
def status_calls(tmp_path: Path) -> StatusCalls:
    return status_shims(tmp_path)


@pytest.fixture
def broken_sacct(tmp_path: Path) -> StatusCalls:
    """As status_calls, but sacct fails like it does on a cluster without accounting."""
    return status_shims(tmp_path, broken=("sacct",))
