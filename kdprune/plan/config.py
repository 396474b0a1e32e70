"""config.yaml + paper files -> one resolved, validated, normalised settings dict.

Resolution for preset P (`preset:` in config.yaml, or `--config preset=P`):
1. config.yaml's top-level keys, with `presets.P` merged over them (mappings merge, everything else
   replaces);
2. the experiments and claims of every paper file named by `papers:` (an id, read from
   workflow/papers/<id>.yaml, or a path), each entry with its own `presets.P` merged over it; an
   entry with `only_in: [...]` exists only under those presets;
3. command-line overrides (`--config key=value`) merged over all of it.
Validation, before any job runs and under every preset (a typo in `paper` fails on the laptop): the
JSON schema in workflow/schemas/, then every name against its registry and every cross-reference
(claim -> experiment, student -> recipe). Each failure is ONE line naming the key, the value and
what is allowed. Normalisation: the schema's `default:` values are filled in, and an experiment's
`dataset`, `seed` and `teacher_recipe` default to the top-level `dataset`, `seeds` and
`teacher_recipe`. Imports neither torch nor pandas: the Snakefile and every job read it."""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from kdprune.registry import did_you_mean

ROOT = Path(__file__).resolve().parent.parent.parent
SCHEMA_PATH = ROOT / "workflow" / "schemas" / "config.schema.yaml"
PAPERS_DIR = ROOT / "workflow" / "papers"
PAPER_FILE_KEYS = {"paper", "title", "experiments", "claims"}
ENTRY_ONLY_KEYS = ("presets", "only_in")  # keys of a paper file's entries, consumed by resolution


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
        return yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # libyaml when present: 5x faster


@functools.cache
def _read_yaml_once(path: Path, mtime_ns: int) -> dict:
    return load_yaml(path)


@functools.cache
def schema() -> dict:
    return load_yaml(SCHEMA_PATH)


def loss_parameters(loss: str) -> list[tuple[str, str]]:
    """(parameter, its prefix in run folder names) of a loss, in schema order."""
    props = schema()["$defs"]["losses"]["properties"][loss].get("properties", {})
    return [(name, spec["x-path-key"]) for name, spec in props.items()]


def omitted_parameters(loss: str) -> dict[str, float]:
    """{parameter: value} of a loss's parameters that a run at that value does not carry (schema
    `x-omit`): added after runs existed, so those runs keep their folders and settings hashes."""
    props = schema()["$defs"]["losses"]["properties"][loss].get("properties", {})
    return {name: float(spec["x-omit"]) for name, spec in props.items() if "x-omit" in spec}


# -- resolution ---------------------------------------------------------------------------------


def paper_path(paper: str, base_dir: Path) -> Path:
    """A paper id (`P1`) is workflow/papers/P1.yaml; anything ending in .yaml/.yml is a path."""
    if paper.endswith((".yaml", ".yml")):
        return (base_dir / paper) if not Path(paper).is_absolute() else Path(paper)
    local = base_dir / "workflow" / "papers" / f"{paper}.yaml"  # a copy of the workflow (tests) or a user's own
    return local if local.is_file() else PAPERS_DIR / f"{paper}.yaml"


def _read_paper(paper: str, base_dir: Path, presets: dict) -> tuple[dict, str]:
    if not isinstance(paper, str) or not paper:  # read before the schema check: refuse what is no name
        raise ConfigError(f"config: papers: {paper!r} is not allowed: a paper id (e.g. P1) or the path of a paper file")
    path = paper_path(paper, base_dir)
    if not path.is_file():
        known = sorted(p.stem for p in PAPERS_DIR.glob("*.yaml"))
        raise ConfigError(
            f"config: papers: {paper!r} is not allowed: no file {path} (a paper id or the path of a paper file); {did_you_mean(paper, known)}"
        )
    doc = copy.deepcopy(_read_yaml_once(path, path.stat().st_mtime_ns)) or {}  # once per parse, not once per preset
    where = str(path.relative_to(base_dir) if path.is_relative_to(base_dir) else path)
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}: a {type(doc).__name__} is not allowed; allowed: a mapping with keys {', '.join(sorted(PAPER_FILE_KEYS))}")
    extra = sorted(set(doc) - PAPER_FILE_KEYS)
    if extra:
        raise ConfigError(f"{where}: {extra[0]} is not an allowed key; {did_you_mean(extra[0], sorted(PAPER_FILE_KEYS))}")
    if not isinstance(doc.get("paper"), str):
        raise ConfigError(f"{where}: paper is missing or not a name; allowed: the paper id (e.g. P1)")
    for kind in ("experiments", "claims"):  # the shapes resolution reads (the schema checks the rest)
        entries = doc.get(kind) or {}
        if not isinstance(entries, dict):
            raise ConfigError(f"{where}: {kind} = {entries!r} is not allowed: a mapping of name -> entry")
        for name, entry in entries.items():
            for key, shape in (("", dict), (".presets", dict), (".only_in", list)):
                value = entry if not key else (entry or {}).get(key[1:])
                if value is not None and not isinstance(value, shape):
                    raise ConfigError(f"{where}: {kind}.{name}{key} = {value!r} is not allowed: a {shape.__name__}")
            for preset in list((entry or {}).get("presets") or {}) + list((entry or {}).get("only_in") or []):
                if preset not in presets:
                    raise ConfigError(f"{where}: {kind}.{name} names preset {preset!r}; {did_you_mean(preset, presets)}")
    return doc, where


REPLACED_BY_PRESETS = ("teacher",)  # entry keys a preset override replaces (mappings otherwise merge)


def assemble(raw: dict, overrides: dict, preset: str, base_dir: Path) -> tuple[dict, dict[str, str]]:
    """The config of one preset, before validation; and {"experiments.<name>": its paper file}."""
    presets = raw["presets"]
    cfg = deep_merge({k: v for k, v in raw.items() if k != "presets"}, presets[preset] or {})
    cfg = deep_merge(cfg, {k: v for k, v in overrides.items() if k not in ("experiments", "claims")})
    entries: dict[str, dict] = {"experiments": {}, "claims": {}}
    sources: dict[str, str] = {}
    papers = cfg.get("papers") or []
    if not isinstance(papers, list):  # read before the schema check
        raise ConfigError(
            f"config: papers = {papers!r} is not allowed: a non-empty list of paper ids (workflow/papers/<id>.yaml) or paths of paper files"
        )
    for paper in papers:
        doc, where = _read_paper(paper, base_dir, presets)
        for kind, target in entries.items():
            for name, entry in (doc.get(kind) or {}).items():
                entry = entry or {}
                if entry.get("only_in") and preset not in entry["only_in"]:
                    continue
                if name in target:
                    raise ConfigError(f"{where}: {kind}.{name} is defined twice (also in {sources[f'{kind}.{name}']})")
                body = {k: v for k, v in entry.items() if k not in ENTRY_ONLY_KEYS}
                overlay = (entry.get("presets") or {}).get(preset) or {}
                merged = deep_merge({**body, "paper": doc["paper"]}, overlay)
                # a teacher-student mapping is one axis: a preset's pairs replace the paper's, not add to them
                target[name] = {**merged, **{k: copy.deepcopy(overlay[k]) for k in REPLACED_BY_PRESETS if k in overlay}}
                sources[f"{kind}.{name}"] = where
    for kind, target in entries.items():
        for name, entry in (overrides.get(kind) or {}).items():
            if name not in target and not (isinstance(entry, dict) and "paper" in entry):  # an override of no entry: a typo
                raise ConfigError(
                    f"config: {kind}.{name} is not in the paper files (papers: {', '.join(map(str, papers))}); {did_you_mean(name, target)}"
                )
        cfg[kind] = deep_merge(target, overrides.get(kind) or {})
    cfg["preset"] = preset
    return cfg, sources


def resolve(raw: dict, overrides: dict | None = None, base_dir: str | Path = ".") -> dict:
    """Validate `raw` (config.yaml's contents) under every preset, then return the chosen preset's
    config, normalised. `overrides` (command-line `--config` pairs) win over everything."""
    overrides = dict(overrides or {})
    base_dir = Path(base_dir)
    for old, new in (("scale", "preset"),):
        if old in raw or old in overrides:
            raise ConfigError(f"config: {old} is not an allowed key: it is now called {new} (e.g. --config {new}=smoke)")
    presets = raw.get("presets")
    if not isinstance(presets, dict) or not presets:
        raise ConfigError("config: presets is missing or empty; allowed: a mapping of preset name -> overrides")
    shapeless = next((name for name, body in presets.items() if body is not None and not isinstance(body, dict)), None)
    if shapeless is not None:
        raise ConfigError(f"config: presets.{shapeless} = {presets[shapeless]!r} is not allowed: a mapping of the keys it overrides (or nothing)")
    for where, body in [("", raw), *((f"presets.{name}.", body or {}) for name, body in presets.items())]:
        # Snakemake hands --config values over merged into the file's: those are allowed at the top
        entry_kind = next((kind for kind in ("experiments", "claims") if kind in body and not (where == "" and kind in overrides)), None)
        if entry_kind:  # the paper files' entries would replace it: refuse rather than drop it silently
            raise ConfigError(
                f"config: {where}{entry_kind} is not allowed in config.yaml; allowed: {entry_kind} in a paper file (papers:), "
                f"with its own presets.<preset> overrides, or --config {entry_kind}=..."
            )
    preset = overrides.get("preset", raw.get("preset"))
    if not isinstance(preset, str) or preset not in presets:
        raise ConfigError(f"config: preset = {preset!r} is not allowed; {did_you_mean(preset, presets)}")
    chosen = None
    for name in [preset, *(p for p in presets if p != preset)]:
        cfg, sources = assemble(raw, overrides, name, base_dir)
        try:
            check_schema(cfg)
            cfg = normalise(cfg)
            check_names(cfg, files=name == preset)  # files (an npz's arrays) only for the preset that runs
        except ConfigError as err:
            where = "" if name == preset else f" (with preset {name!r})"
            source = next((f" [{src}]" for key, src in sources.items() if re.search(rf"config: {re.escape(key)}[.\[ ]", str(err))), "")
            raise ConfigError(f"{err}{where}{source}") from None
        chosen = chosen or cfg
    return chosen


def command_line_values(overrides: dict) -> dict:
    """Snakemake reads a --config value that is a mapping or a list with YAML's BaseLoader, so every
    scalar inside it is a string (`replicates={min: 3, max: 5}` gives max '5'); read those scalars
    as the config files' YAML does (5, 0.5, true). Top-level values are left as Snakemake parsed them."""

    def typed(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: typed(v) for k, v in value.items()}
        if isinstance(value, list):
            return [typed(v) for v in value]
        if isinstance(value, str) and value:
            try:
                return yaml.safe_load(value)
            except yaml.YAMLError:
                return value
        return value

    return {key: typed(value) if isinstance(value, dict | list) else value for key, value in overrides.items()}


def load(path: str | Path = "config.yaml", overrides: dict | None = None) -> dict:
    """Read, resolve and validate; `overrides` as with Snakemake's --config."""
    return resolve(load_yaml(path), overrides, Path(path).parent)


# -- normalisation ------------------------------------------------------------------------------


def _deref(node: dict, root: dict) -> dict:
    while "$ref" in node:
        ref = node["$ref"].removeprefix("#/").split("/")
        target = root
        for part in ref:
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def fill_defaults(value: Any, node: dict, root: dict) -> Any:
    """`value` with every missing property that has a schema `default:` filled in, recursively."""
    node = _deref(node, root)
    if isinstance(value, dict) and "oneOf" in node:  # `{...} or null`: the mapping's alternative
        node = next((alt for alt in map(lambda a: _deref(a, root), node["oneOf"]) if alt.get("type") == "object"), node)
    if isinstance(value, dict):
        out = dict(value)
        props = node.get("properties", {})
        for key, sub in props.items():
            sub = _deref(sub, root)
            if key not in out and "default" in sub:
                out[key] = copy.deepcopy(sub["default"])
        for key in out:
            sub = props.get(key, node.get("additionalProperties"))
            if isinstance(sub, dict):
                out[key] = fill_defaults(out[key], sub, root)
        return out
    if isinstance(value, list) and isinstance(node.get("items"), dict):
        return [fill_defaults(v, node["items"], root) for v in value]
    return value


def schema_default(key: str) -> Any:
    """The default of a top-level key, with its own properties' defaults filled in."""
    node = schema()["properties"][key]
    return fill_defaults(copy.deepcopy(node["default"]), node, schema())


def normalise(cfg: dict) -> dict:
    cfg = fill_defaults(cfg, schema(), schema())
    top_level = {"dataset": [cfg["dataset"]], "seed": cfg["seeds"], "teacher_recipe": cfg["teacher_recipe"]}
    for claim in cfg["claims"].values():
        claim.setdefault("replicates", copy.deepcopy(cfg["replicates"]))
    for name, exp in cfg["experiments"].items():
        for axis, value in top_level.items():
            exp.setdefault(axis, copy.deepcopy(value))
        if exp["replicate"] == "auto":
            tests = [c["test"] for c in cfg["claims"].values() if c["experiment"] == name]
            exp["replicate"] = "chain" if any(TEACHER_AXES & axes_of_test(t) for t in tests) else "student"
    _replicate_seeds(cfg["experiments"], cfg["claims"])
    return cfg


def _replicate_seeds(experiments: dict, claims: dict) -> None:
    """Adaptive replicates (docs/verdicts.md): an experiment's first round trains the first `min`
    seeds (the largest min of its claims) of its seed list, continued with the next integers; later
    rounds may add more, up to the largest `max`: the rest of its list, then the next integers, never
    a seed any experiment trains in its first round (a run's seed tells the workflow which rule
    trains it). Experiments without adaptive claims train their seed list."""
    bounds = {}
    for name, exp in experiments.items():
        reps = [c["replicates"] for c in claims.values() if c["experiment"] == name and c.get("replicates")]
        listed = list(exp["seed"])
        first, most = (max(r["min"] for r in reps), max(r["max"] for r in reps)) if reps else (len(listed), len(listed))
        while len(listed) < first:
            listed.append(max(listed) + 1)
        bounds[name] = (listed, first, most)
    taken = {s for listed, first, _ in bounds.values() for s in listed[:first]}
    for name, (listed, first, most) in bounds.items():
        extra = [s for s in listed[first:] if s not in taken]
        candidate = max([*taken, *listed]) + 1
        while first + len(extra) < most:
            extra.append(candidate)
            candidate += 1
        experiments[name]["seed"], experiments[name]["replicate_seeds"] = listed[:first], extra[: most - first]


KD_TEACHER = "kd_teacher"  # `scores.<method>.teacher`: the student's own KD teacher


def reads_kd_teacher(cfg: dict, method: str) -> bool:
    """Whether a pruning method's scores are computed by each student's own KD teacher."""
    score = cfg["scores"][method].get("score", method)
    return cfg["scores"].get(score, {}).get("teacher") == KD_TEACHER


def teachers_of(exp: dict, student: str) -> list[str]:
    """The teacher architectures of a student architecture in an experiment: `teacher` as a list
    (every student with every teacher) or as a mapping student -> teachers (pairs)."""
    teacher = exp.get("teacher", [])
    return list(teacher.get(student, [])) if isinstance(teacher, dict) else list(teacher)


# A claim whose test varies one of these compares teachers: its replicates must redo the teacher.
TEACHER_AXES = {"teacher", "teacher_params", "teacher_keep", "teacher_seed", "teacher_recipe"}


def axes_of_test(test: dict) -> set[str]:
    """The axes a claim's test compares along: what it varies, not the `cells` it splits by (a
    comparison within one teacher's cell pairs runs that share the teacher)."""
    each_of = test.get("control_each_of") or []
    named = {test.get(key) for key in ("axis", "factor", "along", "fades_along")} - {None} | set([each_of] if isinstance(each_of, str) else each_of)
    return named | set(test.get("over", [])) | set(test.get("treatment", {})) | set(test.get("control", {}))


# -- validation ---------------------------------------------------------------------------------


def _key(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


@functools.cache
def _validator():
    import jsonschema

    return jsonschema.Draft202012Validator(schema())


def check_schema(cfg: dict) -> None:
    import jsonschema

    error = jsonschema.exceptions.best_match(_validator().iter_errors(cfg))
    if error is None:
        return
    described = error.schema.get("description")
    # `{...} or null` and the like: the alternative of the value's own type says what is wrong inside it
    while error.validator in ("oneOf", "anyOf") and any(e.validator != "type" for e in error.context):
        error = jsonschema.exceptions.best_match(e for e in error.context if e.validator != "type")
        described = error.schema.get("description", described)
    key = _key(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        raise ConfigError(f"config: {_key([*error.absolute_path, extra[0]])} is not an allowed key; {did_you_mean(extra[0], allowed)}")
    if error.validator == "required":
        raise ConfigError(f"config: {key}: {error.message}")
    if error.validator == "enum":
        options = [str(v).lower() if isinstance(v, bool) else v for v in error.validator_value]  # as YAML spells them
        raise ConfigError(
            f"config: {key} = {error.instance!r} is not allowed{': ' + described if described else ''}; {did_you_mean(error.instance, options)}"
        )
    raise ConfigError(f"config: {key} = {error.instance!r} is not allowed: {described + f' ({error.message})' if described else error.message}")


DISTILLATION_STUDENTS = ("ConvNet",)  # what a distilled set's evaluation trains (kdprune.distill.evaluate)


def _check_distillation(name: str, exp: dict, cfg: dict) -> None:
    """A distillation experiment evaluates its sets with ConvNets trained by CE on in-memory data,
    and distils a selection that a score file decides (no teacher's, no dynamic method's, no cutoff)."""
    from kdprune.data import in_memory
    from kdprune.pruning import RULES

    def refuse(key: str, value: Any, allowed: str) -> None:
        raise ConfigError(f"config: experiments.{name}.{key} = {value!r} is not allowed in a distillation experiment; allowed: {allowed}")

    for arch in exp["student"]:
        if arch not in DISTILLATION_STUDENTS:
            refuse("student", arch, ", ".join(DISTILLATION_STUDENTS))
    for loss in exp["loss"]:
        if loss != "ce":
            refuse("loss", loss, "ce (the evaluation networks train with cross-entropy)")
    for dataset in exp["dataset"]:
        if not in_memory(dataset):
            refuse("dataset", dataset, "an in-memory dataset (digits, cifar10, cifar100, svhn, npz:<path>)")
    allowed = "a method whose score file alone decides the subset (no dynamic method, no KD teacher's score, no rule with a cutoff score)"
    for method in exp["selection"]:
        settings = cfg["scores"][method]
        rules = [settings.get("rule", rule) for rule in exp["selection_rule"]]
        if "dynamic" in settings or reads_kd_teacher(cfg, method) or any(RULES.meta(rule).get("needs_cutoff") for rule in rules):
            refuse("selection", method, allowed)


def check_names(cfg: dict, files: bool = True) -> None:
    """Every name against its registry (declarations only: nothing heavy is imported); with `files`,
    also the files a dataset spec names (an npz's arrays and labels: kdprune.data.npz)."""
    from kdprune.data import PADDING_MODES, check_dataset, check_spec
    from kdprune.losses import LOSSES
    from kdprune.models import MODELS
    from kdprune.pruning import RULES, SCORES
    from kdprune.report import FIGURES, RULE_KEYS, VERDICT_RULES
    from kdprune.train import SCHEDULES

    def check(key: str, value: Any, test: Callable[[Any], None]) -> None:
        try:
            test(value)
        except (KeyError, ValueError) as err:
            raise ConfigError(f"config: {key} = {value!r} is not allowed: {err}") from None

    def registered(registry):
        return registry.meta

    def one_of(options, what):
        def test(value):
            if value not in options:
                raise ValueError(f"unknown {what}; {did_you_mean(value, options)}")

        return test

    def at_least(low, what):
        def test(value):
            if value < low:
                raise ValueError(f"must be at least {what} ({low})")

        return test

    def increasing(what):
        def test(values):
            if values != sorted(set(values)):
                raise ValueError(f"{what} must be strictly increasing")

        return test

    recipes = cfg["recipes"]
    dataset_check = check_dataset if files else check_spec
    check("dataset", cfg["dataset"], dataset_check)
    check("augmentation.padding_mode", cfg["augmentation"]["padding_mode"], one_of(PADDING_MODES, "padding mode"))
    check("teacher_recipe", cfg["teacher_recipe"], one_of(recipes, "recipe"))
    for name, recipe in recipes.items():
        check(f"recipes.{name}.schedule", recipe["schedule"], registered(SCHEDULES))
        for arch in recipe.get("lr_by_arch", {}):
            check(f"recipes.{name}.lr_by_arch.{arch}", arch, registered(MODELS))

    def trained_epochs(score):
        def test(value):
            least = SCORES.meta(score).get("min_epoch", 0)
            if value < least:
                raise ValueError(
                    f"score {score} records training dynamics, so it needs trained epochs; allowed: an epoch >= {least}, or none (the whole schedule)"
                )

        return test

    for method, settings in cfg["scores"].items():
        computes = settings.get("method", settings.get("score", method))  # the registered score behind the block
        if "method" in settings:
            check(f"scores.{method}.method", settings["method"], registered(SCORES))
        if "dynamic" not in settings:  # a dynamic method has no score: it prunes inside training
            check(f"scores.{method}", computes, registered(SCORES))
        elif "ratio" in settings["dynamic"] and "cost" in settings["dynamic"]:
            ratio = settings["dynamic"]["ratio"]
            raise ConfigError(
                f"config: scores.{method}.dynamic.ratio = {ratio!r} is not allowed with cost: keep, which chooses each pruned epoch's ratio; give one of them"
            )
        if "epoch" in settings:
            check(f"scores.{method}.epoch", settings["epoch"], trained_epochs(computes))
        if "arch" in settings:
            check(f"scores.{method}.arch", settings["arch"], registered(MODELS))
        if settings.get("teacher", KD_TEACHER) != KD_TEACHER:
            check(f"scores.{method}.teacher", settings["teacher"], registered(MODELS))
        if "recipe" in settings:
            check(f"scores.{method}.recipe", settings["recipe"], one_of(recipes, "recipe"))
        if "rule" in settings:
            check(f"scores.{method}.rule", settings["rule"], registered(RULES))
        if "cutoff_score" in settings:
            check(f"scores.{method}.cutoff_score", settings["cutoff_score"], one_of(cfg["scores"], "pruning method (none under scores:)"))
        if "dynamic" not in settings and SCORES.meta(computes).get("reads_file"):
            missing = [key for key in ("file", "sha256") if key not in settings]
            if missing:
                raise ConfigError(
                    f"config: scores.{method}.{missing[0]} is missing: score imported reads a file; allowed: file (a path) and sha256 (its checksum)"
                )
    check("selection.ccs_cutoff", [row["keep"] for row in cfg["selection"]["ccs_cutoff"]], increasing("keep fractions"))

    def existing_file(value):
        if not Path(value).is_file():
            raise ValueError("no such file; allowed: the path of a checkpoint file")

    for dataset, by_arch in cfg["teacher_checkpoints"].items():
        for arch, files in by_arch.items():
            check(f"teacher_checkpoints.{dataset}.{arch}", arch, registered(MODELS))
            for i, file in enumerate([files] if isinstance(files, str) else files):
                check(f"teacher_checkpoints.{dataset}.{arch}" + ("" if isinstance(files, str) else f"[{i}]"), file, existing_file)
    axes = {
        "dataset": dataset_check,
        "student": registered(MODELS),
        "recipe": one_of(recipes, "recipe"),
        "selection": one_of(cfg["scores"], "pruning method (none under scores:)"),
        "selection_rule": registered(RULES),
    }  # loss names and parameters: the schema's `$defs.losses`
    for ename, exp in cfg["experiments"].items():
        for axis, test in axes.items():
            for i, value in enumerate(exp.get(axis, [])):
                check(f"experiments.{ename}.{axis}[{i}]", value, test)
        check(f"experiments.{ename}.teacher_recipe", exp["teacher_recipe"], one_of(recipes, "recipe"))
        pairs = exp["teacher"] if isinstance(exp["teacher"], dict) else {}
        for student in pairs:
            check(f"experiments.{ename}.teacher.{student}", student, one_of(exp["student"], "student (a key of teacher: must be in student)"))
        for where, teachers in pairs.items() if pairs else [(None, exp["teacher"])]:
            for i, value in enumerate(teachers):
                check(f"experiments.{ename}.teacher{'.' + where if where else ''}[{i}]", value, registered(MODELS))
        for method in exp["selection"]:
            rules = [cfg["scores"][method].get("rule", rule) for rule in exp["selection_rule"]]
            cut = next((rule for rule in rules if method != "random" and RULES.meta(rule).get("needs_cutoff")), None)
            if cut and "cutoff_score" not in cfg["scores"][method]:
                raise ConfigError(
                    f"config: scores.{method}.cutoff_score is missing: rule {cut} (experiments.{ename}) drops the samples with the "
                    "highest cutoff score first; allowed: a key of scores (the CCS authors: aum)"
                )
        if exp.get("distill"):
            _check_distillation(ename, exp, cfg)
        needs = [loss for loss in exp["loss"] if LOSSES.meta(loss)["needs_teacher"]]
        by_teacher = [m for m in exp["selection"] if reads_kd_teacher(cfg, m)]
        plain = [loss for loss in exp["loss"] if not LOSSES.meta(loss)["needs_teacher"]]
        if by_teacher and plain:
            raise ConfigError(
                f"config: experiments.{ename}.loss has {plain[0]}, which has no teacher, but selection {by_teacher[0]} is scored by "
                f"the student's KD teacher (scores.{by_teacher[0]}: teacher {KD_TEACHER}); allowed: losses that need a teacher"
            )
        reshaped = any(1 in params.get("reshape", []) for params in exp["loss"].values())
        if reshaped and cfg["scores"].get("teacher_ce", {}).get("teacher") != KD_TEACHER:
            raise ConfigError(
                f"config: scores.teacher_ce.teacher = {cfg['scores'].get('teacher_ce', {}).get('teacher')!r} is not allowed: "
                f"experiments.{ename} reshapes KD logits with k_y, which teacher_ce records for each student's own teacher; allowed: kd_teacher"
            )
        selecting = any(min(params.get("supervise", [1.0])) < 1.0 for params in exp["loss"].values())
        if selecting and cfg["scores"].get("ds_influence", {}).get("teacher") != KD_TEACHER:
            raise ConfigError(
                f"config: scores.ds_influence.teacher = {cfg['scores'].get('ds_influence', {}).get('teacher')!r} is not allowed: "
                f"experiments.{ename} lets the teacher supervise the samples its own ds_influence score selects; allowed: kd_teacher"
            )
        missing = [a for a in exp["student"] if not teachers_of(exp, a)]
        if needs and missing:
            raise ConfigError(
                f"config: experiments.{ename}.teacher is missing for student {missing[0]}: loss {needs[0]} needs a teacher; "
                "allowed: a list of model names, or a mapping student -> list of model names"
            )
    for cname, claim in cfg["claims"].items():
        check(f"claims.{cname}.experiment", claim["experiment"], one_of(cfg["experiments"], "experiment"))
        check(f"claims.{cname}.test.rule", claim["test"]["rule"], registered(VERDICT_RULES))
        missing = [key for key in RULE_KEYS.get(claim["test"]["rule"], ()) if key not in claim["test"]]
        if missing:
            raise ConfigError(
                f"config: claims.{cname}.test.{missing[0]} is missing: rule {claim['test']['rule']} needs {', '.join(RULE_KEYS[claim['test']['rule']])}"
            )
        if "figure" in claim:
            check(f"claims.{cname}.figure", claim["figure"], registered(FIGURES))
        for i, method in enumerate(claim.get("measure", {}).get("scores", [])):
            check(f"claims.{cname}.measure.scores[{i}]", method, one_of(cfg["scores"], "pruning method (none under scores:)"))
        if claim.get("replicates"):
            check(f"claims.{cname}.replicates.max", claim["replicates"]["max"], at_least(claim["replicates"]["min"], "replicates.min"))
            # a round's look must be at least as strict as the final verdict, or a cell could stop
            # on evidence the final verdict does not accept
            confidence = claim["test"].get("confidence", 0.95)
            check(
                f"claims.{cname}.replicates.interim_confidence",
                claim["replicates"]["interim_confidence"],
                at_least(confidence, "the claim's test.confidence"),
            )
    first_round = {s: name for name, exp in cfg["experiments"].items() for s in exp["seed"]}
    for name, exp in cfg["experiments"].items():
        # a run's seed tells the workflow whether a first-round job or a round's job trains it
        shared = [s for s in exp["replicate_seeds"] if s in first_round]
        if shared:
            raise ConfigError(
                f"config: experiments.{name} adds seed {shared[0]} in adaptive rounds, but experiments.{first_round[shared[0]]} "
                "trains it in its first round; allowed: the same replicates.min for claims on both, or seed lists that do not overlap"
            )
