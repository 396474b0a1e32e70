"""config.yaml + paper files -> the resolved config: presets and per-paper overrides, schema
defaults filled in one step, and one line naming key, value and what is allowed for bad input."""

import copy
from pathlib import Path

import pytest
import yaml

from kdprune.plan.config import ROOT, ConfigError, load, load_yaml, resolve, schema
from kdprune.plan.grid import Grid

BASE = load_yaml(ROOT / "config.yaml")


def with_change(path: str, value, cfg=None):
    cfg = copy.deepcopy(cfg or BASE)
    *parents, last = path.split(".")
    node = cfg
    for key in parents:
        node = node[key]
    node[last] = value
    return cfg


def error_of(cfg, overrides=None, base_dir=ROOT) -> str:
    with pytest.raises(ConfigError) as err:
        resolve(cfg, overrides, base_dir)
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def override(path: str, value) -> dict:
    """A dotted key as on the command line (`--config`), so it wins over every preset."""
    for key in reversed(path.split(".")):
        value = {key: value}
    return value


def test_the_shipped_config_resolves_under_every_preset():
    for preset in BASE["presets"]:
        cfg = resolve(with_change("preset", preset), base_dir=ROOT)
        assert cfg["preset"] == preset and Grid.from_config(cfg).students
        assert {e["paper"] for e in cfg["experiments"].values()} == {"P1", "P2", "P3", "P4"}


def test_preset_only_entries_exist_only_under_their_preset():
    assert "p1_imagenet" in load(ROOT / "config.yaml", {"preset": "paper"})["experiments"]
    smoke = load(ROOT / "config.yaml")
    assert "p1_imagenet" not in smoke["experiments"] and "P1-C3i" not in smoke["claims"]


def test_an_experiments_preset_override_sits_beside_it():
    smoke = load(ROOT / "config.yaml", {"preset": "smoke"})["experiments"]["p1_alpha"]
    paper = load(ROOT / "config.yaml", {"preset": "paper"})["experiments"]["p1_alpha"]
    assert smoke["student"] == ["resnet8"] and smoke["loss"]["kd"]["alpha"] == [0.0, 0.5, 0.9, 1.0]
    assert paper["student"] == ["resnet32"] and paper["loss"]["kd"]["alpha"] == [0.0, 0.25, 0.5, 0.75, 0.9, 1.0]


def test_schema_defaults_are_filled_in_one_step():
    cfg = load(ROOT / "config.yaml")
    exp = cfg["experiments"]["p1_label_noise"]
    # static defaults from the schema, top-level ones from the config
    assert exp["selection_rule"] == ["hardest"] and exp["teacher_keep"] == [1.0] and exp["recipe"] == ["student"]
    assert exp["loss"]["kd"]["temperature"] == [4.0] and exp["seed"] == cfg["seeds"] and exp["dataset"] == [cfg["dataset"]]
    assert cfg["recipes"]["teacher"]["budget"] == "epochs" and cfg["claims"]["P1-C4"]["test"]["confidence"] == 0.95
    defaults = schema()["$defs"]["recipe"]["properties"]
    assert cfg["recipes"]["student"]["eval_batch_size"] == defaults["eval_batch_size"]["default"]


def test_a_users_own_paper_file_runs_beside_p1(tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text(
        yaml.safe_dump(
            {
                "paper": "X1",
                "experiments": {
                    "x1_e": {
                        "student": ["resnet8"],
                        "selection": ["random"],
                        "keep": [0.5],
                        "loss": {"ce": {}},
                        "presets": {"smoke": {"keep": [0.3]}},
                    }
                },
                "claims": {},
            }
        )
    )
    cfg = resolve(BASE, {"papers": ["P1", str(mine)]}, ROOT)
    assert cfg["experiments"]["x1_e"]["paper"] == "X1" and cfg["experiments"]["x1_e"]["keep"] == [0.3]
    assert "p1_kd_vs_ce" in cfg["experiments"]
    only_mine = resolve(BASE, {"papers": [str(mine)]}, ROOT)
    assert set(only_mine["experiments"]) == {"x1_e"}


@pytest.mark.parametrize(
    "path,value,expected",
    [
        ("experiments.p1_kd_vs_ce.keep", [0.5, 1.5], "experiments.p1_kd_vs_ce.keep[1] = 1.5 is not allowed: a keep fraction in (0, 1]"),
        ("experiments.p1_kd_vs_ce.keep", [0.0], "keep[0] = 0.0 is not allowed: a keep fraction in (0, 1]"),
        ("experiments.p1_kd_vs_ce.loss.kd.alpha", [1.2], "loss.kd.alpha[0] = 1.2 is not allowed: a KD weight alpha in [0, 1]"),
        ("recipes.teacher.epochs", -3, "recipes.teacher.epochs = -3 is not allowed: a positive number of epochs"),
        (
            "experiments.p1_kd_vs_ce.student",
            ["resnet21"],
            "experiments.p1_kd_vs_ce.student[0] = 'resnet21' is not allowed: unknown model 'resnet21'; allowed: ConvNet, MobileNet, MobileNetV2, ResNet50",
        ),
        (
            "experiments.p1_kd_vs_ce.selection",
            ["el2n", "grand9"],
            "selection[1] = 'grand9' is not allowed: unknown pruning method (none under scores:); allowed: random, el2n",
        ),
        (
            "dataset",
            "imagenet7",
            "dataset = 'imagenet7' is not allowed: unknown dataset 'imagenet7'; allowed: cifar10, cifar100, digits, imagenet, npz",
        ),
        ("device", "tpu", "device = 'tpu' is not allowed: auto, cpu, cuda or cuda:N"),
        ("claims.P1-C1.test.rule", "always", "claims.P1-C1.test.rule = 'always' is not allowed: unknown verdict rule 'always'"),
        ("claims.P1-C1.experiment", "nope", "claims.P1-C1.experiment = 'nope' is not allowed: unknown experiment; allowed: p1_kd_vs_ce"),
        ("preset", "huge", "preset = 'huge' is not allowed; allowed: smoke, small, subset, paper"),
        ("papers", ["P9"], "papers: 'P9' is not allowed: no file"),
        # recording scores have nothing to record without a trained epoch (0 = at initialisation)
        ("scores.forgetting.epoch", 0, "scores.forgetting.epoch = 0 is not allowed: score forgetting records training dynamics"),
        ("scores.aum.epoch", 0, "scores.aum.epoch = 0 is not allowed: score aum records training dynamics"),
        ("scores.ccs.cutoff_score", "aum2", "scores.ccs.cutoff_score = 'aum2' is not allowed: unknown pruning method"),
        (
            "selection.ccs_cutoff",
            [{"keep": 0.3, "ratio": 0.1}, {"keep": 0.1, "ratio": 0.3}],
            "selection.ccs_cutoff = [0.3, 0.1] is not allowed: keep fractions must be strictly increasing",
        ),
        ("selection.ccs_cutoff", [{"keep": 0.1, "ratio": 1.0}], "selection.ccs_cutoff[0].ratio = 1.0 is not allowed: a cutoff ratio in [0, 1)"),
        (
            "augmentation.padding_mode",
            "zeros",
            "augmentation.padding_mode = 'zeros' is not allowed: unknown padding mode; allowed: constant, edge, reflect",
        ),
        ("augmentation.npz.padding", -1, "augmentation.npz.padding = -1 is not allowed: a crop padding in pixels >= 0 (0: no crop)"),
    ],
)
def test_bad_values_name_key_value_and_what_is_allowed(path, value, expected):
    assert expected in error_of(BASE, override(path, value))


def test_an_error_in_a_paper_file_names_the_file():
    msg = error_of(BASE, override("experiments.p1_alpha.keep", [2.0]))
    assert msg.startswith("config: experiments.p1_alpha.keep[0] = 2.0 is not allowed") and msg.endswith("[workflow/papers/P1.yaml]")


def test_unknown_key_lists_allowed_keys():
    msg = error_of(BASE, override("experiments.p1_kd_vs_ce.kep", [0.5]))
    assert "experiments.p1_kd_vs_ce.kep is not an allowed key; allowed: dataset, distill, keep," in msg


def test_a_loss_needing_a_teacher_without_one_is_refused():
    msg = error_of(BASE, override("experiments.p1_alpha.teacher", []))
    assert msg.startswith("config: experiments.p1_alpha.teacher is missing for student resnet8: loss kd needs a teacher")


def test_the_old_key_scale_says_what_it_is_now():
    assert error_of(BASE, {"scale": "small"}) == "config: scale is not an allowed key: it is now called preset (e.g. --config preset=smoke)"


def test_a_typo_in_another_preset_is_caught_too():
    cfg = with_change("presets.paper", {"seedz": [0]})
    allowed = ", ".join(sorted(schema()["properties"]))
    assert error_of(cfg) == f"config: seedz is not an allowed key; allowed: {allowed}; did you mean 'seeds'? (with preset 'paper')"


def test_a_paper_file_naming_an_unknown_preset_is_refused(tmp_path):
    (tmp_path / "workflow" / "papers").mkdir(parents=True)
    (tmp_path / "workflow" / "papers" / "P1.yaml").write_text(
        (ROOT / "workflow" / "papers" / "P1.yaml")
        .read_text()
        .replace(
            "      smoke: {student: [resnet8], teacher: [resnet8], keep: [0.2, 1.0]",
            "      smokey: {student: [resnet8], teacher: [resnet8], keep: [0.2, 1.0]",
        )
    )
    assert (
        error_of(BASE, base_dir=Path(tmp_path))
        == "workflow/papers/P1.yaml: experiments.p1_alpha names preset 'smokey'; allowed: smoke, small, subset, paper; did you mean 'smoke'?"
    )


def test_command_line_overrides_win_over_the_preset():
    cfg = resolve(BASE, {"dataset": "cifar10", "seeds": [7]}, ROOT)
    assert cfg["dataset"] == "cifar10" and cfg["seeds"] == [7] and cfg["experiments"]["p1_alpha"]["seed"] == [7]
    assert resolve(BASE, base_dir=ROOT)["dataset"] == "digits"
    assert "unknown dataset 'mnist3'" in error_of(BASE, {"dataset": "mnist3"})


def test_recipe_defaults_in_the_schema_are_the_training_loops():
    """A recipe's defaults are filled from the schema; the loop's Recipe has the same ones for
    callers outside the workflow (tests, bench), so the two must not drift."""
    import dataclasses

    from kdprune.train.loop import Recipe

    schema_defaults = {k: v["default"] for k, v in schema()["$defs"]["recipe"]["properties"].items() if "default" in v}
    # `infobatch` has no schema default: absent means off (Recipe's None), and specs without it keep their hashes.
    fields = [f for f in dataclasses.fields(Recipe) if f.name not in ("epochs", "infobatch")]
    loop_defaults = {f.name: list(f.default) if isinstance(f.default, tuple) else f.default for f in fields}
    assert schema_defaults == loop_defaults
    assert Recipe(epochs=1).infobatch is None and "default" not in schema()["$defs"]["recipe"]["properties"]["infobatch"]


def test_a_ccs_method_without_a_cutoff_score_is_refused():
    msg = error_of(BASE, {"scores": {"ccs": {"score": "aum", "cutoff_score": None}}})
    assert "scores.ccs.cutoff_score" in msg
    bad = {k: v for k, v in BASE["scores"]["ccs"].items() if k != "cutoff_score"}
    raw = {**BASE, "scores": {**BASE["scores"], "ccs": bad}}
    assert "config: scores.ccs.cutoff_score is missing: rule ccs (experiments.p1_kd_vs_ce)" in error_of(raw)


def test_an_imported_score_needs_its_file_and_checksum_before_any_job():
    cfg = with_change("scores.bilp_loss", {"score": "imported", "file": "scores.json"})
    assert (
        error_of(cfg) == "config: scores.bilp_loss.sha256 is missing: score imported reads a file; allowed: file (a path) and sha256 (its checksum)"
    )
    bad = with_change("scores.bilp_loss", {"score": "imported", "file": "scores.json", "sha256": "abc"})
    assert "scores.bilp_loss.sha256" in error_of(bad) and "'abc'" in error_of(bad)
