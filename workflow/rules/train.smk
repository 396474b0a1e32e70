# Compute jobs: teachers, pruning scores, students. Resources (GPUs, memory, runtime) live in the
# profiles, not here; each rule only says what it reads and writes.


rule teacher:
    output:
        model=f"{RESULTS}/{{dataset}}/teachers/{{key}}/model.pt",
        metrics=f"{RESULTS}/{{dataset}}/teachers/{{key}}/metrics.json",
    log:
        f"{RESULTS}/{{dataset}}/teachers/{{key}}/train.log",
    params:
        spec=lambda w: as_json(teacher_spec(CFG, TEACHERS[f"{w.dataset}/teachers/{w.key}"])),
        out_dir=lambda w, output: run_dir(output.model),
    threads: 1
    conda:
        "../envs/kdprune.yaml"
    shell:
        "python -m kdprune --threads {threads} train --spec {params.spec:q} --out-dir {params.out_dir:q} > {log:q} 2>&1"


rule teacher_views:
    input:
        model=f"{RESULTS}/{{dataset}}/teachers/{{key}}/model.pt",
    output:
        views=f"{RESULTS}/{{dataset}}/teachers/{{key}}/views.pt",
        meta=f"{RESULTS}/{{dataset}}/teachers/{{key}}/views.json",
    log:
        f"{RESULTS}/{{dataset}}/teachers/{{key}}/views.log",
    params:
        spec=lambda w: as_json(teacher_spec(CFG, TEACHERS[f"{w.dataset}/teachers/{w.key}"])),
    threads: 1
    conda:
        "../envs/kdprune.yaml"
    shell:
        "python -m kdprune --threads {threads} views --spec {params.spec:q} --teacher {input.model:q} --out {output.views:q} > {log:q} 2>&1"


rule score:
    output:
        scores=f"{RESULTS}/{{dataset}}/scores/{{key}}.npz",
        meta=f"{RESULTS}/{{dataset}}/scores/{{key}}.json",
    log:
        f"{RESULTS}/{{dataset}}/scores/{{key}}.log",
    params:
        spec=lambda w: as_json(score_spec(CFG, SCORE_JOBS[f"{w.dataset}/scores/{w.key}.npz"])),
    threads: 1
    conda:
        "../envs/kdprune.yaml"
    shell:
        "python -m kdprune --threads {threads} score --spec {params.spec:q} --out {output.scores:q} > {log:q} 2>&1"


if STACK_SEEDS == "off":

    rule student:
        input:
            unpack(student_inputs),
        output:
            model=f"{RESULTS}/{{dataset}}/students/{{run}}/model.pt",
            metrics=f"{RESULTS}/{{dataset}}/students/{{run}}/metrics.json",
        log:
            f"{RESULTS}/{{dataset}}/students/{{run}}/train.log",
        wildcard_constraints:
            run=r".+",
        params:
            spec=lambda w: as_json(student_spec(CFG, student_job(w))),
            inputs=student_args,
            out_dir=lambda w, output: run_dir(output.model),
        threads: 1
        conda:
            "../envs/kdprune.yaml"
        shell:
            "python -m kdprune --threads {threads} train --spec {params.spec:q} {params.inputs} "
            "--out-dir {params.out_dir:q} > {log:q} 2>&1"

else:
    # One job per cell: its seeds share the start-up, the data and the teacher, and on a GPU one
    # stacked network (kdprune.stacked). Each seed keeps its own run folder.
    for _seeds in SEED_SETS:

        rule:
            name:
                seed_rule_name(_seeds)
            input:
                unpack(cell_inputs),
            output:
                **{f"{kind}_s{seed}": f"{RESULTS}/{{cell}}/s{seed}/{kind}.{ext}" for seed in _seeds
                   for kind, ext in (("model", "pt"), ("metrics", "json"))},
            log:
                f"{RESULTS}/{{cell}}/train-s{'-'.join(map(str, _seeds))}.log",
            wildcard_constraints:
                cell=cell_pattern(_seeds),
            params:
                spec=lambda w: as_json([student_spec(CFG, job) for job in CELLS[w.cell]]),
                inputs=student_args,
                out_dirs=lambda w, output: shlex.join(run_dir(output[f"model_s{job.seed}"]) for job in CELLS[w.cell]),
                stack=STACK_SEEDS,
            threads: 1
            conda:
                "../envs/kdprune.yaml"
            shell:
                "python -m kdprune --threads {threads} train --spec {params.spec:q} {params.inputs} "
                "--stack {params.stack} --out-dir {params.out_dirs} > {log:q} 2>&1"

    # Profiles give resources and threads by rule name: the rules of other seed lists get those
    # of `student` (already merged from default-resources, set-resources and set-threads).
    for _seeds in SEED_SETS:
        if seed_rule_name(_seeds) != "student":
            workflow.get_rule(seed_rule_name(_seeds)).resources = workflow.get_rule("student").resources.copy()
