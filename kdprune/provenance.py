"""What is recorded with every run besides its spec and settings hash (kdprune.plan.kinds): the code
revision, with a hash of the local changes it ran with, and the platform and library versions."""

from __future__ import annotations

import functools
import hashlib
import importlib
import platform
import subprocess
from pathlib import Path

import torch

import kdprune

LIBRARIES = ("torch", "torchvision", "numpy")  # their versions decide the numbers as much as the code does


def revision_of(repo: Path) -> str:
    """The checkout's commit (12 hex), `+dirty.<hash8>` when its tracked files differ from it: the
    first 8 hex of the sha256 of `git diff HEAD`, so two runs with different local changes never
    share a revision. Raises OSError / CalledProcessError where there is no git checkout."""

    def git(*args: str) -> bytes:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=True).stdout

    rev = git("rev-parse", "--short=12", "HEAD").decode().strip()
    diff = git("diff", "HEAD", "--no-color", "--no-ext-diff")  # staged and unstaged changes to tracked files
    return f"{rev}+dirty.{hashlib.sha256(diff).hexdigest()[:8]}" if diff else rev


@functools.cache
def code_revision() -> str:
    """The package checkout's revision (revision_of), taken once per process; `kdprune-<version>`
    when not run from a git checkout."""
    try:
        return revision_of(Path(kdprune.__file__).resolve().parent.parent)
    except (OSError, subprocess.CalledProcessError):
        return f"kdprune-{kdprune.__version__}"


def library_versions() -> dict[str, str | None]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.import_module(name).__version__
        except ImportError:
            versions[name] = None
    return versions


def platform_info(device: torch.device) -> dict:
    info = {"device": str(device), **library_versions(), "python": platform.python_version(), "host": platform.node()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    else:
        info["cpu_threads"] = torch.get_num_threads()
    return info
