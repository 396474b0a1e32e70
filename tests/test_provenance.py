"""What every run records of how it was made (issue #17): its settings hash, the code revision with a
hash of the local changes (`<rev>+dirty.<hash8>`), and the torch, torchvision and numpy versions,
in its metrics.json and in its runs-table row."""

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
import torch
import torchvision

from kdprune.files import read_json
from kdprune.jobs.runners import run_training
from kdprune.plan.kinds import settings_hash
from kdprune.provenance import code_revision, revision_of
from kdprune.report.runs import write_runs_table

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "jobs"))
from test_runners import spec  # noqa: E402  (the smallest real student job)

GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"]


def git(repo: Path, *args: str) -> str:
    return subprocess.run([*GIT, "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def diff_hash(repo: Path) -> str:
    """sha256 of `git diff HEAD`, computed here on its own."""
    diff = subprocess.run(["git", "-C", str(repo), "diff", "HEAD"], capture_output=True, check=True).stdout
    return hashlib.sha256(diff).hexdigest()[:8]


@pytest.fixture
def repo(tmp_path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "train.py").write_text("lr = 0.1\n")
    (root / "notes.txt").write_text("a\n")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "first")
    return root


def test_a_clean_tree_is_its_commit_and_a_dirty_one_carries_the_hash_of_its_diff(repo):
    head = git(repo, "rev-parse", "--short=12", "HEAD").strip()
    assert revision_of(repo) == head  # no suffix
    (repo / "train.py").write_text("lr = 0.2\n")
    first = revision_of(repo)
    assert first == f"{head}+dirty.{diff_hash(repo)}" and len(first.split(".")[-1]) == 8
    (repo / "train.py").write_text("lr = 0.3\n")  # another change: another revision
    second = revision_of(repo)
    assert second.startswith(f"{head}+dirty.") and second != first and second == f"{head}+dirty.{diff_hash(repo)}"
    git(repo, "add", "train.py")  # staged changes count as well
    assert revision_of(repo) == second
    (repo / "train.py").write_text("lr = 0.2\n")  # the first change again: the first revision again
    assert revision_of(repo) == first
    (repo / "untracked.py").write_text("x = 1\n")  # not a tracked file: not part of the revision
    assert revision_of(repo) == first
    (repo / "train.py").write_text("lr = 0.1\n")
    git(repo, "add", "train.py")
    assert revision_of(repo) == head


def test_the_package_records_the_revision_of_its_own_checkout(tmp_path):
    """A copy of the package in its own git checkout, one file changed: a process that imports it
    from there records that checkout's revision and diff, not those of the directory it runs in."""
    root = tmp_path / "checkout"
    shutil.copytree(REPO / "kdprune", root / "kdprune", ignore=shutil.ignore_patterns("__pycache__"))
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "copy")
    with open(root / "kdprune" / "provenance.py", "a") as f:
        f.write("# a local change\n")
    script = "import kdprune, kdprune.provenance as p; print(kdprune.__file__); print(p.code_revision())"
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path, check=True)
    where, revision = done.stdout.split()
    assert Path(where).parent == root / "kdprune"
    assert revision == f"{git(root, 'rev-parse', '--short=12', 'HEAD').strip()}+dirty.{diff_hash(root)}"


def test_a_real_runs_metrics_and_runs_table_row_carry_hash_revision_and_versions(tmp_path):
    job = spec(0, epochs=1)
    run_training(job, tmp_path / "run", log=lambda msg: None)
    metrics = read_json(tmp_path / "run" / "metrics.json")
    versions = {"torch": torch.__version__, "torchvision": torchvision.__version__, "numpy": numpy.__version__}
    assert metrics["settings_hash"] == settings_hash(job) and metrics["code_rev"] == code_revision()
    assert {name: metrics[name] for name in versions} == versions
    row = write_runs_table([tmp_path / "run" / "metrics.json"], tmp_path / "runs.csv", "test").iloc[0]
    assert row["settings_hash"] == settings_hash(job) and row["code_rev"] == code_revision()
    assert {name: row[name] for name in versions} == versions
    if (REPO / ".git").exists():  # this checkout: its commit, with its diff's hash when it has local changes
        assert metrics["code_rev"].startswith(git(REPO, "rev-parse", "--short=12", "HEAD").strip())
