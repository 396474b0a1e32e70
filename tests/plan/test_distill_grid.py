"""P4's distillation experiments in the grid: one distilled set per grid point and seed, evaluated by
a student run of the same seed; the static criterion's score once for every seed; the specs of both
kinds; the one-line refusals of what a distillation experiment cannot do."""

import pytest

from kdprune.plan import Plan
from kdprune.plan.config import ROOT, ConfigError, check_names, check_schema, load, normalise


def plan_of(claims: dict | None = None, **experiment) -> Plan:
    cfg = load(ROOT / "config.yaml")
    exp = {"paper": "T", "student": ["ConvNet"], "selection": ["random"], "keep": [0.5], "seed": [0, 1], "loss": {"ce": {}}, **experiment}
    cfg = {**cfg, "experiments": {"e": exp}, "claims": claims or {}}
    check_schema(cfg)
    cfg = normalise(cfg)
    check_names(cfg)
    return Plan(cfg)


def test_each_seed_evaluates_its_own_distilled_set_of_the_selection():
    plan = plan_of(distill={"dc": {"ipc": [1, 10]}}, selection=["random", "loss_converge"], selection_rule=["bilp_drop_large"], keep=[0.1, 1.0])
    sets = plan.jobs("distilled")
    # (random 0.1, loss 0.1, full) x ipc 1, 10: the full data is one set whatever the method; the
    # seeds 0, 1 of a grid point are one job, as students
    assert len(sets) == 3 * 2 and all([d.seed for d in group] == [0, 1] for group in sets.values())
    group = "digits/distilled/dc-ipc10/loss_converge-bilp_drop_large/keep0.1"
    assert plan.outputs("distilled", group) == {
        f"{name}_s{seed}": f"results/smoke/{group}/s{seed}/{file}"
        for seed in (0, 1)
        for name, file in (("synthetic", "synthetic.pt"), ("meta", "distilled.json"))
    }
    groups = plan.jobs("student")
    assert len(groups) == 6 and all(len(runs) == 2 for runs in groups.values())
    key = "digits/students/ConvNet-eval/loss_converge-bilp_drop_large/keep0.1/ce-dc-ipc10"
    assert plan.inputs("student", key) == {
        "distilled": [f"results/smoke/digits/distilled/dc-ipc10/loss_converge-bilp_drop_large/keep0.1/s{s}/synthetic.pt" for s in (0, 1)]
    }
    # the static criterion is one score (seed 0) for every seed, as BiLP's released files; random is drawn per seed
    assert plan.inputs("distilled", group) == {"scores": ["results/smoke/digits/scores/loss_converge-s0.npz"] * 2}
    random = [f"results/smoke/digits/scores/random-s{seed}.npz" for seed in (0, 1)]
    assert plan.inputs("distilled", "digits/distilled/dc-ipc1/random/keep0.1") == {"scores": random}
    assert plan.inputs("distilled", "digits/distilled/dc-ipc1/full/keep1") == {}
    run = next(s for s in plan.grid.students if s.distilled and s.distilled.keep == 0.1 and s.selection_method == "loss_converge")
    axes = run.axes()
    assert axes["distill"] == "dc" and axes["score"] == "loss_converge" and axes["selection"] == "loss_converge-bilp_drop_large"
    assert axes["ite"] == 0.0 and axes["ite_tails"] == "both" and axes["keep"] == 0.1
    assert run.distilled.group_dir == "digits/distilled/dc-ipc1/loss_converge-bilp_drop_large/keep0.1"


def test_the_tails_of_the_causal_effect_are_one_set_when_the_criterion_is_off():
    plan = plan_of(distill={"dc": {"ipc": [1], "ite": [0, 0.1], "ite_tails": ["both", "small", "large"]}}, seed=[0])
    settings = sorted(s.distilled.setting for s in plan.grid.students)
    assert settings == ["dc-ipc1", "dc-ipc1-ite0.1", "dc-ipc1-ite0.1-large", "dc-ipc1-ite0.1-small"]
    (spec,) = plan.spec("distilled", "digits/distilled/dc-ipc1-ite0.1-small/random/keep0.5")
    assert spec["ite"] == {"beta": 0.1, "tails": "small", "interval": 10, "exact": True}
    assert plan.spec("distilled", "digits/distilled/dc-ipc1/random/keep0.5")[0]["ite"] is None


def test_the_evaluation_follows_the_distiller_dsa_epochs_and_network():
    """DC/DM evaluate with DSA and 1000 epochs when the set was distilled with DSA, else 300 epochs
    without (`epoch_eval_train`), on the ConvNet the set was distilled with."""
    plan = plan_of(distill={"dc": {"ipc": [1]}, "dm": {"ipc": [1]}}, seed=[0])
    dc, dm = (plan.spec("student", f"digits/students/ConvNet-eval/random/keep0.5/ce-{m}-ipc1")[0] for m in ("dc", "dm"))
    # smoke: epochs and epochs_dsa are 100 and dc's network is 16 wide (config.yaml)
    assert dc["recipe"] == {"num_eval": 2, "epochs": 100, "lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4, "batch": 256, "path": "stacked"} | {
        "width": 16,
        "depth": 3,
        "augment": None,
    }
    assert dm["recipe"]["augment"] == "color_crop_cutout_flip_scale_rotate" and dm["recipe"]["width"] == 128
    assert dc["distilled_spec"]["settings"]["net_width"] == 16 and dc["distilled_spec"]["method"] == "dc"
    paper = Plan.from_config(ROOT / "config.yaml", {"preset": "paper", "papers": ["P4"]})
    spec = paper.spec("student", "cifar10/students/ConvNet-eval/full/keep1/ce-dc-ipc1")[0]
    assert spec["recipe"]["epochs"] == 300 and spec["recipe"]["num_eval"] == 20 and spec["recipe"]["augment"] is None


@pytest.mark.parametrize(
    "change, message",
    [
        ({"student": ["resnet8"]}, "experiments.e.student = 'resnet8' is not allowed in a distillation experiment; allowed: ConvNet"),
        ({"loss": {"kd": {}}, "teacher": ["resnet8"]}, "experiments.e.loss = 'kd' is not allowed in a distillation experiment"),
        ({"selection": ["infobatch"]}, "experiments.e.selection = 'infobatch' is not allowed in a distillation experiment"),
        ({"selection": ["ccs"]}, "experiments.e.selection = 'ccs' is not allowed in a distillation experiment"),
        ({"distill": {"dx": {"ipc": [1]}}}, "experiments.e.distill"),
        ({"distill": {"dc": {"ipc": [0]}}}, "experiments.e.distill.dc.ipc[0]"),
        ({"distill": {"dc": {"ipc": [1], "ite": [0.5]}}}, "experiments.e.distill.dc.ite[0]"),
    ],
)
def test_what_a_distillation_experiment_cannot_do_is_refused_with_one_line(change, message):
    with pytest.raises(ConfigError) as err:
        plan_of(**{"distill": {"dc": {"ipc": [1]}}, **change})
    assert message in str(err.value) and "\n" not in str(err.value)


def test_distiller_settings_and_a_score_blocks_method_are_checked():
    for overrides, message in [
        ({"distill": {"dc": {"lr_img": -1}}}, "config: distill.dc.lr_img = -1 is not allowed"),
        ({"distill": {"dm": {"iterationz": 5}}}, "config: distill.dm.iterationz is not an allowed key"),
        ({"distill": {"evaluation": {"num_eval": 0}}}, "config: distill.evaluation.num_eval = 0 is not allowed"),
        ({"scores": {"loss_converge": {"method": "trian_loss"}}}, "config: scores.loss_converge.method = 'trian_loss' is not allowed"),
    ]:
        with pytest.raises(ConfigError) as err:
            load(ROOT / "config.yaml", overrides)
        assert str(err.value).startswith(message) and "\n" not in str(err.value)
