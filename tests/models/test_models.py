import pytest
import torch

from kdprune.models import MODELS, create_model

# Parameter counts with a 100-class head (CIFAR-100), as RepDistiller's models have them: the zoo is
# its model_dict, under its names.
REPDISTILLER_PARAMS = {
    "resnet8": 83_892,
    "resnet14": 181_108,
    "resnet20": 278_324,
    "resnet32": 472_756,
    "resnet44": 667_188,
    "resnet56": 861_620,
    "resnet110": 1_736_564,
    "resnet8x4": 1_233_540,
    "resnet32x4": 7_433_860,
    "ResNet50": 23_705_252,
    "wrn_16_1": 180_916,
    "wrn_16_2": 703_284,
    "wrn_40_1": 569_780,
    "wrn_40_2": 2_255_156,
    "vgg8": 3_965_028,
    "vgg11": 9_277_284,
    "vgg13": 9_462_180,
    "vgg16": 14_774_436,
    "vgg19": 20_086_692,
    "MobileNetV2": 812_836,
    "ShuffleV1": 949_258,
    "ShuffleV2": 1_355_528,
}
IMAGENET = {"tv_resnet18", "tv_resnet34", "tv_resnet50", "MobileNet"}
DATASET_DISTILLATION = {"ConvNet"}


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_zoo_has_the_kd_code_base_names():
    assert set(MODELS.names()) == set(REPDISTILLER_PARAMS) | IMAGENET | DATASET_DISTILLATION


@pytest.mark.parametrize("name", MODELS.names())
@pytest.mark.parametrize("channels,size", [(1, 8), (3, 32)])
def test_forward_shape(name, channels, size):
    model = create_model(name, num_classes=7, in_channels=channels, image_size=size).eval()
    with torch.no_grad():
        out = model(torch.randn(2, channels, size, size))
    assert out.shape == (2, 7)


@pytest.mark.parametrize("name", MODELS.names())
def test_features_are_what_the_classifier_reads(name):
    """`features` is the flattened penultimate embedding; `fc` the final linear layer (an alias where
    the code base calls it `classifier` or `linear`); forward is fc(features)."""
    model = create_model(name, num_classes=7, in_channels=3, image_size=16).eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        features = model.features(x)
        assert isinstance(model.fc, torch.nn.Linear)
        assert features.shape == (2, model.fc.in_features)
        assert torch.equal(model.fc(features), model(x))
    assert any(p is model.fc.weight for p in model.parameters())  # the alias is the trained layer, not a copy


@pytest.mark.parametrize("name,params", sorted(REPDISTILLER_PARAMS.items()))
def test_parameter_counts_match_repdistiller(name, params):
    assert n_params(create_model(name, 100)) == params


def test_convnet_is_the_dataset_distillation_network():
    """DC/DM's ConvNet-3 on CIFAR-10: 3 x (conv 128 + instance-norm affine) and a 2048 -> 10 head,
    320,010 parameters; its head follows the image size (8x8 digits: 1 x 1 x 128 features)."""
    assert n_params(create_model("ConvNet", 10, 3, image_size=32)) == 320_010
    digits = create_model("ConvNet", 10, 1, image_size=8)
    assert digits.fc.in_features == 128 and digits(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    norms = [m for m in digits.modules() if isinstance(m, torch.nn.GroupNorm)]
    assert len(norms) == 3 and all(m.num_groups == m.num_channels == 128 for m in norms)  # instance norm


def test_imagenet_mobilenet_has_the_standard_size():
    # MobileNet V1 at 1000 classes: 4.2M parameters (Howard et al. 2017, Table 8), 4,231,976 exactly.
    assert n_params(create_model("MobileNet", 1000)) == 4_231_976


def test_vgg_pools_a_fourth_time_only_on_64px_images():
    """RepDistiller's VGG skips its fourth max pool except on 64x64 (Tiny ImageNet) inputs."""
    model = create_model("vgg8", 10).eval()
    seen = []
    model.block4.register_forward_hook(lambda m, i, o: seen.append(o.shape[-1]))
    with torch.no_grad():
        model(torch.randn(1, 3, 32, 32)), model(torch.randn(1, 3, 64, 64))
    assert seen == [4, 4]


def test_unknown_model_lists_the_allowed_names():
    with pytest.raises(KeyError, match="allowed: .*resnet20"):
        create_model("resnet21", 10)
