"""Redraw the claim figures of a committed results folder from the runs it holds, so a change to a
figure's layout reaches committed results without training anything again:

    python scripts/redraw_figures.py --preset subset --results docs/results/subset [--claims P2-C1 ...]

A claim's runs are those of its experiment in today's plan of `preset` plus those its committed
adaptive rounds added (replicates/<claim>/round*.json), looked up by run folder in runs.csv. A claim
any of whose runs is missing there is refused (its plan has moved since it ran), not drawn from
part of its data. Claims without a committed figure are skipped."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import pandas as pd

from kdprune.plan import Plan
from kdprune.report.figures import draw_figure
from kdprune.report.replicates import added_metrics


def claim_runs(plan: Plan, claim: str, results: Path, runs: pd.DataFrame) -> pd.DataFrame:
    """The committed runs one claim read: its experiment's first round and its rounds' additions."""
    metrics = plan.experiment_metrics(plan.cfg["claims"][claim]["experiment"])
    metrics += added_metrics(sorted((results / "replicates" / claim).glob("round*.json")))
    folders = {str(Path(m).parent) for m in metrics}
    missing = folders - set(runs["run_dir"])
    if missing:
        raise SystemExit(f"{claim}: {len(missing)} of its {len(folders)} runs are not in {results / 'runs.csv'} (e.g. {min(missing)}); not redrawn")
    return runs[runs["run_dir"].isin(folders)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", required=True, help="the preset whose plan ran the committed claims")
    parser.add_argument("--results", type=Path, required=True, help="a folder that collect_results.py wrote")
    parser.add_argument("--claims", nargs="*", help="these claims only (default: every claim with a figure there)")
    args = parser.parse_args()

    plan = Plan.from_config("config.yaml", {"preset": args.preset})
    runs = pd.read_csv(args.results / "runs.csv", low_memory=False)
    figures = {p.stem: p for p in sorted(args.results.glob("P*/*.png")) if p.stem in plan.cfg["claims"]}
    for claim in args.claims or list(figures):
        if claim not in figures:
            sys.exit(f"--claims: {claim!r} has no figure in {args.results}; allowed: {', '.join(figures)}")
        with tempfile.TemporaryDirectory() as tmp:
            table = Path(tmp, "runs.csv")  # a claim's runs table, as its figure rule reads it
            claim_runs(plan, claim, args.results, runs).to_csv(table, index=False)
            draw_figure(plan.claim_spec(claim), table, figures[claim])
        print(f"{claim}: {figures[claim]}")


if __name__ == "__main__":
    main()
