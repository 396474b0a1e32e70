import copy

import pytest

from kdprune.config import ConfigError, load_yaml, resolve
from kdprune.grid import Grid

BASE = load_yaml(__import__("kdprune.config", fromlist=["x"]).SCHEMA_PATH.parent.parent.parent / "config.yaml")


def with_change(path: str, value, cfg=None):
    cfg = copy.deepcopy(cfg or BASE)
    *parents, last = path.split(".")
    node = cfg
    for key in parents:
        node = node[key]
    node[last] = value
    return cfg


def error_of(cfg, overrides=None) -> str:
    with pytest.raises(ConfigError) as err:
        resolve(cfg, overrides)
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_the_shipped_config_resolves_under_every_preset():
    for scale in BASE["presets"]:
        cfg = resolve(with_change("scale", scale))
        assert Grid.from_config(cfg).students


@pytest.mark.parametrize("path,value,expected", [
    ("experiments.p1_kd_vs_ce.keep", [0.5, 1.5], "experiments.p1_kd_vs_ce.keep[1] = 1.5 is not allowed: a keep fraction in (0, 1]"),
    ("experiments.p1_kd_vs_ce.keep", [0.0], "keep[0] = 0.0 is not allowed: a keep fraction in (0, 1]"),
    ("experiments.p1_kd_vs_ce.alpha", [1.2], "alpha[0] = 1.2 is not allowed: a KD weight alpha in [0, 1]"),
    ("recipes.teacher.epochs", -3, "recipes.teacher.epochs = -3 is not allowed: a positive number of epochs"),
    ("experiments.p1_kd_vs_ce.student", ["resnet21"], "experiments.p1_kd_vs_ce.student[0] = 'resnet21' is not allowed: unknown model 'resnet21'; allowed: resnet110"),
    ("experiments.p1_kd_vs_ce.method", ["el2n", "grand9"], "method[1] = 'grand9' is not allowed: unknown pruning method (none under scores:); allowed: random, el2n"),
    ("dataset", "imagenet7", "dataset = 'imagenet7' is not allowed: unknown dataset 'imagenet7'; allowed: cifar10, cifar100, digits, imagenet, npz"),
    ("device", "tpu", "device = 'tpu' is not allowed: auto, cpu, cuda or cuda:N"),
    ("claims.P1-C1.test.rule", "always", "claims.P1-C1.test.rule = 'always' is not allowed: unknown verdict rule 'always'"),
    ("claims.P1-C1.experiment", "nope", "claims.P1-C1.experiment = 'nope' is not allowed: unknown experiment; allowed: p1_kd_vs_ce"),
    ("scale", "huge", "scale = 'huge' is not allowed: one of smoke, small, subset, paper"),
])
def test_bad_values_name_key_value_and_what_is_allowed(path, value, expected):
    if path == "scale":
        assert expected in error_of(with_change(path, value))
        return
    override = value  # given as on the command line, so it wins over every preset
    for key in reversed(path.split(".")):
        override = {key: override}
    assert expected in error_of(BASE, override)


def test_unknown_key_lists_allowed_keys():
    cfg = with_change("experiments.p1_kd_vs_ce.kep", [0.5])
    msg = error_of(cfg)
    assert "experiments.p1_kd_vs_ce.kep is not an allowed key; allowed: alpha, dataset, keep," in msg


def test_a_typo_in_another_preset_is_caught_too():
    cfg = with_change("presets.paper", {"seedz": [0]})
    assert error_of(cfg) == "config: seedz is not an allowed key; allowed: " + ", ".join(sorted(
        load_yaml(__import__("kdprune.config", fromlist=["x"]).SCHEMA_PATH)["properties"])) + " (with preset 'paper')"


def test_command_line_overrides_win_over_the_preset():
    cfg = resolve(BASE, {"dataset": "cifar10", "seeds": [7]})
    assert cfg["dataset"] == "cifar10" and cfg["seeds"] == [7]
    assert resolve(BASE)["dataset"] == "digits"
    assert "unknown dataset 'mnist3'" in error_of(BASE, {"dataset": "mnist3"})
