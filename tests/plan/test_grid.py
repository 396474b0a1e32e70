"""The grid: experiments -> runs, teachers and scores, with typed upstream links; the planning layer
imports no torch, pandas or scipy."""

import copy
import subprocess
import sys

import pandas as pd
import pytest

from kdprune.plan import Plan
from kdprune.plan.config import ROOT, ConfigError, check_names, check_schema, load, normalise
from kdprune.plan.grid import Grid
from kdprune.plan.kinds import evaluation_recipe


def grid_of(**experiment) -> Grid:
    cfg = load(ROOT / "config.yaml")
    exp = {"paper": "T", "student": ["resnet8"], "teacher": ["resnet8"], "selection": ["random"], "keep": [0.5], "seed": [0], **experiment}
    return Grid.from_config(normalise({**cfg, "experiments": {"e": exp}}))


def test_a_loss_expands_over_its_own_parameters_and_kd_at_alpha_zero_is_ce():
    grid = grid_of(loss={"ce": {}, "kd": {"alpha": [0.0, 0.5], "temperature": [2.0, 4.0]}})
    keys = sorted(s.loss_key for s in grid.students)
    # alpha 0 is CE whatever the temperature: one run, no teacher
    assert keys == ["ce", "kd-resnet8-teacher-s0-a0.5-T2", "kd-resnet8-teacher-s0-a0.5-T4"]
    kd = next(s for s in grid.students if s.loss == "kd")
    assert kd.axes()["alpha"] == 0.5 and kd.teacher.key == "resnet8-teacher-s0"
    assert "alpha" not in next(s for s in grid.students if s.loss == "ce").axes()


def test_a_student_links_to_its_teacher_and_score_and_a_score_may_need_a_teacher():
    cfg = load(ROOT / "config.yaml")
    cfg["scores"]["el2n"] = {**cfg["scores"]["el2n"], "teacher": "resnet14"}
    exp = {"paper": "T", "student": ["resnet8"], "teacher": ["resnet8"], "selection": ["el2n"], "keep": [0.5], "seed": [0, 1], "loss": {"kd": {}}}
    plan = Plan(normalise({**cfg, "experiments": {"e": exp}, "claims": {}}))
    score = plan.grid.scores[0]
    assert score.teacher.arch == "resnet14" and score.path == "digits/scores/el2n-resnet14-teacher-s0-s0.npz"
    assert {t.arch for t in plan.grid.teachers} == {"resnet8", "resnet14"}
    assert plan.inputs("score", score.path) == {"teacher": "results/smoke/digits/teachers/resnet14-teacher-s0/model.pt"}
    (group,) = plan.jobs("student")
    assert plan.inputs("student", group) == {
        "teacher_views": "results/smoke/digits/teachers/resnet8-teacher-s0/views.pt",
        "scores": [f"results/smoke/digits/scores/el2n-resnet14-teacher-s0-s{seed}.npz" for seed in (0, 1)],
    }
    assert plan.spec("score", score.path)["teacher_spec"]["arch"] == "resnet14"


@pytest.mark.parametrize("replicate,teacher_seeds", [("chain", {0, 1}), ("student", {0}), ("auto", {0, 1})])
def test_a_chained_replicate_trains_its_own_teacher(replicate, teacher_seeds):
    """Seed s of a chain reads teacher s; `auto` chains an experiment whose claim tests a teacher
    property (here the trend over teacher_keep), and otherwise every seed reads teacher_seed's."""
    cfg = load(ROOT / "config.yaml")
    exp = {"paper": "T", "student": ["resnet8"], "teacher": ["resnet8"], "teacher_keep": [0.5, 1.0], "selection": ["random"], "keep": [0.5]}
    exp |= {"seed": [0, 1], "loss": {"kd": {}}, "replicate": replicate}
    claim = {"paper": "T", "statement": "s", "experiment": "e", "test": {"rule": "trend", "metric": "final_acc", "axis": "teacher_keep"}}
    plan = Plan(normalise({**cfg, "experiments": {"e": exp}, "claims": {"T-C1": claim}}))
    assert {t.seed for t in plan.grid.teachers} == teacher_seeds
    for student in plan.grid.students:
        assert student.teacher.seed == (student.seed if teacher_seeds == {0, 1} else 0)
    setting = plan.claim_spec("T-C1")["setting"]
    assert setting["replicate"] == ("student" if replicate == "student" else "chain")


@pytest.mark.parametrize("mode, tabled", [("auto", {"resnet8"}), (True, {"resnet8", "resnet14"}), (False, set())])
def test_a_teacher_stores_a_view_table_where_it_pays(mode, tabled):
    """digits has 9 views per image (pad-1 crops, no flip). Students of 18 epochs at keep 0.5 train on
    9 images per training image: the table pays (auto builds it); at keep 0.4 they train on 7.2 and
    their teacher runs in the students' steps instead."""
    cfg = load(ROOT / "config.yaml", {"teacher_views": mode})
    cfg["recipes"]["student"] = {**cfg["recipes"]["student"], "epochs": 18}
    common = {"paper": "T", "student": ["resnet8"], "selection": ["random"], "seed": [0], "loss": {"kd": {}}}
    exps = {"pays": {**common, "teacher": ["resnet8"], "keep": [0.5]}, "short": {**common, "teacher": ["resnet14"], "keep": [0.4]}}
    plan = Plan(normalise({**cfg, "experiments": exps, "claims": {}}))
    assert {t.arch for t in plan.grid.teachers if t.views} == tabled
    assert {job.arch for job in plan.jobs("teacher_views").values()} == tabled
    for key, (student,) in plan.jobs("student").items():
        read = plan.inputs("student", key)
        assert set(read) - {"scores"} == ({"teacher_views"} if student.teacher.arch in tabled else {"teacher"})


def test_teacher_student_pairs_train_each_student_with_its_own_teachers():
    """`teacher` as a mapping student -> teachers (P2's pairs) instead of every student with every teacher."""
    grid = grid_of(student=["resnet8", "resnet14"], teacher={"resnet8": ["resnet20"], "resnet14": ["resnet32", "resnet56"]}, loss={"kd": {}})
    pairs = sorted((s.teacher.arch, s.arch) for s in grid.students)
    assert pairs == [("resnet20", "resnet8"), ("resnet32", "resnet14"), ("resnet56", "resnet14")]


@pytest.mark.parametrize(
    "teacher, message",
    [
        ({"resnet8": ["resnet20"], "resnet44x": ["resnet32"]}, "experiments.e.teacher.resnet44x = 'resnet44x' is not allowed: unknown student"),
        ({"resnet8": ["resnet21"], "resnet14": ["resnet20"]}, "experiments.e.teacher.resnet8[0] = 'resnet21' is not allowed"),
        ({"resnet14": ["resnet20"]}, "experiments.e.teacher is missing for student resnet8: loss kd needs a teacher"),
    ],
)
def test_bad_pairs_fail_with_one_line_naming_the_key(teacher, message):
    cfg = {k: v for k, v in load(ROOT / "config.yaml").items() if k != "replicates"}  # as a preset assembles it
    exp = {"paper": "T", "student": ["resnet8", "resnet14"], "teacher": teacher, "selection": ["random"], "keep": [0.5], "loss": {"kd": {}}}
    cfg = {**cfg, "experiments": {"e": exp}, "claims": {}}
    with pytest.raises(ConfigError) as err:
        check_schema(cfg)
        check_names(normalise(cfg))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_score_of_the_kd_teacher_is_one_per_teacher_and_seed():
    """`scores.<m>.teacher: kd_teacher` (MDSLR's difficulty): each student's selection is scored by its
    own KD teacher; the score is shared by every keep fraction; a CE student cannot use it."""
    cfg = load(ROOT / "config.yaml")
    cfg["scores"]["el2n"] = {**cfg["scores"]["el2n"], "teacher": "kd_teacher"}
    exp = {"paper": "T", "student": ["resnet8"], "teacher": ["resnet14", "resnet20"], "selection": ["el2n"], "keep": [0.3, 0.5]}
    exp |= {"seed": [0, 1], "loss": {"kd": {}}}
    plan = Plan(normalise({**cfg, "experiments": {"e": exp}, "claims": {}}))
    for student in plan.grid.students:
        assert student.score.teacher == student.teacher and student.score.seed == student.seed
    assert sorted(s.key for s in plan.grid.scores) == [f"el2n-{t}-teacher-s0-s{seed}" for t in ("resnet14", "resnet20") for seed in (0, 1)]
    assert plan.inputs("score", plan.grid.scores[0].path)["teacher"].endswith("/teachers/resnet14-teacher-s0/model.pt")
    cfg = {k: v for k, v in cfg.items() if k != "replicates"}
    with pytest.raises(ConfigError, match="experiments.e.loss has ce, which has no teacher, but selection el2n is scored by"):
        check_names(normalise({**cfg, "experiments": {"e": {**exp, "loss": {"ce": {}, "kd": {}}}}, "claims": {}}))


def test_a_recipe_may_set_the_learning_rate_of_some_architectures():
    """`lr_by_arch` (MDSLR: lr 0.01 for MobileNetV2 and the ShuffleNets) is resolved into each run's
    spec; recipes without it keep their specs (and hashes) as they were."""
    cfg = load(ROOT / "config.yaml")
    before = Plan(
        normalise(
            {
                **cfg,
                "experiments": {"e": {"paper": "T", "student": ["resnet8", "resnet14"], "selection": ["random"], "keep": [0.5], "loss": {"ce": {}}}},
                "claims": {},
            }
        )
    )
    cfg["recipes"]["student"] = {**cfg["recipes"]["student"], "lr_by_arch": {"resnet14": 0.01}}
    plan = Plan(normalise({**cfg, "experiments": before.cfg["experiments"], "claims": {}}))
    specs = {job.arch: plan.spec("student", key)[0] for key, (job, *_) in plan.jobs("student").items()}
    assert specs["resnet14"]["recipe"]["lr"] == 0.01 and specs["resnet8"]["recipe"]["lr"] == cfg["recipes"]["student"]["lr"]
    assert all("lr_by_arch" not in spec["recipe"] for spec in specs.values())
    assert {k: plan.settings("student", k) for k in plan.jobs("student") if "resnet8-" in k} == {
        k: before.settings("student", k) for k in before.jobs("student") if "resnet8-" in k
    }
    cfg["recipes"]["student"]["lr_by_arch"] = {"mobilenet_v9": 0.01}
    with pytest.raises(ConfigError, match=r"recipes.student.lr_by_arch.mobilenet_v9 = 'mobilenet_v9' is not allowed"):
        check_names(normalise({**{k: v for k, v in cfg.items() if k != "replicates"}, "experiments": before.cfg["experiments"], "claims": {}}))


def test_a_dynamic_method_is_one_run_on_the_whole_training_set_with_its_settings_in_the_spec():
    """InfoBatch prunes inside training: whatever the keep list, one run at keep 1.0, no score file,
    labelled by its method (not `full`), its settings in its recipe; other runs' specs unchanged."""
    cfg = load(ROOT / "config.yaml")
    cfg["scores"]["infobatch"] = {"dynamic": {"kind": "infobatch", "ratio": 0.5, "delta": 0.875}}
    exp = {"paper": "T", "student": ["resnet8"], "teacher": ["resnet14"], "selection": ["random", "infobatch"], "keep": [0.3, 0.7, 1.0]}
    exp |= {"seed": [0], "loss": {"kd": {}}}
    plan = Plan(normalise({**cfg, "experiments": {"e": exp}, "claims": {}}))
    runs = sorted((s.selection, s.keep, s.score is None) for s in plan.grid.students)
    assert runs == [("full", 1.0, True), ("infobatch", 1.0, True), ("random", 0.3, False), ("random", 0.7, False)]
    specs = {job.selection: plan.spec("student", key)[0] for key, (job,) in plan.jobs("student").items()}
    assert specs["infobatch"]["recipe"]["infobatch"] == {"ratio": 0.5, "delta": 0.875}
    assert all("infobatch" not in specs[name]["recipe"] for name in ("full", "random"))


def test_infobatch_at_a_cost_share_is_one_run_per_keep_on_the_whole_training_set():
    """`cost: keep`: the grid point's keep is the run's share of full-data sample-steps (P2-C3)."""
    cfg = load(ROOT / "config.yaml")
    cfg["scores"]["ib"] = {"dynamic": {"kind": "infobatch", "delta": 0.875, "cost": "keep"}}
    exp = {"paper": "T", "student": ["resnet8"], "teacher": ["resnet14"], "selection": ["ib"], "keep": [0.5, 0.7], "seed": [0], "loss": {"kd": {}}}
    plan = Plan(normalise({**cfg, "experiments": {"e": exp}, "claims": {}}))
    assert sorted((s.selection, s.keep, s.score is None) for s in plan.grid.students) == [("ib", 0.5, True), ("ib", 0.7, True)]
    specs = sorted((plan.spec("student", key)[0] for key in plan.jobs("student")), key=lambda spec: spec["keep"])
    assert [spec["recipe"]["infobatch"] for spec in specs] == [{"delta": 0.875, "cost_share": 0.5}, {"delta": 0.875, "cost_share": 0.7}]
    cfg["scores"]["ib"]["dynamic"]["ratio"] = 0.5
    with pytest.raises(ConfigError, match=r"^config: scores.ib.dynamic.ratio = 0.5 is not allowed with cost: keep"):
        check_names(normalise({**cfg, "experiments": {"e": exp}, "claims": {}}))


def test_reshaped_kd_reads_its_teachers_k_y_and_the_runs_without_it_are_unchanged():
    """`loss: {kd: {reshape: [0, 1]}}`: the reshaped run's folder says R1 and it reads the teacher_ce
    file of its own teacher (one per teacher: score_seed teacher); the run with reshape off is the
    very run the grid planned before the parameter existed (folder and settings hash)."""
    cfg = load(ROOT / "config.yaml")
    exp = {"paper": "T", "student": ["resnet8"], "teacher": ["resnet14"], "selection": ["mdslr"], "keep": [0.3], "seed": [0, 1]}
    before = Plan(normalise({**copy.deepcopy(cfg), "experiments": {"e": {**exp, "loss": {"kd": {}}}}, "claims": {}}))
    plan = Plan(normalise({**copy.deepcopy(cfg), "experiments": {"e": {**exp, "loss": {"kd": {"reshape": [0, 1]}}}}, "claims": {}}))
    keys = sorted(plan.jobs("student"))
    assert [k.rsplit("/", 1)[1] for k in keys] == ["kd-resnet14-teacher-s0-a0.9-T4", "kd-resnet14-teacher-s0-a0.9-T4-R1"]
    (old_key,) = before.jobs("student")
    assert old_key == keys[0] and before.settings("student", old_key) == plan.settings("student", keys[0])
    reshaped = plan.inputs("student", keys[1])
    assert reshaped["class_scale"] == ["results/smoke/digits/scores/teacher_ce-resnet14-teacher-s0-s0.npz"] * 2
    assert reshaped["scores"] == reshaped["class_scale"] and "class_scale" not in plan.inputs("student", keys[0])
    assert plan.spec("student", keys[1])[0]["loss_params"] == {"alpha": 0.9, "temperature": 4.0, "reshape": 1.0}


def test_the_runs_table_fills_in_a_parameter_runs_do_not_carry():
    from kdprune.report.runs import with_omitted_parameters

    runs = pd.DataFrame({"loss": ["kd", "kd", "ce"], "reshape": [1.0, None, None]})
    assert with_omitted_parameters(runs)["reshape"].tolist()[:2] == [1.0, 0.0] and pd.isna(runs["reshape"].iloc[2])


def test_a_teacher_checkpoint_goes_into_that_teachers_spec_only(tmp_path):
    cfg = load(ROOT / "config.yaml")
    exp = {"paper": "T", "student": ["resnet8"], "teacher": ["resnet14", "resnet20"], "selection": ["random"], "keep": [0.5]}
    exp |= {"seed": [0, 1], "loss": {"kd": {}}, "replicate": "chain"}
    before = Plan(normalise({**copy.deepcopy(cfg), "experiments": {"e": exp}, "claims": {}}))
    cfg["teacher_checkpoints"] = {"digits": {"resnet14": [str(tmp_path / "r14.pth")]}}
    plan = Plan(normalise({**cfg, "experiments": {"e": exp}, "claims": {}}))
    with_file = {key for key in plan.jobs("teacher") if "checkpoint" in plan.spec("teacher", key)}
    assert with_file == {"digits/teachers/resnet14-teacher-s0"}  # its seed 1 and the resnet20s are trained
    assert all(plan.settings("teacher", k) == before.settings("teacher", k) for k in plan.jobs("teacher") if k not in with_file)
    with pytest.raises(ConfigError, match=r"teacher_checkpoints.digits.resnet14\[0\] = '.*r14.pth' is not allowed: no such file"):
        check_names(normalise({**{k: v for k, v in cfg.items() if k != "replicates"}, "experiments": {"e": exp}, "claims": {}}))


def test_auto_replicate_is_per_student_when_no_claim_tests_a_teacher_property():
    cfg = load(ROOT / "config.yaml")
    assert cfg["experiments"]["p1_kd_vs_ce"]["replicate"] == "student" and cfg["experiments"]["p1_capacity"]["replicate"] == "chain"


def test_every_job_spec_carries_its_datasets_augmentation_and_the_padding_mode_reruns_it():
    """The padding mode (default: DeepCore's reflect) is in every teacher, view table, score and
    student spec, so changing it reruns them all; SVHN's spec says: no crop, no flip."""
    plans = {mode: Plan(load(ROOT / "config.yaml", {"augmentation": {"padding_mode": mode}})) for mode in ("reflect", "constant")}
    assert load(ROOT / "config.yaml")["augmentation"]["padding_mode"] == "reflect"
    for kind in ("teacher", "teacher_views", "score", "student"):
        keys = list(plans["reflect"].jobs(kind))
        assert keys and keys == list(plans["constant"].jobs(kind))
        for key in keys:
            spec = plans["reflect"].spec(kind, key)
            for s in spec if isinstance(spec, list) else [spec]:
                assert s["augmentation"] == {"padding": 1, "flip": False, "padding_mode": "reflect"}  # digits
            assert plans["reflect"].settings(kind, key) != plans["constant"].settings(kind, key), (kind, key)
    svhn = Plan(load(ROOT / "config.yaml", {"dataset": "svhn"}))
    key = next(iter(svhn.jobs("teacher")))
    assert svhn.spec("teacher", key)["augmentation"] == {"padding": 0, "flip": False, "padding_mode": "reflect"}


def test_the_subset_runs_recorded_in_docs_results_are_runs_of_todays_plan():
    """docs/results/subset holds the claims of the `subset` reruns (its README): every recorded run
    is a run of today's `subset` plan, of its first round or one an adaptive round may add, with the
    plan's axes and epochs, and every first-round run of those claims is there."""
    folder = ROOT / "docs/results/subset"
    recorded = pd.read_csv(folder / "runs.csv")
    recorded["rel"] = recorded.run_dir.str.split("/", n=2).str[2]
    papers = sorted(path.name for path in folder.iterdir() if path.is_dir() and path.name.startswith("P"))
    plan = Plan(load(ROOT / "config.yaml", {"preset": "subset", "papers": papers}))
    jobs = {job.dir: job for job in [*plan.grid.every_teacher, *plan.grid.students, *plan.grid.replicate_students]}
    assert set(recorded.rel) <= set(jobs)
    claims = [path.name.removesuffix(".verdict.json") for paper in papers for path in (folder / paper).glob("*.verdict.json")]
    assert claims
    first = {job.dir for claim in claims for job in plan.grid.experiments[plan.cfg["claims"][claim]["experiment"]]}
    assert first <= set(recorded.rel)
    for row in recorded[recorded.role == "student"].itertuples():
        job = jobs[row.rel]
        axes = job.axes()
        assert (axes["arch"], axes["keep"], axes["loss"], axes["selection"], axes["seed"], axes["teacher"]) == (
            row.arch,
            row.keep,
            row.loss,
            row.selection,
            row.seed,
            None if pd.isna(row.teacher) else row.teacher,
        )
        assert axes.get("alpha", float("nan")) == pytest.approx(row.alpha, nan_ok=True)
        if job.distilled:  # a distilled set's evaluation: its networks' passes (epochs + 1), its set's axes
            assert evaluation_recipe(plan.cfg, job.distilled)["epochs"] + 1 == row.epochs
            assert (axes["distill"], axes["ipc"], axes["ite"], axes["ite_tails"]) == (row.distill, row.ipc, row.ite, row.ite_tails)
        else:
            assert plan.cfg["recipes"][job.recipe]["epochs"] == row.epochs


def test_the_planning_layer_imports_no_torch_pandas_or_scipy():
    code = (
        "import sys; from kdprune.plan import Plan; p = Plan.from_config('config.yaml', {'preset': 'paper'}); "
        "[p.settings('student', k) for k in p.jobs('student')]; [p.inputs('score', k) for k in p.jobs('score')]; "
        "heavy = sorted({'torch', 'pandas', 'scipy', 'numpy'} & set(sys.modules)); print(heavy); sys.exit(bool(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_ccs_plans_its_cutoff_score_beside_its_selection_score_once():
    """CCS stratified over forgetting but cut by AUM: the student reads both score files, and the
    AUM score job that the shipped `ccs` also reads is planned once."""
    cfg = load(ROOT / "config.yaml")
    cfg["scores"]["ccs_forgetting"] = {"score": "forgetting", "cutoff_score": "aum", "rule": "ccs"}
    exp = {"paper": "T", "student": ["resnet8"], "selection": ["ccs", "ccs_forgetting"], "keep": [0.2], "seed": [0], "loss": {"ce": {}}}
    plan = Plan(normalise({**cfg, "experiments": {"e": exp}, "claims": {}}))
    assert sorted(s.path for s in plan.grid.scores) == ["digits/scores/aum-s0.npz", "digits/scores/forgetting-s0.npz"]
    by_method = {s.selection_method: s for s in plan.grid.students}
    assert by_method["ccs"].cutoff is None  # cut by the score it selects by: one file
    assert by_method["ccs_forgetting"].cutoff.method == "aum"
    group = by_method["ccs_forgetting"].group_dir
    assert plan.inputs("student", group) == {
        "scores": ["results/smoke/digits/scores/forgetting-s0.npz"],
        "cutoff_scores": ["results/smoke/digits/scores/aum-s0.npz"],
    }
    (spec,) = plan.spec("student", group)
    assert spec["cutoff_spec"]["method"] == "aum" and spec["score_spec"]["method"] == "forgetting"
    assert "cutoff_spec" not in plan.spec("student", by_method["ccs"].group_dir)[0]


def test_rounds_never_add_a_seed_another_experiment_trains_first():
    """With the paper preset and `seeds: [7]`, every experiment's first round is 7, 8, 9 except
    ImageNet's (its own list 0, 1 continued to 2): no round adds 7, 8 or 9, and ImageNet's added
    seeds skip them."""
    cfg = load(ROOT / "config.yaml", {"preset": "paper", "seeds": [7]})
    exps = cfg["experiments"]
    assert exps["p1_alpha"]["seed"] == [7, 8, 9] and exps["p1_imagenet"]["seed"] == [0, 1, 2]
    first = {s for e in exps.values() for s in e["seed"]}
    for name, exp in exps.items():
        assert len(exp["seed"]) + len(exp["replicate_seeds"]) == 10 and not first & set(exp["replicate_seeds"]), name
    assert exps["p1_imagenet"]["replicate_seeds"] == [10, 11, 12, 13, 14, 15, 16]
    again = normalise(copy.deepcopy(cfg))  # the plan file is normalised again by every job: the same seeds
    assert all(again["experiments"][n]["replicate_seeds"] == e["replicate_seeds"] for n, e in exps.items())


def test_a_supervise_share_reads_its_teachers_data_selection_score():
    """P3's data selection: runs with `supervise` < 1 read the ds_influence score of their own
    teacher (one per teacher seed: score_seed teacher); runs supervising every sample do not, and
    keep their folders (x-omit)."""
    cfg = load(ROOT / "config.yaml")
    exp = {"paper": "T", "student": ["resnet8"], "teacher": ["resnet14"], "selection": ["random"], "keep": [1.0], "seed": [0, 1]}
    exp |= {"loss": {"kd": {"supervise": [1, 0.5]}, "dkd": {"supervise": [0.5], "revise": [0.8]}}}
    plan = Plan(normalise({**cfg, "experiments": {"e": exp}, "claims": {}}))
    runs = {s.dir.split("/keep1/")[1]: s for s in plan.grid.students}
    assert set(runs) == {
        f"{loss}/s{seed}"
        for seed in (0, 1)
        for loss in ("kd-resnet14-teacher-s0-a0.9-T4", "kd-resnet14-teacher-s0-a0.9-T4-DS0.5", "dkd-resnet14-teacher-s0-c1-a1-b8-T4-w20-LR0.8-DS0.5")
    }
    selecting = [s for s in plan.grid.students if s.supervision is not None]
    assert len(selecting) == 4 and all(dict(s.loss_params)["supervise"] == 0.5 for s in selecting)
    assert {s.supervision.method for s in selecting} == {"ds_influence"} and len({s.supervision.path for s in selecting}) == 1
    key = next(k for k, (job, *_) in plan.jobs("student").items() if job.supervision is not None)
    assert plan.inputs("student", key)["supervision"] == [f"{plan.results}/{s.supervision.path}" for s in plan.job("student", key)]
    assert "supervision_spec" in plan.spec("student", key)[0]
    cfg["scores"]["ds_influence"]["teacher"] = "resnet32"
    with pytest.raises(ConfigError, match=r"^config: scores.ds_influence.teacher = 'resnet32' is not allowed"):
        check_names(normalise({**cfg, "experiments": {"e": exp}, "claims": {}}))
