import itertools

import numpy as np
import pandas as pd
import pytest

from kdprune.report.claims import evaluate_claim

TEST = {"rule": "improves_everywhere", "metric": "final_acc", "treatment": {"loss": "kd"}, "control": {"loss": "ce"},
        "cells": ["selection", "keep"], "confidence": 0.95, "margin": 0.0}


def spec(**test):
    return {"id": "X-C1", "paper": "X", "statement": "s", "scale": "small", "evidence": True,
            "setting": {"dataset": ["d"]}, "test": {**TEST, **test}}


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
