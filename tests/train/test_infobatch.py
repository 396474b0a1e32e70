"""InfoBatch (kdprune.train.infobatch) in the one training loop: the per-epoch rule on hand-set
scores, then tiny digits runs (resnet8, 3 epochs, half the training set) that record what every
epoch kept, the weights it trained with and the losses the step saw."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from kdprune.data.images import load_dataset
from kdprune.losses.kd import CrossEntropy
from kdprune.models import create_model
from kdprune.train.infobatch import INITIAL_SCORE, InfoBatch, InfoBatchState
from kdprune.train.loop import Recipe, fit, fit_stack, seed_everything

CPU = torch.device("cpu")
SUBSET = np.arange(0, 1347, 2)  # 674 digits
EPOCHS = 3  # delta 0.875: epochs 1-2 prune (the first has no loss yet, so keeps all), epoch 3 anneals
EPOCH_SAMPLES = InfoBatchState.epoch_samples  # unpatched, whatever a test has patched


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


# -- the rule ---------------------------------------------------------------------------------------


def test_which_epochs_prune():
    ib = InfoBatch()
    assert (ib.ratio, ib.delta, ib.keep_ratio) == (0.5, 0.875, 0.5)
    assert ib.pruned_epochs(200) == 175 and ib.prunes(174, 200) and not ib.prunes(175, 200)  # the last 12.5% anneal
    assert [ib.prunes(e, 3) for e in range(3)] == [True, True, False]  # epoch + 1 <= 2.625
    assert InfoBatch(delta=0.0).pruned_epochs(10) == 0 and InfoBatch(delta=1.0).pruned_epochs(10) == 10
    for bad in (dict(ratio=-0.1), dict(ratio=0.95), dict(delta=1.5), dict(cost_share=0.0), dict(cost_share=1.2)):
        with pytest.raises(ValueError, match="infobatch"):
            InfoBatch(**bad)


def _state(scores: list[float], ratio: float = 0.5, epochs: int = 8) -> InfoBatchState:
    subset = torch.arange(1, 2 * len(scores), 2)  # odd sample indices of a set of 2n
    state = InfoBatchState(InfoBatch(ratio=ratio), subset, 2 * len(scores), epochs, CPU)
    state.scores[subset] = torch.tensor(scores)
    return state


def test_an_epoch_drops_only_below_mean_samples_and_rescales_exactly_the_kept_ones():
    scores = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 5.0, 6.0, 7.0]  # mean 2.05: the first seven are well learned
    state = _state(scores, ratio=0.5)
    low, high = state.subset[:7], state.subset[7:]
    kept = state.epoch_samples(0, torch.Generator().manual_seed(0))
    assert len(kept) == len(set(kept.tolist())) == 3 + int(0.5 * 7)
    assert set(high.tolist()) <= set(kept.tolist())  # above the mean: always trained
    kept_low = sorted(set(kept.tolist()) & set(low.tolist()))
    assert len(kept_low) == 3
    expected = torch.ones(20)
    expected[kept_low] = 2.0  # 1 / (1 - r)
    assert torch.equal(state.weights, expected)
    # Entries outside the subset are never kept; another draw keeps other low samples, at the same count.
    assert all(i % 2 == 1 for i in kept.tolist())
    draws = {tuple(sorted(state.epoch_samples(0, torch.Generator().manual_seed(s)).tolist())) for s in range(20)}
    assert len(draws) > 1 and {len(d) for d in draws} == {6}


def test_initial_scores_keep_everything_and_annealing_resets_the_weights():
    state = _state([INITIAL_SCORE] * 6, epochs=4)
    assert torch.equal(state.epoch_samples(0, torch.Generator()), state.subset) and torch.equal(state.weights, torch.ones(12))
    state.scores[state.subset] = torch.tensor([0.1, 0.1, 0.1, 0.1, 9.0, 9.0])
    assert len(state.epoch_samples(1, torch.Generator())) == 4 and state.weights.max() == 2.0
    kept = state.epoch_samples(3, torch.Generator())  # epoch 4 of 4 > 0.875 * 4: anneal
    assert torch.equal(kept, state.subset) and torch.equal(state.weights, torch.ones(12))
    assert torch.equal(_state([1.0] * 6, ratio=0.0).epoch_samples(0, torch.Generator()).sort().values, torch.arange(1, 12, 2))


def test_recipe_field_round_trip_and_schema_defaults():
    from kdprune.plan.config import schema

    recipe = Recipe.from_dict({"epochs": 3, "infobatch": {"ratio": 0.3}})
    assert recipe.infobatch == InfoBatch(ratio=0.3, delta=0.875)
    assert dataclasses.asdict(recipe)["infobatch"] == {"ratio": 0.3, "delta": 0.875, "cost_share": None}
    assert Recipe.from_dict({"epochs": 3, "infobatch": None}).infobatch is None
    props = schema()["$defs"]["recipe"]["properties"]["infobatch"]["oneOf"][1]["properties"]
    # cost_share has no default: absent is the reference's fixed ratio, and specs without it keep their hashes
    assert {k: v["default"] for k, v in props.items() if "default" in v} == {"ratio": 0.5, "delta": 0.875}
    assert set(props) == set(dataclasses.asdict(InfoBatch())) and InfoBatch().cost_share is None


def _spend(state: InfoBatchState, low_share: float, seed: int = 0) -> list[int]:
    """Every epoch's sample count when a `low_share` of the subset is below the mean loss."""
    n, sizes = len(state.subset), []
    n_low = round(low_share * n)
    for epoch in range(state.epochs):
        state.scores[state.subset] = torch.tensor([0.1] * n_low + [5.0] * (n - n_low))
        sizes.append(len(state.epoch_samples(epoch, torch.Generator().manual_seed(seed + epoch))))
    return sizes


@pytest.mark.parametrize("share", [0.5, 0.7, 0.85])
def test_a_cost_share_is_spent_to_the_sample(share):
    """P2-C3's matched cost: a run given a share of full-data sample-steps spends that share (to
    rounding), whatever the count of well-learned samples, while they are enough; the kept ones
    weigh count / kept, this epoch's own 1 / (1 - r)."""
    n, epochs = 400, 16  # delta 0.875: 14 epochs prune, 2 anneal
    for low_share in (0.7, 0.9):
        state = InfoBatchState(InfoBatch(delta=0.875, cost_share=share), torch.arange(n), n, epochs, CPU)
        sizes = _spend(state, low_share)
        assert sizes[-2:] == [n, n] and state.spent == sum(sizes)
        assert abs(sum(sizes) - share * epochs * n) <= 1, (share, low_share, sizes)
    # The weights of the last pruned epoch: kept well-learned samples weigh n_low / kept.
    state = InfoBatchState(InfoBatch(cost_share=share), torch.arange(n), n, epochs, CPU)
    _spend(state, 0.6)
    state.scores[:] = torch.tensor([0.1] * 240 + [5.0] * 160)
    kept = state.epoch_samples(epochs - 3, torch.Generator())  # the last pruned epoch
    n_kept_low = len(kept) - 160
    assert torch.allclose(state.weights[kept[160:]], torch.full((n_kept_low,), 240 / n_kept_low))
    assert torch.equal(state.weights[kept[:160]], torch.ones(160))


def test_too_few_well_learned_samples_overspend_and_say_so():
    """With 20% below the mean, dropping the reference's maximum (90% of them) each pruned epoch
    still spends more than a 0.5 share: the run spends the least it can, and its count shows it."""
    n, epochs = 400, 16
    state = InfoBatchState(InfoBatch(cost_share=0.5), torch.arange(n), n, epochs, CPU)
    sizes = _spend(state, 0.2)
    n_low = 80
    assert sizes[:14] == [n - n_low + 8] * 14  # 10% of the well-learned kept, the rest dropped
    assert sum(sizes) > 0.5 * epochs * n


def test_a_cost_share_resumes_where_it_was():
    n, epochs = 300, 8
    whole = InfoBatchState(InfoBatch(cost_share=0.6), torch.arange(n), n, epochs, CPU)
    sizes = _spend(whole, 0.7)
    first = InfoBatchState(InfoBatch(cost_share=0.6), torch.arange(n), n, epochs, CPU)
    for epoch in range(3):
        first.scores[:] = torch.tensor([0.1] * 210 + [5.0] * 90)
        first.epoch_samples(epoch, torch.Generator().manual_seed(epoch))
    resumed = InfoBatchState(InfoBatch(cost_share=0.6), torch.arange(n), n, epochs, CPU)
    resumed.load_state_dict(first.state_dict())
    rest = []
    for epoch in range(3, epochs):
        resumed.scores[:] = torch.tensor([0.1] * 210 + [5.0] * 90)
        rest.append(len(resumed.epoch_samples(epoch, torch.Generator().manual_seed(epoch))))
    assert rest == sizes[3:] and resumed.spent == sum(sizes)


# -- tiny runs --------------------------------------------------------------------------------------


class RecordingCE(CrossEntropy):
    """CE that keeps every per-sample loss the step computes, in call order."""

    def __init__(self):
        object.__setattr__(self, "calls", [])

    def per_sample(self, logits, targets, teacher_logits=None):
        terms = super().per_sample(logits, targets, teacher_logits)
        self.calls.append(terms["ce"].detach().clone())
        return terms


def run(data, seed, infobatch=InfoBatch(), monkeypatch=None, epochs=EPOCHS, log=lambda m: None, **options):
    """Train resnet8 on SUBSET; with `monkeypatch`, also record each epoch's scores before the
    draw, the kept samples and the weights, and every step's samples and per-sample losses."""
    epochs_seen: list[dict] = []
    if monkeypatch is not None:

        def spy(self, epoch, gen):
            before = self.scores[self.subset].clone()
            kept = EPOCH_SAMPLES(self, epoch, gen)
            epochs_seen.append({"epoch": epoch, "scores": before, "kept": kept.clone(), "weights": self.weights.clone(), "state": self})
            return kept

        monkeypatch.setattr(InfoBatchState, "epoch_samples", spy)
    steps: list[tuple[int, torch.Tensor]] = []
    seed_everything(seed, CPU)
    model = create_model("resnet8", 10, 1)
    loss = RecordingCE()
    recipe = Recipe(epochs=epochs, batch_size=64, lr=0.05, schedule="cosine", infobatch=infobatch)
    result = fit(
        model,
        data,
        SUBSET,
        recipe,
        loss,
        seed=seed,
        device=CPU,
        log=log,
        on_batch=lambda e, idx, lg, y: steps.append((e, idx.clone())),
        **options,
    )
    return model, result, epochs_seen, steps, loss.calls


def test_each_epoch_keeps_and_rescales_by_the_rule(digits, monkeypatch):
    _, result, epochs_seen, steps, losses = run(digits, 0, monkeypatch=monkeypatch)
    assert [e["epoch"] for e in epochs_seen] == list(range(EPOCHS))
    subset = set(SUBSET.tolist())
    for record, history in zip(epochs_seen, result["history"]):
        epoch, kept, weights = record["epoch"], record["kept"], record["weights"]
        seen = torch.cat([idx for e, idx in steps if e == epoch])
        assert sorted(seen.tolist()) == sorted(kept.tolist()) and len(set(seen.tolist())) == len(seen)  # each kept sample once
        assert history["samples"] == len(kept)
        scores = record["scores"]
        low = set(torch.as_tensor(SUBSET)[scores < scores.mean()].tolist())
        dropped = subset - set(kept.tolist())
        if epoch == 0:  # initial scores: nothing below the mean
            assert not low and not dropped
        elif epoch == 1:  # pruning: only below-mean samples go, about r of them
            assert dropped and dropped <= low
            assert len(low) - len(dropped) == int(0.5 * len(low))
            assert set(torch.nonzero(weights == 2.0).flatten().tolist()) == low - dropped
            assert set(torch.nonzero(weights != 1.0).flatten().tolist()) == low - dropped
        else:  # annealing: all of it, unweighted
            assert not dropped and torch.equal(weights, torch.ones_like(weights))
        # The epoch's loss is the mean over its samples of weight x unweighted loss.
        batches = [i for i, (e, _) in enumerate(steps) if e == epoch]
        weighted = sum((weights[steps[i][1]] * losses[i]).sum().item() for i in batches)
        assert history["loss"] == pytest.approx(weighted / len(kept), rel=1e-5)
    # Scores are each sample's last unweighted loss.
    last = {}
    for (_, idx), values in zip(steps, losses):
        last.update(zip(idx.tolist(), values.tolist()))
    scores = epochs_seen[-1]["state"].scores
    assert scores[list(last)].tolist() == pytest.approx(list(last.values()), rel=1e-6)
    assert result["sample_steps"] == sum(len(e["kept"]) for e in epochs_seen) < EPOCHS * len(SUBSET)
    assert result["recipe"]["infobatch"] == {"ratio": 0.5, "delta": 0.875, "cost_share": None}


def test_a_training_run_spends_its_cost_share(digits):
    """The loop with `cost_share`: the run's recorded sample-steps are its share of full-data
    training (to rounding per epoch), and its recipe records the share."""
    epochs = 8  # 7 prune, 1 anneals; the first trains on all (no loss yet), the rest catch up
    _, result, _, _, _ = run(digits, 0, infobatch=InfoBatch(cost_share=0.7), epochs=epochs)
    assert abs(result["sample_steps"] - 0.7 * epochs * len(SUBSET)) <= epochs
    assert result["recipe"]["infobatch"]["cost_share"] == 0.7


def test_sample_steps_of_an_ordinary_run(digits):
    _, result, _, steps, _ = run(digits, 0, infobatch=None, epochs=2)
    assert result["sample_steps"] == 2 * len(SUBSET) == sum(len(idx) for _, idx in steps)
    assert [h["samples"] for h in result["history"]] == [len(SUBSET)] * 2 and result["recipe"]["infobatch"] is None


def test_deterministic_per_seed_and_resumable(digits, monkeypatch, tmp_path):
    a, ra, ea, _, _ = run(digits, 1, monkeypatch=monkeypatch)
    b, rb, eb, _, _ = run(digits, 1, monkeypatch=monkeypatch)
    _, _, ec, _, _ = run(digits, 2, monkeypatch=monkeypatch)
    assert all(torch.equal(x["kept"], y["kept"]) for x, y in zip(ea, eb))
    assert [h["loss"] for h in ra["history"]] == [h["loss"] for h in rb["history"]]
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(ea[1]["kept"].sort().values, ec[1]["kept"].sort().values)
    # Killed after the pruned epoch 2 and resumed: the checkpointed scores give the same epoch 3.
    ckpt = tmp_path / "checkpoint.pt"
    run(digits, 1, checkpoint=ckpt, run_hash="h", stop_epoch=2)
    resumed, rr, _, _, _ = run(digits, 1, checkpoint=ckpt, run_hash="h")
    assert [h["loss"] for h in rr["history"]] == [h["loss"] for h in ra["history"]] and rr["sample_steps"] == ra["sample_steps"]
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), resumed.state_dict().values()))
    # A checkpoint without InfoBatch scores is not resumed from.
    plain = tmp_path / "plain.pt"
    run(digits, 1, infobatch=None, checkpoint=plain, run_hash="h", stop_epoch=1)
    logs = []
    _, fresh, _, _, _ = run(digits, 1, checkpoint=plain, run_hash="h", log=logs.append)
    assert any("no InfoBatch scores" in line for line in logs) and [h["loss"] for h in fresh["history"]] == [h["loss"] for h in ra["history"]]


def test_stacks_refuse_infobatch_and_the_runner_trains_such_seeds_in_turn(digits):
    from kdprune.jobs.runners import _stack_mode

    recipe = Recipe(epochs=1, infobatch=InfoBatch())
    models = [create_model("resnet8", 10, 1) for _ in range(2)]
    with pytest.raises(ValueError, match="InfoBatch"):
        fit_stack(models, digits, [SUBSET, SUBSET], recipe, CrossEntropy(), seeds=[0, 1], device=CPU)
    logs = []
    assert _stack_mode("stacked", CPU, digits, models[0], [SUBSET, SUBSET], logs.append, infobatch=True) == "sequential"
    assert any("InfoBatch" in line for line in logs)
    assert _stack_mode("stacked", CPU, digits, models[0], [SUBSET, SUBSET], logs.append) == "stacked"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA GPU")
def test_cuda_graph_replay_prunes_and_rescales_as_eager_steps(digits):
    """The weight and score tables are read and written inside the captured step: a graph run keeps
    the same samples per epoch and reaches the same losses as an eager one."""
    from kdprune.train.accel import Accel

    cuda = torch.device("cuda")
    out = {}
    for name, accel in {"eager": Accel(), "graphs": Accel(cuda_graphs=True)}.items():
        seed_everything(0, cuda)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        model = create_model("resnet8", 10, 1)
        recipe = Recipe(epochs=4, batch_size=64, lr=0.05, infobatch=InfoBatch(delta=0.75))
        r = fit(model, digits, SUBSET, recipe, CrossEntropy(), seed=0, device=cuda, accel=accel, log=lambda m: None)
        assert r["fast_path_fallback"] is None, r["fast_path_fallback"]
        out[name] = r
    eager, graphs = out["eager"], out["graphs"]
    assert [h["samples"] for h in graphs["history"]] == [h["samples"] for h in eager["history"]]
    assert graphs["sample_steps"] < 4 * len(SUBSET) and graphs["history"][-1]["samples"] == len(SUBSET)
    assert [h["loss"] for h in graphs["history"]] == pytest.approx([h["loss"] for h in eager["history"]], rel=1e-4)
