# Aggregation: runs tables, one table + one figure per claim, the claims ledger, the compute
# summary. Cheap and local; each reads what it needs from the plan (no lists on command lines).

# The runs tables and round decisions that adaptive replicates wait on run as soon as they can:
# at equal priority Snakemake would start the other ready training jobs first, and a round's
# added seeds would then queue behind the whole first round of every other claim.
DECISION_PRIORITY = 10


rule runs_table:
    input:
        lambda w: PLAN.experiment_done(w.experiment),
    output:
        f"{RESULTS}/runs/{{experiment}}.csv",
    log:
        f"{RESULTS}/logs/runs_table/{{experiment}}.log",
    priority: DECISION_PRIORITY
    conda:
        "../envs/kdprune.yaml"
    shell:
        f"python -m kdprune runs --plan {PLAN.plan_file} --experiment {{wildcards.experiment}} --out {{output:q}} > {{log:q}} 2>&1"


rule all_runs:
    input:
        PLAN.all_runs_inputs(),
    output:
        report(f"{RESULTS}/runs.csv", category="Runs", caption="../report/runs.rst"),
    log:
        f"{RESULTS}/logs/all_runs.log",
    conda:
        "../envs/kdprune.yaml"
    shell:
        f"python -m kdprune runs --plan {PLAN.plan_file} --out {{output:q}} > {{log:q}} 2>&1"


rule claim_runs:
    input:
        lambda w: claim_metrics(w.claim, int(w.round)),
    output:
        f"{RESULTS}/runs/claims/{{claim}}/round{{round}}.csv",
    log:
        f"{RESULTS}/logs/runs_table/{{claim}}-round{{round}}.log",
    priority: DECISION_PRIORITY
    conda:
        "../envs/kdprune.yaml"
    shell:
        f"python -m kdprune runs --plan {PLAN.plan_file} --claim {{wildcards.claim}} --round {{wildcards.round}} --out {{output:q}} > {{log:q}} 2>&1"


# Adaptive replicates: after each round, which cells are unresolved and which runs to add.
checkpoint replicates:
    input:
        lambda w: claim_runs_after(w.claim, int(w.round) - 1),
    output:
        f"{RESULTS}/replicates/{{claim}}/round{{round}}.json",
    log:
        f"{RESULTS}/logs/replicates/{{claim}}-round{{round}}.log",
    priority: DECISION_PRIORITY
    conda:
        "../envs/kdprune.yaml"
    params:
        settings=lambda w: PLAN.claim_settings(w.claim),
    shell:
        f"python -m kdprune replicates --plan {PLAN.plan_file} --claim {{wildcards.claim}} --round {{wildcards.round}} "
        "--runs {input:q} --out {output:q} > {log:q} 2>&1"


rule claim:
    input:
        unpack(claim_inputs),
    output:
        table=report(f"{FIGURES}/{{paper}}/{{claim}}.csv", category="{paper}", subcategory="{claim}", caption="../report/claim_table.rst"),
        markdown=f"{FIGURES}/{{paper}}/{{claim}}.md",
        verdict=f"{RESULTS}/claims/{{paper}}/{{claim}}.json",
    log:
        f"{RESULTS}/logs/claim/{{paper}}/{{claim}}.log",
    conda:
        "../envs/kdprune.yaml"
    params:
        settings=lambda w: PLAN.claim_settings(w.claim),
    shell:
        # {input}: the runs table, then the round decisions (.json; named inputs are not known in a
        # dry run until the checkpoints ran), then the score files of a `measure` (.npz)
        f"python -m kdprune claim --plan {PLAN.plan_file} --claim {{wildcards.claim}} --table {{output.table:q}} "
        "--verdict {output.verdict:q} --runs {input:q} > {log:q} 2>&1"


rule figure:
    input:
        runs=lambda w: claim_inputs(w)["runs"],
    output:
        report(f"{FIGURES}/{{paper}}/{{claim}}.png", category="{paper}", subcategory="{claim}", caption="../report/claim_figure.rst"),
    log:
        f"{RESULTS}/logs/figure/{{paper}}/{{claim}}.log",
    conda:
        "../envs/kdprune.yaml"
    params:
        settings=lambda w: PLAN.claim_settings(w.claim),
    shell:
        f"python -m kdprune figure --plan {PLAN.plan_file} --claim {{wildcards.claim}} --runs {{input:q}} --out {{output:q}} > {{log:q}} 2>&1"


rule ledger:
    input:
        PLAN.verdict_files(),
    output:
        report(LEDGER[0], category="Claims ledger", caption="../report/ledger.rst"),
        report(LEDGER[1], category="Claims ledger", caption="../report/ledger.rst"),
        LEDGER[2],
    log:
        f"{RESULTS}/logs/ledger.log",
    conda:
        "../envs/kdprune.yaml"
    shell:
        f"python -m kdprune ledger --plan {PLAN.plan_file} --out-dir {FIGURES} > {{log:q}} 2>&1"


# A run with failed jobs (with --keep-going, every branch that could finish did) still leaves the
# ledger, which its rule could not make: claims whose runs all finished keep their verdicts, every
# other one is `incomplete` and names the runs it misses (kdprune.report.ledger). Snakemake's exit
# status stays non-zero.
onerror:
    unfinished = {str(f) for job in workflow.dag.needrun_jobs() for f in job.output}  # on disk: missing, or stale
    if LEDGER[0] in unfinished:  # the ledger was asked for
        try:
            from kdprune.report.ledger import write_partial_ledger

            incomplete = [v["claim"] for v in write_partial_ledger(PLAN, Path(FIGURES), unfinished)]
            print(f"kdprune: wrote {LEDGER[0]} after the failure; incomplete claims: {', '.join(incomplete) or 'none'}", file=sys.stderr)
        except Exception as err:  # the run's own failure is what Snakemake reports next: one line here
            print(f"kdprune: the ledger of the failed run was not written: {type(err).__name__}: {err}", file=sys.stderr)


rule compute:
    input:
        PLAN.compute_inputs(),
    output:
        report(f"{FIGURES}/compute.md", category="Compute", caption="../report/compute.rst"),
        f"{FIGURES}/compute.csv",
    log:
        f"{RESULTS}/logs/compute.log",
    conda:
        "../envs/kdprune.yaml"
    shell:
        f"python -m kdprune compute --plan {PLAN.plan_file} --out-dir {FIGURES} > {{log:q}} 2>&1"


# P4: each distillation experiment's distilled images (the first seed's set of every grid point).
rule distilled_images:
    input:
        lambda w: DISTILLED_FIGURES[f"{FIGURES}/{w.paper}/distilled/{w.experiment}.png"],
    output:
        f"{FIGURES}/{{paper}}/distilled/{{experiment}}.png",
    log:
        f"{RESULTS}/logs/distilled-{{paper}}-{{experiment}}.log",
    conda:
        "../envs/kdprune.yaml"
    shell:
        f"python -m kdprune show-distilled --plan {PLAN.plan_file} --title '{{wildcards.experiment}}: distilled images, preset {PLAN.preset}' "
        "--out {output:q} > {log:q} 2>&1"
