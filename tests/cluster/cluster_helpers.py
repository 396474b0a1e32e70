"""Helpers of the executor-plugin and SLURM tests: toy workflows, Snakemake runs (in the
foreground or background), the test cluster's state, and sacct/squeue call counting."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).with_name("test-cluster.sh")
REPO = Path(__file__).resolve().parents[2]
SUBMITTED = re.compile(r"submitted as (?:slurm|local) job (\S+) \(log: (\S+)\)")


@dataclass
class Run:
    """A finished Snakemake run: exit code and its combined output."""

    returncode: int
    output: str
    seconds: float

    @property
    def job_ids(self) -> list[str]:
        return submitted_ids(self.output)


def submitted_ids(output: str) -> list[str]:
    """Cluster job ids in the order the plugin reported their submission."""
    return [m.group(1) for m in SUBMITTED.finditer(output)]


def child_signals(ignored: tuple[signal.Signals, ...] = ()) -> Callable[[], None]:
    """A preexec_fn: the child starts with SIGINT, SIGTERM and SIGHUP at their defaults, except
    `ignored`, whatever the test runner inherited (a background job of a script ignores SIGINT,
    nohup ignores SIGHUP), so the interrupt tests hold from any parent."""

    def reset() -> None:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN if sig in ignored else signal.SIG_DFL)

    return reset


def snakemake_command(*args: str) -> list[str]:
    # The interpreter running the tests: its environment has the plugin (editable install).
    return [sys.executable, "-m", "snakemake", "--nocolor", *args]


def write_workflow(workdir: Path, snakefile: str, files: dict[str, str] | None = None) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "Snakefile").write_text(textwrap.dedent(snakefile))
    for name, text in (files or {}).items():
        (workdir / name).write_text(textwrap.dedent(text))
    return workdir


def run_snakemake(workdir: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 180) -> Run:
    start = time.monotonic()
    done = subprocess.run(
        snakemake_command(*args),
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        preexec_fn=child_signals(),
    )
    return Run(done.returncode, done.stdout, time.monotonic() - start)


class Background:
    """A Snakemake run in the background, its output in a file that tests can wait on."""

    def __init__(
        self,
        workdir: Path,
        *args: str,
        env: dict[str, str] | None = None,
        ignored: tuple[signal.Signals, ...] = (),
    ):
        self.log = workdir / "snakemake.out"
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                snakemake_command(*args),
                cwd=workdir,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=child_signals(ignored),
            )

    @property
    def output(self) -> str:
        return self.log.read_text()

    def wait_for(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.proc.poll() is not None:
                raise AssertionError(f"snakemake exited before {what}:\n{self.output}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}:\n{self.output}")
            time.sleep(0.2)

    def wait_for_submissions(self, n: int, timeout: float = 60) -> list[str]:
        self.wait_for(lambda: len(submitted_ids(self.output)) >= n, timeout, f"{n} submissions")
        return submitted_ids(self.output)

    def finish(self, timeout: float = 120) -> Run:
        start = time.monotonic()
        try:
            returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired as error:
            self.stop()
            message = f"snakemake did not finish in {timeout} s:\n{self.output}"
            raise AssertionError(message) from error
        return Run(returncode, self.output, time.monotonic() - start)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def cluster_is_up() -> bool:
    if shutil.which("scontrol") is None:
        return False
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True)
    return ping.returncode == 0 and "UP" in ping.stdout


def squeue_active(job_ids: list[str]) -> list[str]:
    """Those of the jobs that SLURM still has queued, running or being killed."""
    done = subprocess.run(
        ["squeue", "-h", "--states=all", "-o", "%i %T", "-j", ",".join(job_ids)],
        capture_output=True,
        text=True,
    )
    finished = {
        "COMPLETED",
        "CANCELLED",
        "FAILED",
        "TIMEOUT",
        "PREEMPTED",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
    }
    return [line for line in done.stdout.splitlines() if line.split()[1] not in finished]


@dataclass
class StatusCalls:
    """PATH shims in front of sacct and squeue that log every call (time and arguments)."""

    bin_dir: Path
    log: Path

    def env(self) -> dict[str, str]:
        return {**os.environ, "PATH": f"{self.bin_dir}:{os.environ['PATH']}"}

    def calls(self, command: str | None = None) -> list[list[str]]:
        if not self.log.exists():
            return []
        rows = [line.split() for line in self.log.read_text().splitlines()]
        return [row for row in rows if command is None or row[1] == command]


def status_shims(tmp_path: Path, broken: tuple[str, ...] = ()) -> StatusCalls:
    bin_dir, log = tmp_path / "shims", tmp_path / "status-calls.log"
    bin_dir.mkdir()
    for command in ("sacct", "squeue"):
        real = shutil.which(command)
        run = "exit 1" if command in broken or real is None else f'exec {real} "$@"'
        shim = bin_dir / command
        shim.write_text(f'#!/bin/sh\necho "$(date +%s.%N) {command} $*" >> {log}\n{run}\n')
        shim.chmod(0o755)
    return StatusCalls(bin_dir, log)


def process_alive(pid: int) -> bool:
    """Whether `pid` still runs; a zombie (killed, not yet reaped by init) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


STUDENT_GROUP = "results/smoke/digits/students/resnet8-student/random/keep0.5/ce"  # the stopped student's seed group


@dataclass
class StoppedStudent:
    cluster_dir: Path
    local_dir: Path
    job_id: str
    finished: Run

    @property
    def log(self) -> str:  # the seed group's job log, as the rerun left it
        return (self.cluster_dir / STUDENT_GROUP / "train-s0.log").read_text()

    def assert_equals_the_uninterrupted_run(self) -> None:
        """The same student trained locally and never stopped: equal accuracy and per-epoch history (timing aside)."""
        import json

        from workflow_helpers import snakemake

        reference = snakemake(self.local_dir, "--cores", "1", f"{STUDENT_GROUP}/runs-s0.json")
        assert reference.returncode == 0, reference.stderr[-3000:]
        resumed, whole = (json.loads((d / STUDENT_GROUP / "s0/metrics.json").read_text()) for d in (self.cluster_dir, self.local_dir))
        assert resumed["final_acc"] == whole["final_acc"]
        untimed = [[{k: v for k, v in h.items() if "seconds" not in k} for h in m["history"]] for m in (resumed, whole)]
        assert untimed[0] == untimed[1]


def stop_a_training_student(tmp_path: Path, background: Callable[..., Background], epochs: int, stop: list[str]) -> StoppedStudent:
    """The smoke plan's one CE student through the slurm profile, stopped at its 10th epoch by the
    command `stop + [job id]` (a requeue, a signal), run to the end; and a local copy of the same
    workflow for the uninterrupted reference."""
    from workflow_helpers import REPO, copy_workflow, only_p1_c1

    grid = {"student": ["resnet8"], "teacher": ["resnet8"], "selection": ["random"], "keep": [0.5], "loss": {"ce": {}}, "seed": [0]}
    recipes = {"teacher": {"epochs": 2}, "student": {"epochs": epochs}, "score": {"epochs": 2}}
    local_dir, cluster_dir = copy_workflow(tmp_path / "local"), copy_workflow(tmp_path / "cluster")
    for d in (local_dir, cluster_dir):
        only_p1_c1(d, grid, recipes)
    shutil.copytree(REPO / "slurm", cluster_dir / "slurm")
    run = background(cluster_dir, "--profile", "slurm", "--profile", "profiles/slurm-smoke", f"{STUDENT_GROUP}/runs-s0.json")
    log = cluster_dir / STUDENT_GROUP / "train-s0.log"
    run.wait_for(lambda: log.exists() and " epoch  10/" in log.read_text(), 300, "epoch 10 of the student")
    job_id = submitted_ids(run.output)[-1]  # the student's job: submitted after its teacher and score
    subprocess.run([*stop, job_id], check=True)
    finished = run.finish(timeout=600)
    assert finished.returncode == 0, finished.output
    return StoppedStudent(cluster_dir, local_dir, job_id, finished)
