import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from kdprune.losses import CrossEntropy, HintonKD
from kdprune.models import create_model
from kdprune.stacked import StackedCifarResNet, stacked_kd_objective

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
        stacked_kd_objective(CrossEntropy(), stacked(x), y)["ce"].backward()
        stacked_opt.step()
        for k, (model, opt) in enumerate(zip(models, solo_opts)):
            opt.zero_grad()
            F.cross_entropy(model(x[k]), y[k]).backward()
            opt.step()
    # Parameters moved, and moved the same way; running stats and counters too.
    assert not torch.allclose(stacked.unstack()[0]["conv1.weight"], _students()[0].conv1.weight.detach())
    _assert_states_equal(stacked, models, atol=1e-5)


def test_objective_is_sum_of_student_batch_means():
    g = torch.Generator().manual_seed(0)
    logits, teacher = torch.randn(2, N, B, K, generator=g)
    targets = torch.randint(0, K, (N, B), generator=g)
    objective = HintonKD(alpha=0.7, temperature=3.0)
    terms = stacked_kd_objective(objective, logits, targets, teacher)
    for name in ("ce", "kd"):
        expected = sum(objective(logits[k], targets[k], teacher[k])[name] for k in range(N))
        assert torch.allclose(terms[name], expected, atol=1e-6), name


@pytest.mark.parametrize("other", [
    lambda: create_model("resnet14", K, C),  # depth
    lambda: create_model("resnet8x4", K, C),  # widths
    lambda: create_model("resnet8", 7, C),  # classes
    lambda: create_model("resnet8", K, 1),  # input channels
    lambda: nn.Linear(4, 4),  # not a CifarResNet
])
def test_mismatched_architectures_raise(other):
    with pytest.raises(ValueError, match="model 1"):
        StackedCifarResNet.from_models([create_model("resnet8", K, C), other()])


def test_empty_list_raises():
    with pytest.raises(ValueError):
        StackedCifarResNet.from_models([])
