"""Measure the submitit plugin on a running SLURM: latency from sbatch to a job running, the
polling load (sacct calls per round and per minute), and with --stop how a signal to Snakemake
ends the run (seconds to exit, jobs left in squeue). Numbers go into docs/cluster.md.

    SLURM_CPUS=8 tests/cluster/test-cluster.sh all     # as root, once
    python tests/cluster/measure.py --jobs 8 --sleep 5 --interval 1
    python tests/cluster/measure.py --jobs 8 --sleep 60 --interval 30
    python tests/cluster/measure.py --jobs 12 --sleep 300 --interval 5 --stop SIGTERM   # 8 run, 4 pend
"""

from __future__ import annotations

import argparse
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from cluster_helpers import Background, Run, run_snakemake, squeue_active, status_shims, write_workflow  # noqa: E402

WORKFLOW = """
rule all:
    input: expand("out/{{i}}.txt", i=range({jobs}))
rule work:
    output: "out/{{i}}.txt"
    shell: "date +%s.%N > started.{{wildcards.i}}; sleep {sleep}; touch {{output}}"
"""


def latencies(workdir: Path, run: Run) -> tuple[list[float], list[float]]:
    """Seconds from sbatch to submitit's callable starting, and to the rule's command starting
    (SLURM scheduling, srun and Python start, then the job's own `snakemake --mode remote`)."""
    (folder,) = (workdir / ".snakemake/submitit").iterdir()
    to_submitit, to_rule = [], []
    for job_id in run.job_ids:
        submitted = (folder / f"{job_id}_submission.sh").stat().st_mtime  # written before sbatch
        out = (folder / f"{job_id}_0_log.out").read_text()
        # "submitit INFO (2026-11-23 19:26:06,123) - Starting with JobEnvironment(...)"
        stamp = re.search(r"submitit INFO \((.*?)\) - Starting", out)
        assert stamp, out
        start = datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
        to_submitit.append(start - submitted)
        index = re.search(r"wildcards: i=(\d+)", (folder / f"{job_id}_0_log.err").read_text())
        assert index
        to_rule.append(float((workdir / f"started.{index.group(1)}").read_text()) - submitted)
    return to_submitit, to_rule


def stop(workdir: Path, args: argparse.Namespace) -> None:
    """Start the run, signal Snakemake once every job is submitted and one runs, and report how
    the run ended: seconds to Snakemake's exit and to an empty queue, and the queue's states."""
    run = Background(
        workdir,
        *("--executor", "submitit", "--jobs", str(args.jobs), "--latency-wait", "5"),
        *("--seconds-between-status-checks", str(args.interval)),
        *("--default-resources", f"runtime={int(args.sleep // 60) + 5}", "mem_mb=200"),
    )
    ids = run.wait_for_submissions(args.jobs, timeout=120)
    run.wait_for(lambda: any(line.endswith("RUNNING") for line in squeue_active(ids)), 60, "a job running")
    before = sorted(line.split()[1] for line in squeue_active(ids))
    sent = time.monotonic()
    run.proc.send_signal(getattr(signal, args.stop))
    try:
        code = run.proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        code = None
    exited = time.monotonic() - sent
    while squeue_active(ids) and time.monotonic() - sent < 120:
        time.sleep(0.2)
    left = squeue_active(ids)
    run.stop()
    counts = {state: before.count(state) for state in sorted(set(before))}
    print(f"{args.stop} to Snakemake with {len(ids)} jobs in squeue {counts}:")
    print(f"  Snakemake exited after {exited:.1f} s (status {code})" if code is not None else "  Snakemake still running after 120 s")
    print(f"  squeue empty after {time.monotonic() - sent:.1f} s" if not left else f"  left in squeue after 120 s: {left}")
    cancelled = re.search(r"cancelled (\d+) job\(s\)", run.output)
    print(f"  the plugin's scancel: {cancelled.group(0) if cancelled else 'none'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--sleep", type=float, default=60, help="seconds each job runs")
    parser.add_argument("--interval", type=int, default=30, help="seconds between status rounds")
    parser.add_argument("--stop", choices=["SIGINT", "SIGTERM", "SIGHUP"], help="signal Snakemake mid-run and report what is left")
    args = parser.parse_args()

    if args.stop:
        with tempfile.TemporaryDirectory(prefix="kdprune-measure-") as tmp:
            stop(write_workflow(Path(tmp), WORKFLOW.format(jobs=args.jobs, sleep=args.sleep)), args)
        return

    with tempfile.TemporaryDirectory(prefix="kdprune-measure-") as tmp:
        workdir = write_workflow(Path(tmp), WORKFLOW.format(jobs=args.jobs, sleep=args.sleep))
        shims = status_shims(workdir)
        run = run_snakemake(
            workdir,
            *("--executor", "submitit", "--jobs", str(args.jobs), "--latency-wait", "5"),
            *("--seconds-between-status-checks", str(args.interval)),
            *("--default-resources", "runtime=10", "mem_mb=200"),
            env=shims.env(),
            timeout=3600,
        )
        if run.returncode != 0:
            sys.exit(run.output)
        to_submitit, to_rule = latencies(workdir, run)
        calls = shims.calls()

    sacct = ["sacct", "-X", "-n", "-P", "-o", "Submit,Start", "-j", run.job_ids[0]]
    submit, start = subprocess.run(sacct, capture_output=True, text=True).stdout.split()[0].split("|")
    ids_per_call = [len(c[c.index("-j") + 1].split(",")) for c in calls if "-j" in c]
    print(f"jobs: {args.jobs}, each {args.sleep:g} s; {args.interval} s between status rounds")
    print(f"first job: SLURM Submit {submit}, Start {start} (sacct, 1 s resolution)")
    for what, values in (("submitit callable", to_submitit), ("rule command", to_rule)):
        print(f"sbatch -> {what} running: median {statistics.median(values):.2f} s, max {max(values):.2f} s")
    print(
        f"run wall time {run.seconds:.1f} s; status calls: {len(calls)} "
        f"({', '.join(sorted({c[1] for c in calls}))}), {60 * len(calls) / run.seconds:.2f}/min, "
        f"up to {max(ids_per_call)} job ids per call"
    )


if __name__ == "__main__":
    main()
