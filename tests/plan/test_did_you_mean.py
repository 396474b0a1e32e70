"""Bad input through the real config check (`python -m kdprune check-config`, issue #17): typos of
keys at every level the schema checks, of every registry's names, out-of-range values, non-integer
seeds and wrong types. Each is refused with ONE line that names the key (and the value), where it
is (the paper file, the preset) and, for a near miss, the name it probably meant."""

import copy
import os
import subprocess
import sys

import pytest
import yaml

from kdprune.cli import main
from kdprune.forkserver import ENV
from kdprune.plan.config import ROOT, ConfigError, load, load_yaml
from kdprune.registry import did_you_mean

CONFIG = load_yaml(ROOT / "config.yaml")
WHOLE = ()  # a path that replaces the whole file

# (file, path in it, value, what the line must contain, the suggestion it must make or None)
CASES = [
    # -- typos of keys, at every level of config.yaml ----------------------------------------------
    ("config.yaml", ("seedz",), [0], "config: seedz is not an allowed key", "seeds"),
    ("config.yaml", ("recipes", "teacher", "epochz"), 3, "recipes.teacher.epochz is not an allowed key", "epochs"),
    ("config.yaml", ("augmentation", "paddingmode"), "edge", "augmentation.paddingmode is not an allowed key", "padding_mode"),
    ("config.yaml", ("augmentation", "npz", "padd"), 3, "augmentation.npz.padd is not an allowed key", "padding"),
    ("config.yaml", ("selection", "centre"), 0.5, "selection.centre is not an allowed key", "center"),
    ("config.yaml", ("selection", "ccs_cutoff", 0, "ration"), 0.3, "selection.ccs_cutoff[0].ration is not an allowed key", "ratio"),
    ("config.yaml", ("distill", "dcc"), {}, "distill.dcc is not an allowed key", "dc"),
    ("config.yaml", ("distill", "dc", "iteratons"), 3, "distill.dc.iteratons is not an allowed key", "iterations"),
    ("config.yaml", ("distill", "ite", "intervall"), 3, "distill.ite.intervall is not an allowed key", "interval"),
    ("config.yaml", ("distill", "evaluation", "num_evals"), 3, "distill.evaluation.num_evals is not an allowed key", "num_eval"),
    ("config.yaml", ("scores", "el2n", "rnus"), 3, "scores.el2n.rnus is not an allowed key", "runs"),
    ("config.yaml", ("scores", "infobatch", "dynamic", "ratoi"), 0.3, "scores.infobatch.dynamic.ratoi is not an allowed key", "ratio"),
    ("config.yaml", ("accel",), {"precison": "bf16"}, "accel.precison is not an allowed key", "precision"),
    ("config.yaml", ("replicates",), {"min": 3, "mxa": 5}, "replicates.mxa is not an allowed key", "max"),
    ("config.yaml", ("presets", "paper", "seedz"), [0], "config: seedz is not an allowed key", "seeds"),
    ("config.yaml", ("presets", "small", "recipes", "student", "batchsize"), 8, "recipes.student.batchsize is not an allowed key", "batch_size"),
    # -- typos of keys in a paper file: its own keys, an experiment's, a loss's, a claim's, a preset override's
    ("P1.yaml", ("experiment",), {}, "workflow/papers/P1.yaml: experiment is not an allowed key", "experiments"),
    ("P1.yaml", ("experiments", "p1_alpha", "studnet"), ["resnet8"], "experiments.p1_alpha.studnet is not an allowed key", "student"),
    ("P1.yaml", ("experiments", "p1_alpha", "loss", "kdd"), {}, "experiments.p1_alpha.loss.kdd is not an allowed key", "kd"),
    ("P1.yaml", ("experiments", "p1_alpha", "loss", "kd", "alpah"), [0.5], "experiments.p1_alpha.loss.kd.alpah is not an allowed key", "alpha"),
    ("P1.yaml", ("experiments", "p1_alpha", "loss", "dkdd"), {}, "experiments.p1_alpha.loss.dkdd is not an allowed key", "dkd"),
    (
        "P1.yaml",
        ("experiments", "p1_alpha", "presets", "smoke", "loss", "kd", "temprature"),
        [4.0],
        "experiments.p1_alpha.loss.kd.temprature is not an allowed key",
        "temperature",
    ),
    ("P1.yaml", ("experiments", "p1_alpha", "presets", "smok"), {}, "experiments.p1_alpha names preset 'smok'", "smoke"),
    ("P1.yaml", ("experiments", "p1_alpha", "only_in"), ["papr"], "experiments.p1_alpha names preset 'papr'", "paper"),
    ("P1.yaml", ("claims", "P1-C1", "statment"), "x", "claims.P1-C1.statment is not an allowed key", "statement"),
    ("P1.yaml", ("claims", "P1-C1", "test", "treatmen"), {}, "claims.P1-C1.test.treatmen is not an allowed key", "treatment"),
    ("P1.yaml", ("claims", "P1-C1", "figure_options"), {"hu": "loss"}, "claims.P1-C1.figure_options.hu is not an allowed key", "hue"),
    ("P4.yaml", ("experiments", "p4_ipc", "distill", "dc", "ipcc"), [1], "experiments.p4_ipc.distill.dc.ipcc is not an allowed key", "ipc"),
    # -- typos of names: every registry, and the config's own names (recipes, methods, experiments, presets, papers)
    ("config.yaml", ("presets", "smoke", "dataset"), "cifra10", "dataset = 'cifra10' is not allowed: unknown dataset", "cifar10"),
    ("config.yaml", ("presets", "smoke", "dataset"), "mnist3", "dataset = 'mnist3' is not allowed: unknown dataset", None),
    (
        "P1.yaml",
        ("experiments", "p1_alpha", "student"),
        ["resnet9"],
        "experiments.p1_alpha.student[0] = 'resnet9' is not allowed: unknown model",
        "resnet8",
    ),
    ("P1.yaml", ("experiments", "p1_alpha", "student"), ["convnet"], "experiments.p1_alpha.student[0] = 'convnet'", "ConvNet"),
    ("P1.yaml", ("experiments", "p1_alpha", "student"), ["transformer"], "experiments.p1_alpha.student[0] = 'transformer'", None),
    ("P1.yaml", ("experiments", "p1_alpha", "teacher"), ["resnet32x"], "experiments.p1_alpha.teacher[0] = 'resnet32x'", "resnet32x4"),
    (
        "P1.yaml",
        ("experiments", "p1_alpha", "selection_rule"),
        ["hardst"],
        "selection_rule[0] = 'hardst' is not allowed: unknown selection rule",
        "hardest",
    ),
    (
        "P1.yaml",
        ("experiments", "p1_alpha", "selection"),
        ["grnd"],
        "experiments.p1_alpha.selection[0] = 'grnd' is not allowed: unknown pruning method",
        "grand",
    ),
    (
        "P1.yaml",
        ("experiments", "p1_alpha", "recipe"),
        ["studnet"],
        "experiments.p1_alpha.recipe[0] = 'studnet' is not allowed: unknown recipe",
        "student",
    ),
    ("P1.yaml", ("experiments", "p1_alpha", "teacher_recipe"), "teachr", "experiments.p1_alpha.teacher_recipe = 'teachr'", "teacher"),
    (
        "P1.yaml",
        ("experiments", "p1_alpha", "presets", "smoke", "teacher"),
        {"resnet9": ["resnet8"]},
        "experiments.p1_alpha.teacher.resnet9 = 'resnet9'",
        "resnet8",
    ),
    ("P1.yaml", ("experiments", "p1_alpha", "replicate"), "chian", "experiments.p1_alpha.replicate = 'chian'", "chain"),
    ("P1.yaml", ("claims", "P1-C1", "test", "rule"), "trnd", "claims.P1-C1.test.rule = 'trnd' is not allowed: unknown verdict rule", "trend"),
    ("P1.yaml", ("claims", "P1-C1", "figure"), "acc_vs_kep", "claims.P1-C1.figure = 'acc_vs_kep' is not allowed: unknown figure kind", "acc_vs_keep"),
    (
        "P1.yaml",
        ("claims", "P1-C1", "experiment"),
        "p1_kd_vs_c",
        "claims.P1-C1.experiment = 'p1_kd_vs_c' is not allowed: unknown experiment",
        "p1_kd_vs_ce",
    ),
    ("P1.yaml", ("claims", "P1-C1", "test", "metric"), "final_ac", "claims.P1-C1.test.metric = 'final_ac'", "final_acc"),
    ("P2.yaml", ("claims", "P2-C1", "measure"), {"scores": ["el2n", "grnd"]}, "claims.P2-C1.measure.scores[1] = 'grnd'", "grand"),
    ("P4.yaml", ("experiments", "p4_ipc", "distill", "dc", "ite_tails"), ["bth"], "experiments.p4_ipc.distill.dc.ite_tails[0] = 'bth'", "both"),
    ("config.yaml", ("recipes", "teacher", "schedule"), "cosin", "recipes.teacher.schedule = 'cosin' is not allowed: unknown schedule", "cosine"),
    ("config.yaml", ("recipes", "teacher", "budget"), "epoch", "recipes.teacher.budget = 'epoch'", "epochs"),
    (
        "config.yaml",
        ("recipes", "teacher", "lr_by_arch"),
        {"resnt8": 0.1},
        "recipes.teacher.lr_by_arch.resnt8 = 'resnt8' is not allowed: unknown model",
        "resnet8",
    ),
    ("config.yaml", ("scores", "moderate", "rule"), "mediun", "scores.moderate.rule = 'mediun' is not allowed: unknown selection rule", "medium"),
    (
        "config.yaml",
        ("scores", "loss_init", "method"),
        "train_los",
        "scores.loss_init.method = 'train_los' is not allowed: unknown pruning score",
        "train_loss",
    ),
    ("config.yaml", ("scores", "el2n", "arch"), "ressnet20", "scores.el2n.arch = 'ressnet20' is not allowed: unknown model", "resnet20"),
    ("config.yaml", ("scores", "el2n", "recipe"), "scor", "scores.el2n.recipe = 'scor' is not allowed: unknown recipe", "score"),
    ("config.yaml", ("scores", "el2n", "teacher"), "resnet8y", "scores.el2n.teacher = 'resnet8y'", "resnet8"),
    ("config.yaml", ("scores", "ccs", "cutoff_score"), "amu", "scores.ccs.cutoff_score = 'amu' is not allowed: unknown pruning method", "aum"),
    ("config.yaml", ("scores", "aum", "margin"), "probabilty", "scores.aum.margin = 'probabilty'", "probability"),
    ("config.yaml", ("scores", "teacher_ce", "views"), "agumented", "scores.teacher_ce.views = 'agumented'", "augmented"),
    ("config.yaml", ("teacher_recipe",), "teachr", "teacher_recipe = 'teachr' is not allowed: unknown recipe", "teacher"),
    ("config.yaml", ("teacher_checkpoints",), {"digits": {"resnet9": "t.pt"}}, "teacher_checkpoints.digits.resnet9 = 'resnet9'", "resnet8"),
    (
        "config.yaml",
        ("augmentation", "padding_mode"),
        "reflct",
        "augmentation.padding_mode = 'reflct' is not allowed: unknown padding mode",
        "reflect",
    ),
    ("config.yaml", ("accel",), "fsat", "config: accel = 'fsat' is not allowed", "fast"),
    ("config.yaml", ("accel",), {"precision": "bf61"}, "accel.precision = 'bf61'", "bf16"),
    ("config.yaml", ("stack_seeds",), "stackd", "stack_seeds = 'stackd'", "stacked"),
    ("config.yaml", ("teacher_views",), "ture", "teacher_views = 'ture'", "true"),
    ("config.yaml", ("distill", "evaluation", "path"), "stackd", "distill.evaluation.path = 'stackd'", "stacked"),
    ("config.yaml", ("preset",), "smok", "preset = 'smok' is not allowed", "smoke"),
    ("config.yaml", ("preset",), "huge", "preset = 'huge' is not allowed", None),
    ("config.yaml", ("papers",), ["p1"], "papers: 'p1' is not allowed: no file", "P1"),
    ("config.yaml", ("papers",), ["P9"], "papers: 'P9' is not allowed: no file", None),
    # -- out-of-range values -----------------------------------------------------------------------
    (
        "P1.yaml",
        ("experiments", "p1_alpha", "keep"),
        [0.5, 1.5],
        "experiments.p1_alpha.keep[1] = 1.5 is not allowed: a keep fraction in (0, 1]",
        None,
    ),
    ("P1.yaml", ("experiments", "p1_alpha", "keep"), [0], "experiments.p1_alpha.keep[0] = 0 is not allowed", None),
    ("P1.yaml", ("experiments", "p1_alpha", "loss", "kd", "alpha"), [1.2], "experiments.p1_alpha.loss.kd.alpha[0] = 1.2 is not allowed", None),
    ("P1.yaml", ("claims", "P1-C1", "replicates"), {"min": 1, "max": 3}, "claims.P1-C1.replicates.min = 1 is not allowed: an integer >= 2", None),
    ("P1.yaml", ("claims", "P1-C1", "replicates"), {"min": 5, "max": 3}, "claims.P1-C1.replicates.max = 3 is not allowed", None),
    (
        "P1.yaml",
        ("claims", "P1-C1", "replicates"),
        {"min": 3, "max": 10, "interim_confidence": 0.9},
        "claims.P1-C1.replicates.interim_confidence = 0.9 is not allowed: must be at least the claim's test.confidence (0.95)",
        None,
    ),
    (
        "P1.yaml",
        ("claims", "P1-C1", "replicates"),
        {"min": 3, "max": 10, "futility": 0.5},
        "claims.P1-C1.replicates.futility = 0.5 is not allowed",
        None,
    ),
    ("P4.yaml", ("experiments", "p4_ipc", "distill", "dc", "ite"), [0.5], "experiments.p4_ipc.distill.dc.ite[0] = 0.5 is not allowed", None),
    ("config.yaml", ("recipes", "teacher", "epochs"), -3, "recipes.teacher.epochs = -3 is not allowed: a positive number of epochs", None),
    ("config.yaml", ("recipes", "teacher", "momentum"), 1.0, "recipes.teacher.momentum = 1.0 is not allowed: momentum in [0, 1)", None),
    ("config.yaml", ("selection", "center"), 1.5, "selection.center = 1.5 is not allowed: a quantile in [0, 1]", None),
    ("config.yaml", ("distill", "evaluation", "num_eval"), 0, "distill.evaluation.num_eval = 0 is not allowed", None),
    (
        "config.yaml",
        ("scores", "forgetting", "epoch"),
        0,
        "scores.forgetting.epoch = 0 is not allowed: score forgetting records training dynamics",
        None,
    ),
    ("config.yaml", ("device",), "gpu", "device = 'gpu' is not allowed: auto, cpu, cuda or cuda:N", None),
    # -- seeds that are no non-negative integers ---------------------------------------------------
    ("config.yaml", ("presets", "smoke", "seeds"), [0, 1.5], "seeds[1] = 1.5 is not allowed: a non-negative integer seed", None),
    ("config.yaml", ("presets", "smoke", "seeds"), ["a"], "seeds[0] = 'a' is not allowed: a non-negative integer seed", None),
    ("config.yaml", ("presets", "smoke", "seeds"), [-1], "seeds[0] = -1 is not allowed: a non-negative integer seed", None),
    ("config.yaml", ("presets", "smoke", "seeds"), 3, "seeds = 3 is not allowed: a non-empty list", None),
    ("config.yaml", ("presets", "smoke", "seeds"), [1, 1], "seeds = [1, 1] is not allowed", None),
    ("P1.yaml", ("experiments", "p1_alpha", "seed"), [0.5], "experiments.p1_alpha.seed[0] = 0.5 is not allowed: a non-negative integer seed", None),
    ("P1.yaml", ("experiments", "p1_alpha", "teacher_seed"), ["x"], "experiments.p1_alpha.teacher_seed[0] = 'x' is not allowed", None),
    # -- wrong types -------------------------------------------------------------------------------
    ("config.yaml", ("recipes", "teacher", "lr"), "fast", "recipes.teacher.lr = 'fast' is not allowed: a learning rate > 0", None),
    ("config.yaml", ("recipes", "teacher", "epochs"), 2.5, "recipes.teacher.epochs = 2.5 is not allowed", None),
    ("config.yaml", ("recipes", "teacher"), None, "recipes.teacher = None is not allowed", None),
    ("config.yaml", ("download",), "yes", "download = 'yes' is not allowed", None),
    ("config.yaml", ("evidence",), 1, "evidence = 1 is not allowed", None),
    ("config.yaml", ("presets", "smoke", "scores"), [], "scores = [] is not allowed", None),
    ("config.yaml", ("presets", "smoke"), [1], "presets.smoke = [1] is not allowed: a mapping", None),
    (
        "config.yaml",
        ("presets", "smoke", "experiments"),
        {"p1_alpha": {"keep": [0.3]}},
        "presets.smoke.experiments is not allowed in config.yaml",
        None,
    ),
    ("P1.yaml", ("experiments", "p1_alpha", "keep"), 0.5, "experiments.p1_alpha.keep = 0.5 is not allowed", None),
    ("P1.yaml", ("experiments",), ["p1_alpha"], "workflow/papers/P1.yaml: experiments = ['p1_alpha'] is not allowed: a mapping", None),
    ("P1.yaml", ("experiments", "p1_alpha", "presets"), ["smoke"], "experiments.p1_alpha.presets = ['smoke'] is not allowed: a dict", None),
    ("P1.yaml", WHOLE, ["P1"], "workflow/papers/P1.yaml: a list is not allowed", None),
]


def set_at(doc, path: tuple, value):
    if not path:
        return copy.deepcopy(value)
    doc = copy.deepcopy(doc)
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


def write_case(tmp_path, file: str, path: tuple, value) -> str:
    """config.yaml and, for a paper file's case, that paper file (workflow/papers/, read before the
    shipped one) with the change made; the path of the config."""
    config = set_at(CONFIG, path, value) if file == "config.yaml" else CONFIG
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    if file != "config.yaml":
        papers = tmp_path / "workflow" / "papers"
        papers.mkdir(parents=True)
        (papers / file).write_text(yaml.safe_dump(set_at(load_yaml(ROOT / "workflow" / "papers" / file), path, value), sort_keys=False))
    return str(tmp_path / "config.yaml")


def test_the_table_covers_every_kind_of_bad_input():
    assert len(CASES) >= 50
    assert len({(file, path, repr(value)) for file, path, value, *_ in CASES}) == len(CASES)  # no case twice
    assert sum(1 for *_, suggestion in CASES if suggestion) >= 40 and sum(1 for *_, suggestion in CASES if not suggestion) >= 25


@pytest.mark.parametrize("file,path,value,names,suggestion", CASES, ids=[f"{c[0]}:{'.'.join(map(str, c[1]))}={c[2]!r}"[:80] for c in CASES])
def test_bad_input_is_one_line_naming_key_value_and_suggestion(file, path, value, names, suggestion, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)  # run the command here, not in a fork server's child
    status = main(["check-config", "--config", write_case(tmp_path, file, path, value)])  # a traceback fails the test
    out, err = capsys.readouterr()
    assert status == 2 and out == "" and err.endswith("\n")
    line = err.removesuffix("\n")
    assert "\n" not in line and line.startswith("kdprune check-config: ")
    assert names in line, line
    if file != "config.yaml":  # where it is: the paper file
        assert f"workflow/papers/{file}" in line, line
    if suggestion:
        assert f"; did you mean {suggestion!r}?" in line, line
    else:
        assert "did you mean" not in line, line


def test_the_command_itself_prints_one_line_and_no_traceback(tmp_path):
    """The same through `python -m kdprune check-config` in its own process."""
    config = write_case(tmp_path, "P1.yaml", ("experiments", "p1_alpha", "loss", "kdd"), {})
    env = {k: v for k, v in os.environ.items() if k != ENV}
    done = subprocess.run([sys.executable, "-m", "kdprune", "check-config", "--config", config], capture_output=True, text=True, env=env, cwd=ROOT)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (
        "kdprune check-config: config: experiments.p1_alpha.loss.kdd is not an allowed key; allowed: ce, dkd, kd; "
        "did you mean 'kd'? [workflow/papers/P1.yaml]\n"
    )


@pytest.mark.parametrize(
    "overrides,line,meant",
    [
        (
            {"experiments": {"p1_alpah": {"keep": [0.5]}}},
            "config: experiments.p1_alpah is not in the paper files (papers: P1, P2, P3, P4)",
            "p1_alpha",
        ),
        ({"claims": {"P1-C11": {"figure": "lines"}}}, "config: claims.P1-C11 is not in the paper files", "P1-C1"),
        ({"preset": "smal"}, "config: preset = 'smal' is not allowed", "small"),
    ],
)
def test_a_command_line_override_of_no_entry_says_which_it_meant(overrides, line, meant):
    """`--config experiments={p1_alpah: ...}` merged a new, incomplete experiment before."""
    with pytest.raises(ConfigError) as err:
        load(ROOT / "config.yaml", overrides)
    msg = str(err.value)
    assert msg.startswith(line) and msg.endswith(f"; did you mean {meant!r}?") and "\n" not in msg


def test_did_you_mean_lists_what_is_allowed_and_the_nearest_name():
    assert did_you_mean("kdd", ["ce", "dkd", "kd"]) == "allowed: ce, dkd, kd; did you mean 'kd'?"
    assert did_you_mean("zzz", ["ce", "dkd", "kd"]) == "allowed: ce, dkd, kd"
    assert did_you_mean("convnet", ["ConvNet", "resnet8"]).endswith("did you mean 'ConvNet'?")  # case is no typo to miss
    assert did_you_mean(3, [1, 2]) == "allowed: 1, 2"


def test_every_registry_says_which_name_it_meant():
    from kdprune.data import DATASETS
    from kdprune.distill import DISTILLERS
    from kdprune.losses import LOSSES
    from kdprune.models import MODELS
    from kdprune.plan.kinds import JOB_KINDS
    from kdprune.pruning import RULES, SCORES
    from kdprune.registry import UnknownName
    from kdprune.report import FIGURES, VERDICT_RULES
    from kdprune.train import SCHEDULES

    typos = {
        DATASETS: ("cifar1O", "cifar10"),
        DISTILLERS: ("dcc", "dc"),
        LOSSES: ("kdd", "kd"),
        MODELS: ("ressnet20", "resnet20"),
        JOB_KINDS: ("studnet", "student"),
        RULES: ("easist", "easiest"),
        SCORES: ("forgeting", "forgetting"),
        FIGURES: ("line", "lines"),
        VERDICT_RULES: ("trend_", "trend"),
        SCHEDULES: ("cosin", "cosine"),
    }
    for registry, (typo, meant) in typos.items():
        with pytest.raises(UnknownName) as err:
            registry.get(typo)
        assert str(err.value) == f"unknown {registry.kind} {typo!r}; allowed: {', '.join(registry.names())}; did you mean {meant!r}?"


def test_a_command_line_experiment_is_allowed_where_one_in_config_yaml_is_not():
    """Snakemake merges --config values into the file's config before the workflow sees it: an
    `experiments` key that came from the command line is an override, not a misplaced entry."""
    from kdprune.plan.config import resolve

    overrides = {"experiments": {"p1_kd_vs_ce": {"keep": [0.3]}}}
    cfg = resolve({**copy.deepcopy(CONFIG), **overrides}, overrides, ROOT)
    assert cfg["experiments"]["p1_kd_vs_ce"]["keep"] == [0.3]
    with pytest.raises(ConfigError, match=r"^config: experiments is not allowed in config.yaml"):
        resolve({**copy.deepcopy(CONFIG), **overrides}, {}, ROOT)
