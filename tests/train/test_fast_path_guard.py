"""The CUDA-graph fast path is guarded (kdprune.train.step): a capture or replay that raises, or a
first replay that disagrees with an eager step from the same state, turns the graph off with one
log line, and the run goes on exactly as a plain run would, its reason in `fast_path_fallback` and
in the runs table. CUDA graphs do not exist on a CPU, so the tests stand in for the capture seam
(`StepRunner.graphs`): a stand-in that replays by running the step is a correct capture, and the
others fail in one way each. The real capture is checked by the `gpu` tests of test_fast_path.py.
Tiny digits runs (resnet8, 300 images, batches of 64: 4 full-size steps and one of 44 per epoch,
InfoBatch pruning by the scores that the steps write)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kdprune.data.images import load_dataset
from kdprune.files import write_json
from kdprune.losses.kd import CrossEntropy
from kdprune.models import create_model
from kdprune.report.runs import read_runs_table, write_runs_table
from kdprune.train.accel import Accel
from kdprune.train.infobatch import InfoBatch
from kdprune.train.loop import Recipe, fit_stack, seed_everything
from kdprune.train.step import REPLAY_ATOL, REPLAY_RTOL, WARMUP_STEPS, CudaGraphs, StepRunner, disagreement

CPU = torch.device("cpu")
SUBSET = np.arange(300)
RECIPE = Recipe(epochs=3, batch_size=64, lr=0.05, infobatch=InfoBatch())  # epoch 2 prunes by epoch 1's scores
TIMINGS = ("train_seconds", "epoch_seconds")
OFF = "CUDA-graph fast path off"

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


class EagerGraphs(CudaGraphs):
    """A correct capture on a CPU: the warm-up is an eager step, and a replay runs the step on the
    graph's static inputs. Counts its captures and replays; `replayed` is where subclasses fail."""

    def __init__(self):
        self.captures = self.replays = 0

    def warm_up(self, runner, source, packed):
        return runner.body(source, packed)

    def capture(self, runner, source, static_in):
        self.captures += 1

        def replay():
            self.replays += 1
            return self.replayed(runner, runner.body(source, static_in))

        return replay

    def replayed(self, runner, out):
        return out


class CaptureRaises(EagerGraphs):
    def capture(self, runner, source, static_in):
        raise RuntimeError("CUDA error: operation not permitted when stream is capturing\nCompile with TORCH_USE_CUDA_DSA")


class ReplayRaises(EagerGraphs):
    """The `at`-th replay fails to launch (before any of the step runs)."""

    def __init__(self, at: int):
        super().__init__()
        self.at = at

    def capture(self, runner, source, static_in):
        run = super().capture(runner, source, static_in)

        def replay():
            if self.replays + 1 == self.at:
                raise RuntimeError("CUDA error: an illegal memory access was encountered")
            return run()

        return replay


class Perturbed(EagerGraphs):
    """Every replay leaves one thing off by `by` after running the step: its logits, or every other
    entry of a weight, a momentum buffer or the InfoBatch scores that it wrote."""

    def __init__(self, what: str, by: float = 1e-2):
        super().__init__()
        self.what, self.by = what, by

    def replayed(self, runner, out):
        logits, y = out
        with torch.no_grad():
            if self.what == "logits":
                return logits + self.by, y
            target = {
                "weight": lambda: next(runner.model.parameters()),
                "momentum": lambda: runner.optimizer.buffers[0],
                "scores": lambda: runner.infobatch.scores,
            }[self.what]()
            target.view(-1)[::2].add_(self.by)  # every other entry: InfoBatch's choice of samples changes with it
        return out


def train(data, graphs: EagerGraphs | None, monkeypatch, models: int = 1):
    """Trains seeds 0.. from scratch, with graphs through the stand-in (None: a plain run);
    returns the results, the models' weights and the log."""
    logs: list[str] = []
    accel = Accel(cuda_graphs=graphs is not None)
    if graphs is not None:
        monkeypatch.setattr(StepRunner, "graphs", graphs)
    seeds = list(range(models))
    nets = []
    for seed in seeds:
        seed_everything(seed, CPU)
        nets.append(create_model("resnet8", 10, 1))
    recipe = RECIPE if models == 1 else Recipe(epochs=2, batch_size=64, lr=0.05)  # stacks train without InfoBatch
    results = fit_stack(nets, data, [SUBSET] * models, recipe, CrossEntropy(), seeds=seeds, device=CPU, accel=accel, log=logs.append)
    return results, [torch.cat([t.detach().flatten().double() for t in net.state_dict().values()]) for net in nets], logs


def assert_same_run(got, want):
    """The same training, bit for bit: every epoch's losses, samples, accuracy and lr, and the weights."""
    (results, weights, _), (plain_results, plain_weights, _) = got, want
    for result, plain in zip(results, plain_results):
        assert [{k: v for k, v in h.items() if k not in TIMINGS} for h in result["history"]] == [
            {k: v for k, v in h.items() if k not in TIMINGS} for h in plain["history"]
        ]
        assert result["sample_steps"] == plain["sample_steps"] and result["final_acc"] == plain["final_acc"]
    for w, plain_w in zip(weights, plain_weights):
        assert torch.equal(w, plain_w)


@pytest.fixture(scope="module")
def plain(digits):
    with pytest.MonkeyPatch.context() as monkeypatch:
        return train(digits, None, monkeypatch)


def test_a_correct_capture_is_accepted_and_trains_as_the_plain_path(digits, plain, monkeypatch):
    graphs = EagerGraphs()
    got = train(digits, graphs, monkeypatch)
    results, _, logs = got
    assert results[0]["fast_path_fallback"] is None and not [line for line in logs if OFF in line]
    full_steps = sum(h["samples"] // RECIPE.batch_size for h in results[0]["history"])
    assert graphs.captures == 1 and graphs.replays == full_steps - WARMUP_STEPS  # every full step after the warm-up replayed
    assert_same_run(got, plain)
    assert plain[0][0]["fast_path_fallback"] is None


RAISED = "CUDA error: an illegal memory access was encountered"
DISAGREES = "the first replay disagrees with an eager step:"


@pytest.mark.parametrize(
    "graphs,reason,replays",
    [
        (CaptureRaises(), "capture raised RuntimeError: CUDA error: operation not permitted when stream is capturing Compile with", 0),
        (ReplayRaises(at=1), f"replay raised RuntimeError: {RAISED}", 0),
        (ReplayRaises(at=4), f"replay raised RuntimeError: {RAISED}", 3),  # a later replay: that step runs eagerly
        (Perturbed("logits"), f"{DISAGREES} logits differs by up to 0.01", 1),
        (Perturbed("weight"), f"{DISAGREES} model conv1.weight differs by up to 0.01", 1),
        (Perturbed("momentum"), f"{DISAGREES} momentum 0 differs by up to 0.01", 1),
        (Perturbed("scores", by=1.0), f"{DISAGREES} InfoBatch scores differs by up to 1 ", 1),
    ],
    ids=["capture-raises", "first-replay-raises", "fourth-replay-raises", "logits", "weight", "momentum", "infobatch-scores"],
)
def test_a_failing_graph_falls_back_with_one_line_and_trains_as_the_plain_path(digits, plain, monkeypatch, graphs, reason, replays):
    got = train(digits, graphs, monkeypatch)
    results, _, logs = got
    off = [line for line in logs if OFF in line]
    assert len(off) == 1 and off[0].startswith(f"[train s0] {OFF}: {reason}") and off[0].endswith("; continuing eagerly"), off
    why = results[0]["fast_path_fallback"]
    assert why.startswith(reason) and "\n" not in why and off[0] == f"[train s0] {OFF}: {why}; continuing eagerly"
    assert graphs.replays == replays  # none after the fallback: the rest of the run is eager
    assert_same_run(got, plain)  # the failed step's state was put back, and the steps after it ran as plain ones


def test_the_stand_ins_do_fail_when_their_fault_is_not_caught(digits, plain, monkeypatch):
    """The fallback tests mean something: a perturbed replay that went unchecked changes the run."""
    graphs = Perturbed("weight")
    monkeypatch.setattr("kdprune.train.step.disagreement", lambda eager, replayed: None)
    results, weights, logs = train(digits, graphs, monkeypatch)
    assert results[0]["fast_path_fallback"] is None and graphs.replays > 1
    assert not torch.equal(weights[0], plain[1][0])


def test_a_stack_falls_back_once_for_all_its_students(digits, monkeypatch):
    want = train(digits, None, monkeypatch, models=2)
    got = train(digits, Perturbed("logits"), monkeypatch, models=2)
    off = [line for line in got[2] if OFF in line]
    assert len(off) == 1 and off[0].startswith(f"[train s0, train s1] {OFF}: the first replay disagrees"), off
    assert [r["fast_path_fallback"] for r in got[0]] == [got[0][0]["fast_path_fallback"]] * 2 and got[0][0]["fast_path_fallback"]
    assert_same_run(got, want)


def test_the_tolerance_takes_reassociation_and_refuses_more():
    """Within REPLAY_RTOL / REPLAY_ATOL (and 2 ulps of bf16 for bf16 tensors) a replay agrees;
    beyond, the first differing tensor is named; integer tensors must be equal."""
    a = torch.linspace(-3, 3, 101)
    assert disagreement({"w": a}, {"w": a * (1 + REPLAY_RTOL / 2)}) is None
    assert disagreement({"w": a}, {"w": a + REPLAY_ATOL / 2}) is None
    assert disagreement({"w": a}, {"w": a * (1 + 3 * REPLAY_RTOL)}) == f"w differs by up to 0.009 (rtol {REPLAY_RTOL:g}, atol {REPLAY_ATOL:g})"
    nan = a.clone()
    nan[0] = float("nan")
    assert disagreement({"w": nan}, {"w": nan.clone()}) is None  # the epoch's loss check reports a NaN, not this one
    assert disagreement({"w": a}, {"w": nan}).startswith("w differs by up to inf")
    half = a.bfloat16()
    assert disagreement({"logits": half}, {"logits": (half.float() * (1 + 2**-7)).bfloat16()}) is None  # one bf16 ulp
    assert disagreement({"logits": half}, {"logits": (half.float() * 1.05).bfloat16()}).startswith("logits differs")
    labels = torch.arange(5)
    assert disagreement({"labels": labels}, {"labels": labels.flip(0)}) == "labels differs (4 of 5 entries)"
    assert disagreement({"labels": labels}, {"labels": labels.float()}).startswith("labels is torch.float32 [5] in the replay")


def test_the_runs_table_records_the_fallback(digits, tmp_path, monkeypatch):
    results = [train(digits, graphs, monkeypatch)[0][0] for graphs in (EagerGraphs(), Perturbed("logits"))]
    paths = []
    for k, result in enumerate(results):
        paths.append(tmp_path / f"run{k}" / "metrics.json")
        write_json(paths[-1], {"spec": {"axes": {"seed": k}, "recipe": result["recipe"]}, **result})
    write_runs_table(paths, tmp_path / "runs.csv", "test")
    runs = read_runs_table(tmp_path / "runs.csv")
    assert runs["fast_path_fallback"].isna().tolist() == [True, False]
    assert runs["fast_path_fallback"][1] == results[1]["fast_path_fallback"]
    assert runs["fast_path_fallback"][1].startswith("the first replay disagrees with an eager step: logits")
