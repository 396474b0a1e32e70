"""Monte-Carlo error rates of the verdict rules: each scenario draws synthetic runs tables whose
truth is known, decides the claim with a rule module, and counts the verdicts. The rates in
docs/verdicts.md come from `python -m kdprune error-rates`; tests/report/test_error_rates.py runs
the same scenarios with fewer draws and bounds the false-verdict rates.

Units: accuracies as fractions; `sigma` is one run's seed-to-seed standard deviation."""

from __future__ import annotations

import importlib.util
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd

SIGMA = 0.01  # one point


@dataclass(frozen=True)
class Scenario:
    name: str
    what: str  # the situation, for the docs table
    test: dict
    draw: Callable[[np.random.Generator], pd.DataFrame]
    wrong: tuple[str, ...]  # the verdicts that are errors here

    # adaptive replicates ({min, max, rounds, interim_confidence, futility}): `draw` gives `max`
    # seeds, and the rounds of kdprune.report.replicates pick which of them the verdict sees
    replicates: dict | None = None

    def rates(self, rules: ModuleType, reps: int, seed: int = 0) -> dict[str, float]:
        rng = np.random.default_rng(seed)
        rule = getattr(rules, self.test["rule"])
        counts = {"supported": 0, "not supported": 0, "inconclusive": 0}
        share = []  # adaptive: the runs used, as a share of `max` seeds everywhere
        for _ in range(reps):
            runs = self.draw(rng)
            if self.replicates:
                full, runs = runs, self._rounds(runs)
                share.append(len(runs) / len(full))
            counts[rule(runs, self.test)[1]] += 1
        rates = {k: v / reps for k, v in counts.items()}
        return {**rates, "false": sum(rates[w] for w in self.wrong)} | ({"runs": float(np.mean(share))} if share else {})

    def _rounds(self, full: pd.DataFrame) -> pd.DataFrame:
        """The runs the adaptive rounds train, out of `full` (every seed up to `max`)."""
        from kdprune.report.replicates import next_round  # the verdict rules stay importable alone

        axes = [c for c in full.columns if c not in ("seed", "final_acc", "n_test")]
        full = full.assign(run_dir=full[axes + ["seed"]].astype(str).agg("/".join, axis=1))
        full["metrics"] = full["run_dir"] + "/metrics.json"
        spec = {"id": self.name, "test": self.test, "replicates": self.replicates, "seed_pool": sorted(full["seed"].unique())}
        runs = full[full["seed"] < self.replicates["min"]]
        for round_no in range(1, self.replicates["rounds"] + 1):
            decision = next_round(spec, runs, full, round_no)
            if decision["done"]:
                break
            runs = pd.concat([runs, full[full["metrics"].isin(decision["metrics"])]])
        return runs


def _rows(axes: dict[str, list], seeds: int, acc: Callable[..., float]) -> pd.DataFrame:
    names = list(axes)
    rows = [{**dict(zip(names, v)), "seed": s} for v in itertools.product(*axes.values()) for s in range(seeds)]
    df = pd.DataFrame(rows)
    df["final_acc"] = [acc(**r) for r in rows]
    return df.assign(n_test=10_000)


def _paired_null(rng, cells: int = 18, seeds: int = 3) -> pd.DataFrame:
    """KD and CE equal in every cell (the boundary of "KD improves"), seed-paired noise."""
    sel = [f"m{i}" for i in range(cells // 3)]
    base = {(s, k, seed): 0.7 + rng.normal(0, SIGMA) for s, k, seed in itertools.product(sel, [0.1, 0.3, 0.5], range(seeds))}
    return _rows(
        {"selection": sel, "keep": [0.1, 0.3, 0.5], "loss": ["ce", "kd"]},
        seeds,
        lambda selection, keep, loss, seed: base[(selection, keep, seed)] + rng.normal(0, SIGMA),
    )


def _kd_better(seeds: int) -> Callable[[np.random.Generator], pd.DataFrame]:
    """KD 2 points above CE in 6 cells: the claim is true; P(supported) is the power."""

    def draw(rng):
        base = {(k, s): 0.7 + rng.normal(0, SIGMA) for k in (0.1, 0.3, 0.5) for s in range(seeds)}
        axes = {"selection": ["a", "b"], "keep": [0.1, 0.3, 0.5], "loss": ["ce", "kd"]}
        return _rows(axes, seeds, lambda selection, keep, loss, seed: base[(keep, seed)] + (0.02 if loss == "kd" else 0) + rng.normal(0, SIGMA))

    return draw


def _best_of(rng, seeds: int = 3) -> pd.DataFrame:
    """Random + KD 0.5 points below every one of five equal score methods, 3 datasets x 4 keeps:
    inside the 1-point margin, so "random is comparable to the best" is true."""
    methods = ["random", "el2n", "grand", "forgetting", "moderate", "ccs"]

    def acc(dataset, keep, selection, loss, seed):
        return 0.7 - (0.005 if selection == "random" else 0.0) + rng.normal(0, SIGMA)

    return _rows({"dataset": ["a", "b", "c"], "keep": [0.1, 0.3, 0.5, 0.7], "selection": methods, "loss": ["kd"]}, seeds, acc)


def _teacher_ladder(chain: bool, tau: float, seeds: int = 3) -> Callable[[np.random.Generator], pd.DataFrame]:
    """No trend of student accuracy with teacher size; each trained teacher shifts its students by
    a draw of sd `tau`. chain: seed s uses teacher s; else every seed uses teacher 0."""
    params = [78_000, 272_000, 466_000, 855_000]

    def draw(rng):
        effect = {(p, s): rng.normal(0, tau) for p in params for s in range(seeds)}
        return _rows(
            {"teacher_params": params, "keep": [0.1]},
            seeds,
            lambda teacher_params, keep, seed: 0.6 + effect[(teacher_params, seed if chain else 0)] + rng.normal(0, SIGMA),
        )

    return draw


def _quantised(rng, seeds: int = 3, n_test: int = 200) -> pd.DataFrame:
    """KD = CE on the data distribution; the 200-image test set (drawn once, shared by every seed)
    favours one of them by its sampling error, and seed-to-seed variation is under one image: the
    paired differences are identical quantised values, so an interval from their spread has width 0."""
    p = 0.7
    test_error = {k: rng.normal(0, np.sqrt(2 * p * (1 - p) / n_test)) for k in (0.1, 0.3, 0.5)}

    def acc(keep, loss, seed):
        return np.round((p + (test_error[keep] if loss == "kd" else 0.0) + rng.normal(0, 0.2 / n_test)) * n_test) / n_test

    return _rows({"keep": [0.1, 0.3, 0.5], "loss": ["ce", "kd"]}, seeds, acc).assign(n_test=n_test)


def _reversal(rng, seeds: int = 3) -> pd.DataFrame:
    """Bigger teachers hurt at keep 0.1 and help as much at keep 1.0: a reversal, not a fade."""
    params = [78_000, 272_000, 855_000]

    def acc(teacher_params, keep, seed):
        return 0.7 + (-1 if keep == 0.1 else 1) * 0.02 * np.log(teacher_params) + rng.normal(0, SIGMA)

    return _rows({"teacher_params": params, "keep": [0.1, 1.0]}, seeds, acc)


def _flat_alpha(rng, seeds: int = 3) -> pd.DataFrame:
    """Accuracy does not depend on alpha at any keep fraction."""
    return _rows(
        {"keep": [0.1, 0.5, 1.0], "alpha": [0.0, 0.5, 0.9, 1.0], "loss": ["kd"]}, seeds, lambda keep, alpha, loss, seed: 0.6 + rng.normal(0, SIGMA)
    )


def _equal_gain(rng, seeds: int = 3) -> pd.DataFrame:
    """Raising alpha helps hardest and random subsets equally (the boundary of "helps more")."""

    def acc(selection, keep, alpha, loss, seed):
        return 0.6 + (0.01 if alpha == 1.0 else 0.0) + rng.normal(0, SIGMA)

    axes = {"selection": ["random", "el2n-hardest", "grand-hardest"], "keep": [0.1, 0.3], "alpha": [0.5, 1.0], "loss": ["kd"]}
    return _rows(axes, seeds, acc)


def _settings(offsets: tuple[float, ...], seeds: int, sigma: float = SIGMA) -> Callable[[np.random.Generator], pd.DataFrame]:
    """One cell, one setting of eta per offset (accuracy 0.7 + offset); each seed shifts every
    setting alike (its initialisation and batches), plus each run's own noise."""
    etas = [0.5, 0.8, 0.95, 0.99][: len(offsets)]

    def draw(rng):
        shared = {s: rng.normal(0, sigma) for s in range(seeds)}
        return _rows(
            {"revise": etas},
            seeds,
            lambda revise, seed: 0.7 + offsets[etas.index(revise)] + shared[seed] + rng.normal(0, sigma),
        )

    return draw


PAIRED = {"metric": "final_acc", "treatment": {"loss": "kd"}, "control": {"loss": "ce"}, "confidence": 0.95, "margin": 0.0}
TREND = {"rule": "trend", "metric": "final_acc", "axis": "teacher_params", "log": True, "direction": "decreasing", "confidence": 0.95}
BOTH = ("supported", "not supported")

SCENARIOS = [
    Scenario(
        "multiplicity",
        "KD = CE in all 18 cells (6 methods x 3 keeps), sigma 1 pt",
        {**PAIRED, "rule": "improves_everywhere", "cells": ["selection", "keep"]},
        _paired_null,
        BOTH,
    ),
    *(
        Scenario(
            f"power_{n}seeds",
            f"KD 2 pts above CE in 6 cells, {n} seeds (the claim is true: supported = power)",
            {**PAIRED, "rule": "improves_everywhere", "cells": ["selection", "keep"]},
            _kd_better(n),
            ("not supported",),
        )
        for n in (3, 10)
    ),
    Scenario(
        "best_of",
        "random 0.5 pt below each of 5 equal methods, margin 1 pt, 12 cells (P1-C2; the claim is true)",
        {
            "rule": "matches_or_beats",
            "metric": "final_acc",
            "treatment": {"selection": "random", "loss": "kd"},
            "control": {"selection": {"not": ["random", "full"]}, "loss": "kd"},
            "control_best_of": "selection",  # the rules before docs/verdicts.md
            "control_each_of": "selection",
            "cells": ["dataset", "keep"],
            "margin": 0.01,
        },
        _best_of,
        ("not supported",),
    ),
    *(
        Scenario(
            f"one_teacher_tau{t:g}" if not chain else f"chain_tau{t:g}",
            f"no trend with teacher size; teacher-to-teacher sd = {t:g} x student sd; "
            + ("seed s trains teacher s (chain)" if chain else "every seed reads teacher 0"),
            {**TREND, "cells": ["keep"]},
            _teacher_ladder(chain, t * SIGMA),
            BOTH,
        )
        for t, chain in itertools.product((1, 2), (False, True))
    ),
    Scenario(
        "quantised",
        "KD = CE; 3 cells; a 200-image test set; seed sd 0.2 images: identical paired differences",
        {**PAIRED, "rule": "improves_everywhere", "cells": ["keep"]},
        _quantised,
        BOTH,
    ),
    Scenario(
        "reversal",
        "bigger teachers hurt at keep 0.1 and help as much at keep 1.0 (P1-C6 shape: a reversal, not a fade)",
        {**TREND, "fades_along": "keep"},
        _reversal,
        ("supported",),
    ),
    Scenario(
        "flat_alpha",
        "accuracy flat in alpha at every keep (P1-C4 shape)",
        {"rule": "best_value_shifts", "metric": "final_acc", "axis": "alpha", "along": "keep", "direction": "decreasing", "confidence": 0.95},
        _flat_alpha,
        BOTH,
    ),
    Scenario(
        "equal_gain",
        "raising alpha helps hardest and random subsets equally, 4 cells (P1-C5 shape)",
        {
            "rule": "larger_gain",
            "metric": "final_acc",
            "treatment": {"selection": {"not": ["random", "full"]}},
            "control": {"selection": "random"},
            "factor": "alpha",
            "low": 0.5,
            "high": 1.0,
            "cells": ["selection", "keep"],
        },
        _equal_gain,
        BOTH,
    ),
]


ROBUST = {"rule": "varies_within", "metric": "final_acc", "over": ["revise"], "tolerance": 0.01, "confidence": 0.95}
SCENARIOS += [
    Scenario(
        "robust_equal",
        "three settings of eta equal, tolerance 1 pt, 3 seeds (P3-C4 shape; the claim is true)",
        ROBUST,
        _settings((0.0, 0.0, 0.0), 3),
        ("not supported",),
    ),
    Scenario(
        "robust_boundary",
        "one of three settings exactly 1 pt off, tolerance 1 pt, 10 seeds (the boundary of the claim)",
        ROBUST,
        _settings((0.0, 0.0, 0.01), 10),
        ("supported",),
    ),
    Scenario(
        "not_robust",
        "one of three settings 2 pts off, tolerance 1 pt, 3 seeds (the claim is false)",
        ROBUST,
        _settings((0.0, 0.0, 0.02), 3),
        ("supported",),
    ),
    *(
        Scenario(
            f"robust_power_{n}seeds",
            f"three settings equal, sigma 0.5 pt, tolerance 1 pt, {n} seeds (the claim is true: supported = power)",
            ROBUST,
            _settings((0.0, 0.0, 0.0), n, SIGMA / 2),
            ("not supported",),
        )
        for n in (3, 10)
    ),
]


def _one_cell(effect: float, seeds: int) -> Callable[[np.random.Generator], pd.DataFrame]:
    """One cell, KD `effect` above CE, seed-paired noise of sigma 1 point per run."""

    def draw(rng):
        base = {s: 0.7 + rng.normal(0, SIGMA) for s in range(seeds)}
        return _rows(
            {"keep": [0.5], "loss": ["ce", "kd"]}, seeds, lambda keep, loss, seed: base[seed] + (effect if loss == "kd" else 0) + rng.normal(0, SIGMA)
        )

    return draw


ONE_CELL = {**PAIRED, "rule": "improves_everywhere", "cells": ["keep"]}
ROUNDS = {"min": 3, "max": 10, "rounds": 3, "interim_confidence": 0.997, "futility": None}
LONG = ROUNDS | {"max": 20, "rounds": 6}
BEFORE = {"interim_confidence": 0.95}  # the rule before 2026-12-07: each round's look at the claim's level
SCENARIOS += [
    *(
        Scenario(f"adaptive_null{tag}", f"KD = CE in one cell; {what}", ONE_CELL, _one_cell(0.0, reps["max"]), BOTH, reps)
        for tag, what, reps in (
            ("", "adaptive 3 to 10 seeds, 3 rounds", ROUNDS),
            ("_before", "the same, each round's look at 95% (the rule before)", ROUNDS | BEFORE),
            ("_long", "adaptive 3 to 20 seeds, 6 rounds", LONG),
            ("_long_before", "the same, each round's look at 95% (the rule before)", LONG | BEFORE),
            ("_futility3", "adaptive 3 to 10 seeds, futility 3", ROUNDS | {"futility": 3}),
        )
    ),
    *(
        Scenario(
            f"adaptive_{points}pt{tag}",
            f"KD {points} pt above CE in one cell; adaptive 3 to 10 seeds{what} (the claim is true: supported = power)",
            ONE_CELL,
            _one_cell(points * SIGMA, 10),
            ("not supported",),
            ROUNDS | extra,
        )
        for points in (1, 2)
        for tag, what, extra in (("", "", {}), ("_before", ", looks at 95%", BEFORE), ("_futility3", ", futility 3", {"futility": 3}))
    ),
]


def load_rules(path: str | Path | None = None) -> ModuleType:
    """The rules to measure: kdprune.report.verdicts, or another version of that file (e.g. the
    rules at an earlier commit, `git show <rev>:kdprune/report/verdicts.py > old.py`)."""
    if path is None:
        from kdprune.report import verdicts

        return verdicts
    spec = importlib.util.spec_from_file_location("rules_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def error_table(rules: ModuleType, reps: int, names: list[str] | None = None) -> pd.DataFrame:
    rows = []
    for s in SCENARIOS:
        if names and s.name not in names:
            continue
        r = s.rates(rules, reps)
        rows.append({"scenario": s.name, "situation": s.what, "wrong verdicts": " / ".join(s.wrong), **r})
    return pd.DataFrame(rows)
