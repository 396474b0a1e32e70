"""`python -m kdprune <verb>`: what every workflow rule calls, with explicit paths."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _log(msg: str) -> None:
    print(msg, flush=True)


def cmd_run(args) -> None:
    """One compute job, looked up in the plan by kind and key."""
    from kdprune.plan import Plan
    from kdprune.plan.kinds import JOB_KINDS, settings_hash
    from kdprune.registry import import_target

    plan = Plan.read(args.plan)
    spec = plan.spec(args.kind, args.key)
    if args.settings and settings_hash(spec) != args.settings:
        raise SystemExit(
            f"kdprune run: the {args.kind} job {args.key} was scheduled with settings {args.settings}, but {args.plan} now "
            f"gives {settings_hash(spec)}: the config changed while the workflow ran; rerun Snakemake"
        )
    from kdprune.stopping import stop_on_signals

    runner = import_target(JOB_KINDS.get(args.kind).runner)
    with stop_on_signals():  # SIGTERM/SIGUSR2: checkpoint at the next safe point, exit 75 (kdprune.stopping)
        runner(spec, plan.inputs(args.kind, args.key), plan.outputs(args.kind, args.key), plan.cfg, _log)


def cmd_runs(args) -> None:
    from kdprune.plan import Plan
    from kdprune.report.runs import write_runs_table

    plan = Plan.read(args.plan)
    if args.claim:  # a claim's runs after `round` rounds of adaptive replicates
        from kdprune.report.replicates import added_metrics

        decisions = [Path(plan.decision_file(args.claim, r)) for r in range(1, args.round + 1)]
        paths = plan.experiment_metrics(plan.cfg["claims"][args.claim]["experiment"]) + added_metrics(decisions)
    else:
        paths = plan.experiment_metrics(args.experiment) if args.experiment else plan.all_metrics()
    write_runs_table([Path(p) for p in paths], Path(args.out), preset=plan.preset)


def cmd_replicates(args) -> None:
    import pandas as pd

    from kdprune.plan import Plan
    from kdprune.report.replicates import decide_round_files

    plan = Plan.read(args.plan)
    decision = decide_round_files(plan.claim_spec(args.claim), Path(args.runs), pd.DataFrame(plan.claim_pool(args.claim)), args.round, Path(args.out))
    print(f"{args.claim} round {args.round}: {len(decision['unresolved_cells'])} unresolved cells, {len(decision['metrics'])} runs to add")


def cmd_claim(args) -> None:
    from kdprune.plan import Plan
    from kdprune.report.verdicts import evaluate_claim_files

    runs, *rest = map(Path, args.runs)
    decisions, measured = [p for p in rest if p.suffix == ".json"], [p for p in rest if p.suffix == ".npz"]
    evaluate_claim_files(Plan.read(args.plan).claim_spec(args.claim), runs, Path(args.table), Path(args.verdict), decisions, measured)


def cmd_figure(args) -> None:
    from kdprune.plan import Plan
    from kdprune.report.figures import draw_figure

    draw_figure(Plan.read(args.plan).claim_spec(args.claim), Path(args.runs), Path(args.out))


def cmd_show_distilled(args) -> None:
    from kdprune.report.figures import draw_distilled_images

    if args.plan:  # the workflow's figure: the sets the plan shows in it
        from kdprune.plan import Plan

        plan = Plan.read(args.plan)
        sets, base = plan.distilled_figures()[args.out], Path(plan.results)
    else:
        sets, base = args.sets, Path(args.base) if args.base else None
    if not sets:
        raise SystemExit("kdprune show-distilled: give synthetic.pt files, or --plan and the --out of one of its figures")
    draw_distilled_images([Path(p) for p in sets], Path(args.out), args.title, base)


def cmd_ledger(args) -> None:
    from kdprune.plan import Plan
    from kdprune.report.ledger import write_ledger

    verdicts = args.verdicts or (Plan.read(args.plan).verdict_files() if args.plan else [])
    if not verdicts:
        raise SystemExit("kdprune ledger: give --plan (every claim of the plan) or verdict files")
    write_ledger([Path(p) for p in verdicts], Path(args.out_dir))


def cmd_bench(args) -> None:
    from kdprune.files import write_text
    from kdprune.train.bench import DD_ABOUT, DD_COLUMNS, format_results, run_bench, run_dd_bench
    from kdprune.train.loop import pick_device

    device = pick_device(args.device)
    pairs = [tuple(pair.split(":")[::-1]) for pair in args.pairs.split(",") if pair]  # teacher:student -> (student, teacher)
    tables = []
    if pairs:
        results = run_bench(pairs, device, args.batch, args.workers, args.warmup, args.steps, args.stack, args.data, log=_log)
        tables.append(format_results(results, device, args.batch))
    if args.dd:
        dd = run_dd_bench(device, args.ipc, args.batch_real, args.num_eval, args.eval_epochs, args.warmup, args.steps, args.data, log=_log)
        tables.append(format_results(dd, device, args.batch, about=DD_ABOUT, columns=DD_COLUMNS))
    table = "\n\n".join(tables)
    print(table)
    if args.out:
        write_text(args.out, table + "\n")


def cmd_error_rates(args) -> None:
    from kdprune.files import write_text
    from kdprune.report.error_rates import error_table, load_rules
    from kdprune.report.markdown import format_markdown_table

    table = error_table(load_rules(args.rules), args.reps, args.only)
    text = f"{args.reps} draws per scenario, rules from {args.rules or 'kdprune.report.verdicts'}\n\n" + format_markdown_table(table)
    print(text)
    if args.out:
        write_text(args.out, text)


def cmd_compute(args) -> None:
    from kdprune.plan import Plan
    from kdprune.report.compute import write_compute_summary

    plan = Plan.read(args.plan)
    print(write_compute_summary(plan.paper_job_files(), Path(args.out_dir), plan.preset).to_string(index=False))


def cmd_cost(args) -> None:
    from kdprune.plan.config import load
    from kdprune.report.compute import estimate_grid
    from kdprune.report.runs import read_runs_table

    table = estimate_grid(load(args.config, {"preset": args.preset}), read_runs_table(Path(args.measured)))
    print(f"Estimated device hours of the `{args.preset}` grid from the throughput measured in {args.measured}:")
    print(table.to_string(index=False, float_format=lambda h: f"{h:.2f}"))
    print(f"total: {table['hours'].sum():.2f} h")


def cmd_check_config(args) -> None:
    from kdprune.plan.config import load
    from kdprune.plan.grid import Grid

    cfg = load(args.config, {"preset": args.preset} if args.preset else None)
    grid = Grid.from_config(cfg)
    print(
        f"config OK: preset {cfg['preset']}, papers {', '.join(cfg['papers'])}, {len(grid.teachers)} teachers, {len(grid.scores)} score jobs, {len(grid.students)} students"
    )


def cmd_forkserver(args) -> None:
    from kdprune.forkserver import serve

    serve(args.socket, args.parent)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "forkserver" not in argv[:1]:  # a local run's fork server, when there is one, runs the command
        from kdprune.forkserver import run_through_server

        status = run_through_server(argv)
        if status is not None:
            return status
    parser = argparse.ArgumentParser(prog="kdprune", description=__doc__)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    sub = parser.add_subparsers(dest="verb", required=True)

    p = sub.add_parser("run", help="run one compute job of the plan: a teacher, its view table, a score, or a grid point's students")
    p.add_argument("kind", help="the job kind (kdprune.plan.kinds): teacher, teacher_views, score, distilled, student")
    p.add_argument("--plan", required=True, help="results/<preset>/plan.json (written by the workflow)")
    p.add_argument("--key", required=True, help="the job's key: its folder (score: its file) under results/<preset>/")
    p.add_argument("--settings", help="the settings hash the job was scheduled with; a different one in the plan stops the job")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("runs", help="collect metrics.json files into the runs table")
    p.add_argument("--plan", required=True)
    p.add_argument("--experiment", help="one experiment's runs (default: every run, teachers too)")
    p.add_argument("--claim", help="a claim's runs: its experiment's first round plus what --round rounds added")
    p.add_argument("--round", type=int, default=0, help="with --claim: rounds of adaptive replicates to include")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("replicates", help="one round of a claim's adaptive replicates: which runs to add")
    p.add_argument("--plan", required=True)
    p.add_argument("--claim", required=True)
    p.add_argument("--round", type=int, required=True, help="the round (1, 2, ...)")
    p.add_argument("--runs", required=True, help="the claim's runs table after the previous rounds")
    p.add_argument("--out", required=True, help="the round's decision .json")
    p.set_defaults(func=cmd_replicates)

    p = sub.add_parser("claim", help="evaluate one claim on a runs table")
    p.add_argument("--plan", required=True)
    p.add_argument("--claim", required=True, help="the claim id, e.g. P1-C1")
    p.add_argument("--runs", required=True, nargs="+", help="the runs table, then the claim's adaptive-replicate round files in order")
    p.add_argument("--table", required=True, help="comparison table .csv (a .md is written beside it)")
    p.add_argument("--verdict", required=True, help="verdict .json")
    p.set_defaults(func=cmd_claim)

    p = sub.add_parser("figure", help="draw a claim's figure")
    p.add_argument("--plan", required=True)
    p.add_argument("--claim", required=True)
    p.add_argument("--runs", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_figure)

    p = sub.add_parser("show-distilled", help="distilled sets (synthetic.pt files) as an image grid, a column per class")
    p.add_argument("--out", required=True)
    p.add_argument("--title", default="distilled images")
    p.add_argument("--base", help="label each set by its folder relative to this one")
    p.add_argument("--plan", help="a plan file: draw the sets of its figure --out (what the workflow does)")
    p.add_argument("sets", nargs="*", help="synthetic.pt files")
    p.set_defaults(func=cmd_show_distilled)

    p = sub.add_parser("ledger", help="the claims ledger from verdict files")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--plan", help="a plan file: the verdicts of every claim in it (what the workflow runs)")
    p.add_argument("verdicts", nargs="*", help="verdict files (instead of --plan)")
    p.set_defaults(func=cmd_ledger)

    p = sub.add_parser("bench", help="KD step throughput: reference DataLoader pipeline vs kdprune's paths")
    p.add_argument("--pairs", default="resnet32x4:resnet8x4,resnet56:resnet20", help="teacher:student,... ('': none) (default: %(default)s)")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch", type=int, default=64, help="images per student per step")
    p.add_argument("--workers", type=int, default=8, help="reference DataLoader workers")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--steps", type=int, default=200, help="timed steps per path")
    p.add_argument("--stack", type=int, default=8, help="students stacked into one network")
    p.add_argument("--data", help="dataset spec (default: random uint8 32x32, CIFAR-10's size)")
    p.add_argument("--dd", action="store_true", help="also time dataset distillation: DM's matching step and the evaluation's training (P4)")
    p.add_argument("--ipc", type=int, default=10, help="--dd: synthetic images per class")
    p.add_argument("--batch-real", type=int, default=256, help="--dd: real images per class per DM matching step")
    p.add_argument("--num-eval", type=int, default=4, help="--dd: ConvNets trained by the evaluation")
    p.add_argument("--eval-epochs", type=int, default=20, help="--dd: evaluation epochs (passes: one more)")
    p.add_argument("--out", help="also write the table here (Markdown)")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("error-rates", help="Monte-Carlo verdict rates of the verdict rules on synthetic runs tables")
    p.add_argument("--reps", type=int, default=1000, help="draws per scenario (default: %(default)s)")
    p.add_argument("--rules", help="another version of kdprune/report/verdicts.py to measure (e.g. from git show)")
    p.add_argument("--only", nargs="+", help="scenario names (default: all)")
    p.add_argument("--out", help="also write the table here (Markdown)")
    p.set_defaults(func=cmd_error_rates)

    p = sub.add_parser("compute", help="wall time and GPU hours of the grid's jobs, per paper and role")
    p.add_argument("--plan", required=True)
    p.add_argument("--out-dir", required=True)
    p.set_defaults(func=cmd_compute)

    p = sub.add_parser("cost", help="estimate a preset's device hours from a measured runs table")
    p.add_argument("--config", default="config.yaml")
    p.add_argument("--preset", default="paper", help="the preset to estimate (default: %(default)s)")
    p.add_argument("--measured", required=True, help="runs.csv of a finished grid on the target device (e.g. results/small/runs.csv)")
    p.set_defaults(func=cmd_cost)

    p = sub.add_parser("forkserver", help="serve a local run's jobs from a process with torch imported (kdprune/forkserver.py)")
    p.add_argument("--socket", required=True, help="the Unix socket to listen on (jobs find it in KDPRUNE_FORKSERVER)")
    p.add_argument("--parent", type=int, help="serve while this process runs (default: the process that started the server)")
    p.set_defaults(func=cmd_forkserver)

    p = sub.add_parser("check-config", help="validate config.yaml and its paper files, count the grid's jobs")
    p.add_argument("--config", default="config.yaml")
    p.add_argument("--preset", help="the preset to check (default: config.yaml's)")
    p.set_defaults(func=cmd_check_config)

    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from kdprune.data import DatasetMissing
    from kdprune.files import DiskFull
    from kdprune.plan.config import ConfigError
    from kdprune.registry import UnknownName
    from kdprune.stopping import PREEMPTED_EXIT, NonFiniteLoss, Preempted

    try:
        args.func(args)
    except (ConfigError, DatasetMissing, UnknownName, DiskFull) as err:  # user errors: one line, no traceback
        print(f"kdprune {args.verb}: {err}", file=sys.stderr)
        return 2
    except NonFiniteLoss as err:  # the run's own failure: one line, the rest of the workflow goes on (--keep-going)
        print(f"kdprune {args.verb}: {err}", file=sys.stderr)
        return 1
    except Preempted as err:  # state saved: a rerun (submitit's requeue) resumes
        print(f"kdprune {args.verb}: {err}", file=sys.stderr)
        return PREEMPTED_EXIT
    return 0
