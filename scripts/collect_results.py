"""Copy a run's finished claims into a folder that git keeps (docs/results/<preset>/), so a run
split over several sessions or machines is committed claim by claim:

    python scripts/collect_results.py --run <clone that ran> --preset subset --paper P1 --out docs/results/subset

It takes every claim of `paper` whose verdict file exists: its table, markdown, figure and
verdict, its adaptive rounds' decisions, and the runs of every runs table the run wrote (students,
plus the teachers given with --teachers). What `out` already holds is kept: a claim collected again
is replaced (its files and its rounds), the runs are merged (a run folder collected again is
replaced), and the ledger is rewritten from every claim now in `out`. So a fresh clone that ran
only some claims (another session) adds them. The folder's README is the author's."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="the clone whose results/ and paper_figures/ hold the run")
    parser.add_argument("--preset", required=True)
    parser.add_argument("--paper", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--teachers", nargs="*", default=[], help="teacher folders under results/<preset>/ whose runs to add")
    args = parser.parse_args()
    args.out = args.out.resolve()
    os.chdir(args.run)  # run folders in the tables stay relative: results/<preset>/...

    results, figures = Path("results", args.preset), Path("paper_figures", args.preset)
    verdicts = sorted((results / "claims" / args.paper).glob("*.json"))
    if not verdicts:
        sys.exit(f"no finished claim of {args.paper} under {results / 'claims'}")
    (args.out / args.paper).mkdir(parents=True, exist_ok=True)
    for verdict in verdicts:
        claim = verdict.stem
        for ext in ("md", "csv", "png"):
            source = figures / args.paper / f"{claim}.{ext}"
            if ext == "png" and not source.exists():  # a claim whose figure another claim draws (P4-C1b: C1a's)
                continue
            shutil.copy(source, args.out / args.paper / f"{claim}.{ext}")
        shutil.copy(verdict, args.out / args.paper / f"{claim}.verdict.json")
        shutil.rmtree(args.out / "replicates" / claim, ignore_errors=True)  # this run's rounds replace earlier ones
        for decision in sorted((results / "replicates" / claim).glob("round*.json")):
            (args.out / "replicates" / claim).mkdir(parents=True, exist_ok=True)
            shutil.copy(decision, args.out / "replicates" / claim / decision.name)
    tables = sorted((results / "runs").glob("*.csv")) + sorted((results / "runs" / "claims").glob("*/*.csv"))
    runs = pd.concat([pd.read_csv(t) for t in tables]).drop_duplicates("run_dir", keep="last")
    if args.teachers:
        from kdprune.report.runs import runs_frame

        teachers = runs_frame([results / t / "metrics.json" for t in args.teachers], args.preset)
        runs = pd.concat([teachers, runs]).drop_duplicates("run_dir", keep="last")
    if (args.out / "runs.csv").is_file():  # earlier sessions' runs stay; a run collected again is replaced
        runs = pd.concat([pd.read_csv(args.out / "runs.csv"), runs]).drop_duplicates("run_dir", keep="last")
    runs.sort_values(["role", "run_dir"]).to_csv(args.out / "runs.csv", index=False)
    every = sorted(args.out.glob("P*/*.verdict.json"))  # every paper's claims collected so far
    subprocess.run([sys.executable, "-m", "kdprune", "ledger", "--out-dir", str(args.out), *map(str, every)], check=True)
    print(f"{len(verdicts)} claims collected ({', '.join(v.stem for v in verdicts)}), {len(every)} in {args.out}, {len(runs)} runs")


if __name__ == "__main__":
    main()
