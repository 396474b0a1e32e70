"""Style tools configured in pyproject.toml: ruff (lint + format) on the Python code, snakefmt on the
Snakefile and rules. A failure prints what to run to fix it."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TOOLS = {
    "ruff check": [sys.executable, "-m", "ruff", "check", "."],
    "ruff format": [sys.executable, "-m", "ruff", "format", "--check", "."],
    "snakefmt": [sys.executable, "-m", "snakefmt", "--check", "Snakefile", "workflow/rules"],
}


@pytest.mark.parametrize("tool", TOOLS)
def test_the_code_is_clean_under(tool):
    out = subprocess.run(TOOLS[tool], cwd=REPO, capture_output=True, text=True)
    fix = "ruff check --fix . && ruff format . && snakefmt Snakefile workflow/rules"
    assert out.returncode == 0, f"{tool} is not clean; run `{fix}` (settings: pyproject.toml):\n{out.stdout[-3000:]}{out.stderr[-2000:]}"
