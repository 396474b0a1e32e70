"""The robustness rule `varies_within` (P3-C4): every two settings within the tolerance, by two
one-sided tests per pair; its Monte-Carlo error rates, and a naive rule that the same check fails."""

import types

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from kdprune.report.error_rates import SCENARIOS, load_rules
from kdprune.report.verdicts import varies_within

TEST = {"rule": "varies_within", "metric": "final_acc", "over": ["revise"], "tolerance": 0.01, "cells": ["teacher"]}
REPS = 80
BOUND = 0.025 + 3 * (0.025 * 0.975 / REPS) ** 0.5


def runs(offsets: dict[float, float], seeds: int, noise: float, teachers=("t",), seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [
        {"teacher": t, "revise": eta, "seed": s, "final_acc": 0.7 + off + rng.normal(0, noise), "n_test": 1_000_000}
        for t in teachers
        for eta, off in offsets.items()
        for s in range(seeds)
    ]
    return pd.DataFrame(rows)


def test_one_row_per_pair_of_settings_per_cell():
    table, _, _ = varies_within(runs({0.5: 0, 0.8: 0, 0.95: 0}, 3, 0.001, teachers=("a", "b")), TEST)
    assert len(table) == 2 * 3
    assert set(zip(table["setting_a"], table["setting_b"])) == {
        ("revise=0.5", "revise=0.8"),
        ("revise=0.5", "revise=0.95"),
        ("revise=0.8", "revise=0.95"),
    }


def test_settings_within_the_band_are_supported_and_far_apart_are_not():
    _, verdict, _ = varies_within(runs({0.5: 0.0, 0.8: 0.001, 0.95: -0.001}, 5, 0.0005), TEST)
    assert verdict == "supported"
    _, verdict, why = varies_within(runs({0.5: 0.0, 0.8: 0.0, 0.95: -0.03}, 5, 0.0005), TEST)
    assert verdict == "not supported", why
    assert "final_acc within 1 point over revise" in why  # the tolerance in points, like the tables


def test_a_pair_is_better_exactly_when_its_interval_lies_inside_the_band():
    """TOST at level a per side is the (1 - 2a) interval inside (-tol, tol): here the 95% t interval."""
    df = runs({0.5: 0.0, 0.8: 0.004}, 6, 0.003, seed=3)
    table, _, _ = varies_within(df, {**TEST, "cells": []})
    (row,) = table.to_dict("records")
    d = df[df.revise == 0.5].set_index("seed").final_acc - df[df.revise == 0.8].set_index("seed").final_acc
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    assert row["difference"] == pytest.approx(d.mean())
    assert row["difference_ci_low"] == pytest.approx(d.mean() - half)
    assert row["diff"] == pytest.approx(0.01 - abs(d.mean()))
    inside = -0.01 < d.mean() - half and d.mean() + half < 0.01
    assert (row["status"] == "better") == inside
    assert row["ci_low"] == pytest.approx(0.01 - max(abs(d.mean() - half), abs(d.mean() + half)))


def test_a_single_seed_decides_nothing():
    _, verdict, _ = varies_within(runs({0.5: 0.0, 0.8: 0.0}, 1, 0.0), TEST)
    assert verdict == "inconclusive"


@pytest.mark.parametrize("name", ["robust_equal", "robust_boundary", "not_robust", "robust_power_3seeds", "robust_power_10seeds"])
def test_false_verdict_rate_is_near_nominal(name):
    (scenario,) = [s for s in SCENARIOS if s.name == name]
    assert scenario.rates(load_rules(), REPS)["false"] <= BOUND


def test_power_grows_with_seeds():
    rules = load_rules()
    power = {s.name: s.rates(rules, 40)["supported"] for s in SCENARIOS if s.name.startswith("robust_power_")}
    assert power["robust_power_10seeds"] > 0.8 > power["robust_power_3seeds"]


def naive_rule(df: pd.DataFrame, test: dict):
    """Robust when the setting means' range is within the tolerance: no interval at all."""
    means = df.groupby(test["over"])[test["metric"]].mean()
    return None, ("supported" if means.max() - means.min() <= test["tolerance"] else "not supported"), ""


def test_the_error_check_fails_a_rule_without_intervals():
    """The same check on a naive range rule: at the boundary (one setting exactly 1 point off) it
    says "supported" about half the time, far above the bound."""
    (boundary,) = [s for s in SCENARIOS if s.name == "robust_boundary"]
    naive = types.SimpleNamespace(varies_within=naive_rule)
    assert boundary.rates(naive, REPS)["false"] > 4 * BOUND
