"""kdprune.jobs.runners.run_seeds: the seeds of one grid point (a seed group) in one process, one after the other or as one
stacked network, each into its own run folder."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from kdprune.data.images import load_dataset
from kdprune.files import save_npz, save_torch
from kdprune.jobs.runners import _subset, compute_score, load_teacher, run_seeds, run_training
from kdprune.losses import make_loss
from kdprune.models import create_model
from kdprune.train.loop import Recipe, fit, seed_everything

REPO = Path(__file__).resolve().parent.parent.parent
SELECTION = yaml.safe_load((REPO / "config.yaml").read_text())["selection"]


def spec(seed: int, loss: str = "ce", keep: float = 0.3, epochs: int = 2) -> dict:
    params = {"alpha": 0.9, "temperature": 4.0} if loss == "kd" else {}
    return {
        "dataset": "digits",
        "data_root": "data",
        "download": False,
        "device": "cpu",
        "accel": "auto",
        "augmentation": {"padding": 1, "flip": False, "padding_mode": "reflect"},
        "role": "student",
        "arch": "resnet8",
        "selection_method": "random",
        "selection_rule": None,
        "keep": keep,
        "loss": loss,
        "loss_params": params,
        "seed": seed,
        "recipe": {"epochs": epochs, "batch_size": 64, "lr": 0.05, "schedule": "cosine"},
        "selection": SELECTION,
        "teacher_spec": None,
        "score_spec": None,
        "axes": {"role": "student", "arch": "resnet8", "keep": keep, "seed": seed},
    }


@pytest.fixture(scope="module")
def teacher_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("teacher") / "model.pt"
    torch.manual_seed(0)
    model = create_model("resnet8", 10, 1)
    save_torch(path, {"arch": "resnet8", "num_classes": 10, "in_channels": 1, "state_dict": model.state_dict()})
    return path


def quiet(msg: str) -> None:
    pass


def test_sequential_seeds_equal_one_job_per_seed(tmp_path, teacher_file):
    seeds = [0, 1]
    together = run_seeds([spec(s, "kd") for s in seeds], [tmp_path / f"a{s}" for s in seeds], teacher_file, log=quiet, stack="sequential")
    alone = [run_training(spec(s, "kd"), tmp_path / f"b{s}", teacher_file, log=quiet) for s in seeds]
    for t, a in zip(together, alone):
        assert t["subset_sha"] == a["subset_sha"] and t["final_acc"] == a["final_acc"]
        assert [h["loss"] for h in t["history"]] == [h["loss"] for h in alone[seeds.index(t["spec"]["seed"])]["history"]]
        assert t["stack"] == {"mode": "sequential", "size": 2} and a["stack"] == {"mode": "single", "size": 1}
        # a KD run records its teacher and itself on its kept images (P2-C5), the same either way
        assert t["ts_gap"] == pytest.approx(t["teacher_acc_kept"] - t["student_acc_kept"]) and t["ts_gap"] == a["ts_gap"]
        assert 0.0 <= t["agreement_kept"] <= 1.0 and t["agreement_kept"] == a["agreement_kept"]
    assert together[0]["subset_sha"] != together[1]["subset_sha"]  # random subsets drawn per seed
    assert "ts_gap" not in run_seeds([spec(0)], [tmp_path / "ce"], log=quiet)[0]  # no teacher, no gap
    for s in seeds:
        assert (tmp_path / f"a{s}/metrics.json").is_file() and not (tmp_path / f"a{s}/checkpoint.pt").exists()
        load_teacher(tmp_path / f"a{s}/model.pt")  # a loadable model


def test_a_chained_group_trains_each_seed_with_its_own_teacher(tmp_path, teacher_file):
    """Chained replicates: seed s of a grid point reads teacher s, in one job. Each run equals the run
    trained alone with its own teacher, and a stack falls back to training the seeds in turn."""
    other = tmp_path / "teacher1.pt"
    torch.manual_seed(1)
    model = create_model("resnet14", 10, 1)
    save_torch(other, {"arch": "resnet14", "num_classes": 10, "in_channels": 1, "state_dict": model.state_dict()})
    teachers = {0: teacher_file, 1: other}

    def chained(seed: int) -> dict:
        teacher = {"arch": "resnet8", "seed": seed, "axes": {"seed": seed}}
        return {**spec(seed, "kd"), "teacher_spec": teacher, "axes": {**spec(seed)["axes"], "teacher_seed": seed}}

    logs = []
    together = run_seeds(
        [chained(s) for s in teachers], [tmp_path / f"a{s}" for s in teachers], list(teachers.values()), log=logs.append, stack="stacked"
    )
    alone = [run_training(chained(s), tmp_path / f"b{s}", path, log=quiet) for s, path in teachers.items()]
    for t, a in zip(together, alone):
        assert [h["loss"] for h in t["history"]] == [h["loss"] for h in a["history"]] and t["final_acc"] == a["final_acc"]
        assert t["teacher_params"] == a["teacher_params"] and t["stack"] == {"mode": "sequential", "size": 2}
    assert together[0]["teacher_params"] < together[1]["teacher_params"]  # resnet8's and resnet14's
    assert any("each seed has its own teacher" in line for line in logs)
    with pytest.raises(ValueError, match="one teacher file, or one per seed"):
        run_seeds([chained(s) for s in teachers], [tmp_path / f"c{s}" for s in teachers], [teacher_file], log=quiet)


def test_a_job_reads_one_teacher_file_for_all_its_seeds_as_the_workflow_gives_it(tmp_path, teacher_file):
    """`kdprune run student`: the inputs name one teacher file (a path) for a grid point's seeds, or
    one per seed (a list) for a chained one; the scores are one per seed either way."""
    from kdprune.jobs.runners import run_students

    seeds = [0, 1]
    record = tmp_path / "runs-s0-1.json"
    outputs = {"done": str(record), **{f"run_s{s}": str(tmp_path / f"s{s}") for s in seeds}}
    run_students([spec(s, "kd") for s in seeds], {"teacher": str(teacher_file)}, outputs, {"stack_seeds": "sequential"}, log=quiet)
    for s in seeds:
        assert (tmp_path / f"s{s}" / "metrics.json").is_file() and (tmp_path / f"s{s}" / "model.pt").is_file()
    # the file Snakemake tracks, written once every run is: the group's record
    assert json.loads(record.read_text()) == {"runs": [{"seed": s, "run_dir": str(tmp_path / f"s{s}")} for s in seeds]}


def test_stacked_seeds_write_each_run(tmp_path, teacher_file):
    seeds = [0, 1, 2]
    dirs = [tmp_path / f"s{s}" for s in seeds]
    out = run_seeds([spec(s, "kd") for s in seeds], dirs, teacher_file, log=quiet, stack="stacked")
    assert [m["stack"] for m in out] == [{"mode": "stacked", "size": 3}] * 3
    assert len({m["subset_sha"] for m in out}) == 3
    # the job's time is split evenly, so per-run images/s is the stack's student-images/s
    assert out[0]["wall_seconds"] == pytest.approx(out[2]["wall_seconds"])
    assert all(0.1 < m["final_acc"] <= 1.0 for m in out)
    for d in dirs:
        model = load_teacher(d / "model.pt")
        assert sum(p.numel() for p in model.parameters()) == out[0]["n_params"]
    assert not (dirs[0] / "stack-checkpoint.pt").exists()


def test_finished_seeds_survive_a_failure_later_in_the_job(tmp_path):
    """Snakemake deletes every output of a failed job. The finished seeds' checkpoints stay, so the
    rerun of a finished seed trains nothing and gives the same result."""
    dirs = [tmp_path / "s0", tmp_path / "s1"]

    def dies_in_seed_1(msg: str) -> None:
        if "s1] epoch" in msg:
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        run_seeds([spec(0), spec(1)], dirs, log=dies_in_seed_1, stack="sequential")
    first = (dirs[0] / "metrics.json").read_text()
    assert (dirs[0] / "checkpoint.pt").is_file()
    for d in dirs:  # what Snakemake does with the outputs of the failed job
        (d / "metrics.json").unlink(missing_ok=True)
        (d / "model.pt").unlink(missing_ok=True)
    logs = []
    out = run_seeds([spec(0), spec(1)], dirs, log=logs.append, stack="sequential")
    assert any("resuming" in line and "at epoch 2" in line for line in logs)
    import json

    assert out[0]["final_acc"] == json.loads(first)["final_acc"]
    assert not any((d / "checkpoint.pt").exists() for d in dirs)


def test_one_job_refuses_specs_of_different_grid_points(tmp_path):
    with pytest.raises(ValueError, match="`keep` differs"):
        run_seeds([spec(0, keep=0.3), spec(1, keep=0.5)], [tmp_path / "a", tmp_path / "b"], log=quiet)


def test_stack_mode_falls_back_to_sequential_when_the_network_cannot_stack(tmp_path):
    logs = []
    specs = [dict(spec(s, epochs=1), arch="tv_resnet18", axes={"arch": "tv_resnet18", "seed": s}) for s in (0, 1)]
    out = run_seeds(specs, [tmp_path / "a", tmp_path / "b"], log=logs.append, stack="stacked")
    assert [m["stack"]["mode"] for m in out] == ["sequential"] * 2
    assert any("not a CIFAR ResNet" in line for line in logs)


def test_the_new_families_train_in_turn_when_asked_to_stack(tmp_path):
    """Only CIFAR ResNets stack; a Wide ResNet's seeds in a `stacked` job train one after the other,
    each as it would alone, and the log says why."""
    logs = []
    specs = [dict(spec(s, keep=0.05, epochs=1), arch="wrn_16_1", axes={"arch": "wrn_16_1", "seed": s}) for s in (0, 1)]
    out = run_seeds(specs, [tmp_path / "a", tmp_path / "b"], log=logs.append, stack="stacked")
    assert [m["stack"] for m in out] == [{"mode": "sequential", "size": 2}] * 2
    assert [line for line in logs if line.startswith("[stack]")] == [
        "[stack] training the seeds one after the other: the architecture (WideResNet) is not a CIFAR ResNet, "
        "the one family kdprune.train.stacking stacks"
    ]
    alone = run_training(specs[1], tmp_path / "c", log=quiet)
    assert out[1]["final_acc"] == alone["final_acc"] and out[1]["n_params"] == alone["n_params"]
    assert type(load_teacher(tmp_path / "a/model.pt")).__name__ == "WideResNet"


def test_a_job_scheduled_with_other_settings_than_the_plan_stops_with_one_line(tmp_path):
    """`kdprune run` looks its job up in the plan; if the plan changed since Snakemake scheduled the
    job (another run rewrote it), the job refuses to train on settings it was not scheduled with."""
    import subprocess
    import sys

    from kdprune.plan import Plan

    plan = Plan.from_config(REPO / "config.yaml")
    plan.results, plan.plan_file = str(tmp_path / "results"), str(tmp_path / "plan.json")
    plan.write()
    key = next(iter(plan.jobs("teacher")))
    args = [sys.executable, "-m", "kdprune", "run", "teacher", "--plan", plan.plan_file, "--key", key, "--settings", "0123456789ab"]
    out = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode != 0 and not (tmp_path / "results").exists()
    assert out.stderr.strip().splitlines() == [
        f"kdprune run: the teacher job {key} was scheduled with settings 0123456789ab, but {plan.plan_file} now gives "
        f"{plan.settings('teacher', key)}: the config changed while the workflow ran; rerun Snakemake"
    ]
    unknown = subprocess.run([*args[:8], "digits/teachers/nope"], cwd=tmp_path, capture_output=True, text=True)
    assert unknown.returncode == 2 and "no teacher job 'digits/teachers/nope' in the smoke plan" in unknown.stderr


def test_a_ccs_student_cuts_by_its_cutoff_score_file(tmp_path):
    """The student reads the cutoff score file beside its selection score file (before: only one file,
    cut by the selection score). Scores and cutoff: each sample's index; the cutoff marks the first
    samples of every class instead of the hardest by the selection score."""
    labels = load_dataset("digits").y_train.numpy()
    n = len(labels)
    rank_in_class = np.zeros(n)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        rank_in_class[members] = np.arange(len(members))
    selection, cutoff = tmp_path / "forgetting.npz", tmp_path / "aum.npz"
    save_npz(selection, scores=rank_in_class, labels=labels)
    save_npz(cutoff, scores=-rank_in_class, labels=labels)  # the first samples of a class are the most suspect
    ccs = {**spec(0, keep=0.1), "selection_method": "ccs_forgetting", "selection_rule": "ccs"}
    data = load_dataset("digits")
    kept = _subset(ccs, data, selection, cutoff, torch.device("cpu"), quiet)
    cut_per_class = {c: int(0.3 * (labels == c).sum()) for c in np.unique(labels)}  # keep 0.1: ratio 0.3
    assert all(rank_in_class[i] >= cut_per_class[labels[i]] for i in kept)
    by_selection = _subset(ccs, data, selection, None, torch.device("cpu"), quiet)
    assert any(rank_in_class[i] < cut_per_class[labels[i]] for i in by_selection)  # cut by itself, the first survive


def score_spec(method: str, **settings) -> dict:
    base = {k: v for k, v in spec(0).items() if k in ("dataset", "data_root", "download", "device", "accel", "augmentation")}
    return {**base, "role": "score", "method": method, "seed": 0, "settings": settings}


def test_a_score_file_holds_the_extra_arrays_a_score_returns(tmp_path, teacher_file):
    """teacher_ce returns the per-class mean teacher logit std beside its scores; other scores write
    scores and labels only."""
    out = tmp_path / "teacher_ce.npz"
    compute_score(score_spec("teacher_ce", teacher="resnet8", views="augmented"), out, quiet, teacher_path=teacher_file)
    data = load_dataset("digits")
    with np.load(out) as f:
        assert sorted(f.files) == ["class_logit_std", "labels", "scores"]
        assert f["scores"].shape == (len(data.y_train),) and np.array_equal(f["labels"], data.y_train.numpy())
        assert f["class_logit_std"].shape == (10,) and (f["class_logit_std"] > 0).all()
    compute_score(score_spec("random"), tmp_path / "random.npz", quiet)
    with np.load(tmp_path / "random.npz") as f:
        assert sorted(f.files) == ["labels", "scores"]
    with pytest.raises(ValueError, match="score teacher_ce needs a trained teacher: name its architecture as scores.teacher_ce.teacher"):
        compute_score(score_spec("teacher_ce", views="augmented"), tmp_path / "none.npz", quiet)


def test_kd_with_reshape_reads_k_y_from_the_teacher_ce_file(tmp_path, teacher_file):
    """MDSLR's logit reshaping: the runner attaches the file's class_logit_std (k_y, over every
    image of a class, whatever the kept subset) to the KD loss. The run equals a fit with that
    loss; a run without a file, or with a file of another score, stops with one line."""
    scale_file = tmp_path / "teacher_ce.npz"
    compute_score(score_spec("teacher_ce", teacher="resnet8", views="augmented"), scale_file, quiet, teacher_path=teacher_file)
    reshaped = {**spec(0, "kd", epochs=1), "loss_params": {"alpha": 0.9, "temperature": 4.0, "reshape": True}}
    [run] = run_seeds([reshaped], [tmp_path / "run"], teacher_file, log=quiet, class_scale_path=scale_file)
    assert run["class_scale_file"] == str(scale_file)

    data = load_dataset("digits")
    with np.load(scale_file) as f:
        k = f["class_logit_std"]
    loss = make_loss("kd", alpha=0.9, temperature=4.0, reshape=True).with_class_scale(k)
    seed_everything(0, torch.device("cpu"))
    model = create_model("resnet8", 10, 1)
    subset = _subset(reshaped, data, None, None, torch.device("cpu"), quiet)
    by_hand = fit(
        model, data, subset, Recipe.from_dict(reshaped["recipe"]), loss, seed=0, device=torch.device("cpu"), teacher=load_teacher(teacher_file)
    )
    assert [h["loss"] for h in run["history"]] == [h["loss"] for h in by_hand["history"]]
    plain = run_training(spec(0, "kd", epochs=1), tmp_path / "plain", teacher_file, log=quiet)
    assert [h["kd"] for h in plain["history"]] != [h["kd"] for h in run["history"]] and "class_scale_file" not in plain

    with pytest.raises(ValueError, match="KD with reshape needs k_y: give the job a teacher_ce score file"):
        run_seeds([reshaped], [tmp_path / "none"], teacher_file, log=quiet)
    compute_score(score_spec("random"), tmp_path / "random.npz", quiet)
    with pytest.raises(ValueError, match="has no class_logit_std"):
        run_seeds([reshaped], [tmp_path / "wrong"], teacher_file, log=quiet, class_scale_path=tmp_path / "random.npz")


def test_a_teacher_checkpoint_is_imported_with_its_checksum_and_test_accuracy(tmp_path):
    """`teacher_checkpoints`: RepDistiller's layout (state dict under `model`) loaded into the
    spec's architecture, evaluated here, written as the suite's model.pt; its sha256 recorded."""
    import hashlib

    from kdprune.jobs.runners import import_teacher
    from kdprune.train.loop import accuracy

    torch.manual_seed(0)
    model = create_model("resnet8", 10, 1).eval()
    ckpt = tmp_path / "resnet8_vanilla" / "ckpt_epoch_240.pth"
    ckpt.parent.mkdir()
    torch.save({"epoch": 240, "model": model.state_dict(), "accuracy": 0.0}, ckpt)
    teacher = {**spec(0), "role": "teacher", "selection_method": "full", "keep": 1.0, "checkpoint": str(ckpt)}
    metrics = import_teacher(teacher, tmp_path / "t", log=quiet)
    digits = load_dataset("digits")
    assert metrics["checkpoint_sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert metrics["final_acc"] == pytest.approx(accuracy(model, digits, torch.device("cpu"))) and metrics["epochs"] == 0
    imported = load_teacher(tmp_path / "t" / "model.pt")
    x = digits.normalizer(torch.device("cpu"))(digits.x_test[:8])
    assert torch.equal(imported(x), model(x))
    with pytest.raises(ValueError, match="cannot load wrn_16_1 from"):
        import_teacher({**teacher, "arch": "wrn_16_1"}, tmp_path / "u", log=quiet)


def test_a_job_with_data_selection_supervises_the_top_share_of_each_seeds_subset(tmp_path, teacher_file):
    """`supervise` 0.5: each seed's teacher supervises half of its subset, the half its ds_influence
    score file ranks highest; the seeds train in turn and their metrics say how many and which file."""
    from kdprune.jobs.runners import run_students

    seeds, n = [0, 1], 1347
    score_files = []
    for s in seeds:
        path = tmp_path / f"ds-s{s}.npz"
        save_npz(path, scores=np.random.default_rng(s).normal(size=n), labels=np.zeros(n, dtype=np.int64))
        score_files.append(str(path))
    specs = [{**spec(s, "kd", keep=1.0, epochs=1), "loss_params": {"alpha": 0.9, "temperature": 4.0, "supervise": 0.5}} for s in seeds]
    outputs = {"done": str(tmp_path / "runs-s0-1.json"), **{f"run_s{s}": str(tmp_path / f"s{s}") for s in seeds}}
    logs = []
    run_students(specs, {"teacher": str(teacher_file), "supervision": score_files}, outputs, {"stack_seeds": "stacked"}, log=logs.append)
    for s, path in zip(seeds, score_files):
        metrics = json.loads((tmp_path / f"s{s}" / "metrics.json").read_text())
        assert metrics["supervised_size"] == round(0.5 * n) and metrics["supervision_file"] == path
        assert metrics["supervised_share"] == pytest.approx(round(0.5 * n) / n) and 0 <= metrics["wrong_supervised"] <= 1
    assert any("supervises 674 of 1347 samples" in line for line in logs)
