"""kdprune.models.checkpoints.load_checkpoint: a teacher from an existing file, in RepDistiller's layout
or the suite's own model.pt, and one line when the weights are not the architecture asked for."""

import hashlib
from collections import OrderedDict

import pytest
import torch

from kdprune.files import save_torch
from kdprune.jobs.runners import load_teacher
from kdprune.models import create_model
from kdprune.models.checkpoints import load_checkpoint


def trained_like(arch: str, num_classes: int = 100, in_channels: int = 3) -> torch.nn.Module:
    """A model with non-trivial weights and BN statistics, so that a wrong load shows in the outputs."""
    torch.manual_seed(0)
    model = create_model(arch, num_classes, in_channels)
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            if name.endswith("running_mean"):
                buffer.uniform_(-0.2, 0.2)
            elif name.endswith("running_var"):
                buffer.uniform_(0.5, 1.5)
    return model.eval()


def outputs(model: torch.nn.Module, in_channels: int = 3) -> torch.Tensor:
    torch.manual_seed(1)
    with torch.no_grad():
        return model(torch.randn(4, in_channels, 32, 32))


def repdistiller_file(path, state_dict) -> None:
    # what RepDistiller's train_teacher.py saves every save_freq epochs (the optimizer state left small)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"epoch": 240, "model": state_dict, "accuracy": torch.tensor(72.34), "optimizer": {"state": {}, "param_groups": []}}, path)


@pytest.mark.parametrize("arch", ["wrn_16_1", "ShuffleV1"])
def test_a_repdistiller_checkpoint_loads_to_the_same_outputs(tmp_path, arch):
    model = trained_like(arch)
    path = tmp_path / f"{arch}_vanilla" / "ckpt_epoch_240.pth"
    repdistiller_file(path, model.state_dict())
    loaded, info = load_checkpoint(path, arch, 100, 3)
    assert not loaded.training and type(loaded) is type(model)
    assert torch.equal(outputs(loaded), outputs(model))
    assert info == {"sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "layout": "repdistiller"}


def test_repdistiller_resnets_name_their_shortcut_downsample(tmp_path):
    """RepDistiller's CIFAR ResNets keep the shortcut projection under `downsample` (the suite's under
    `shortcut`); files from PyTorch before 0.4.1 have no BN `num_batches_tracked`. Both load."""
    model = trained_like("resnet8")
    theirs = OrderedDict((k.replace(".shortcut.", ".downsample."), v) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked"))
    assert any(".downsample." in k for k in theirs)
    path = tmp_path / "resnet8_vanilla" / "ckpt_epoch_240.pth"
    repdistiller_file(path, theirs)
    loaded, info = load_checkpoint(path, "resnet8", 100, 3)
    assert torch.equal(outputs(loaded), outputs(model)) and info["layout"] == "repdistiller"


def test_the_suites_model_file_loads(tmp_path):
    model = trained_like("vgg8", 10, 1)
    path = tmp_path / "model.pt"
    save_torch(path, {"arch": "vgg8", "num_classes": 10, "in_channels": 1, "state_dict": model.state_dict()})
    loaded, info = load_checkpoint(path, "vgg8", 10, 1)
    assert torch.equal(outputs(loaded, 1), outputs(model, 1)) and info["layout"] == "kdprune"
    assert torch.equal(outputs(loaded, 1), outputs(load_teacher(path), 1))  # as the workflow reads it
    with pytest.raises(ValueError, match=r"^cannot load vgg11 from .*model\.pt: the file holds vgg8 with 10 classes"):
        load_checkpoint(path, "vgg11", 10, 1)


def test_a_bare_state_dict_loads(tmp_path):
    model = trained_like("MobileNet", 1000)
    path = tmp_path / "mobilenet.pth"
    torch.save(model.state_dict(), path)
    loaded, info = load_checkpoint(path, "MobileNet", 1000)
    assert torch.equal(outputs(loaded), outputs(model)) and info["layout"] == "state_dict"


def test_weights_of_another_architecture_stop_with_one_line(tmp_path):
    path = tmp_path / "resnet8_vanilla" / "ckpt_epoch_240.pth"
    repdistiller_file(path, trained_like("resnet8").state_dict())
    with pytest.raises(ValueError) as error:
        load_checkpoint(path, "wrn_16_1", 100, 3)
    message = str(error.value)
    assert "\n" not in message and len(message) < 400
    assert message.startswith(f"cannot load wrn_16_1 from {path}: the weights do not fit the architecture: ")
    assert "keys missing (first block1.layer.0.bn1.weight)" in message and "keys it does not have (first " in message
    # same keys, other head: the shapes say so
    with pytest.raises(ValueError, match=r"^cannot load resnet8 from .*: .*2 of other shape \(first fc\.weight: \[100, 64\] in the file, \[10, 64\]"):
        load_checkpoint(path, "resnet8", 10, 3)


def test_a_file_that_is_no_checkpoint_stops_with_one_line(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_text("not a checkpoint")
    with pytest.raises(ValueError, match=r"^cannot load resnet8 from .*notes\.pth: not a weights-only torch file \([^\n]*\)$"):
        load_checkpoint(path, "resnet8", 10)
    torch.save({"epoch": 3}, path)
    with pytest.raises(ValueError, match=r"^cannot load resnet8 from .*notes\.pth: no state dict in it .*found epoch\)$"):
        load_checkpoint(path, "resnet8", 10)
