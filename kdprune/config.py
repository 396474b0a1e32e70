"""config.yaml -> one resolved, validated settings dict.

Resolution: the preset named by `scale` is merged over the rest of the file (mappings merge,
everything else replaces). Validation, before any job runs: the JSON schema in
workflow/schemas/, then every name against its registry and every cross-reference (claim ->
experiment, student -> recipe). Each failure is ONE line naming the key, the value and what is
allowed."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable

import yaml

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """One line: which key, which value, what is allowed."""


def deep_merge(base: dict, overlay: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_yaml(path: str | Path) -> dict:
    with open(path) as f:
        return yaml.safe_load(f)


def resolve(raw: dict, overrides: dict | None = None, schema: dict | None = None) -> dict:
    """Validate `raw` under every preset, then return it merged with the chosen one. `overrides`
    (command-line `--config key=value` pairs) win over the preset, which wins over the file."""
    overrides = dict(overrides or {})
    schema = schema if schema is not None else load_yaml(SCHEMA_PATH)
    presets = raw.get("presets")
    if not isinstance(presets, dict) or not presets:
        raise ConfigError("config: presets is missing or empty; allowed: a mapping of preset name -> overrides")
    scale = overrides.get("scale", raw.get("scale"))
    if scale not in presets:
        raise ConfigError(f"config: scale = {scale!r} is not allowed: one of {', '.join(presets)}")
    # Every preset is checked, not only the chosen one: a typo in `paper` fails on the laptop.
    for name in [scale, *(p for p in presets if p != scale)]:
        merged = deep_merge(deep_merge(raw, presets[name] or {}), overrides)
        try:
            _check_schema(merged, schema)
            _check_names(merged)
        except ConfigError as err:
            where = "" if name == scale else f" (with preset {name!r})"
            raise ConfigError(f"{err}{where}") from None
    return deep_merge(deep_merge(raw, presets[scale] or {}), overrides)


def _key(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _check_schema(cfg: dict, schema: dict) -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(cfg))
    if error is None:
        return
    key = _key(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        raise ConfigError(f"config: {_key([*error.absolute_path, extra[0]])} is not an allowed key; allowed: {', '.join(allowed)}")
    if error.validator == "required":
        raise ConfigError(f"config: {key}: {error.message}")
    allowed = error.schema.get("description", error.message)
    raise ConfigError(f"config: {key} = {error.instance!r} is not allowed: {allowed} ({error.message})")


def _check_names(cfg: dict) -> None:
    from kdprune.data import check_spec
    from kdprune.losses import LOSSES
    from kdprune.models import MODELS
    from kdprune.report.claims import VERDICT_RULES
    from kdprune.report.figures import FIGURES
    from kdprune.scores import SCORES
    from kdprune.select import RULES
    from kdprune.train import SCHEDULES

    def check(key: str, value: Any, test: Callable[[Any], None]) -> None:
        try:
            test(value)
        except (KeyError, ValueError) as err:
            raise ConfigError(f"config: {key} = {value!r} is not allowed: {err}") from None

    def registered(registry):
        return registry.get

    def one_of(options, what):
        def test(value):
            if value not in options:
                raise ValueError(f"unknown {what}; allowed: {', '.join(options)}")
        return test

    recipes = cfg["recipes"]
    check("dataset", cfg["dataset"], check_spec)
    check("teacher_recipe", cfg["teacher_recipe"], one_of(recipes, "recipe"))
    for name, recipe in recipes.items():
        check(f"recipes.{name}.schedule", recipe.get("schedule", "step"), registered(SCHEDULES))
    for method, settings in cfg["scores"].items():
        check(f"scores.{method}", settings.get("score", method), registered(SCORES))
        if "arch" in settings:
            check(f"scores.{method}.arch", settings["arch"], registered(MODELS))
        if "recipe" in settings:
            check(f"scores.{method}.recipe", settings["recipe"], one_of(recipes, "recipe"))
        if "rule" in settings:
            check(f"scores.{method}.rule", settings["rule"], registered(RULES))
    axes = {
        "dataset": check_spec, "student": registered(MODELS), "teacher": registered(MODELS),
        "recipe": one_of(recipes, "recipe"), "method": one_of(cfg["scores"], "pruning method (none under scores:)"),
        "rule": registered(RULES),
        "loss": registered(LOSSES),
    }
    for ename, exp in cfg["experiments"].items():
        for axis, test in axes.items():
            for i, value in enumerate(exp.get(axis, [])):
                check(f"experiments.{ename}.{axis}[{i}]", value, test)
        if "teacher_recipe" in exp:
            check(f"experiments.{ename}.teacher_recipe", exp["teacher_recipe"], one_of(recipes, "recipe"))
    for cname, claim in cfg["claims"].items():
        check(f"claims.{cname}.experiment", claim["experiment"], one_of(cfg["experiments"], "experiment"))
        check(f"claims.{cname}.test.rule", claim["test"]["rule"], registered(VERDICT_RULES))
        if "figure" in claim:
            check(f"claims.{cname}.figure", claim["figure"], registered(FIGURES))


def load(path: str | Path = "config.yaml", overrides: dict | None = None) -> dict:
    """Read, resolve and validate; `overrides` as with Snakemake's --config."""
    return resolve(load_yaml(path), overrides)
