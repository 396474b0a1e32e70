"""The claims ledger (kdprune/report/ledger.py) from verdicts of synthetic runs."""

import itertools
import re

import numpy as np
import pandas as pd

from kdprune.files import write_json
from kdprune.report.ledger import write_ledger
from kdprune.report.verdicts import evaluate_claim

SETTING = {
    "dataset": ["d"],
    "student": ["resnet8"],
    "teacher": ["resnet20"],
    "selection": ["random"],
    "keep": [0.1, 0.5],
    "seeds": [0, 1, 2],
    "student_epochs": [10],
    "teacher_epochs": 20,
    "budget": ["epochs"],
}


def verdict(claim: str, replicate: str, teacher_seeds: list[int]) -> dict:
    rng = np.random.default_rng(0)
    rows = [
        {"keep": k, "loss": loss, "seed": s, "final_acc": 0.6 + (0.05 if loss == "kd" else 0) + rng.normal(0, 0.005), "n_test": 10_000}
        for k, loss, s in itertools.product([0.1, 0.5], ["ce", "kd"], range(3))
    ]
    test = {"rule": "improves_everywhere", "metric": "final_acc", "treatment": {"loss": "kd"}, "control": {"loss": "ce"}, "cells": ["keep"]}
    setting = {**SETTING, "replicate": replicate, "teacher_seeds": teacher_seeds}
    spec = {"id": claim, "paper": "X", "statement": "s", "preset": "p", "evidence": True, "setting": setting, "test": test}
    return evaluate_claim(spec, pd.DataFrame(rows))[1]


def test_the_ledger_says_what_a_replicate_redoes(tmp_path):
    paths = []
    for claim, replicate, seeds in (("X-C1", "student", [0]), ("X-C2", "chain", [])):
        paths.append(tmp_path / f"{claim}.json")
        write_json(paths[-1], verdict(claim, replicate, seeds))
    write_ledger(paths, tmp_path)
    md = (tmp_path / "claims.md").read_text()
    one, chain = md.split("## X-C2")
    assert "conditional on that teacher" in one and "teacher seed 0" in one
    assert "redoes the whole chain" in chain and "conditional" not in chain
    assert re.search(r"\| 6[45]\.\d+ \| ", one)  # accuracies of about 65%, in points
    assert pd.read_csv(tmp_path / "claims.csv")["verdict"].tolist() == ["supported", "supported"]
