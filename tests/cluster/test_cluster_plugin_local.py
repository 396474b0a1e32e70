"""The submitit executor plugin end to end with `--submitit-cluster local` (no SLURM): the same
submission, polling, failure and retry code as on a cluster, with processes on this machine."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cluster_helpers import Background, process_alive, run_snakemake, write_workflow

LOCAL = (
    "--executor",
    "submitit",
    "--submitit-cluster",
    "local",
    "--jobs",
    "4",
    "--seconds-between-status-checks",
    "1",
    "--default-resources",
    "runtime=5",
)

WORK = """
rule all:
    input: expand("out/{i}.txt", i=range(3))

rule work:
    output: "out/{i}.txt"
    shell: "echo {wildcards.i} > {output}"
"""


def test_jobs_run_and_outputs_appear(tmp_path: Path) -> None:
    run = run_snakemake(write_workflow(tmp_path, WORK), *LOCAL)
    assert run.returncode == 0, run.output
    assert [(tmp_path / f"out/{i}.txt").read_text() for i in range(3)] == ["0\n", "1\n", "2\n"]
    assert len(run.job_ids) == 3
    # each run gets its own submitit folder (stale results of an old run are never read)
    (folder,) = (tmp_path / ".snakemake/submitit").iterdir()
    assert len(list(folder.glob("*_result.pkl"))) == 3


def test_failure_is_reported_with_state_and_log(tmp_path: Path) -> None:
    write_workflow(
        tmp_path,
        """
        rule broken:
            output: "never.txt"
            shell: "echo boom-from-the-rule >&2; exit 3"
        """,
    )
    run = run_snakemake(tmp_path, *LOCAL)
    assert run.returncode != 0
    assert "local job" in run.output and "ended in state FAILED" in run.output
    (log,) = [line.split("submitit stderr: ")[1] for line in run.output.splitlines() if "submitit stderr: " in line]
    assert "boom-from-the-rule" in Path(log).read_text()
    assert "boom-from-the-rule" in run.output  # the tail of the log is in the message


FLAKY = """
rule flaky:
    output: "flaky.txt"
    # attempt-scaled resource, as in the profiles: 2 on the first attempt, 3 on the retry
    resources: runtime=lambda wildcards, attempt: 1 + attempt
    shell: "test {resources.runtime} -ge 3 || {{ echo too-short >&2; exit 1; }}; echo ok > {output}"
"""


def test_retries_resubmit_with_attempt_scaled_resources(tmp_path: Path) -> None:
    write_workflow(tmp_path, FLAKY)
    assert run_snakemake(tmp_path, *LOCAL).returncode != 0
    run = run_snakemake(tmp_path, *LOCAL, "--retries", "1")
    assert run.returncode == 0, run.output
    assert len(run.job_ids) == 2 and (tmp_path / "flaky.txt").read_text() == "ok\n"


def test_group_is_one_submission(tmp_path: Path) -> None:
    write_workflow(tmp_path, WORK)
    run = run_snakemake(tmp_path, *LOCAL, "--groups", "work=pack", "--group-components", "pack=3")
    assert run.returncode == 0, run.output
    assert len(run.job_ids) == 1
    assert all((tmp_path / f"out/{i}.txt").exists() for i in range(3))


SLOW = """
rule all:
    input: expand("out/{i}.txt", i=range(2))
rule slow:
    output: "out/{i}.txt"
    shell: "echo $$ > pid.{wildcards.i}; sleep 120; touch {output}"
"""


def start_slow_jobs(tmp_path: Path, background: Callable[..., Background], **kwargs: object) -> tuple[Background, list[Path]]:
    run = background(write_workflow(tmp_path, SLOW), *LOCAL, **kwargs)
    pids = [tmp_path / f"pid.{i}" for i in range(2)]
    run.wait_for(lambda: all(p.exists() and p.read_text().strip() for p in pids), 60, "jobs started")
    return run, pids


def assert_jobs_stopped(run: Background, pids: list[Path], tmp_path: Path) -> None:
    finished = run.finish(timeout=30)  # not Snakemake's SIGTERM answer: wait 120 s for the jobs
    assert finished.returncode != 0
    assert "cancelled 2 job(s)" in finished.output
    deadline = time.monotonic() + 15
    while any(process_alive(int(p.read_text())) for p in pids):
        assert time.monotonic() < deadline, "a job's command survived the interrupt"
        time.sleep(0.1)
    assert not list(tmp_path.glob("out/*.txt"))
    # a clean exit: the lock is released, so the same command can be run again at once
    assert not list(tmp_path.glob(".snakemake/locks/*"))


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_every_stop_signal_cancels_running_jobs(tmp_path: Path, background: Callable[..., Background], stop: signal.Signals) -> None:
    run, pids = start_slow_jobs(tmp_path, background)
    run.proc.send_signal(stop)
    assert_jobs_stopped(run, pids, tmp_path)


def test_a_run_under_nohup_survives_a_hangup(tmp_path: Path, background: Callable[..., Background]) -> None:
    run, pids = start_slow_jobs(tmp_path, background, ignored=(signal.SIGHUP,))
    run.proc.send_signal(signal.SIGHUP)
    time.sleep(3)
    assert run.proc.poll() is None and all(process_alive(int(p.read_text())) for p in pids)
    run.proc.send_signal(signal.SIGTERM)  # how a detached run is stopped
    assert_jobs_stopped(run, pids, tmp_path)
