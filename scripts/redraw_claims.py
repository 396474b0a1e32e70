"""Draw committed claims again from the runs their folder holds, without training anything: the
figure (a layout change), and with --verdict also the table and verdict and then the ledger (a run
folder shared by two claims was retrained for one of them, so the other must read it too):

    python scripts/redraw_claims.py --preset subset --results docs/results/subset [--claims P2-C1 ...] [--verdict]
        [--config 'replicates={min: 4, max: 6, futility: 3}']

--config takes the values the claims' run gave Snakemake's --config (a claim's first round is
its plan's seeds, which `replicates` sets), so claims run with different values are redrawn in
separate calls.

A claim's runs are those of its experiment in today's plan of `preset` plus those its committed
adaptive rounds added (replicates/<claim>/round*.json), looked up by run folder in runs.csv. A claim
any of whose runs is missing there is refused (its plan has moved since it ran), not drawn from
part of its data; so is --verdict for a claim with a `measure` (its score files are not
committed). By default every committed claim of the plan is drawn."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import pandas as pd
import yaml

from kdprune.plan import Plan
from kdprune.report.figures import draw_figure
from kdprune.report.ledger import write_ledger
from kdprune.report.replicates import added_metrics
from kdprune.report.verdicts import evaluate_claim_files


def claim_runs(plan: Plan, claim: str, decisions: list[Path], results: Path, runs: pd.DataFrame) -> pd.DataFrame:
    """The committed runs one claim read: its experiment's first round and its rounds' additions."""
    metrics = plan.experiment_metrics(plan.cfg["claims"][claim]["experiment"]) + added_metrics(decisions)
    folders = {str(Path(m).parent) for m in metrics}
    missing = folders - set(runs["run_dir"])
    if missing:
        sys.exit(f"{claim}: {len(missing)} of its {len(folders)} runs are not in {results / 'runs.csv'} (e.g. {min(missing)}); not redrawn")
    return runs[runs["run_dir"].isin(folders)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", required=True, help="the preset whose plan ran the committed claims")
    parser.add_argument("--results", type=Path, required=True, help="a folder that collect_results.py wrote")
    parser.add_argument("--claims", nargs="*", help="these claims only (default: every claim committed there)")
    parser.add_argument("--verdict", action="store_true", help="also the table and verdict, then the ledger")
    parser.add_argument("--config", nargs="*", default=[], metavar="KEY=VALUE", help="as the run gave Snakemake (YAML values)")
    args = parser.parse_args()

    overrides = {key: yaml.safe_load(value) for key, _, value in (item.partition("=") for item in args.config)}
    plan = Plan.from_config("config.yaml", {**overrides, "preset": args.preset})
    runs = pd.read_csv(args.results / "runs.csv", low_memory=False)
    verdicts = sorted(args.results.glob("P*/*.verdict.json"))
    committed = {p.name.split(".")[0]: p.parent for p in verdicts if p.name.split(".")[0] in plan.cfg["claims"]}
    for claim in args.claims or list(committed):
        if claim not in committed:
            sys.exit(f"--claims: {claim!r} is not a committed claim of {args.results} in this plan; allowed: {', '.join(committed)}")
        spec, folder = plan.claim_spec(claim), committed[claim]
        if args.verdict and spec.get("measure"):
            sys.exit(f"{claim}: --verdict needs the score files its `measure` compares, which are not committed")
        decisions = sorted((args.results / "replicates" / claim).glob("round*.json"))
        with tempfile.TemporaryDirectory() as tmp:
            table = Path(tmp, "runs.csv")  # a claim's runs table, as its rules read it
            claim_runs(plan, claim, decisions, args.results, runs).to_csv(table, index=False)
            if (folder / f"{claim}.png").exists():  # P4-C1b has none: C1a's figure shows it
                draw_figure(spec, table, folder / f"{claim}.png")
            if args.verdict:
                evaluate_claim_files(spec, table, folder / f"{claim}.csv", folder / f"{claim}.verdict.json", decisions)
        print(f"{claim}: {folder}")
    if args.verdict:
        write_ledger(verdicts, args.results)  # every claim in the folder, as collect_results.py leaves it


if __name__ == "__main__":
    main()
