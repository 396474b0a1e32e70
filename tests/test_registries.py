"""Every entry of every registry (kdprune.registry), tested for what the rest of the suite relies on.

Each test is parametrised over `registry.names()`, so declaring a new dataset, model, score,
selection rule, loss, schedule, verdict rule, figure or job kind gives it its test cases without
editing this file (where an entry needs a word of its own, e.g. what a dataset modifier does, the
test says so by name). Small real data only: the bundled 8x8 digits (a slice of it for the
scores), tiny recipes, the smoke preset's plan; the whole file runs in well under a minute on two
CPU cores."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import inspect
import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from kdprune.data import DATASETS, MODIFIERS, DatasetMissing, augmentation_of, dataset_slug, split_spec
from kdprune.data.images import ImageData, load_dataset
from kdprune.distill import DISTILLERS
from kdprune.losses import LOSSES, make_loss
from kdprune.models import MODELS, create_model
from kdprune.plan import Plan
from kdprune.plan.config import load, schema, schema_default
from kdprune.plan.kinds import JOB_KINDS, JobKind
from kdprune.pruning import RULES, SCORES, score_and_extras
from kdprune.pruning.selection import select_indices
from kdprune.registry import Registry
from kdprune.report import FIGURES, VERDICT_RULES
from kdprune.train import SCHEDULES
from kdprune.train.accel import ACCEL_MODES, PRECISIONS, Accel
from kdprune.train.loop import Recipe

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "config.yaml"
CPU = torch.device("cpu")

REGISTRIES: dict[str, Registry] = {
    "DATASETS": DATASETS,
    "MODIFIERS": MODIFIERS,
    "MODELS": MODELS,
    "SCORES": SCORES,
    "RULES": RULES,
    "LOSSES": LOSSES,
    "SCHEDULES": SCHEDULES,
    "ACCEL_MODES": ACCEL_MODES,
    "VERDICT_RULES": VERDICT_RULES,
    "FIGURES": FIGURES,
    "JOB_KINDS": JOB_KINDS,
    "DISTILLERS": DISTILLERS,
}
# Declaration metadata the package reads; any other key would be a typo that nothing ever reads.
KNOWN_META = {
    "DATASETS": {"geometry", "augmentation", "streamed", "needs_argument", "check"},
    "LOSSES": {"needs_teacher", "same_as"},
    "SCORES": {"min_epoch", "needs_teacher", "reads_file"},
    "RULES": {"needs_cutoff", "equal_budget", "floor_drop"},
    "MODELS": {"sized"},
    "DISTILLERS": {"dsa"},
}
ENTRIES = [pytest.param(reg, name, id=f"{reg}:{name}") for reg, registry in REGISTRIES.items() for name in registry.names()]


def quiet(msg: str) -> None:
    pass


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


# -- the registries themselves -----------------------------------------------------------------------


def test_every_registry_of_the_package_is_tested_here():
    """A registry added to the package (`X = Registry(...)` at module level) must be added above."""
    found = {}
    for path in sorted((REPO / "kdprune").rglob("*.py")):
        for var in re.findall(r"^(\w+)\s*(?::\s*Registry\S*)?\s*=\s*Registry\(", path.read_text(), flags=re.M):
            module = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
            found[f"{module}.{var}"] = getattr(importlib.import_module(module), var)
    assert len(found) >= len(REGISTRIES)
    tested = {id(r) for r in REGISTRIES.values()}
    assert [name for name, reg in found.items() if id(reg) not in tested] == []


@pytest.mark.parametrize("reg,name", ENTRIES)
def test_entry_imports_and_its_declaration_is_well_formed(reg, name):
    registry = REGISTRIES[reg]
    assert name in registry and name in list(registry)
    # Names become parts of run folders and of `method-rule`, `name+modifier0.2`, `name:arg` specs.
    assert re.fullmatch(r"[A-Za-z0-9_]+", name), f"{reg} name {name!r} is not path- and spec-safe"
    meta = registry.meta(name)
    assert isinstance(meta, dict) and set(meta) <= KNOWN_META.get(reg, set()), f"unknown metadata {sorted(meta)}"
    entry = registry.get(name)
    assert registry.get(name) is entry  # imported once
    if reg == "JOB_KINDS":
        assert isinstance(entry, JobKind) and entry.name == name
    elif reg == "ACCEL_MODES":
        assert isinstance(entry, Accel) and entry.precision in PRECISIONS
    else:
        assert callable(entry)


def test_accel_modes_match_the_schema():
    options = schema()["properties"]["accel"]["oneOf"]
    assert set(options[0]["enum"]) == {"auto", *ACCEL_MODES.names()}
    assert set(options[1]["properties"]["mode"]["enum"]) == {"auto", *ACCEL_MODES.names()}
    assert tuple(options[1]["properties"]["precision"]["enum"]) == PRECISIONS


# -- datasets and modifiers ----------------------------------------------------------------------


def _tiny_npz(folder: Path) -> str:
    """A 4-class RGB .npz in the layout load_npz documents (uint8 NHWC, integer labels)."""
    rng = np.random.default_rng(0)
    path = folder / "tiny.npz"
    np.savez(
        path,
        x_train=rng.integers(0, 256, (40, 12, 12, 3), dtype=np.uint8),
        y_train=np.arange(40) % 4,
        x_test=rng.integers(0, 256, (12, 12, 12, 3), dtype=np.uint8),
        y_test=np.arange(12) % 4,
    )
    return str(path)


# How to give a dataset that reads a file named by its argument (`needs_argument`) a file here.
OFFLINE_ARGUMENT = {"npz": _tiny_npz}


def check_image_data(data, streamed: bool) -> None:
    """The interface the training loop and the scores use."""
    assert data.y_train.dtype == torch.int64 and data.y_test.dtype == torch.int64
    assert data.y_train.dim() == 1 and len(data.y_train) > 0 and len(data.y_test) > 0
    assert isinstance(data.classes, list) and all(isinstance(c, str) for c in data.classes)
    assert 0 <= int(data.y_train.min()) and int(data.y_train.max()) < data.num_classes
    assert 0 <= int(data.y_test.min()) and int(data.y_test.max()) < data.num_classes
    assert data.channels in (1, 3) and data.image_size > 0
    if streamed:
        assert hasattr(data, "train_batches") and hasattr(data, "eval_batches")
        return
    assert isinstance(data, ImageData)
    for x, y in ((data.x_train, data.y_train), (data.x_test, data.y_test)):
        assert x.dtype == torch.uint8 and x.dim() == 4 and len(x) == len(y)  # N C H W
        assert x.shape[1:] == (data.channels, data.image_size, data.image_size)


def same_data(a, b) -> bool:
    tensors = [n for n in ("x_train", "y_train", "x_test", "y_test") if hasattr(a, n)]
    return all(torch.equal(getattr(a, n), getattr(b, n)) for n in tensors) and a.classes == b.classes and a.augmentation == b.augmentation


@pytest.mark.parametrize("name", DATASETS.names())
def test_dataset_declaration(name):
    meta = DATASETS.meta(name)
    for flag in ("streamed", "needs_argument"):
        assert isinstance(meta.get(flag, False), bool)
    if "geometry" in meta:  # (training images, image size)
        geometry = meta["geometry"]
        assert isinstance(geometry, tuple) and len(geometry) == 2
        n, size = geometry
        assert isinstance(n, int) and n > 0 and isinstance(size, int) and size > 0
    else:  # the cost estimate (report.compute.training_images) then reads the file the argument names
        assert meta.get("needs_argument"), f"dataset {name} declares neither geometry nor needs_argument"
    if not meta.get("streamed"):  # its training views: declared, or (a file) the config's augmentation.<name>
        augmentation = meta.get("augmentation") or schema_default("augmentation").get(name)
        assert augmentation, f"dataset {name} declares no augmentation and the schema has no augmentation.{name}"
        assert set(augmentation) == {"padding", "flip"} and augmentation["padding"] >= 0 and isinstance(augmentation["flip"], bool)
        if "geometry" in meta:
            augmentation_of(name).check(name, meta["geometry"][1])  # reflection fits its images
    assert dataset_slug(name) == name and split_spec(name) == (name, "", [])


@pytest.mark.parametrize("name", DATASETS.names())
def test_dataset_loads_offline_or_says_where_to_put_it(name, tmp_path):
    """With download=False and an empty data_root, a loader either reads what it has here (bundled
    data, a file its argument names) or raises DatasetMissing in one line naming the folder."""
    meta = DATASETS.meta(name)
    root = tmp_path / "data_root"
    root.mkdir()
    arg = ""
    if meta.get("needs_argument"):
        assert name in OFFLINE_ARGUMENT, f"say in OFFLINE_ARGUMENT how to write a file for dataset {name}"
        arg = OFFLINE_ARGUMENT[name](tmp_path)
    loader = DATASETS.get(name)
    try:
        data = loader(root, arg, download=False)
    except DatasetMissing as err:
        msg = str(err)
        assert msg and "\n" not in msg, f"not one line: {msg!r}"
        assert str(root.resolve()) in msg and name in msg, msg
        assert "geometry" in meta  # planning costs it without its files
        assert not list(root.rglob("*")), "wrote into data_root although download=False"
        return
    check_image_data(data, meta.get("streamed", False))
    assert same_data(data, loader(root, arg, download=False))  # loading is deterministic
    if "geometry" in meta:
        assert (len(data.y_train), data.image_size) == meta["geometry"]


@pytest.mark.parametrize("name", [n for n in DATASETS.names() if DATASETS.meta(n).get("needs_argument")])
def test_dataset_argument_names_a_missing_file(name, tmp_path):
    absent = tmp_path / "absent"
    with pytest.raises(DatasetMissing) as err:
        DATASETS.get(name)(tmp_path, str(absent), download=False)
    assert "\n" not in str(err.value) and str(absent.resolve()) in str(err.value)


def test_smoke_preset_data_loads_offline(smoke_plan, tmp_path):
    """The smoke preset is the one that runs anywhere: every dataset spec it trains on loads here."""
    specs = {job.dataset for job in smoke_plan.grid.teachers} | {job.dataset for job in smoke_plan.grid.students}
    assert specs
    for spec in sorted(specs):
        check_image_data(load_dataset(spec, tmp_path, download=False), False)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", download=False)


def fresh(data: ImageData) -> ImageData:
    return dataclasses.replace(
        data,
        x_train=data.x_train.clone(),
        y_train=data.y_train.clone(),
        x_test=data.x_test.clone(),
        y_test=data.y_test.clone(),
        classes=list(data.classes),
    )


def _label_noise_effect(before: ImageData, modify) -> None:
    """noise<v>: a fraction v of the training labels moves to another class; nothing else changes."""
    n = len(before.y_train)
    for value in (0.0, 0.1, 0.5):
        after = modify(fresh(before), value)
        changed = (after.y_train != before.y_train).double().mean().item()
        assert abs(changed - value) <= 1.0 / n + 1e-9, (value, changed)
        assert int(after.y_train.min()) >= 0 and int(after.y_train.max()) < before.num_classes
        assert torch.equal(after.x_train, before.x_train) and torch.equal(after.y_test, before.y_test)


# What each modifier does to a dataset (a new modifier says it here).
MODIFIER_EFFECTS = {"noise": _label_noise_effect}


@pytest.mark.parametrize("name", MODIFIERS.names())
def test_modifier_is_deterministic_and_keeps_the_format(name, digits, tmp_path):
    modify = MODIFIERS.get(name)
    a, b = modify(fresh(digits), 0.2), modify(fresh(digits), 0.2)
    check_image_data(a, False)
    assert same_data(a, b)
    assert a.x_train.shape == digits.x_train.shape and a.x_test.shape == digits.x_test.shape
    # ... and the dataset spec `digits+<name>0.2` reaches it
    spec = f"digits+{name}0.2"
    assert split_spec(spec) == ("digits", "", [(name, 0.2)]) and dataset_slug(spec) == spec
    assert same_data(load_dataset(spec, tmp_path, download=False), a)


@pytest.mark.parametrize("name", MODIFIERS.names())
def test_modifier_effect(name, digits):
    assert name in MODIFIER_EFFECTS, f"say in MODIFIER_EFFECTS what modifier {name} does"
    MODIFIER_EFFECTS[name](digits, MODIFIERS.get(name))


# -- models --------------------------------------------------------------------------------------


@pytest.mark.parametrize("channels,size", [(1, 8), (3, 32)], ids=["grey8", "rgb32"])
@pytest.mark.parametrize("name", MODELS.names())
def test_model_forward_backward(name, channels, size):
    torch.manual_seed(0)
    model = create_model(name, num_classes=7, in_channels=channels, image_size=size).train()
    x, y = torch.randn(4, channels, size, size), torch.tensor([0, 3, 6, 1])
    out = model(x)
    assert out.shape == (4, 7) and torch.isfinite(out).all()
    F.cross_entropy(out, y).backward()
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert params
    for pname, p in params:
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
    assert any(p.grad.abs().sum() > 0 for _, p in params)
    # the scores (moderate, grand_lastlayer) read the penultimate embedding and the final layer
    model.eval()
    with torch.no_grad():
        assert torch.allclose(model.fc(model.features(x)), model(x), atol=1e-5)


@pytest.mark.parametrize("name", MODELS.names())
def test_model_init_is_seeded(name):
    def state(seed):
        torch.manual_seed(seed)
        return create_model(name, num_classes=5, in_channels=1).state_dict()

    a, b, c = state(0), state(0), state(1)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a if a[k].is_floating_point())


# -- pruning scores and selection rules -----------------------------------------------------------

SCORE_SETTINGS = {
    "arch": "resnet8",
    "runs": 1,
    "epoch": 1,
    "recipe": {"epochs": 2, "batch_size": 64, "lr": 0.05, "schedule": "cosine", "eval_batch_size": 256},
}


@pytest.fixture(scope="module")
def digits_slice(digits):
    """The first 128 training and 64 test images of digits (every class present)."""
    return dataclasses.replace(
        digits,
        x_train=digits.x_train[:128].clone(),
        y_train=digits.y_train[:128].clone(),
        x_test=digits.x_test[:64].clone(),
        y_test=digits.y_test[:64].clone(),
    )


@pytest.mark.parametrize("name", SCORES.names())
def test_score_shape_finite_and_seeded(name, digits_slice, tmp_path):
    score = SCORES.get(name)
    settings = dict(SCORE_SETTINGS)
    if SCORES.meta(name).get("needs_teacher"):  # a trained teacher in the runner; a seeded fresh one here
        torch.manual_seed(0)
        settings["teacher_model"] = create_model("resnet8", digits_slice.num_classes, digits_slice.channels).eval()
    reads_file = SCORES.meta(name).get("reads_file")
    if reads_file:  # a file of scores, as a user would import it
        np.save(tmp_path / "scores.npy", np.random.default_rng(0).normal(size=len(digits_slice.y_train)))
        settings |= {"file": str(tmp_path / "scores.npy"), "sha256": hashlib.sha256((tmp_path / "scores.npy").read_bytes()).hexdigest()}

    def run(seed):
        return score_and_extras(score(digits_slice, dict(settings), seed, CPU, quiet, accel=Accel()))

    a, extras = run(0)
    assert isinstance(a, np.ndarray) and a.shape == (len(digits_slice.y_train),) and a.dtype == np.float64
    assert np.isfinite(a).all() and np.ptp(a) > 0
    assert all(isinstance(v, np.ndarray) for v in extras.values()) and not {"scores", "labels"} & set(extras)  # names of the file's own
    again, extras_again = run(0)
    assert np.array_equal(a, again) and all(np.array_equal(extras[k], extras_again[k]) for k in extras)
    assert np.array_equal(a, run(1)[0]) if reads_file else not np.array_equal(a, run(1)[0])  # a file's scores have no seed


CLASS_SIZES = [50, 23, 7, 1, 120, 2]


@pytest.fixture(scope="module")
def imbalanced():
    """Labels of imbalanced classes in shuffled order, scores with ties."""
    rng = np.random.default_rng(3)
    labels = rng.permutation(np.repeat(np.arange(len(CLASS_SIZES)), CLASS_SIZES))
    scores = np.round(rng.random(len(labels)), 1)
    return scores, labels


@pytest.mark.parametrize("keep", [0.1, 0.3, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("name", RULES.names())
def test_selection_rule_keeps_round_keep_n_per_class(name, keep, imbalanced, smoke_plan):
    scores, labels = imbalanced
    settings = {**smoke_plan.cfg["selection"], "class_balanced": True}  # the rule parameters every run gets

    def select(seed, **over):
        return select_indices(scores, labels, keep, name, seed=seed, **{**settings, **over})

    kept = select(0)
    assert kept.dtype.kind == "i" and np.array_equal(kept, np.unique(kept))  # sorted, no repeats
    assert kept.min() >= 0 and kept.max() < len(labels)
    per_class = np.bincount(labels[kept], minlength=len(CLASS_SIZES))
    equal = RULES.meta(name).get("equal_budget") and keep < 1.0  # one k for every class (mdslr)
    share = max(1, int(len(labels) / len(CLASS_SIZES) * keep))

    def count(n: int) -> int:  # floor_drop: BiLP's drop.py drops int(d * n), d = 1 - keep as a decimal
        return max(1, n - int(round(1 - keep, 10) * n)) if RULES.meta(name).get("floor_drop") else max(1, round(keep * n))

    assert per_class.tolist() == [min(share, n) if equal else count(n) for n in CLASS_SIZES]
    assert np.array_equal(kept, select(0))  # a seed fixes the subset
    if keep == 1.0:
        assert np.array_equal(kept, np.arange(len(labels)))
    pooled = select(0, class_balanced=False)
    n_pooled = max(1, int(len(labels) * keep)) if equal else count(len(labels))
    assert len(pooled) == n_pooled and np.array_equal(pooled, np.unique(pooled))
    assert np.array_equal(pooled, select(0, class_balanced=False))


# -- losses --------------------------------------------------------------------------------------


def schema_losses() -> dict:
    return schema()["$defs"]["losses"]["properties"]


def schema_params(name: str) -> dict:
    return schema_losses()[name].get("properties", {})


def default_params(name: str) -> dict:
    return {p: spec["default"][0] for p, spec in schema_params(name).items()}


def test_schema_names_every_loss():
    assert sorted(schema_losses()) == LOSSES.names()


@pytest.mark.parametrize("name", LOSSES.names())
def test_loss_schema_matches_the_implementation(name):
    cls = LOSSES.get(name)
    assert dataclasses.is_dataclass(cls), "make_loss passes a loss only the dataclass fields it declares"
    fields = {f.name: f for f in dataclasses.fields(cls)}
    params = schema_params(name)
    assert set(params) == set(fields)
    path_keys = [spec.get("x-path-key") for spec in params.values()]
    assert all(isinstance(k, str) and re.fullmatch(r"[A-Za-z]+", k) for k in path_keys), path_keys
    assert len(set(path_keys)) == len(path_keys)  # run folder names stay unambiguous
    for p, spec in params.items():
        assert isinstance(spec.get("default"), list) and spec["default"], p  # a list of values the grid expands
        assert fields[p].default in spec["default"], (p, fields[p].default, spec["default"])


@pytest.mark.parametrize("name", LOSSES.names())
def test_loss_declaration(name):
    meta = LOSSES.meta(name)
    assert isinstance(meta["needs_teacher"], bool)
    assert make_loss(name).needs_teacher is meta["needs_teacher"]  # the runner reads it off the object
    same_as = meta.get("same_as")
    if same_as:  # e.g. KD at alpha 0 is CE: the grid runs the other loss instead
        assert same_as["loss"] in LOSSES and same_as["loss"] != name
        assert same_as["when"] and set(same_as["when"]) <= set(schema_params(name))
        torch.manual_seed(0)
        logits, teacher, y = torch.randn(16, 10), torch.randn(16, 10), torch.randint(0, 10, (16,))
        here = make_loss(name, **{**default_params(name), **same_as["when"]})(logits, y, teacher)
        there = make_loss(same_as["loss"], **default_params(same_as["loss"]))(logits, y, teacher)
        assert sum(here.values()).item() == pytest.approx(sum(there.values()).item(), rel=1e-6)


@pytest.mark.parametrize("name", LOSSES.names())
def test_loss_terms_are_finite_scalars_with_gradients(name):
    torch.manual_seed(0)
    loss = make_loss(name, **default_params(name), unrelated_parameter=1.0)
    logits = torch.randn(8, 10, requires_grad=True)
    y = torch.randint(0, 10, (8,))
    teacher = torch.randn(8, 10) if loss.needs_teacher else None
    terms = loss(logits, y, teacher_logits=teacher)
    assert isinstance(terms, dict) and terms and "loss" not in terms  # "loss" is the epoch log's total
    for term, value in terms.items():
        assert isinstance(term, str) and isinstance(value, torch.Tensor) and value.dim() == 0, term
        assert torch.isfinite(value), term
    sum(terms.values()).backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


# -- schedules -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SCHEDULES.names())
def test_schedule_starts_at_one_and_stays_in_unit_interval(name):
    schedule = SCHEDULES.get(name)
    for recipe in (Recipe(epochs=10, schedule=name, milestones=(3, 7)), Recipe(epochs=1, schedule=name)):
        assert schedule(recipe, 0.0) == pytest.approx(1.0)
        assert recipe.lr_at(0.0) == pytest.approx(recipe.lr)
        for progress in np.linspace(0.0, recipe.epochs, 97):
            m = schedule(recipe, float(progress))
            assert math.isfinite(m) and 0.0 <= m <= 1.0, (progress, m)


# -- verdict rules and figures, on a synthetic runs table of the smoke plan -------------------------


@pytest.fixture(scope="module")
def smoke_plan():
    return Plan(load(CONFIG))


@functools.cache
def n_params(arch: str) -> int:
    return sum(p.numel() for p in create_model(arch, 10, 1).parameters())


@pytest.fixture(scope="module")
def runs_tables(smoke_plan, tmp_path_factory):
    """experiment -> the runs table (kdprune.report.runs) of its smoke-plan runs, with made-up
    accuracies: metrics.json files written as the runners write them, read back through the CSV."""
    from kdprune.report.runs import read_runs_table, write_runs_table

    root = tmp_path_factory.mktemp("runs")
    specs = {}
    for key in smoke_plan.jobs("student"):
        outputs = smoke_plan.outputs("student", key)
        for spec in smoke_plan.spec("student", key):
            run_dir = outputs[f"run_s{spec['seed']}"]
            specs[f"{run_dir}/metrics.json"] = spec
    rng = np.random.default_rng(0)
    tables = {}
    for experiment in smoke_plan.cfg["experiments"]:
        paths = []
        for path in smoke_plan.experiment_metrics(experiment):
            spec, axes = specs[path], specs[path]["axes"]
            acc = 0.55 + 0.3 * axes["keep"] + 0.02 * (axes["loss"] != "ce") + 0.005 * axes["seed"] + rng.normal(0, 0.004)
            # images trained on: InfoBatch (whole data) prunes about 30% of them, like a 70% subset
            share = 0.7 if "infobatch" in spec["recipe"] else axes["keep"]
            metrics = {
                "spec": spec,
                "final_acc": acc,
                "best_acc": acc + 0.003,
                "epochs": spec["recipe"]["epochs"],
                "teacher_params": n_params(axes["teacher"]) if axes["teacher"] else None,
                "sample_steps": round(share * 1347) * spec["recipe"]["epochs"],
                "train_seconds": share * 10 + rng.normal(0, 0.1),
                **({"ts_gap": 0.1 - 0.05 * axes["keep"] + rng.normal(0, 0.01)} if axes["teacher"] else {}),
            }
            out = root / path
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(metrics))
            paths.append(out)
        csv = root / f"{experiment}.csv"
        write_runs_table(paths, csv, smoke_plan.preset)
        tables[experiment] = read_runs_table(csv)
    return tables


def claims_using(plan: Plan, what: str, name: str) -> list[str]:
    claims = [cid for cid, c in plan.cfg["claims"].items() if (c["test"]["rule"] if what == "rule" else c.get("figure")) == name]
    assert claims, f"no claim of the smoke preset uses {what} {name}: add one, so that it is tested on real columns"
    return claims


@pytest.mark.parametrize("name", VERDICT_RULES.names())
def test_verdict_rule_on_the_smoke_runs(name, smoke_plan, runs_tables):
    rule = VERDICT_RULES.get(name)
    for cid in claims_using(smoke_plan, "rule", name):
        spec = smoke_plan.claim_spec(cid)
        runs = runs_tables[spec["experiment"]]
        table, verdict, reason = rule(runs, spec["test"])
        assert verdict in {"supported", "not supported", "inconclusive"}, (cid, verdict)
        assert isinstance(reason, str) and reason and "\n" not in reason
        assert isinstance(table, pd.DataFrame) and len(table) > 0, f"{cid}: no cell of its test matches its experiment's runs"
        assert {"diff", "ci_low", "ci_high", "status"} <= set(table.columns)
        statuses = set(table["status"].dropna())
        assert statuses and statuses <= {"better", "worse", "unresolved", "cost not matched", "costs more than claimed"}, (cid, statuses)


@pytest.mark.parametrize("name", FIGURES.names())
def test_figure_on_the_smoke_runs(name, smoke_plan, runs_tables):
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    draw = FIGURES.get(name)
    for cid in claims_using(smoke_plan, "figure", name):
        spec = smoke_plan.claim_spec(cid)
        fig = draw(runs_tables[spec["experiment"]], spec)
        try:
            assert isinstance(fig, Figure) and fig.axes
            assert any(ax.lines or ax.collections or ax.images for ax in fig.axes), f"{cid}: nothing drawn"
            assert any(cid in t.get_text() for t in fig.texts), f"{cid}: the figure is not titled with its claim"
            fig.savefig(io.BytesIO(), format="png", dpi=40)
        finally:
            plt.close(fig)


# -- job kinds -----------------------------------------------------------------------------------

PLAN_VARIANTS = {"default": {}, "no_views_unstacked": {"teacher_views": False, "stack_seeds": "off"}}


@pytest.fixture(scope="module", params=list(PLAN_VARIANTS))
def plan_variant(request):
    return request.param, Plan(load(CONFIG, PLAN_VARIANTS[request.param]))


def every_output(plan: Plan) -> dict[str, tuple[str, str]]:
    """path -> (kind, key) of the job that writes it; no path is written by two jobs."""
    owner = {}
    for kind in JOB_KINDS.names():
        for key in plan.jobs(kind):
            for path in plan.outputs(kind, key).values():
                assert path not in owner, f"{path} is written by {owner[path]} and by {(kind, key)}"
                owner[path] = (kind, key)
    return owner


@pytest.mark.parametrize("kind", JOB_KINDS.names())
def test_job_kind_on_the_smoke_plan(kind, plan_variant):
    variant, plan = plan_variant
    owner = every_output(plan)
    jobs = plan.jobs(kind)
    assert jobs or variant != "default", f"the smoke plan has no {kind} job"  # (no view tables without teacher_views)
    # a job reads its spec from plan.json: the config survives JSON and gives the same jobs
    reread = Plan(json.loads(json.dumps(plan.cfg)))
    assert list(reread.jobs(kind)) == list(jobs)
    for key in jobs:
        spec = plan.spec(kind, key)
        assert isinstance(spec, (dict, list)) and spec
        assert json.loads(json.dumps(spec, allow_nan=False)) == spec, key
        assert reread.spec(kind, key) == spec and reread.settings(kind, key) == plan.settings(kind, key)
        outputs = plan.outputs(kind, key)
        assert outputs and all(isinstance(p, str) and p.startswith(plan.results + "/") for p in outputs.values())
        for name, paths in plan.inputs(kind, key).items():
            for path in paths if isinstance(paths, list) else [paths]:
                assert isinstance(path, str) and path in owner, f"{kind} {key}: input {name} = {path} is no job's output"
                assert owner[path][0] != kind, f"{kind} {key}: input {name} comes from its own kind"


@pytest.mark.parametrize("kind", JOB_KINDS.names())
def test_job_kind_runner_and_rule(kind):
    module, _, function = JOB_KINDS.get(kind).runner.partition(":")
    runner = getattr(importlib.import_module(module), function)
    assert callable(runner)
    inspect.signature(runner).bind("spec", {}, {}, {}, quiet)  # cli: runner(spec, inputs, outputs, cfg, log)
    rules = "\n".join(p.read_text() for p in sorted((REPO / "workflow" / "rules").glob("*.smk")))
    # every rule's shell line is `<RUN> <kind> ... --key <key>` (python -m kdprune run <kind> --key <key>)
    assert re.search(rf"\bRUN\b\W+{re.escape(kind)}\b[^\n]*--key", rules), f"no rule in workflow/rules runs the {kind} kind"
