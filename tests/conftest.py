"""Fixtures shared by every test module (helpers: workflow_helpers.py)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from workflow_helpers import CIFAR_SUBSET, REPO, copy_workflow, snakemake

from kdprune.forkserver import ENV


@pytest.fixture(scope="module")
def one_thread():
    """Tensors of the unit tests are small: they gain nothing from intra-op threads, and on a busy
    machine the threads mostly wait for each other (several times the run time). A module that
    says `pytestmark = pytest.mark.usefixtures("one_thread")` runs on one, restored after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def cifar_subset() -> Path:
    if not CIFAR_SUBSET.is_file():
        pytest.skip(f"{CIFAR_SUBSET} is not on this machine (it lies beside the clone on the project's machines)")
    return CIFAR_SUBSET


@pytest.fixture
def workflow_dir(tmp_path: Path) -> Path:
    return copy_workflow(tmp_path)


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The smoke preset run once per test session on this machine (2 cores), in a private copy,
    its jobs served by a fork server as the main job's are (scripts/main.sh); the end-to-end test
    checks its outputs and the SLURM test compares its own run with it."""
    workdir = copy_workflow(tmp_path_factory.mktemp("smoke"))
    socket = str(workdir / "forkserver.sock")
    server = subprocess.Popen([sys.executable, "-m", "kdprune", "forkserver", "--socket", socket, "--parent", str(os.getpid())])
    try:
        return workdir, snakemake(workdir, "--cores", "2", "all_figures", timeout=1800, env={ENV: socket})
    finally:
        server.kill()
        server.wait()
