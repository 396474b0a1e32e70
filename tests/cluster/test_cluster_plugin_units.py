"""The submitit executor plugin's pure parts: resources -> sbatch flags, state parsing, and the
submitted callable (no Snakemake run, no cluster)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cloudpickle
import pytest
from cluster_helpers import child_signals, process_alive
from snakemake_interface_common.exceptions import WorkflowError

from snakemake_executor_plugin_submitit import status
from snakemake_executor_plugin_submitit.command import CommandFailed, ShellCommand
from snakemake_executor_plugin_submitit.resources import (
    local_parameters,
    parse_sbatch_flags,
    slurm_parameters,
)
from snakemake_executor_plugin_submitit.signals import handlers, route_to_interrupt


def params(gpu_request: str = "gpus", threads: int = 2, **resources: object) -> dict[str, object]:
    return slurm_parameters({"runtime": 30, **resources}, threads, job_name="j", gpu_request=gpu_request, comment="c")


def test_basic_resources_become_sbatch_flags() -> None:
    p = params(mem_mb=4000, slurm_partition="gpu", slurm_account="proj", qos="high", constraint="v100")
    assert p["time"] == 30 and p["cpus_per_task"] == 2 and p["mem"] == "4000M"
    assert (p["partition"], p["account"], p["qos"], p["constraint"]) == (
        "gpu",
        "proj",
        "high",
        "v100",
    )
    assert p["wckey"] is None  # submitit's default --wckey=submitit is not sent
    assert "additional_parameters" not in p


def test_cpus_per_task_resource_overrides_threads_and_mem_per_cpu_wins() -> None:
    p = params(cpus_per_task=6, mem_mb=4000, mem_mb_per_cpu=1000)
    assert p["cpus_per_task"] == 6 and p["mem_per_cpu"] == "1000M" and "mem" not in p


@pytest.mark.parametrize(
    ("gpu_request", "model", "expected"),
    [
        ("gpus", None, {"additional_parameters": {"gpus": "2"}}),
        ("gpus", "a100", {"additional_parameters": {"gpus": "a100:2"}}),
        ("gres", None, {"gres": "gpu:2"}),
        ("gres", "a100", {"gres": "gpu:a100:2"}),
    ],
)
def test_gpu_request_styles(gpu_request: str, model: str | None, expected: dict[str, object]) -> None:
    p = params(gpu_request, gpu=2, gpu_model=model)
    assert {k: p[k] for k in expected} == expected


def test_no_gpu_no_gpu_flags() -> None:
    p = params(gpu=0)
    assert "gres" not in p and "additional_parameters" not in p


def test_explicit_gres_and_extra_flags() -> None:
    p = params(gres="gpu:fake:1", slurm_extra="--requeue --mail-type=END --nice 10")
    assert p["gres"] == "gpu:fake:1"
    assert p["additional_parameters"] == {"requeue": True, "mail_type": "END", "nice": "10"}


def test_gpu_and_gres_together_is_an_error() -> None:
    with pytest.raises(WorkflowError, match="either"):
        params(gpu=1, gres="gpu:1")


def test_runtime_is_required() -> None:
    with pytest.raises(WorkflowError, match="runtime"):
        slurm_parameters({}, 1, job_name="j", gpu_request="gpus", comment="c")
    assert local_parameters({"runtime": 7, "gpu": 1}, "j") == {"timeout_min": 7, "gpus_per_node": 1}


@pytest.mark.parametrize("flags", ["-p gpu", "--exclusive x y", "gpu"])
def test_only_long_sbatch_options(flags: str) -> None:
    with pytest.raises(WorkflowError, match="long sbatch option"):
        parse_sbatch_flags(flags)


def test_state_parsing_and_classification() -> None:
    parsed = status._parse("1|COMPLETED\n2|CANCELLED by 0\n3|RUNNING\n4|REQUEUED\n\n")
    assert parsed == {"1": "COMPLETED", "2": "CANCELLED", "3": "RUNNING", "4": "REQUEUED"}
    assert [status.is_finished(parsed[k]) for k in "1234"] == [True, True, False, False]
    assert not status.is_finished(None)  # not yet in the accounting database


def test_command_failure_raises() -> None:
    ShellCommand("true")()
    with pytest.raises(CommandFailed, match="status 3"):
        ShellCommand("exit 3")()


def test_checkpoint_resubmits_the_same_command() -> None:
    command = ShellCommand("echo resume")
    # submitit pickles the checkpoint's submission and runs it again after the requeue
    delayed = cloudpickle.loads(cloudpickle.dumps(command.checkpoint()))
    assert delayed.function == command and not delayed.args and not delayed.kwargs


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_stop_signals_stop_the_whole_command_tree(tmp_path: Path, stop: signal.Signals) -> None:
    """Cancelling a job interrupts ShellCommand (a local job: SIGINT; scancel: SIGTERM): the
    command's children must go too, the same way for both."""
    pid_file = tmp_path / "pid"
    script = f"from snakemake_executor_plugin_submitit.command import ShellCommand;ShellCommand('sleep 60 & echo $! > {pid_file}; wait')()"
    proc = subprocess.Popen([sys.executable, "-c", script], preexec_fn=child_signals(), stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not (pid_file.exists() and pid_file.read_text().strip()):
        assert time.monotonic() < deadline, "the command did not start"
        time.sleep(0.05)
    sleeper = int(pid_file.read_text())
    proc.send_signal(stop)
    _, stderr = proc.communicate(timeout=20)
    assert proc.returncode != 0
    assert "KeyboardInterrupt" in stderr  # the Ctrl-C path, whichever signal
    deadline = time.monotonic() + 10
    while process_alive(sleeper):
        assert time.monotonic() < deadline, "the command's child survived the interrupt"
        time.sleep(0.05)


def test_stop_signals_raise_keyboard_interrupt_unless_ignored() -> None:
    """`nohup` ignores SIGHUP: the run must then survive a hangup, and stop on SIGTERM."""
    with handlers(signal.SIGHUP, handler=signal.SIG_IGN), handlers(signal.SIGTERM, handler=signal.SIG_DFL):
        assert route_to_interrupt(signal.SIGTERM, signal.SIGHUP) == [signal.SIGTERM]
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
        os.kill(os.getpid(), signal.SIGHUP)  # ignored: nothing happens
        with pytest.raises(KeyboardInterrupt, match="stopped by SIGTERM"):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler runs at the next bytecode; this never completes
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored after the block


def test_interrupt_tests_hold_when_the_runner_ignores_sigint() -> None:
    """Started from a background job of a script (or nohup in some shells), pytest inherits an
    ignored SIGINT; the interrupt tests reset their children's signals and still pass."""
    test = f"{Path(__file__).name}::test_stop_signals_stop_the_whole_command_tree"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test],
        cwd=Path(__file__).parent,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=child_signals(ignored=(signal.SIGINT,)),
    )
    assert done.returncode == 0 and "2 passed" in done.stdout, done.stdout + done.stderr
