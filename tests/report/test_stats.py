"""The statistics behind the verdicts (kdprune/report/stats.py), against direct computations."""

import math

import numpy as np
import pytest
from scipy import stats

from kdprune.report.stats import binomial_sd, contrast, decide, holm, seeds_needed


def test_holm_matches_the_step_down_definition():
    p = [0.01, 0.04, 0.03, 0.005, math.nan]
    # sorted: 0.005 (x4), 0.01 (x3), 0.03 (x2), 0.04 (x1), running maximum; NaN is not a test
    assert holm(p)[:4] == pytest.approx([0.03, 0.06, 0.06, 0.02]) and math.isnan(holm(p)[4])


def test_contrast_is_a_t_interval_with_one_sided_p_values():
    d = np.array([0.01, 0.03, 0.02, 0.04])
    c = contrast(d, 0.0, 0.95)
    se = d.std(ddof=1) / 2
    assert c["ci_low"] == pytest.approx(d.mean() - stats.t.ppf(0.975, 3) * se)
    assert c["p_above"] == pytest.approx(stats.ttest_1samp(d, 0.0, alternative="greater").pvalue)
    assert c["p_below"] == pytest.approx(1 - c["p_above"])
    assert c["mde"] == pytest.approx((stats.t.ppf(0.975, 3) + stats.t.ppf(0.8, 3)) * se)


def test_the_floor_replaces_a_smaller_spread_only():
    same = contrast([0.01, 0.01, 0.01], 0.0, 0.95, floor_sd=0.02)
    assert same["sd"] == 0 and same["ci_high"] - same["ci_low"] == pytest.approx(2 * stats.t.ppf(0.975, 2) * 0.02 / math.sqrt(3))
    wide = contrast([0.0, 0.1, 0.2], 0.0, 0.95, floor_sd=0.02)
    assert wide["ci_high"] - wide["ci_low"] == pytest.approx(2 * stats.t.ppf(0.975, 2) * 0.1 / math.sqrt(3))
    assert math.isnan(contrast([0.01, 0.01], 0.0, 0.95)["ci_low"])  # no spread, no floor: undecided
    assert math.isnan(contrast([0.5], 0.0, 0.95, floor_sd=0.1)["ci_low"])  # one replicate: undecided


def test_binomial_sd_of_a_paired_difference():
    assert binomial_sd([(1, 0.7), (-1, 0.6)], 1000) == pytest.approx(math.sqrt((0.21 + 0.24) / 1000))
    assert binomial_sd([(1, 0.7)], math.nan) == 0.0


def test_decide_better_per_cell_worse_after_holm():
    status, adj = decide([0.001, 0.5, 0.5], [0.999, 0.02, 0.5], 0.95)
    assert status == ["better", "unresolved", "unresolved"]  # 0.02 alone would be worse; x2 after Holm is not
    assert decide([0.5], [0.02], 0.95)[0] == ["worse"]


def test_seeds_needed_resolves_the_cell_at_that_spread():
    n = seeds_needed(0.02, 0.02, 0.0, 0.95)
    assert (stats.t.ppf(0.975, n - 1) + stats.t.ppf(0.8, n - 1)) * 0.02 / math.sqrt(n) <= 0.02
    assert (stats.t.ppf(0.975, n - 2) + stats.t.ppf(0.8, n - 2)) * 0.02 / math.sqrt(n - 1) > 0.02
    assert seeds_needed(0.0, 0.02, 0.0, 0.95) == math.inf
