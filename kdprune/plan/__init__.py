"""The planning layer: config -> grid -> jobs -> paths, claim specs. It never imports torch, pandas
or scipy, so the Snakefile (parsed again by every job on a cluster) stays fast.

`Plan` is what the Snakefile and every job read: the resolved config of one preset, its grid, and
for each job kind its jobs by key, their specs, settings hashes, inputs and outputs. The workflow
writes the resolved config once per run to results/<preset>/plan.json; a job looks itself up in it
by kind and key (`python -m kdprune run student --key ...`), so no spec travels on a command line."""

from __future__ import annotations

import functools
import json
from pathlib import Path

from kdprune.plan.claims import claim_spec
from kdprune.plan.config import load
from kdprune.plan.grid import Grid, dedupe
from kdprune.plan.kinds import DONE, JOB_KINDS, settings_hash, student_job_key
from kdprune.registry import UnknownName

PLAN_FILE = "plan.json"


class Plan:
    def __init__(self, cfg: dict):
        self.cfg = cfg
        self.preset = cfg["preset"]
        self.grid = Grid.from_config(cfg)
        self.results = f"results/{self.preset}"  # every job's files, under this
        self.figures = f"paper_figures/{self.preset}"  # tables, figures, ledger
        self.plan_file = self.file_of(self.preset)

    @staticmethod
    def file_of(preset: str) -> str:
        return f"results/{preset}/{PLAN_FILE}"

    @classmethod
    def from_config(cls, path: str | Path = "config.yaml", overrides: dict | None = None) -> Plan:
        return cls(load(path, overrides))

    @classmethod
    def read(cls, path: str | Path) -> Plan:
        return cls(json.loads(Path(path).read_text()))

    def write(self) -> None:
        """results/<preset>/plan.json, rewritten only when the resolved config changed."""
        from kdprune.files import write_text

        text = json.dumps(self.cfg, indent=1, sort_keys=True) + "\n"
        path = Path(self.plan_file)
        if not path.is_file() or path.read_text() != text:
            write_text(path, text)

    # -- jobs by kind and key ------------------------------------------------------------------

    @functools.cache
    def jobs(self, kind: str) -> dict:
        return JOB_KINDS.get(kind).jobs(self.cfg, self.grid)

    def job(self, kind: str, key: str):
        try:
            return self.jobs(kind)[key]
        except KeyError:
            raise UnknownName(f"no {kind} job {key!r} in the {self.preset} plan ({self.plan_file}); was the config changed since?") from None

    def spec(self, kind: str, key: str) -> dict | list:
        return JOB_KINDS.get(kind).spec(self.cfg, self.job(kind, key))

    def settings(self, kind: str, key: str) -> str:
        """The hash of a job's spec: a rule's `params`, so Snakemake reruns a job whose settings changed."""
        return settings_hash(self.spec(kind, key))

    def inputs(self, kind: str, key: str) -> dict:
        return {name: self._under_results(path) for name, path in JOB_KINDS.get(kind).inputs(self.cfg, self.job(kind, key)).items()}

    def outputs(self, kind: str, key: str) -> dict:
        return {name: self._under_results(path) for name, path in JOB_KINDS.get(kind).outputs(self.cfg, self.job(kind, key)).items()}

    def _under_results(self, path: str | list[str]) -> str | list[str]:
        return [f"{self.results}/{p}" for p in path] if isinstance(path, list) else f"{self.results}/{path}"

    # -- what the reports read -----------------------------------------------------------------

    def claim_spec(self, claim_id: str) -> dict:
        return claim_spec(self.cfg, claim_id)

    def claim_settings(self, claim_id: str) -> str:
        return settings_hash(self.claim_spec(claim_id))

    def experiment_metrics(self, experiment: str) -> list[str]:
        return [f"{self.results}/{job.dir}/metrics.json" for job in self.grid.experiments[experiment]]

    def experiment_done(self, experiment: str) -> list[str]:
        """What an experiment's first-round runs table waits for: the tracked file of every
        student job that trains its runs (a seed group's record, or a run's metrics)."""
        keys = dict.fromkeys(student_job_key(self.cfg, job) for job in self.grid.experiments[experiment])
        return [self.outputs("student", key)[DONE] for key in keys]

    def claim_pool(self, claim_id: str) -> list[dict]:
        """Every run a claim's experiment may have, first round and later ones: its axes, seed,
        run folder and metrics file (adaptive replicates choose from these)."""
        name = self.cfg["claims"][claim_id]["experiment"]
        jobs = dict.fromkeys([*self.grid.experiments[name], *self.grid.replicates[name]])
        return [{**j.axes(), "run_dir": f"{self.results}/{j.dir}", "metrics": f"{self.results}/{j.dir}/metrics.json"} for j in jobs]

    def decision_file(self, claim_id: str, round_no: int) -> str:
        """Round `round_no`'s decision of a claim's adaptive replicates (a Snakemake checkpoint)."""
        return f"{self.results}/replicates/{claim_id}/round{round_no}.json"

    def all_metrics(self) -> list[str]:
        return [f"{self.results}/{job.dir}/metrics.json" for job in [*self.grid.teachers, *self.grid.students]]

    def all_runs_inputs(self) -> list[str]:
        """What the whole runs table waits for: every experiment's runs table (its students' metrics)
        and every teacher's metrics. Fewer edges than every metrics file: Snakemake matches each
        input file against every rule, the bulk of a dry run's time."""
        tables = [f"{self.results}/runs/{name}.csv" for name in self.grid.experiments]
        return tables + [f"{self.results}/{t.dir}/metrics.json" for t in self.grid.teachers]

    def compute_inputs(self) -> list[str]:
        """What the compute summary waits for: the whole runs table (every run's metrics) and the
        metadata of the other jobs it counts (view tables, scores)."""
        files = {f for paper in self.paper_job_files().values() for f in paper if not f.endswith("/metrics.json")}
        return [f"{self.results}/runs.csv", *sorted(files)]

    def paper_job_files(self) -> dict[str, list[str]]:
        """{paper: the metadata file of every job its experiments need}, for the compute summary."""
        out: dict[str, list[str]] = {}
        for name, students in self.grid.experiments.items():
            files = out.setdefault(self.cfg["experiments"][name]["paper"], [])
            for s in students:
                files.append(f"{s.dir}/metrics.json")
                if s.distilled is not None:
                    files.append(f"{s.distilled.dir}/distilled.json")
                if s.teacher is not None:  # a student reads its teacher's view table when it has one
                    files.append(f"{s.teacher.dir}/metrics.json")
                    if s.teacher.views:
                        files.append(f"{s.teacher.dir}/views.json")
                for score in s.score_jobs:
                    if score.teacher is not None:  # a score reads its teacher's model
                        files.append(f"{score.teacher.dir}/metrics.json")
                    files.append(score.path.removesuffix(".npz") + ".json")
        return {paper: [f"{self.results}/{f}" for f in dict.fromkeys(files)] for paper, files in out.items()}

    def claim_measure_files(self, claim_id: str) -> list[str]:
        """The score files a claim's `measure` compares: each named method's file of the lowest
        seed, per dataset of its experiment, in the order the measure names them."""
        measure = self.cfg["claims"][claim_id].get("measure")
        if not measure:
            return []
        jobs = dedupe(j for s in self.grid.experiments[self.cfg["claims"][claim_id]["experiment"]] for j in s.score_jobs)
        files = []
        for dataset in dict.fromkeys(j.dataset for j in jobs):
            for method in measure["scores"]:
                seeds = [j for j in jobs if j.dataset == dataset and j.method == method]
                if seeds:
                    files.append(f"{self.results}/{min(seeds, key=lambda j: j.seed).path}")
        return files

    def distilled_figures(self) -> dict[str, list[str]]:
        """{figure: the sets it shows}: per distillation experiment, paper_figures/<preset>/<paper>/
        distilled/<experiment>.png, the first seed's set of every grid point (what users look at)."""
        figures = {}
        for name, students in self.grid.experiments.items():
            sets = dedupe(s.distilled for s in students if s.distilled is not None)
            if sets:
                first = min(d.seed for d in sets)
                paper = self.cfg["experiments"][name]["paper"]
                figures[f"{self.figures}/{paper}/distilled/{name}.png"] = [f"{self.results}/{d.dir}/synthetic.pt" for d in sets if d.seed == first]
        return figures

    def verdict_files(self) -> list[str]:
        """Every claim's verdict file (what the ledger reads)."""
        return [f"{self.results}/claims/{path}.json" for path in self.claim_paths()]

    def claim_paths(self, with_figure: bool = False) -> list[str]:
        """`<paper>/<claim>` of every claim (with a figure only, if asked)."""
        return [f"{c['paper']}/{cid}" for cid, c in self.cfg["claims"].items() if not with_figure or "figure" in c]
