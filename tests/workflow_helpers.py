"""Shared by the test modules: where things are, a private copy of the workflow, running Snakemake."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CIFAR_SUBSET = REPO.parent / "shared" / "data" / "cifar10_subset.npz"


def copy_workflow(dest: Path) -> Path:
    """A private copy of the workflow files, so a test run never touches the clone's results/."""
    for name in ("Snakefile", "config.yaml"):
        shutil.copy(REPO / name, dest / name)
    shutil.copytree(REPO / "workflow", dest / "workflow")
    if (REPO / "profiles").is_dir():
        shutil.copytree(REPO / "profiles", dest / "profiles")
    return dest


def snakemake(workdir: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "snakemake", *args]
    return subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)
