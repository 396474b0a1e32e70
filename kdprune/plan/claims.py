"""A claim's spec: the claim as written in its paper file plus the setting its experiment ran, for
the claim's table, figure and ledger entry."""

from __future__ import annotations

from kdprune.plan.config import omitted_parameters, schema, teachers_of


def claim_spec(cfg: dict, claim_id: str) -> dict:
    """Everything the claim job needs, from the resolved config."""
    claim = cfg["claims"][claim_id]
    exp = cfg["experiments"][claim["experiment"]]
    recipes = [cfg["recipes"][r] for r in exp["recipe"]]
    setting = {
        "dataset": exp["dataset"],
        "student": exp["student"],
        "teacher": list(dict.fromkeys(t for student in exp["student"] for t in teachers_of(exp, student))),
        "selection": exp["selection"],
        "keep": exp["keep"],
        "seeds": exp["seed"],
        "student_epochs": sorted({r["epochs"] for r in recipes}),
        "teacher_epochs": cfg["recipes"][exp["teacher_recipe"]]["epochs"],
        "budget": sorted({r["budget"] for r in recipes}),
        "replicate": exp["replicate"],
        "teacher_seeds": exp["teacher_seed"] if exp["replicate"] == "student" and exp["teacher"] else [],
    }
    if isinstance(exp["teacher"], dict):  # teacher-student pairs
        setting["pairs"] = [f"{t} -> {student}" for student, teachers in exp["teacher"].items() for t in teachers]
    for loss, params in exp["loss"].items():  # a loss's parameter values (KD's alpha, temperature) as axes of the setting
        omitted = omitted_parameters(loss)
        for name, values in params.items():
            if [float(v) for v in values] != [omitted.get(name)]:  # not a parameter the runs do not carry (reshape off)
                setting[name] = sorted({*setting.get(name, []), *values})
    defaults = schema()["$defs"]["experiment"]["properties"]  # teacher_keep, label_noise: shown when not the default
    setting.update({axis: exp[axis] for axis in ("teacher_keep", "label_noise") if exp[axis] != defaults[axis]["default"]})
    if exp.get("distill"):  # P4: what distilled the sets and how they were evaluated, instead of recipes
        setting.update(_distillation_setting(cfg, exp))
    pool = {"seed_pool": exp["seed"] + exp["replicate_seeds"]} if claim.get("replicates") else {}
    return {"id": claim_id, **claim, "preset": cfg["preset"], "evidence": cfg["evidence"], "setting": setting, **pool}


def _distillation_setting(cfg: dict, exp: dict) -> dict:
    """A distillation experiment's setting: each method's axes and iterations (absent: the method's
    default), and its evaluation (networks per set, epochs)."""
    evaluation = cfg["distill"]["evaluation"]
    methods = {method: {**axes, "iterations": cfg["distill"][method].get("iterations", "default")} for method, axes in exp["distill"].items()}
    return {
        "teacher": [],
        "student_epochs": [],
        "budget": [],
        "distillation": {
            "methods": methods,
            "num_eval": evaluation["num_eval"],
            "epochs": evaluation["epochs"],
            "epochs_dsa": evaluation["epochs_dsa"],
        },
    }
