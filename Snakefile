# kdprune: knowledge distillation with data pruning, reproduced claim by claim.
#   snakemake -c all all_figures                           everything the config asks for, on this machine
#   snakemake -n all_figures                               list the jobs, run nothing
#   snakemake -c all paper_figures/smoke/P1/P1-C1.md       one claim's table, and only what it needs
#   snakemake --profile slurm all_figures                  the same on a SLURM cluster (docs/cluster.md)
#   snakemake --profile profiles/local all_figures         local profile (all cores)
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/report.smk"


localrules:
    all_figures,
    runs_table,
    claim_runs,
    replicates,
    all_runs,
    claim,
    figure,
    ledger,
    compute,
    distilled_images,


rule all_figures:
    default_target: True
    input:
        ledger=LEDGER,
        tables=expand(f"{FIGURES}/{{claim}}.csv", claim=PLAN.claim_paths()),
        figures=expand(f"{FIGURES}/{{claim}}.png", claim=PLAN.claim_paths(with_figure=True)),
        runs=f"{RESULTS}/runs.csv",
        compute=f"{FIGURES}/compute.md",
        distilled=list(DISTILLED_FIGURES),
