"""What is recorded with every run: code revision, a hash of the resolved settings, the platform."""

from __future__ import annotations

import functools
import hashlib
import json
import platform
import subprocess
from pathlib import Path

import torch

import kdprune


def settings_hash(settings: dict) -> str:
    """Stable 12-hex hash of a JSON-able settings dict (key order does not matter)."""
    blob = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


@functools.cache
def code_revision() -> str:
    """`git describe`-like revision of the package's checkout, `+dirty` when it has local changes;
    `kdprune-<version>` when not run from a git checkout."""
    repo = Path(kdprune.__file__).resolve().parent.parent
    try:
        rev = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, check=True
        ).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return f"kdprune-{kdprune.__version__}"


def platform_info(device: torch.device) -> dict:
    info = {"device": str(device), "torch": torch.__version__, "python": platform.python_version(), "host": platform.node()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    else:
        info["cpu_threads"] = torch.get_num_threads()
    return info
