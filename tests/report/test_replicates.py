"""Adaptive replicates (kdprune/report/replicates.py): a round adds seeds to the runs of the
unresolved cells only, as many as their observed spread asks for, within `max`."""

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kdprune.plan import Plan
from kdprune.report.replicates import next_round, runs_of_cell, summary
from kdprune.report.runs import with_omitted_parameters

REPO = Path(__file__).resolve().parents[2]

TEST = {"rule": "improves_everywhere", "metric": "final_acc", "treatment": {"loss": "kd"}, "control": {"loss": "ce"}, "cells": ["keep"]}
TEST |= {"confidence": 0.95, "margin": 0.0}


def pool(seeds=range(10)):
    rows = []
    for keep, loss, seed in itertools.product([0.1, 0.5], ["ce", "kd"], seeds):
        run = f"results/p/d/students/{loss}/keep{keep}/s{seed}"
        rows.append({"keep": keep, "loss": loss, "seed": seed, "run_dir": run, "metrics": f"{run}/metrics.json"})
    return pd.DataFrame(rows)


def runs(effect: dict, noise: dict, seeds=range(3)):
    rng = np.random.default_rng(3)
    df = pool(seeds)
    df["final_acc"] = [0.6 + (effect[k] if loss == "kd" else 0) + rng.normal(0, noise[k]) for k, loss in zip(df["keep"], df["loss"])]
    return df.assign(n_test=10_000, wall_seconds=10.0)


def spec(max_=10, rounds=3, interim=0.997, futility=None):
    replicates = {"min": 3, "max": max_, "rounds": rounds, "interim_confidence": interim, "futility": futility}
    return {"id": "X-C1", "test": TEST, "replicates": replicates, "seed_pool": list(range(10))}


def test_a_round_adds_seeds_to_the_unresolved_cell_only():
    # keep 0.1: a clear 10-point effect (resolved even at the interim level); keep 0.5: 1 point in 1-point noise
    table = runs({0.1: 0.10, 0.5: 0.01}, {0.1: 0.001, 0.5: 0.01})
    decision = next_round(spec(), table, pool(), 1)
    (cell,) = decision["unresolved_cells"]
    assert cell["cell"] == {"keep": 0.5} and cell["n"] == 3 and cell["target"] > 3
    added = pool().set_index("metrics").loc[decision["metrics"]]
    assert set(added["keep"]) == {0.5} and set(added["loss"]) == {"ce", "kd"}  # treatment and control of that cell
    assert sorted(set(added["seed"])) == list(range(3, cell["target"]))  # the next seeds of the pool, up to the target
    assert not decision["done"]


def test_the_maximum_and_the_round_limit_stop_the_rounds():
    table = runs({0.1: 0.0, 0.5: 0.0}, {0.1: 0.01, 0.5: 0.01})  # effects on the threshold: infinitely many seeds
    decision = next_round(spec(max_=5), table, pool(), 1)
    assert {c["target"] for c in decision["unresolved_cells"]} == {5}
    assert set(pool().set_index("metrics").loc[decision["metrics"], "seed"]) == {3, 4}
    at_max = runs({0.1: 0.0, 0.5: 0.0}, {0.1: 0.01, 0.5: 0.01}, seeds=range(5))
    assert next_round(spec(max_=5), at_max, pool(), 2)["done"]
    assert next_round(spec(rounds=1), table, pool(), 2)["done"]  # round 2 of a one-round claim adds nothing


def test_a_resolved_claim_is_done_after_its_first_round():
    decision = next_round(spec(), runs({0.1: 0.10, 0.5: 0.10}, {0.1: 0.001, 0.5: 0.001}), pool(), 1)
    assert decision["done"] and decision["unresolved_cells"] == [] and decision["verdict_at_interim"] == "supported"


def test_a_cell_resolved_at_the_claims_level_but_not_at_the_interim_level_gets_seeds():
    """Haybittle-Peto: a round's look stops a cell only at `interim_confidence`; a cell the claim's
    95% interval resolves at 3 seeds but the 99.7% one does not goes on, and the final verdict is
    taken at 95% on all its seeds (docs/verdicts.md: stopping at 95% inflates false verdicts)."""
    from kdprune.report.verdicts import improves_everywhere

    table = runs({0.1: 0.10, 0.5: 0.03}, {0.1: 0.001, 0.5: 0.001})
    nominal = improves_everywhere(table, TEST)[0].set_index("keep")
    assert nominal.loc[0.5, "status"] != "unresolved"  # decisive at 95%
    decision = next_round(spec(), table, pool(), 1)
    assert [c["cell"] for c in decision["unresolved_cells"]] == [{"keep": 0.5}] and decision["metrics"]
    assert next_round(spec(interim=0.95), table, pool(), 1)["done"]  # the rule before: it stopped here


def test_futility_stops_a_cell_that_max_seeds_cannot_resolve():
    table = runs({0.1: 0.0, 0.5: 0.10}, {0.1: 0.01, 0.5: 0.001})  # keep 0.1 on the threshold: inf seeds
    off = next_round(spec(), table, pool(), 1)
    assert [(c["target"], c["futile"]) for c in off["unresolved_cells"]] == [(10, False)]
    on = next_round(spec(futility=3), table, pool(), 1)
    assert [(c["target"], c["futile"], c["new_seeds"]) for c in on["unresolved_cells"]] == [(3, True, [])]
    assert on["done"] and on["metrics"] == []


def test_each_of_cells_add_the_treatment_and_that_control_only():
    df = pd.DataFrame(
        [{"selection": s, "keep": 0.1, "loss": "kd", "seed": 0, "run_dir": s, "metrics": s} for s in ("random", "el2n", "grand", "full")]
    )
    test = {"rule": "matches_or_beats", "treatment": {"selection": "random"}, "control": {"selection": {"not": ["random", "full"]}}}
    test |= {"control_each_of": "selection", "cells": ["keep"]}
    assert sorted(runs_of_cell(df, test, {"keep": 0.1, "control_selection": "grand"})["selection"]) == ["grand", "random"]


def test_the_summary_compares_with_max_seeds_everywhere():
    table = runs({0.1: 0.05, 0.5: 0.01}, {0.1: 0.001, 0.5: 0.01})
    s = summary(spec(), [{"round": 1, "unresolved_cells": [{}], "metrics": ["a", "b"]}], table)
    assert s["runs_used"] == 12 and s["runs_at_max"] == 4 * 10 and s["seconds_at_max"] == 400.0 and s["seconds_used"] == 120.0


def test_a_cell_naming_a_loss_parameter_at_its_omitted_value_gets_its_seeds():
    # The plan's axes leave out KD's `supervise` at 1 (schema x-omit); a claim names it: the round
    # must still find the control's runs in the pool (P3-C2a: KD+DS vs KD).
    rows = []
    for supervise, seed in itertools.product([0.8, None], range(10)):
        run = f"results/p/d/students/kd-{supervise}/s{seed}"
        rows.append({"loss": "kd", "seed": seed, "run_dir": run, "metrics": f"{run}/metrics.json"} | ({"supervise": supervise} if supervise else {}))
    plan_pool = pd.DataFrame(rows)
    table = plan_pool[plan_pool["seed"] < 3].assign(supervise=lambda d: d["supervise"].fillna(1.0), n_test=10_000, wall_seconds=10.0)
    table["final_acc"] = 0.6 + np.random.default_rng(0).normal(0, 0.01, len(table))  # no effect: unresolved
    test = dict(TEST, treatment={"loss": "kd", "supervise": 0.8}, control={"loss": "kd", "supervise": 1.0}, cells=[])
    decision = next_round(dict(spec(), test=test), table, plan_pool, 1)
    added = plan_pool.set_index("metrics").loc[decision["metrics"]]
    assert set(added["supervise"].fillna(1.0)) == {0.8, 1.0} and sorted(set(added["seed"])) == list(range(3, 10))


@pytest.mark.parametrize("preset", ["smoke", "subset", "paper"])
def test_every_unresolved_cell_of_every_claim_finds_runs_to_add_in_its_pool(preset):
    """For each claim with adaptive replicates: a first round with no effect anywhere leaves cells
    unresolved, and every unresolved cell below `max` must get the next seeds of runs it reads."""
    plan = Plan.from_config(REPO / "config.yaml", {"preset": preset})
    checked = 0
    for claim_id in plan.cfg["claims"]:
        claim = plan.claim_spec(claim_id)
        if not claim.get("replicates"):
            continue
        pool = pd.DataFrame(plan.claim_pool(claim_id))
        first = {f"{plan.results}/{job.dir}" for job in plan.grid.experiments[plan.cfg["claims"][claim_id]["experiment"]]}
        table = with_omitted_parameters(pool[pool["run_dir"].isin(first)].copy())
        rng = np.random.default_rng(1)
        for column in ("final_acc", "best_acc", "ts_gap", "teacher_acc_kept"):
            table[column] = 0.6 + rng.normal(0, 0.01, len(table))
        table = table.assign(n_test=10_000, wall_seconds=10.0, sample_steps=1000, train_seconds=10.0)
        table["teacher_params"] = (table["teacher"].astype("category").cat.codes.astype(int) + 1) * 100_000  # the capacity axis
        decision = next_round(claim, table, pool, 1)
        added = pool.set_index("metrics").loc[decision["metrics"]]
        for cell in decision["unresolved_cells"]:
            if cell["target"] > cell["n"]:
                assert cell["new_seeds"], f"{preset} {claim_id}: {cell}"
                assert set(added["seed"]) & set(cell["new_seeds"]), f"{preset} {claim_id}: no run of {cell} in its pool"
                checked += 1
    assert checked, f"no claim of {preset} left a cell unresolved: the test checked nothing"
