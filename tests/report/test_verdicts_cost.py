"""A paired test's `cost` (kdprune/report/verdicts.py): compare at matched cost (P2-C3: MDSLR vs
InfoBatch at the same sample-steps) or claim a cost ratio (P2-C4: less training time)."""

import numpy as np
import pandas as pd
import pytest

from kdprune.report.verdicts import COST_NOT_MATCHED, COSTS_MORE, INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, matches_or_beats


def runs(treatment_cost: float, control_cost: float, gain: float = 0.02, seeds: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(seeds):
        base = 0.6 + rng.normal(0, 0.002)
        rows.append({"arm": "t", "seed": seed, "best_acc": base + gain + rng.normal(0, 0.002), "sample_steps": treatment_cost})
        rows.append({"arm": "c", "seed": seed, "best_acc": base, "sample_steps": control_cost})
    return pd.DataFrame(rows)


TEST = {"rule": "matches_or_beats", "metric": "best_acc", "treatment": {"arm": "t"}, "control": {"arm": "c"}, "margin": 0.005}


@pytest.mark.parametrize("t_cost, verdict", [(1000, SUPPORTED), (1040, SUPPORTED), (1100, INCONCLUSIVE), (900, INCONCLUSIVE)])
def test_match_within_judges_only_cells_at_matched_cost(t_cost, verdict):
    table, got, why = matches_or_beats(runs(t_cost, 1000), {**TEST, "cost": {"metric": "sample_steps", "match_within": 0.05}})
    assert got == verdict and table.cost_ratio.iloc[0] == pytest.approx(t_cost / 1000)
    if verdict == INCONCLUSIVE:
        assert table.status.iloc[0] == COST_NOT_MATCHED and "not compared at matched cost in 1" in why


@pytest.mark.parametrize("t_cost, verdict", [(700, SUPPORTED), (760, NOT_SUPPORTED)])
def test_at_most_fails_a_cell_that_costs_more_than_claimed_whatever_the_accuracy(t_cost, verdict):
    table, got, why = matches_or_beats(runs(t_cost, 1000, gain=0.05), {**TEST, "cost": {"metric": "sample_steps", "at_most": 0.75}})
    assert got == verdict
    if verdict == NOT_SUPPORTED:
        assert table.status.iloc[0] == COSTS_MORE and "costing more than the claim allows in 1" in why
