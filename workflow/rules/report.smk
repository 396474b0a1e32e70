# Aggregation: runs tables, one table + one figure per claim, the claims ledger. Cheap, local.


rule runs_table:
    input:
        lambda w: experiment_metrics(w.experiment),
    output:
        f"{RESULTS}/runs/{{experiment}}.csv",
    log:
        f"{RESULTS}/logs/runs_table/{{experiment}}.log",
    params:
        scale=SCALE,
    conda:
        "../envs/kdprune.yaml"
    shell:
        "python -m kdprune runs --scale {params.scale} --out {output:q} {input:q} > {log:q} 2>&1"


rule all_runs:
    input:
        [f"{RESULTS}/{t.dir}/metrics.json" for t in GRID.teachers],
        [f"{RESULTS}/{s.dir}/metrics.json" for s in GRID.students],
    output:
        report(f"{RESULTS}/runs.csv", category="Runs", caption="../report/runs.rst"),
    log:
        f"{RESULTS}/logs/all_runs.log",
    params:
        scale=SCALE,
    conda:
        "../envs/kdprune.yaml"
    shell:
        "python -m kdprune runs --scale {params.scale} --out {output:q} {input:q} > {log:q} 2>&1"


rule claim:
    input:
        runs=claim_runs,
    output:
        table=report("paper_figures/{paper}/{claim}.csv", category="{paper}", subcategory="{claim}", caption="../report/claim_table.rst"),
        markdown="paper_figures/{paper}/{claim}.md",
        verdict=f"{RESULTS}/claims/{{paper}}/{{claim}}.json",
    log:
        f"{RESULTS}/logs/claim/{{paper}}/{{claim}}.log",
    params:
        spec=lambda w: as_json(claim_spec(CFG, w.claim)),
    conda:
        "../envs/kdprune.yaml"
    shell:
        "python -m kdprune claim --spec {params.spec:q} --runs {input.runs:q} --table {output.table:q} "
        "--verdict {output.verdict:q} > {log:q} 2>&1"


rule figure:
    input:
        runs=claim_runs,
    output:
        report("paper_figures/{paper}/{claim}.png", category="{paper}", subcategory="{claim}", caption="../report/claim_figure.rst"),
    log:
        f"{RESULTS}/logs/figure/{{paper}}/{{claim}}.log",
    params:
        spec=lambda w: as_json(claim_spec(CFG, w.claim)),
    conda:
        "../envs/kdprune.yaml"
    shell:
        "python -m kdprune figure --spec {params.spec:q} --runs {input.runs:q} --out {output:q} > {log:q} 2>&1"


rule ledger:
    input:
        expand(f"{RESULTS}/claims/{{claim}}.json", claim=CLAIM_PATHS),
    output:
        report(LEDGER[0], category="Claims ledger", caption="../report/ledger.rst"),
        report(LEDGER[1], category="Claims ledger", caption="../report/ledger.rst"),
        LEDGER[2],
    log:
        f"{RESULTS}/logs/ledger.log",
    conda:
        "../envs/kdprune.yaml"
    shell:
        "python -m kdprune ledger --out-dir paper_figures {input:q} > {log:q} 2>&1"


rule compute:
    input:
        sorted({f for files in PAPER_JOB_FILES.values() for f in files}),
    output:
        report("paper_figures/compute.md", category="Compute", caption="../report/compute.rst"),
        "paper_figures/compute.csv",
    log:
        f"{RESULTS}/logs/compute.log",
    params:
        spec=as_json(PAPER_JOB_FILES),
        scale=SCALE,
    conda:
        "../envs/kdprune.yaml"
    shell:
        "python -m kdprune compute --scale {params.scale} --spec {params.spec:q} --out-dir paper_figures > {log:q} 2>&1"
