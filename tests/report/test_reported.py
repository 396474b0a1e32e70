"""Published numbers beside ours (kdprune/report/reported.py): the claim table's section and the
ledger's column, with a number, without one, and for a setting the preset does not train."""

import json

import pandas as pd
import pytest

from kdprune.report.ledger import write_ledger
from kdprune.report.reported import NOT_IN_GRID, compare_reported, reported_summary
from kdprune.report.verdicts import evaluate_claim_files

RUNS = pd.DataFrame(
    {
        "selection": ["medium"] * 3 + ["random"] * 3,
        "keep": [0.4] * 6,
        "seed": [0, 1, 2] * 2,
        "best_acc": [0.580, 0.584, 0.577, 0.560, 0.556, 0.561],
        "final_acc": [0.575, 0.580, 0.570, 0.555, 0.550, 0.558],
        "loss": ["kd"] * 6,
    }
)
PUBLISHED = {"value": 58.04, "metric": "best_acc", "where": {"selection": "medium", "keep": 0.4}, "source": "a summary", "kind": "secondary"}


def test_ours_is_the_mean_of_the_matching_runs_in_points():
    (row,) = compare_reported([PUBLISHED], RUNS)
    assert row["n"] == 3 and row["ours"] == pytest.approx(58.0333, abs=1e-3) and row["diff"] == pytest.approx(-0.00667, abs=1e-3)
    assert reported_summary([row]) == "58.04 (secondary) vs ours 58.03 (-0.01)"


def test_a_setting_the_preset_does_not_train_is_said_so_not_filled_in():
    elsewhere = {**PUBLISHED, "where": {"selection": "medium", "keep": 0.3}}
    no_column = {**PUBLISHED, "where": {"teacher": "ResNet50"}}
    rows = compare_reported([elsewhere, no_column], RUNS)
    assert [r["status"] for r in rows] == [NOT_IN_GRID] * 2 and all(r["ours"] is None and r["n"] == 0 for r in rows)
    assert reported_summary([]) == "none published"


@pytest.mark.parametrize("reported", [[PUBLISHED], []])
def test_claim_table_and_ledger_show_the_published_number_or_say_there_is_none(tmp_path, reported):
    runs = tmp_path / "runs.csv"
    RUNS.to_csv(runs, index=False)
    test = {
        "rule": "improves_everywhere",
        "metric": "best_acc",
        "treatment": {"selection": "medium"},
        "control": {"selection": "random"},
        "cells": ["keep"],
    }
    spec = {
        "id": "T-C1",
        "paper": "T",
        "statement": "medium beats random",
        "preset": "smoke",
        "evidence": False,
        "setting": {"dataset": ["d"], "student": ["s"], "teacher": ["t"], "selection": ["medium", "random"], "keep": [0.4]},
        "test": test,
        "reported": reported,
    }
    spec["setting"] |= {
        "seeds": [0, 1, 2],
        "student_epochs": [1],
        "teacher_epochs": 1,
        "budget": ["epochs"],
        "replicate": "student",
        "teacher_seeds": [0],
    }
    verdict = evaluate_claim_files(spec, runs, tmp_path / "T-C1.csv", tmp_path / "T-C1.json")
    table = (tmp_path / "T-C1.md").read_text()
    write_ledger([tmp_path / "T-C1.json"], tmp_path)
    ledger = (tmp_path / "claims.md").read_text()
    column = pd.read_csv(tmp_path / "claims.csv").paper_reports.iloc[0]
    if reported:
        assert verdict["reported"][0]["ours"] == pytest.approx(58.0333, abs=1e-3)
        assert "| 58.04 | secondary | a summary | selection medium, keep 0.4 | best_acc | 58.03 |" in table
        assert "58.04 (secondary) vs ours 58.03 (-0.01)" in ledger and column == "58.04 (secondary) vs ours 58.03 (-0.01)"
    else:
        assert "No published number for this claim." in table and "No published number for this claim." in ledger
        assert column == "none published"
    assert json.loads((tmp_path / "claims.json").read_text())[0]["reported"] == verdict["reported"]
