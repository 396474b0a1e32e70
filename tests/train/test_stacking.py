import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from kdprune.losses.kd import CrossEntropy, HintonKD
from kdprune.models import create_model
from kdprune.train.stacking import StackedCifarResNet, per_student_terms

N, B, C, SIZE, K = 3, 4, 3, 8, 10


def _students(n: int = N) -> list[nn.Module]:
    """Distinct resnet8s whose BN affine params and running stats are random too: fresh ones are
    all ones/zeros, which would hide BN parameters copied to the wrong student."""
    models = []
    for seed in range(n):
        torch.manual_seed(seed)
        model = create_model("resnet8", K, C)
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.normal_(0, 0.1)
                    m.running_mean.normal_(0, 0.1)
                    m.running_var.uniform_(0.5, 1.5)
        models.append(model)
    return models


def _batch(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(N, B, C, SIZE, SIZE, generator=g), torch.randint(0, K, (N, B), generator=g)


def _assert_states_equal(stacked: StackedCifarResNet, models: list[nn.Module], atol: float) -> None:
    for k, (state, model) in enumerate(zip(stacked.unstack(), models)):
        for key, value in model.state_dict().items():
            assert torch.allclose(state[key].double(), value.double(), atol=atol), f"student {k}: {key}"


@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("channels_last", [False, True])
def test_forward_matches_each_student(train, channels_last):
    models = _students()
    stacked = StackedCifarResNet.from_models(models).train(train)
    if channels_last:
        stacked = stacked.to(memory_format=torch.channels_last)
    for model in models:
        model.train(train)
    x, _ = _batch(0)
    with torch.no_grad():
        out = stacked(x)
        expected = torch.stack([model(x[k]) for k, model in enumerate(models)])
    assert out.shape == (N, B, K)
    assert torch.allclose(out, expected, atol=1e-5)
    # In train mode the forward also updated every student's running stats as if alone.
    _assert_states_equal(stacked, models, atol=1e-5)


def test_forward_under_bf16_autocast():
    models = _students()
    stacked = StackedCifarResNet.from_models(models).eval().to(memory_format=torch.channels_last)
    x, _ = _batch(1)
    with torch.no_grad():
        expected = torch.stack([model.eval()(x[k]) for k, model in enumerate(models)])
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = stacked(x)
    assert out.dtype == torch.bfloat16
    assert torch.allclose(out.float(), expected, atol=0.1, rtol=0.05)


def test_unstack_round_trip():
    models = _students()
    states = StackedCifarResNet.from_models(models).unstack()
    assert len(states) == N
    for state, model in zip(states, models):
        fresh = create_model("resnet8", K, C)
        fresh.load_state_dict(state)  # strict
        for key, value in model.state_dict().items():
            assert torch.equal(fresh.state_dict()[key], value), key


def _sgd(params) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)


@pytest.mark.parametrize("steps", [1, 3])
def test_training_matches_separate_students(steps):
    models = _students()
    stacked = StackedCifarResNet.from_models(models).train()
    stacked_opt = _sgd(stacked.parameters())
    solo_opts = [_sgd(model.train().parameters()) for model in models]
    for step in range(steps):
        x, y = _batch(step)
        stacked_opt.zero_grad()
        per_student_terms(CrossEntropy(), stacked(x), y)["ce"].sum().backward()
        stacked_opt.step()
        for k, (model, opt) in enumerate(zip(models, solo_opts)):
            opt.zero_grad()
            F.cross_entropy(model(x[k]), y[k]).backward()
            opt.step()
    # Parameters moved, and moved the same way; running stats and counters too.
    assert not torch.allclose(stacked.unstack()[0]["conv1.weight"], _students()[0].conv1.weight.detach())
    _assert_states_equal(stacked, models, atol=1e-5)


def test_objective_terms_are_each_students_batch_means():
    g = torch.Generator().manual_seed(0)
    logits, teacher = torch.randn(2, N, B, K, generator=g)
    targets = torch.randint(0, K, (N, B), generator=g)
    objective = HintonKD(alpha=0.7, temperature=3.0)
    terms = per_student_terms(objective, logits, targets, teacher)
    for name in ("ce", "kd"):
        assert terms[name].shape == (N,), name
        for k in range(N):
            assert torch.allclose(terms[name][k], objective(logits[k], targets[k], teacher[k])[name], atol=1e-6), (name, k)


@pytest.mark.parametrize(
    "other",
    [
        lambda: create_model("resnet14", K, C),  # depth
        lambda: create_model("resnet8x4", K, C),  # widths
        lambda: create_model("resnet8", 7, C),  # classes
        lambda: create_model("resnet8", K, 1),  # input channels
        lambda: nn.Linear(4, 4),  # not a CifarResNet
    ],
)
def test_mismatched_architectures_raise(other):
    with pytest.raises(ValueError, match="model 1"):
        StackedCifarResNet.from_models([create_model("resnet8", K, C), other()])


def test_empty_list_raises():
    with pytest.raises(ValueError):
        StackedCifarResNet.from_models([])


# -- fit_stack: the training loop over a stack ----------------------------------------------------


def _fit_alone_and_stacked(data, loss, seeds, subsets, teacher=None, epochs=1):
    from kdprune.train.loop import Recipe, fit, fit_stack, seed_everything

    recipe = Recipe(epochs=epochs, batch_size=64, lr=0.05, schedule="cosine")
    cpu = torch.device("cpu")

    def fresh(seed):
        seed_everything(seed, cpu)
        return create_model("resnet8", 10, 1)

    alone = [fresh(s) for s in seeds]
    solo = [fit(m, data, idx, recipe, loss, seed=s, device=cpu, teacher=teacher, log=lambda m: None) for m, idx, s in zip(alone, subsets, seeds)]
    stacked_models = [fresh(s) for s in seeds]
    stack = fit_stack(stacked_models, data, subsets, recipe, loss, seeds=seeds, device=cpu, teacher=teacher, log=lambda m: None)
    return alone, solo, stacked_models, stack


@pytest.mark.parametrize("loss_name", ["ce", "kd"])
def test_fit_stack_equals_each_student_trained_alone(loss_name):
    """Each student of a stack sees its own subset, order, views and loss: its history, final
    weights and accuracy match the same seed trained alone, up to float summation order. One epoch
    (7 steps, the last of 65 images): SGD on these small batches amplifies rounding fast (a 1e-6
    change of one weight moves others by 3e-2 within 14 steps), so longer runs agree only in law."""
    import numpy as np

    from kdprune.data.images import load_dataset
    from kdprune.losses import make_loss

    data = load_dataset("digits")
    seeds = [3, 5]
    subsets = [np.arange(0, 1347, 3), np.arange(1, 1347, 3)[:449]]  # different samples, one size
    teacher = create_model("resnet8", 10, 1).eval() if loss_name == "kd" else None
    alone, solo, stacked_models, stack = _fit_alone_and_stacked(data, make_loss(loss_name), seeds, subsets, teacher)
    for k in range(len(seeds)):
        assert len(stack[k]["history"]) == len(solo[k]["history"]) == 1
        got, want = stack[k]["history"][0], solo[k]["history"][0]
        for name in ("loss", "ce"):
            assert got[name] == pytest.approx(want[name], rel=1e-5), (k, name)
        assert abs(stack[k]["final_acc"] - solo[k]["final_acc"]) <= 1 / len(data.y_test), k
        for key, value in alone[k].state_dict().items():
            assert torch.allclose(stacked_models[k].state_dict()[key].double(), value.double(), atol=1e-4), (k, key)
    # The students differ from each other: a mix-up of batches or weights between them would show.
    assert stack[0]["history"][-1]["loss"] != pytest.approx(stack[1]["history"][-1]["loss"], rel=1e-3)
    # A stack's time is split among its students: per-run images/s is the stack's student-images/s.
    assert stack[0]["train_seconds"] == pytest.approx(stack[1]["train_seconds"])


def test_fit_stack_refuses_unequal_subsets():
    import numpy as np

    from kdprune.data.images import load_dataset
    from kdprune.losses import make_loss
    from kdprune.train.loop import Recipe, fit_stack

    data = load_dataset("digits")
    models = [create_model("resnet8", 10, 1) for _ in range(2)]
    with pytest.raises(ValueError, match="one subset size"):
        fit_stack(models, data, [np.arange(100), np.arange(101)], Recipe(epochs=1), make_loss("ce"), seeds=[0, 1], device=torch.device("cpu"))
