# Compute jobs, one rule per job kind (kdprune.plan.kinds): teachers, their view tables, pruning
# scores, students. Every rule runs `kdprune run <kind> --key <key>`: the job reads its spec from
# the plan; the settings hash in `params` reruns it when its settings change. Resources (GPUs,
# memory, runtime) live in the profiles, not here.


rule teacher:
    output:
        model=f"{RESULTS}/{{dataset}}/teachers/{{key}}/model.pt",
        metrics=f"{RESULTS}/{{dataset}}/teachers/{{key}}/metrics.json",
    log:
        f"{RESULTS}/{{dataset}}/teachers/{{key}}/train.log",
    conda:
        "../envs/kdprune.yaml"
    threads: 1
    params:
        settings=settings_of("teacher", teacher_key),
    shell:
        f"{RUN} teacher {ON_PLAN} --key {{wildcards.dataset}}/teachers/{{wildcards.key}} --settings {{params.settings}} > {{log:q}} 2>&1"


rule teacher_views:
    input:
        unpack(inputs_of("teacher_views", teacher_key)),
    output:
        views=f"{RESULTS}/{{dataset}}/teachers/{{key}}/views.pt",
        meta=f"{RESULTS}/{{dataset}}/teachers/{{key}}/views.json",
    log:
        f"{RESULTS}/{{dataset}}/teachers/{{key}}/views.log",
    conda:
        "../envs/kdprune.yaml"
    threads: 1
    params:
        settings=settings_of("teacher_views", teacher_key),
    shell:
        f"{RUN} teacher_views {ON_PLAN} --key {{wildcards.dataset}}/teachers/{{wildcards.key}} --settings {{params.settings}} > {{log:q}} 2>&1"


rule score:
    input:
        unpack(inputs_of("score", score_key)),
    output:
        scores=f"{RESULTS}/{{dataset}}/scores/{{key}}.npz",
        meta=f"{RESULTS}/{{dataset}}/scores/{{key}}.json",
    log:
        f"{RESULTS}/{{dataset}}/scores/{{key}}.log",
    conda:
        "../envs/kdprune.yaml"
    threads: 1
    params:
        settings=settings_of("score", score_key),
    shell:
        f"{RUN} score {ON_PLAN} --key {{wildcards.dataset}}/scores/{{wildcards.key}}.npz --settings {{params.settings}} > {{log:q}} 2>&1"


# P4's distilled sets: the selection's real images distilled into a few synthetic ones per class,
# the seeds of a grid point in one job, as students; their evaluations are student jobs that read
# them (kdprune.plan.grid.StudentJob.distilled).
for _seeds in SET_SEED_LISTS:

    rule:
        name:
            seed_rule_name(_seeds, "distilled", SET_SEED_LISTS)
        input:
            unpack(inputs_of("distilled", lambda w: w.group)),
        output:
            distilled_outputs(_seeds),
        log:
            distilled_log(_seeds),
        wildcard_constraints:
            group=group_pattern(_seeds, "distilled", SET_SEED_LISTS, "distilled"),
        conda:
            "../envs/kdprune.yaml"
        threads: 1
        params:
            settings=settings_of("distilled", lambda w: w.group),
        shell:
            f"{RUN} distilled {ON_PLAN} --key {{wildcards.group:q}} --settings {{params.settings}} > {{log:q}} 2>&1"


# One job per student key: the seeds of a grid point (stack_seeds not `off`) share the start-up, the
# data and the teacher, and on a GPU one stacked network (kdprune.train.stacking); each seed keeps
# its own run folder. One rule per seed list, since a rule's outputs are fixed.
for _seeds in SEED_LISTS:

    rule:
        name:
            seed_rule_name(_seeds)
        input:
            unpack(inputs_of("student", lambda w: w.group)),
        output:
            student_output(_seeds),
        log:
            student_log(_seeds),
        wildcard_constraints:
            group=group_pattern(_seeds),
        conda:
            "../envs/kdprune.yaml"
        threads: 1
        params:
            settings=settings_of("student", lambda w: w.group),
        shell:
            f"{RUN} student {ON_PLAN} --key {{wildcards.group:q}} --settings {{params.settings}} > {{log:q}} 2>&1"


# A seed that an adaptive-replicates round adds (docs/verdicts.md) is one job, keyed by its run
# folder. Rounds only add seeds that no experiment trains in its first round (checked with the
# config), so the seed in the path tells this rule's outputs from the seed-list rules' ones.
if CFG["stack_seeds"] != "off" and PLAN.grid.replicate_students:

    rule student_replicate:
        input:
            unpack(inputs_of("student", lambda w: w.run)),
        output:
            f"{RESULTS}/{{run}}/metrics.json",
        log:
            f"{RESULTS}/{{run}}/train.log",
        wildcard_constraints:
            run=rf"[^/]+/students/.+/s(?:{'|'.join(map(str, REPLICATE_SEEDS))})",
        conda:
            "../envs/kdprune.yaml"
        threads: 1
        params:
            settings=settings_of("student", lambda w: w.run),
        shell:
            f"{RUN} student {ON_PLAN} --key {{wildcards.run:q}} --settings {{params.settings}} > {{log:q}} 2>&1"


# A set only a later adaptive round's seed evaluates: one job, keyed by its folder (as student_replicate).
if CFG["stack_seeds"] != "off" and PLAN.grid.replicate_distilled:

    rule distilled_replicate:
        input:
            unpack(inputs_of("distilled", lambda w: w.set)),
        output:
            distilled_outputs(None)[0].replace("{group}", "{set}"),
            distilled_outputs(None)[1].replace("{group}", "{set}"),
        log:
            f"{RESULTS}/{{set}}/distill.log",
        wildcard_constraints:
            set=rf"[^/]+/distilled/.+/s(?:{'|'.join(map(str, REPLICATE_SEEDS))})",
        conda:
            "../envs/kdprune.yaml"
        threads: 1
        params:
            settings=settings_of("distilled", lambda w: w.set),
        shell:
            f"{RUN} distilled {ON_PLAN} --key {{wildcards.set:q}} --settings {{params.settings}} > {{log:q}} 2>&1"


# Profiles give resources and threads by rule name: the rules of other seed lists, and of added
# seeds, get those of `student` (already merged from default-resources, set-resources and set-threads).
for _kind, _names in (
    ("student", [seed_rule_name(s) for s in SEED_LISTS] + ["student_replicate"]),
    ("distilled", [seed_rule_name(s, "distilled", SET_SEED_LISTS) for s in SET_SEED_LISTS] + ["distilled_replicate"]),
):
    for _name in _names:
        if _name != _kind and workflow.is_rule(_name) and workflow.is_rule(_kind):
            workflow.get_rule(_name).resources = workflow.get_rule(_kind).resources.copy()
