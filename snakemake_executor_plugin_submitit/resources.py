"""Snakemake job resources -> submitit executor parameters (pure functions, unit-tested)."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from snakemake_interface_common.exceptions import WorkflowError

# Resource names read here, as the Snakemake SLURM plugin names them, so a profile written
# for either plugin works with both.
SLURM_ONLY = ("slurm_partition", "slurm_account", "qos", "constraint", "gres", "slurm_extra")


def runtime_minutes(resources: Mapping[str, Any], job_name: str) -> int:
    """The job's time limit. Required: submitit would otherwise submit with --time=5, and it
    needs the limit to tell a timeout (requeue) from a preemption."""
    runtime = resources.get("runtime")
    if runtime is None:
        raise WorkflowError(f"{job_name}: no 'runtime' resource (minutes). Set it in the profile, e.g. default-resources: [runtime=60].")
    return max(1, int(runtime))


def gpu_count(resources: Mapping[str, Any]) -> int:
    return int(resources.get("gpu", 0) or 0)


def slurm_parameters(
    resources: Mapping[str, Any],
    threads: int,
    job_name: str,
    gpu_request: str,
    comment: str,
) -> dict[str, Any]:
    """Parameters for `submitit.SlurmExecutor.update_parameters` (one key per sbatch flag)."""
    params: dict[str, Any] = {
        "job_name": job_name,
        "time": runtime_minutes(resources, job_name),
        "cpus_per_task": int(resources.get("cpus_per_task") or threads),
        "comment": comment,
        # submitit sends --wckey=submitit by default; sites that enforce wckeys reject
        # unknown ones, so send none (slurm_extra can still set one).
        "wckey": None,
    }
    if resources.get("mem_mb_per_cpu"):
        params["mem_per_cpu"] = f"{int(resources['mem_mb_per_cpu'])}M"
    elif resources.get("mem_mb"):
        params["mem"] = f"{int(resources['mem_mb'])}M"
    for resource, flag in (
        ("slurm_partition", "partition"),
        ("slurm_account", "account"),
        ("qos", "qos"),
        ("constraint", "constraint"),
    ):
        if resources.get(resource):
            params[flag] = str(resources[resource])

    extra = parse_sbatch_flags(str(resources.get("slurm_extra") or ""))
    gpus = gpu_count(resources)
    if resources.get("gres"):
        if gpus:
            raise WorkflowError(f"{job_name}: set either the 'gpu' or the 'gres' resource, not both")
        params["gres"] = str(resources["gres"])
    elif gpus:
        model = str(resources.get("gpu_model") or "")
        amount = f"{model}:{gpus}" if model else str(gpus)
        if gpu_request == "gres":
            params["gres"] = f"gpu:{amount}"
        else:  # --gpus: the newer syntax, also understood by sites without GRES types
            extra.setdefault("gpus", amount)
    if extra:
        params["additional_parameters"] = extra
    return params


def local_parameters(resources: Mapping[str, Any], job_name: str) -> dict[str, Any]:
    """Parameters for `submitit.LocalExecutor`: the time limit and CUDA_VISIBLE_DEVICES."""
    return {
        "timeout_min": runtime_minutes(resources, job_name),
        "gpus_per_node": gpu_count(resources),
    }


def parse_sbatch_flags(flags: str) -> dict[str, Any]:
    """'--exclusive --mail-type=END --nice 10' -> {'exclusive': True, 'mail_type': 'END', ...}.

    Long options only: submitit writes them back as `#SBATCH --key=value` lines, and a short
    option's meaning cannot be known without sbatch's own table.
    """
    parsed: dict[str, Any] = {}
    tokens = shlex.split(flags)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if not token.startswith("--") or token == "--":
            raise WorkflowError(f"slurm_extra: {token!r} is not a long sbatch option (--name or --name=value)")
        key, sep, value = token[2:].partition("=")
        if not sep and i + 1 < len(tokens) and not tokens[i + 1].startswith("-"):
            value, sep = tokens[i + 1], "="
            i += 1
        parsed[key.replace("-", "_")] = value if sep else True
        i += 1
    return parsed
