import pytest
import torch

from kdprune.models import MODELS, create_model

EXPECTED = {"resnet8", "resnet14", "resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "resnet8x4", "resnet32x4"}


def test_zoo_has_the_kd_code_base_names():
    assert EXPECTED <= set(MODELS.names())


@pytest.mark.parametrize("name", MODELS.names())
@pytest.mark.parametrize("channels,size", [(1, 8), (3, 32)])
def test_forward_shape(name, channels, size):
    model = create_model(name, num_classes=7, in_channels=channels).eval()
    with torch.no_grad():
        out = model(torch.randn(2, channels, size, size))
    assert out.shape == (2, 7)


@pytest.mark.parametrize("name,params", [("resnet8", 78_042), ("resnet20", 272_474), ("resnet56", 855_770)])
def test_parameter_counts_match_repdistiller(name, params):
    # RepDistiller's CIFAR-10 models: resnet20 0.27M, resnet56 0.86M.
    assert sum(p.numel() for p in create_model(name, 10).parameters()) == params


def test_unknown_model_lists_the_allowed_names():
    with pytest.raises(KeyError, match="allowed: .*resnet20"):
        create_model("resnet21", 10)
