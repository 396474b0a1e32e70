"""Nothing lost under faults (issue #17): jobs stopped by real signals or killed, then rerun, end
with exactly the results of an uninterrupted run (CPU: deterministic).

- SIGTERM / SIGUSR2 (os.kill) to a real `python -m kdprune run` job mid-training: exit status 75,
  one stderr line, a checksummed mid-epoch checkpoint; each rerun resumes mid-epoch.
- SIGKILL of that job and of a real score job (forgetting: its on_batch record is checkpointed
  too): the rerun resumes from the last checkpoint.
- In process, a real signal sent by the step's own loss: a stack of two seeds, an InfoBatch run and
  a run with an AUM recorder and an InfoBatch run on the CUDA-graph path (its capture stood in for
  on a CPU), each stopped mid-epoch and resumed.
Faults injected: 9 (5 SIGTERM, 2 SIGUSR2, 2 SIGKILL)."""

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from kdprune.data.images import load_dataset
from kdprune.files import checksum_path, load_torch, read_json
from kdprune.jobs.runners import compute_score, run_training
from kdprune.losses.kd import CrossEntropy
from kdprune.models import create_model
from kdprune.plan import Plan
from kdprune.pruning.aum import MarginRecorder
from kdprune.stopping import PREEMPTED_EXIT, Preempted, stop_on_signals
from kdprune.train.accel import Accel
from kdprune.train.infobatch import InfoBatch
from kdprune.train.loop import Recipe, fit_stack, seed_everything
from kdprune.train.step import StepRunner

REPO = Path(__file__).resolve().parent.parent.parent
CPU = torch.device("cpu")
TIMES = {"train_seconds", "epoch_seconds", "train_images_per_s", "wall_seconds"}  # wall clock: differs from run to run
ENV = dict(os.environ, KDPRUNE_FORKSERVER="", PYTHONUNBUFFERED="1")

TEACHER = "digits/teachers/resnet8-teacher-s0"  # 1347 images: 22 steps an epoch
TEACHER_CONFIG = {"recipes": {"teacher": {"epochs": 5}}}
SCORE = "digits/scores/forgetting-s0.npz"
SCORE_CONFIG = {"recipes": {"score": {"epochs": 4}}, "scores": {"forgetting": {"arch": "resnet8", "runs": 2}}}

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


# -- real jobs, real signals ----------------------------------------------------------------------


def job_plan(folder: Path, overrides: dict) -> Plan:
    """The smoke plan with `overrides`; its jobs run in `folder` (their outputs: under folder/results)."""
    plan = Plan.from_config(REPO / "config.yaml", overrides)
    plan.plan_file = str(folder / "plan.json")
    plan.write()
    return plan


def output(plan: Plan, kind: str, key: str, name: str) -> tuple[Path, Path]:
    """An output of a job: (its path as the job names it, relative to its folder; the path from here)."""
    path = Path(plan.outputs(kind, key)[name])
    return path, Path(plan.plan_file).parent / path


def start(plan: Plan, kind: str, key: str) -> subprocess.Popen:
    args = [sys.executable, "-m", "kdprune", "--threads", "1", "run", kind, "--plan", plan.plan_file, "--key", key]
    return subprocess.Popen(args, cwd=Path(plan.plan_file).parent, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, signal_after: str | None = None, sig: int = signal.SIGTERM) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of the job; with `signal_after`, `sig` is sent (os.kill) as soon
    as a line of its log contains that text, while the job trains on."""
    seen = []
    if signal_after is not None:
        for line in proc.stdout:
            seen.append(line)
            if signal_after in line:
                os.kill(proc.pid, sig)
                break
    out, err = proc.communicate(timeout=600)
    return proc.returncode, "".join(seen) + out, err


def untimed(metrics: dict) -> dict:
    keys = ("final_acc", "best_acc", "best_epoch", "epochs", "sample_steps", "subset_sha")
    return {"history": [{k: v for k, v in h.items() if k not in TIMES} for h in metrics["history"]], **{k: metrics[k] for k in keys}}


def same_teacher(run_dir: Path, reference: Path) -> bool:
    weights = load_torch(run_dir / "model.pt")["state_dict"], load_torch(reference / "model.pt")["state_dict"]
    return untimed(read_json(run_dir / "metrics.json")) == untimed(read_json(reference / "metrics.json")) and all(
        torch.equal(weights[0][k], weights[1][k]) for k in weights[1]
    )


def quiet(msg: str) -> None:
    pass


@pytest.fixture(scope="module")
def reference_teacher(tmp_path_factory) -> Path:
    """The teacher job run once without faults (in this process, on one thread like the jobs)."""
    plan = job_plan(tmp_path_factory.mktemp("reference"), TEACHER_CONFIG)
    run_dir = tmp_path_factory.mktemp("reference-teacher")
    run_training(plan.spec("teacher", TEACHER), run_dir, log=quiet)
    return run_dir


def stop_line(sig: int, label: str, checkpoint: Path, line: str) -> tuple[int, int]:
    """(epoch, step) of the one stderr line of a stopped job."""
    match = re.fullmatch(
        rf"kdprune run: \[{re.escape(label)}\] stopped by {signal.Signals(sig).name} at epoch (\d+) step (\d+): "
        rf"checkpoint written to {re.escape(str(checkpoint))}; rerun to resume",
        line,
    )
    assert match, line
    return int(match[1]), int(match[2])


def resume_point(checkpoint: Path) -> str | None:
    """Where a rerun resumes from a checkpoint, as its log says; None if a kill caught the
    checkpoint being written (its checksum fails)."""
    try:
        state = load_torch(checkpoint, checksum=True)
    except ValueError:
        return None
    partial = state.get("partial")  # a kill right after a resumed epoch's log line, before its checkpoint
    return f"at epoch {state['epoch']}" if partial is None else f"in epoch {state['epoch'] + 1} after step {partial['step']}"


def test_a_job_stopped_by_sigterm_sigusr2_and_sigkill_mid_epoch_resumes_each_time_to_the_uninterrupted_result(tmp_path, reference_teacher):
    """`kdprune run teacher`, 5 epochs: SIGTERM, SIGUSR2, each sent once the process has logged an
    epoch of its own (so mid-way through its next), then SIGKILL the same way, then a last rerun."""
    plan = job_plan(tmp_path, TEACHER_CONFIG)
    model, run_dir = (path.parent for path in output(plan, "teacher", TEACHER, "model"))
    named, checkpoint = model / "checkpoint.pt", run_dir / "checkpoint.pt"
    resumed_at = None
    for sig in (signal.SIGTERM, signal.SIGUSR2):
        status, out, err = finish(start(plan, "teacher", TEACHER), signal_after="] epoch ", sig=sig)
        assert status == PREEMPTED_EXIT, err[-2000:]
        assert len(err.strip().splitlines()) == 1, err
        epoch, step = stop_line(sig, "teacher resnet8 s0", named, err.strip())
        if resumed_at is not None:  # this run went on from the previous stop
            assert f"[teacher resnet8 s0] resuming from {named} in epoch {resumed_at[0]} after step {resumed_at[1]}" in out
        state = load_torch(checkpoint, checksum=True)  # written with its checksum file
        assert state["epoch"] == epoch - 1 and state["partial"]["step"] == step and 1 <= step <= 22
        assert not (run_dir / "metrics.json").exists()
        resumed_at = (epoch, step)
    status, out, _ = finish(start(plan, "teacher", TEACHER), signal_after="] epoch ", sig=signal.SIGKILL)
    assert status == -signal.SIGKILL and not (run_dir / "metrics.json").exists()
    assert f"resuming from {named} in epoch {resumed_at[0]} after step {resumed_at[1]}" in out
    point = resume_point(checkpoint)
    status, out, err = finish(start(plan, "teacher", TEACHER))
    assert status == 0 and err == "", err[-2000:]
    [line] = [line for line in out.splitlines() if "resuming" in line or "ignoring" in line]
    # The kill lands between writes (almost always): the rerun resumes from the last checkpoint.
    # Within the write of a checkpoint, its checksum no longer matches: the rerun starts over.
    assert (line == f"[teacher resnet8 s0] resuming from {named} {point}") if point else ("ignoring" in line), line
    assert same_teacher(run_dir, reference_teacher)
    assert not checkpoint.exists() and not checksum_path(checkpoint).exists()  # a finished run keeps no checkpoint


def test_a_score_job_stopped_and_killed_in_its_second_run_ends_with_the_uninterrupted_scores(tmp_path):
    """Forgetting with two training runs: SIGTERM mid-epoch in run 2 (its record of every presentation
    so far goes into the checkpoint), SIGKILL in the rerun, then a rerun to the end. Run 1's
    finished checkpoint is reused (no training), run 2 resumes; the scores equal an uninterrupted
    job's, and no checkpoint is left."""
    plan = job_plan(tmp_path, SCORE_CONFIG)
    reference = tmp_path / "reference.npz"
    compute_score(plan.spec("score", SCORE), reference, quiet)  # in this process, on one thread like the jobs
    named, out_file = output(plan, "score", SCORE, "scores")
    run1, run2 = (named.with_name(f"forgetting-s0.run{k}.pt") for k in (0, 1))
    status, _, err = finish(start(plan, "score", SCORE), signal_after="[forgetting run 2/2] epoch ", sig=signal.SIGTERM)
    assert status == PREEMPTED_EXIT and len(err.strip().splitlines()) == 1, err[-2000:]
    epoch, step = stop_line(signal.SIGTERM, "forgetting run 2/2", run2, err.strip())
    record = load_torch(out_file.with_name(run2.name), checksum=True)["on_batch"]
    assert record["seen"][:, epoch - 1].sum() == min(64 * step, 1347)  # the stopped epoch's presentations so far
    status, out, _ = finish(start(plan, "score", SCORE), signal_after="[forgetting run 2/2] epoch ", sig=signal.SIGKILL)
    assert status == -signal.SIGKILL and f"[forgetting run 2/2] resuming from {run2} in epoch {epoch} after step {step}" in out
    point = resume_point(out_file.with_name(run2.name))
    status, out, err = finish(start(plan, "score", SCORE))
    assert status == 0 and err == "", err[-2000:]
    assert f"[forgetting run 1/2] resuming from {run1} at epoch 4" in out  # finished: nothing left to train
    assert (f"[forgetting run 2/2] resuming from {run2} {point}" in out) if point else ("ignoring" in out), out
    with np.load(out_file) as job, np.load(reference) as uninterrupted:
        assert np.array_equal(job["scores"], uninterrupted["scores"])
    assert sorted(p.name for p in out_file.parent.iterdir()) == ["forgetting-s0.json", "forgetting-s0.npz"]


# -- in process: a real signal from inside a step -------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


class SignalsAt(CrossEntropy):
    """Cross-entropy that sends this process a real signal (os.kill) during its `call`-th call, i.e.
    in the middle of a training step."""

    def __init__(self, call: int, sig: int = signal.SIGTERM):
        self.call, self.sig, self.calls = call, sig, 0

    def _count(self) -> None:
        self.calls += 1
        if self.calls == self.call:
            os.kill(os.getpid(), self.sig)

    def __call__(self, logits, targets, teacher_logits=None, sample_weight=None):
        self._count()
        return super().__call__(logits, targets, teacher_logits, sample_weight)

    def per_sample(self, logits, targets, teacher_logits=None):
        self._count()
        return super().per_sample(logits, targets, teacher_logits)


def untimed_result(result: dict) -> dict:
    return untimed({**result, "subset_sha": None})


def train(data, subsets, seeds, recipe, objective, checkpoint=None, on_batch=None, logs=None, accel=Accel()):
    models = []
    for seed in seeds:
        seed_everything(seed, CPU)
        models.append(create_model("resnet8", 10, 1))
    log = logs.append if logs is not None else lambda m: None
    options = dict(device=CPU, checkpoint=checkpoint, run_hash="h", log=log, on_batch=on_batch, accel=accel)
    return models, fit_stack(models, data, subsets, recipe, objective, seeds=seeds, **options)


def stopped_then_resumed(data, subsets, seeds, recipe, call, sig, checkpoint, recorder=None, accel=Accel()):
    """Train until the loss's `call`-th call sends `sig`, then rerun: (models, results, the stop's
    message, the rerun's log, the rerun's on_batch recorder)."""
    with stop_on_signals(), pytest.raises(Preempted) as stop:
        train(data, subsets, seeds, recipe, SignalsAt(call, sig), checkpoint, recorder and recorder(), accel=accel)
    logs = []
    on_batch = recorder and recorder()
    models, results = train(data, subsets, seeds, recipe, CrossEntropy(), checkpoint, on_batch, logs, accel)
    return models, results, str(stop.value), logs, on_batch


def assert_same(a: tuple, b: tuple) -> None:
    for model_a, ra, model_b, rb in zip(*a, *b):
        assert untimed_result(ra) == untimed_result(rb)
        assert all(torch.equal(x, y) for x, y in zip(model_a.state_dict().values(), model_b.state_dict().values()))


def test_a_stack_of_two_seeds_stopped_mid_epoch_resumes_to_the_uninterrupted_result(digits, tmp_path):
    subsets, seeds = [np.arange(0, 1347, 4), np.arange(1, 1347, 4)], [0, 1]  # 337 each: 6 steps an epoch
    recipe = Recipe(epochs=3, batch_size=64, lr=0.05, schedule="cosine")
    ckpt = tmp_path / "stack.pt"
    # the stack's loss runs once per student and step: call 18 is in step 3 of epoch 2
    models, results, message, logs, _ = stopped_then_resumed(digits, subsets, seeds, recipe, 18, signal.SIGUSR2, ckpt)
    assert message == f"[train s0] stopped by SIGUSR2 at epoch 2 step 3: checkpoint written to {ckpt}; rerun to resume"
    assert f"[train s0] resuming from {ckpt} in epoch 2 after step 3" in logs
    assert_same((models, results), train(digits, subsets, seeds, recipe, CrossEntropy()))


def test_an_infobatch_run_stopped_in_a_pruned_epoch_resumes_to_the_uninterrupted_result(digits, tmp_path):
    subset = [np.arange(0, 1347, 2)]  # 674: 11 steps in epoch 1 (every score still 3.0), fewer in the pruned epoch 2
    recipe = Recipe(epochs=3, batch_size=64, lr=0.05, schedule="cosine", infobatch=InfoBatch(ratio=0.5, delta=0.875))
    ckpt = tmp_path / "infobatch.pt"
    models, results, message, logs, _ = stopped_then_resumed(digits, subset, [0], recipe, 13, signal.SIGTERM, ckpt)
    assert message == f"[train s0] stopped by SIGTERM at epoch 2 step 2: checkpoint written to {ckpt}; rerun to resume"
    assert f"[train s0] resuming from {ckpt} in epoch 2 after step 2" in logs
    uninterrupted = train(digits, subset, [0], recipe, CrossEntropy())
    assert results[0]["history"][1]["samples"] < 674  # the stopped epoch pruned
    assert_same((models, results), uninterrupted)


def test_a_training_dynamics_record_survives_a_stop_mid_epoch(digits, tmp_path):
    """AUM's on_batch recorder goes into the checkpoint: the resumed run's margins over every
    presentation equal an uninterrupted run's (a fresh recorder alone would miss the first steps)."""
    everything = [np.arange(1347)]  # every sample once an epoch: 22 steps
    recipe = Recipe(epochs=2, batch_size=64, lr=0.05, schedule="cosine")
    ckpt = tmp_path / "aum.pt"

    def recorder():
        return MarginRecorder(1347, 2)

    models, results, message, _, resumed = stopped_then_resumed(digits, everything, [0], recipe, 27, signal.SIGTERM, ckpt, recorder)
    assert message.startswith("[train s0] stopped by SIGTERM at epoch 2 step 5: ")
    whole = recorder()
    uninterrupted = train(digits, everything, [0], recipe, CrossEntropy(), on_batch=whole)
    assert np.array_equal(resumed.aum(), whole.aum())
    assert_same((models, results), uninterrupted)


def test_a_run_on_the_graph_path_stopped_mid_epoch_resumes_to_the_uninterrupted_result(digits, tmp_path, monkeypatch):
    """The stop is a host-side check between steps: on the CUDA-graph path (its capture seam stood in
    for on a CPU, as in test_fast_path_guard.py) an InfoBatch run stopped after its graph was
    captured resumes, warms up and captures again, and ends as an uninterrupted graph-path run."""
    from test_fast_path_guard import EagerGraphs

    monkeypatch.setattr(StepRunner, "graphs", EagerGraphs())
    subset = [np.arange(0, 1347, 2)]
    recipe = Recipe(epochs=3, batch_size=64, lr=0.05, schedule="cosine", infobatch=InfoBatch(ratio=0.5, delta=0.875))
    graphs = Accel(cuda_graphs=True)
    ckpt = tmp_path / "graphs.pt"
    models, results, message, _, _ = stopped_then_resumed(digits, subset, [0], recipe, 14, signal.SIGTERM, ckpt, accel=graphs)
    assert message.startswith("[train s0] stopped by SIGTERM at epoch 2 step ")  # the capture's check ran one step twice
    uninterrupted = train(digits, subset, [0], recipe, CrossEntropy(), accel=graphs)
    assert results[0]["fast_path_fallback"] is None and StepRunner.graphs.captures == 3  # stopped, resumed, uninterrupted: once each
    assert_same((models, results), uninterrupted)
