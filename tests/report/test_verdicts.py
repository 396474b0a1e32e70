import itertools

import numpy as np
import pandas as pd
import pytest

from kdprune.report.verdicts import evaluate_claim, evaluate_claim_files, matches

TEST = {
    "rule": "improves_everywhere",
    "metric": "final_acc",
    "treatment": {"loss": "kd"},
    "control": {"loss": "ce"},
    "cells": ["selection", "keep"],
    "confidence": 0.95,
    "margin": 0.0,
}


def spec(**test):
    return {
        "id": "X-C1",
        "paper": "X",
        "statement": "s",
        "preset": "small",
        "evidence": True,
        "setting": {"dataset": ["d"]},
        "test": {**TEST, **test},
    }


def runs(effect, noise=0.002, seeds=3):
    """Synthetic runs: KD - CE = effect[(selection, keep)] +- noise, paired by seed."""
    rng = np.random.default_rng(0)
    rows = []
    for (sel, keep), seed in itertools.product(effect, range(seeds)):
        base = 0.7 + 0.01 * seed
        rows.append({"selection": sel, "keep": keep, "seed": seed, "loss": "ce", "final_acc": base})
        rows.append({"selection": sel, "keep": keep, "seed": seed, "loss": "kd", "final_acc": base + effect[(sel, keep)] + rng.normal(0, noise)})
    return pd.DataFrame(rows)


CELLS = [("random", 0.1), ("random", 0.5), ("el2n-hardest", 0.1)]


def test_supported_when_every_cell_improves():
    cells, v = evaluate_claim(spec(), runs({c: 0.03 for c in CELLS}))
    assert v["verdict"] == "supported" and v["n_cells"] == 3 and v["n_seeds"] == 3
    assert (cells["status"] == "better").all() and v["mean_diff"] == pytest.approx(0.03, abs=0.005)


def test_not_supported_when_one_cell_is_significantly_worse():
    effect = {c: 0.03 for c in CELLS} | {("el2n-hardest", 0.1): -0.02}
    cells, v = evaluate_claim(spec(), runs(effect))
    assert v["verdict"] == "not supported" and "significantly the other way in 1" in v["reason"]


def test_inconclusive_when_noise_hides_the_effect():
    _, v = evaluate_claim(spec(), runs({c: 0.001 for c in CELLS}, noise=0.05))
    assert v["verdict"] == "inconclusive"


def test_inconclusive_with_a_single_seed():
    _, v = evaluate_claim(spec(), runs({c: 0.05 for c in CELLS}, seeds=1))
    assert v["verdict"] == "inconclusive" and all(c["ci_low"] is None for c in v["cells"])


def test_margin_raises_the_bar():
    _, v = evaluate_claim(spec(margin=0.05), runs({c: 0.03 for c in CELLS}))
    assert v["verdict"] == "not supported"


def test_non_inferiority_rule():
    effect = {c: -0.005 for c in CELLS}
    assert evaluate_claim(spec(rule="matches_or_beats", margin=0.02), runs(effect))[1]["verdict"] == "supported"
    assert evaluate_claim(spec(rule="matches_or_beats", margin=0.0), runs(effect))[1]["verdict"] == "not supported"


def test_the_interval_is_a_paired_t_interval():
    cells, _ = evaluate_claim(spec(), runs({("random", 0.1): 0.02}, noise=0.01, seeds=5))
    df = runs({("random", 0.1): 0.02}, noise=0.01, seeds=5)
    d = df[df.loss == "kd"].final_acc.values - df[df.loss == "ce"].final_acc.values
    from scipy import stats

    half = stats.t.ppf(0.975, 4) * d.std(ddof=1) / np.sqrt(5)
    assert cells.loc[0, "ci_low"] == pytest.approx(d.mean() - half) and cells.loc[0, "ci_high"] == pytest.approx(d.mean() + half)


def grid_runs(acc, seeds=3, noise=0.001, **fixed):
    """Synthetic runs from acc(**axes) over the product of the given axes, plus seed noise."""
    rng = np.random.default_rng(1)
    names = list(fixed)
    rows = []
    for values in itertools.product(*fixed.values()):
        axes = dict(zip(names, values))
        for seed in range(seeds):
            rows.append({**axes, "seed": seed, "final_acc": acc(**axes) + 0.01 * seed + rng.normal(0, noise)})
    return pd.DataFrame(rows)


def test_control_each_of_compares_with_every_score_method_per_cell():
    runs = grid_runs(
        lambda selection, keep, loss: {"random": 0.70, "el2n-hardest": 0.69, "grand-hardest": 0.72}[selection],
        selection=["random", "el2n-hardest", "grand-hardest"],
        keep=[0.1, 0.5],
        loss=["kd"],
    )
    s = spec(
        rule="matches_or_beats",
        treatment={"selection": "random"},
        control={"selection": {"not": ["random", "full"]}},
        control_each_of="selection",
        cells=["keep"],
        margin=0.01,
    )
    cells, v = evaluate_claim(s, runs)
    assert sorted(cells["control_selection"]) == ["el2n-hardest", "el2n-hardest", "grand-hardest", "grand-hardest"]
    by = cells.set_index(["keep", "control_selection"])["diff"]
    assert by[(0.1, "grand-hardest")] == pytest.approx(-0.02, abs=0.003) and by[(0.1, "el2n-hardest")] == pytest.approx(0.01, abs=0.003)
    assert v["verdict"] == "not supported"  # 2 points below the best method: outside the 1-point margin
    assert evaluate_claim({**s, "test": {**s["test"], "margin": 0.03}}, runs)[1]["verdict"] == "supported"


def alpha_runs(best_small, best_large, gap=0.02):
    def acc(selection, keep, alpha, loss):
        best = best_small if keep == 0.1 else best_large
        return 0.6 - gap * abs(alpha - best) / 0.5

    df = grid_runs(acc, selection=["random"], keep=[0.1, 0.5, 1.0], alpha=[0.25, 0.5, 0.9], loss=["kd"])
    return df


@pytest.mark.parametrize("best_small,best_large,verdict", [(0.9, 0.25, "supported"), (0.25, 0.9, "not supported")])
def test_best_value_shifts(best_small, best_large, verdict):
    s = spec(rule="best_value_shifts", axis="alpha", along="keep", direction="decreasing", cells=["selection"])
    table, v = evaluate_claim(s, alpha_runs(best_small, best_large))
    assert v["verdict"] == verdict
    assert table.set_index("keep")["best_alpha"].to_dict()[0.1] == best_small and len(table) == 3


def test_best_value_shifts_inconclusive_in_noise():
    s = spec(rule="best_value_shifts", axis="alpha", along="keep", direction="decreasing", cells=["selection"])
    df = alpha_runs(0.9, 0.25, gap=0.0)
    df["final_acc"] += np.random.default_rng(5).normal(0, 0.02, len(df))
    assert evaluate_claim(s, df)[1]["verdict"] == "inconclusive"


@pytest.mark.parametrize("hard_gain,verdict", [(0.03, "supported"), (-0.01, "not supported"), (0.01, "inconclusive")])
def test_larger_gain_is_a_difference_in_differences(hard_gain, verdict):
    def acc(selection, keep, alpha):
        gain = hard_gain if selection == "el2n-hardest" else 0.01
        return 0.6 + (gain if alpha == 1.0 else 0.0)

    noise = 0.02 if verdict == "inconclusive" else 0.001
    runs = grid_runs(acc, noise=noise, selection=["random", "el2n-hardest"], keep=[0.1, 0.3], alpha=[0.5, 1.0]).assign(loss="kd")
    s = spec(
        rule="larger_gain",
        treatment={"selection": {"not": ["random", "full"]}},
        control={"selection": "random"},
        factor="alpha",
        low=0.5,
        high=1.0,
        cells=["selection", "keep"],
    )
    table, v = evaluate_claim(s, runs)
    assert v["verdict"] == verdict and len(table) == 2
    if verdict != "inconclusive":
        assert table["diff"].tolist() == pytest.approx([hard_gain - 0.01] * 2, abs=0.003)


@pytest.mark.parametrize(
    "slope_small,slope_large,verdict",
    [
        (-0.02, 0.0, "supported"),  # bigger teachers hurt at small f, not at f = 1
        (-0.02, -0.02, "inconclusive"),  # hurts everywhere: no fade
        (0.02, 0.0, "not supported"),  # bigger teachers help at small f
        (-0.02, 0.02, "inconclusive"),  # reverses at f = 1: not a fade (the old rule called it supported)
        (-0.02, 0.06, "not supported"),  # the far effect is larger than the near one
    ],
)
def test_trend_with_fade(slope_small, slope_large, verdict):
    def acc(keep, teacher_params, temperature):
        slope = slope_small if keep == 0.1 else slope_large
        return 0.7 + slope * np.log(teacher_params)

    runs = grid_runs(acc, keep=[0.1, 1.0], teacher_params=[78_000, 272_000, 855_000], temperature=[4.0])
    s = spec(rule="trend", axis="teacher_params", log=True, direction="decreasing", fades_along="keep", cells=["temperature"])
    table, v = evaluate_claim(s, runs)
    assert v["verdict"] == verdict
    assert table.loc[0, "slope"] == pytest.approx(slope_small, abs=0.002)
    # diff and its interval point the claimed way (decreasing): -slope, the same sign as every rule's diff
    assert (
        table.loc[0, "diff"] == pytest.approx(-slope_small, abs=0.002) and table.loc[0, "ci_low"] <= table.loc[0, "diff"] <= table.loc[0, "ci_high"]
    )


def test_numbers_match_as_numbers_and_ranges_select():
    df = pd.DataFrame({"keep": [0.1, 0.3, 1.0], "loss": ["kd", "ce", "kd"]})
    assert matches(df, {"keep": 1}).tolist() == [False, False, True]  # `keep: 1` in YAML is the table's 1.0
    assert matches(df, {"keep": {"not": [1]}}).tolist() == [True, True, False]
    assert matches(df, {"keep": {"max": 0.3}}).tolist() == [True, True, False]
    assert matches(df, {"keep": {"min": 0.2, "max": 1}, "loss": "kd"}).tolist() == [False, False, True]


def test_zero_spread_is_floored_at_the_binomial_test_set_error():
    """Identical paired differences (quantised accuracies) must not give a zero-width interval."""
    df = runs({c: 0.01 for c in CELLS}, noise=0.0).assign(n_test=200)
    cells, v = evaluate_claim(spec(), df)
    assert np.allclose(cells["sd"], 0.0) and (cells["ci_high"] - cells["ci_low"] > 0.05).all()
    assert v["verdict"] == "inconclusive"
    assert evaluate_claim(spec(variance_floor="none"), df)[1]["verdict"] == "inconclusive"  # no floor: undecided, not decisive
    assert evaluate_claim(spec(), df.drop(columns="n_test"))[1]["verdict"] == "inconclusive"


def test_one_worse_cell_among_many_needs_holm():
    """A cell barely below the threshold is 'worse' alone, not after Holm over 18 cells."""
    many = {(f"m{i}", k): 0.0 for i in range(6) for k in (0.1, 0.3, 0.5)}
    df = runs(many, noise=0.01, seeds=4)
    table, _ = evaluate_claim(spec(), df)
    assert (table["p_below_holm"] >= table["p_below"] - 1e-12).all()
    assert table["p_below_holm"].max() <= 1.0


def test_claim_tables_print_points_like_the_ledger(tmp_path):
    df = runs({c: 0.03 for c in CELLS})
    df.to_csv(tmp_path / "runs.csv", index=False)
    evaluate_claim_files(spec(), tmp_path / "runs.csv", tmp_path / "t.csv", tmp_path / "v.json")
    md = (tmp_path / "t.md").read_text()
    assert "in points" in md and "| 3" in md  # a 3-point effect prints as 3..., not 0.03
    assert pd.read_csv(tmp_path / "t.csv")["diff"].iloc[0] == pytest.approx(0.03, abs=0.005)  # the CSV keeps fractions


def test_verdict_sentences_state_margins_in_points_like_the_tables():
    """A margin of 0.01 in the claim file is 1 point; the sentence must not say "within 0.01"."""
    _, v = evaluate_claim(spec(rule="matches_or_beats", margin=0.01), runs({c: -0.002 for c in CELLS}))
    assert "within 1 point of control" in v["reason"] and "0.01" not in v["reason"]
    _, v = evaluate_claim(spec(margin=0.005), runs({c: 0.03 for c in CELLS}))
    assert "by more than 0.5 points" in v["reason"]


def test_p1_claims_test_what_the_paper_claims():
    """P1-C1 is about pruned subsets (no full-data cell); P1-C5 about high pruning (keep <= 0.3):
    an effect that reverses at keep 0.5 does not make it unsupported."""
    from kdprune.plan.config import ROOT, load

    claims = load(ROOT / "config.yaml", {"preset": "paper"})["claims"]
    c1 = spec(**claims["P1-C1"]["test"])
    effect = {("random", 0.1): 0.03, ("random", 0.5): 0.03, ("full", 1.0): -0.02}
    table, v = evaluate_claim(c1, runs(effect).assign(dataset="d"))
    assert 1.0 not in set(table["keep"]) and v["verdict"] == "supported"

    def acc(selection, keep, alpha):
        gain = (0.03 if keep <= 0.3 else -0.03) if selection == "el2n-hardest" else 0.0
        return 0.6 + (gain if alpha == 1.0 else 0.0)

    df = grid_runs(acc, selection=["random", "el2n-hardest"], keep=[0.1, 0.3, 0.5], alpha=[0.5, 1.0]).assign(loss="kd")
    table, v = evaluate_claim(spec(**claims["P1-C5"]["test"]), df)
    assert sorted(table["keep"]) == [0.1, 0.3] and v["verdict"] == "supported"
