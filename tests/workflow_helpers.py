"""Shared by the test modules: where things are, a private copy of the workflow, running Snakemake."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
CIFAR_SUBSET = REPO.parent / "shared" / "data" / "cifar10_subset.npz"


def copy_workflow(dest: Path) -> Path:
    """A private copy of the workflow files, so a test run never touches the clone's results/."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("Snakefile", "config.yaml"):
        shutil.copy(REPO / name, dest / name)
    shutil.copytree(REPO / "workflow", dest / "workflow")
    if (REPO / "profiles").is_dir():
        shutil.copytree(REPO / "profiles", dest / "profiles")
    return dest


def snakemake(workdir: Path, *args: str, timeout: int = 900, env: dict | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    cmd = [sys.executable, "-m", "snakemake", *args]
    return subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)


def only_p1_c1(workdir, grid: dict, recipes: dict | None = None, extra: dict | None = None):
    """Reduce the config to P1's P1-C1 on the given grid (no per-preset overrides, no other paper);
    `extra`: more experiments. `recipes`: the smoke preset's recipes."""
    paper_file = workdir / "workflow" / "papers" / "P1.yaml"
    paper = yaml.safe_load(paper_file.read_text())
    base = {k: v for k, v in paper["experiments"]["p1_kd_vs_ce"].items() if k != "presets"}
    paper["experiments"] = {"p1_kd_vs_ce": {**base, **grid}, **(extra or {})}
    paper["claims"] = {"P1-C1": paper["claims"]["P1-C1"]}
    paper_file.write_text(yaml.safe_dump(paper, sort_keys=False))
    cfg = yaml.safe_load((workdir / "config.yaml").read_text())
    cfg["papers"] = ["P1"]  # the other papers' experiments would add their own jobs
    if recipes:
        cfg["presets"]["smoke"]["recipes"] = recipes
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
