"""Grid accounting: the compute summary adds up the jobs' wall time per paper and role (shared jobs
once in the total), the estimate multiplies images by measured throughput, and the benchmark runs."""

import pandas as pd
import pytest
import torch
from workflow_helpers import REPO

from kdprune.files import write_json
from kdprune.plan.config import load, normalise
from kdprune.report.compute import compute_summary, estimate_grid
from kdprune.train.bench import DD_ABOUT, DD_COLUMNS, format_results, run_bench, run_dd_bench


def test_compute_summary_counts_shared_jobs_once_in_the_total(tmp_path):
    def job(rel, seconds, device="cpu"):
        path = tmp_path / rel
        write_json(path, {"wall_seconds": seconds, "device": device})
        return str(path)

    teacher = job("d/teachers/t/metrics.json", 100.0, "cuda")
    views = job("d/teachers/t/views.json", 10.0, "cuda")
    score = job("d/scores/el2n-s0.json", 50.0)
    a = job("d/students/a/s0/metrics.json", 20.0, "cuda")
    b = job("d/students/b/s0/metrics.json", 30.0)
    table = compute_summary({"P1": [teacher, views, score, a], "P2": [teacher, b]})
    row = table.set_index(["paper", "role"])
    assert row.loc[("P1", "teacher"), "wall_hours"] == pytest.approx(100 / 3600)
    assert row.loc[("P1", "teacher views"), "runs"] == 1 and row.loc[("P2", "student"), "gpu_hours"] == 0
    total = table[table.role == "all"].iloc[0]
    assert total.runs == 5 and total.wall_hours == pytest.approx(210 / 3600) and total.gpu_hours == pytest.approx(130 / 3600)


def test_estimate_is_images_over_measured_throughput():
    cfg = load(REPO / "config.yaml", {"preset": "smoke", "teacher_views": False})
    cfg = normalise(
        {
            **cfg,
            "experiments": {
                "e": {
                    "paper": "P1",
                    "student": ["resnet8"],
                    "teacher": ["resnet14"],
                    "selection": ["random"],
                    "keep": [0.5, 1.0],
                    "loss": {"kd": {}},
                    "seed": [0],
                }
            },
        }
    )
    measured = pd.DataFrame(
        [
            {"arch": "resnet8", "loss": "kd", "train_images_per_s": 100.0, "dataset": "digits", "keep": 1.0, "subset_size": 1347},
            {"arch": "resnet8", "loss": "kd", "train_images_per_s": 300.0, "dataset": "digits", "keep": 0.5, "subset_size": 674},  # median 200
            {"arch": "resnet14", "loss": None, "train_images_per_s": 50.0, "dataset": "digits", "keep": 1.0, "subset_size": 1347},
        ]
    )
    est = estimate_grid(cfg, measured).set_index("role")
    student_epochs, teacher_epochs = cfg["recipes"]["student"]["epochs"], cfg["recipes"]["teacher"]["epochs"]
    assert est.loc["student", "runs"] == 2
    assert est.loc["student", "hours"] == pytest.approx(student_epochs * (round(0.5 * 1347) + 1347) / 200 / 3600)
    assert est.loc["teacher", "hours"] == pytest.approx(teacher_epochs * 1347 / 50 / 3600)
    assert "score" not in est.index  # random scores cost nothing


def test_every_score_a_run_reads_is_counted_data_selection_too():
    """A run with `supervise` < 1 reads its teacher's ds_influence score (P3): the compute summary
    waits for it and the estimate prices its training run (resnet8, `epoch` epochs)."""
    from kdprune.plan import Plan

    cfg = load(REPO / "config.yaml", {"preset": "smoke", "teacher_views": False})
    exp = {"paper": "P3", "student": ["resnet8"], "teacher": ["resnet14"], "selection": ["random"], "keep": [1.0], "seed": [0]}
    cfg = normalise({**cfg, "experiments": {"e": {**exp, "loss": {"kd": {"supervise": [0.8]}}}}, "claims": {}})
    files = Plan(cfg).paper_job_files()["P3"]
    assert any(f.endswith("/scores/ds_influence-resnet14-teacher-s0-s0.json") for f in files)
    measured = pd.DataFrame([{"arch": a, "loss": None, "train_images_per_s": 100.0} for a in ("resnet8", "resnet14")])
    est = estimate_grid(cfg, measured).set_index("role")
    epochs = cfg["scores"]["ds_influence"]["epoch"]
    assert est.loc["score", "runs"] == 1 and est.loc["score", "hours"] == pytest.approx(epochs * 1347 / 100 / 3600)


def test_bench_runs_every_path_on_the_cpu():
    results = run_bench(
        [("resnet8", "resnet8")], torch.device("cpu"), batch=16, workers=0, warmup=1, steps=2, stack=2, n_images=256, log=lambda m: None
    )
    assert len(results) == 9 and all(r.images_per_s > 0 for r in results)
    assert "table:" in results[3].note and [r.note for r in results[6:]] == ["P3"] * 3  # KD + LR, DKD, DKD + LR
    table = format_results(results, torch.device("cpu"), 16)
    assert table.count("| resnet8 -> resnet8 |") == 9 and "| 1.00 |" in table


def test_dd_bench_times_dm_matching_and_the_evaluation_both_ways_on_the_cpu():
    results = run_dd_bench(torch.device("cpu"), ipc=2, batch_real=8, num_eval=2, eval_epochs=1, warmup=1, steps=1, n_images=200, log=lambda m: None)
    assert [r.path.split(" ")[0] for r in results] == ["original-style", "kdprune", "plain", "stacked"]
    assert all(r.images_per_s > 0 for r in results) and results[0].pair == results[1].pair != results[2].pair == results[3].pair
    table = format_results(results, torch.device("cpu"), 16, about=DD_ABOUT, columns=DD_COLUMNS)
    assert "| DD step (rate unit) | path | per second | x original | note |" in table and table.count("| 1.00 |") >= 2


def test_view_counts_come_from_each_datasets_augmentation():
    from kdprune.data import DATASETS
    from kdprune.data.images import load_dataset
    from kdprune.models import MODELS
    from kdprune.report.compute import training_images

    assert training_images("cifar10") == training_images("cifar100+noise0.2") == 50_000
    # the digits declaration's geometry is what the loader gives
    digits = load_dataset("digits")
    assert DATASETS.meta("digits")["geometry"] == (len(digits.y_train), digits.image_size) and training_images("digits") == 1347
    # a teacher table costs one pass per view: 162 on CIFAR-10, 1 on SVHN (DeepCore: no crop, no flip);
    # every teacher stores one here (with `auto` the CIFAR grid would store fewer: they cost more)
    measured = pd.DataFrame({"arch": MODELS.names(), "loss": "ce", "train_images_per_s": 1.0})
    hours = {}
    for dataset in ("cifar10", "svhn"):
        est = estimate_grid(load(REPO / "config.yaml", {"preset": "smoke", "dataset": dataset, "teacher_views": True}), measured)
        hours[dataset] = est[est.role == "teacher views"].hours.sum() / training_images(dataset)
    assert hours["svhn"] > 0 and hours["cifar10"] == pytest.approx(162 * hours["svhn"])
