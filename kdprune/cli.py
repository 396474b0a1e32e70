"""`python -m kdprune <verb>`: what every workflow rule calls, with explicit paths."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch


def _log(msg: str) -> None:
    print(msg, flush=True)


def cmd_train(args) -> None:
    from kdprune.jobs import run_seeds

    specs = json.loads(args.spec)
    specs = specs if isinstance(specs, list) else [specs]
    scores = args.scores or [None] * len(specs)
    if not (len(args.out_dir) == len(scores) == len(specs)):
        raise SystemExit(f"kdprune train: {len(specs)} specs need as many --out-dir (got {len(args.out_dir)}) and --scores (got {len(scores)})")
    run_seeds(specs, [Path(d) for d in args.out_dir], args.teacher and Path(args.teacher), [s and Path(s) for s in scores], log=_log,
              views_path=args.teacher_views and Path(args.teacher_views), stack=args.stack)


def cmd_views(args) -> None:
    from kdprune.jobs import run_views

    run_views(json.loads(args.spec), Path(args.teacher), Path(args.out), log=_log)


def cmd_score(args) -> None:
    from kdprune.jobs import run_score

    run_score(json.loads(args.spec), Path(args.out), log=_log)


def cmd_runs(args) -> None:
    from kdprune.report.runs import write_runs_table

    write_runs_table([Path(p) for p in args.metrics], Path(args.out), scale=args.scale)


def cmd_claim(args) -> None:
    from kdprune.report.claims import evaluate_claim_files

    evaluate_claim_files(json.loads(args.spec), Path(args.runs), Path(args.table), Path(args.verdict))


def cmd_figure(args) -> None:
    from kdprune.report.figures import draw_figure

    draw_figure(json.loads(args.spec), Path(args.runs), Path(args.out))


def cmd_ledger(args) -> None:
    from kdprune.report.ledger import write_ledger

    write_ledger([Path(p) for p in args.verdicts], Path(args.out_dir))


def cmd_bench(args) -> None:
    from kdprune.bench import format_results, run_bench
    from kdprune.io import write_text
    from kdprune.train import pick_device

    device = pick_device(args.device)
    pairs = [tuple(pair.split(":")[::-1]) for pair in args.pairs.split(",")]  # teacher:student -> (student, teacher)
    results = run_bench(pairs, device, args.batch, args.workers, args.warmup, args.steps, args.stack, args.data, log=_log)
    table = format_results(results, device, args.batch)
    print(table)
    if args.out:
        write_text(args.out, table + "\n")


def cmd_compute(args) -> None:
    from kdprune.report.compute import write_compute_summary

    print(write_compute_summary(json.loads(args.spec), Path(args.out_dir), args.scale).to_string(index=False))


def cmd_cost(args) -> None:
    from kdprune.config import load
    from kdprune.report.compute import estimate_grid
    from kdprune.report.runs import read_runs_table

    table = estimate_grid(load(args.config, {"scale": args.scale}), read_runs_table(Path(args.measured)))
    print(f"Estimated device hours of the `{args.scale}` grid from the throughput measured in {args.measured}:")
    print(table.to_string(index=False, float_format=lambda h: f"{h:.2f}"))
    print(f"total: {table['hours'].sum():.2f} h")


def cmd_check_config(args) -> None:
    from kdprune.config import load
    from kdprune.grid import Grid

    cfg = load(args.config)
    grid = Grid.from_config(cfg)
    print(f"config OK: scale {cfg['scale']}, {len(grid.teachers)} teachers, {len(grid.scores)} score jobs, {len(grid.students)} students")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kdprune", description=__doc__)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    sub = parser.add_subparsers(dest="verb", required=True)

    p = sub.add_parser("train", help="train a teacher or a student, or the seeds of one grid cell")
    p.add_argument("--spec", required=True, help="the job's spec, JSON; a list of specs: the seeds of one cell, in one process")
    p.add_argument("--out-dir", required=True, nargs="+", help="one run folder per spec")
    p.add_argument("--teacher", help="teacher model.pt (KD losses)")
    p.add_argument("--scores", nargs="+", help="scores .npz (pruned subsets), one per spec")
    p.add_argument("--stack", choices=["auto", "stacked", "sequential"], default="auto",
                   help="how a list of specs trains: one stacked network, one after the other, or auto (stacked on CUDA)")
    p.add_argument("--teacher-views", help="the teacher's view logits (KD losses; replaces running the teacher)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("views", help="a trained teacher's logits of every training view (crop x flip)")
    p.add_argument("--spec", required=True, help="the teacher's spec, JSON")
    p.add_argument("--teacher", required=True, help="teacher model.pt")
    p.add_argument("--out", required=True, help="views.pt")
    p.set_defaults(func=cmd_views)

    p = sub.add_parser("score", help="compute a pruning score for every training sample")
    p.add_argument("--spec", required=True)
    p.add_argument("--out", required=True, help=".npz with scores and labels")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("runs", help="collect metrics.json files into the runs table")
    p.add_argument("--out", required=True)
    p.add_argument("--scale", required=True)
    p.add_argument("metrics", nargs="+")
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("claim", help="evaluate one claim on a runs table")
    p.add_argument("--spec", required=True)
    p.add_argument("--runs", required=True)
    p.add_argument("--table", required=True, help="comparison table .csv (a .md is written beside it)")
    p.add_argument("--verdict", required=True, help="verdict .json")
    p.set_defaults(func=cmd_claim)

    p = sub.add_parser("figure", help="draw a claim's figure")
    p.add_argument("--spec", required=True)
    p.add_argument("--runs", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_figure)

    p = sub.add_parser("ledger", help="the claims ledger from verdict files")
    p.add_argument("--out-dir", required=True)
    p.add_argument("verdicts", nargs="+")
    p.set_defaults(func=cmd_ledger)

    p = sub.add_parser("bench", help="KD step throughput: reference DataLoader pipeline vs kdprune's paths")
    p.add_argument("--pairs", default="resnet32x4:resnet8x4,resnet56:resnet20", help="teacher:student,... (default: %(default)s)")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch", type=int, default=64, help="images per student per step")
    p.add_argument("--workers", type=int, default=8, help="reference DataLoader workers")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--steps", type=int, default=200, help="timed steps per path")
    p.add_argument("--stack", type=int, default=8, help="students stacked into one network")
    p.add_argument("--data", help="dataset spec (default: random uint8 32x32, CIFAR-10's size)")
    p.add_argument("--out", help="also write the table here (Markdown)")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("compute", help="wall time and GPU hours of the grid's jobs, per paper and role")
    p.add_argument("--spec", required=True, help='JSON {"paper": [job metadata files]}')
    p.add_argument("--out-dir", required=True)
    p.add_argument("--scale", required=True)
    p.set_defaults(func=cmd_compute)

    p = sub.add_parser("cost", help="estimate a preset's device hours from a measured runs table")
    p.add_argument("--config", default="config.yaml")
    p.add_argument("--scale", default="paper", help="the preset to estimate (default: %(default)s)")
    p.add_argument("--measured", required=True, help="runs.csv of a finished grid on the target device (e.g. results/small/runs.csv)")
    p.set_defaults(func=cmd_cost)

    p = sub.add_parser("check-config", help="validate config.yaml and count the grid's jobs")
    p.add_argument("--config", default="config.yaml")
    p.set_defaults(func=cmd_check_config)

    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from kdprune.config import ConfigError
    from kdprune.data import DatasetMissing
    from kdprune.registry import UnknownName

    try:
        args.func(args)
    except (ConfigError, DatasetMissing, UnknownName) as err:  # user errors: one line, no traceback
        print(f"kdprune {args.verb}: {err}", file=sys.stderr)
        return 2
    return 0
