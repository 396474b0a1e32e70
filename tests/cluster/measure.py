"""Measure the submitit plugin on a running SLURM: latency from sbatch to a job running, and
the polling load (sacct calls per round and per minute). Numbers go into docs/cluster.md.

    tests/cluster/test-cluster.sh all        # as root, once (SLURM_CPUS=8 for parallel jobs)
    python tests/cluster/measure.py --jobs 8 --sleep 60 --interval 30
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from cluster_helpers import run_snakemake, status_shims, write_workflow  # noqa: E402


def sacct_times(job_id: str) -> tuple[str, str]:
    out = subprocess.run(["sacct", "-X", "-n", "-P", "-o", "Submit,Start", "-j", job_id],
                         capture_output=True, text=True, check=True).stdout.split()[0]
    submit, start = out.split("|")
    return submit, start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--sleep", type=float, default=60, help="seconds each job runs")
    parser.add_argument("--interval", type=int, default=30, help="seconds between status rounds")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="kdprune-measure-"))
    write_workflow(workdir, f"""
        rule all:
            input: expand("out/{{i}}.txt", i=range({args.jobs}))
        rule work:
            output: "out/{{i}}.txt"
            shell: "date +%s.%N > started.{{wildcards.i}}; sleep {args.sleep}; touch {{output}}"
        """)
    shims = status_shims(workdir)
    run = run_snakemake(
        workdir, "--executor", "submitit", "--jobs", str(args.jobs),
        "--seconds-between-status-checks", str(args.interval), "--latency-wait", "5",
        "--default-resources", "runtime=10", "mem_mb=200", env=shims.env(), timeout=3600,
    )
    if run.returncode != 0:
        sys.exit(run.output)

    folder = next((workdir / ".snakemake/submitit").iterdir())
    started = {int(p.suffix[1:]): float(p.read_text()) for p in workdir.glob("started.*")}
    # sbatch -> the rule's shell command (SLURM scheduling + srun + submitit + inner snakemake)
    to_rule = []
    for job_id in run.job_ids:
        submitted = (folder / f"{job_id}_submission.sh").stat().st_mtime  # written just before sbatch
        log = (folder / f"{job_id}_0_log.err").read_text()
        index = int(log.split("wildcards: i=")[1].split()[0])
        to_rule.append(started[index] - submitted)
    submit, start = sacct_times(run.job_ids[0])
    calls = shims.calls()
    ids_per_call = [len(c[c.index("-j") + 1].split(",")) for c in calls if "-j" in c]
    print(f"jobs: {args.jobs}, each {args.sleep:g} s; {args.interval} s between status rounds")
    print(f"first job: SLURM Submit {submit}, Start {start} (sacct, 1 s resolution)")
    print(f"sbatch -> rule command running: median {statistics.median(to_rule):.2f} s, "
          f"max {max(to_rule):.2f} s")
    print(f"run wall time {run.seconds:.1f} s; status calls: {len(calls)} "
          f"({', '.join(sorted({c[1] for c in calls}))}), {60 * len(calls) / run.seconds:.2f} per minute, "
          f"up to {max(ids_per_call)} job ids per call")


if __name__ == "__main__":
    main()
