"""The fast training path computes what the plain one computes: the graph-safe SGD is torch's SGD,
device-side batches are the host's, bf16 + channels_last change losses only by bf16 rounding,
teacher views are the teacher's forward, and (on a GPU) a CUDA-graph replay is the eager step."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kdprune.data import PADDING_MODES, Augmentation, augmentation_of
from kdprune.data.augment import crop_flip, draw_views
from kdprune.data.images import ImageData, load_dataset
from kdprune.losses import make_loss
from kdprune.models import create_model
from kdprune.train.accel import Accel, resolve_accel
from kdprune.train.loop import Recipe, fit, seed_everything
from kdprune.train.optim import SGD
from kdprune.train.step import ResidentBatches, StepRunner
from kdprune.train.views import compute_view_logits, load_view_logits, save_view_logits

CPU = torch.device("cpu")
FAST_ON_CPU = Accel(precision="bf16", channels_last=True)  # the fast mode's maths; graphs need CUDA


def tiny_data(n: int = 96, size: int = 16, seed: int = 0, augmentation: Augmentation = Augmentation(2, True, "reflect")) -> ImageData:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    return ImageData("tiny", x, y, x[:32].clone(), y[:32].clone(), [str(i) for i in range(10)], augmentation)


def first_images(path, n_train: int) -> ImageData:
    data = load_dataset(f"npz:{path}")
    data.x_train, data.y_train = data.x_train[:n_train], data.y_train[:n_train]
    return data


def test_graph_safe_sgd_matches_torch_sgd_under_a_changing_lr():
    torch.manual_seed(0)
    a = create_model("resnet8", 10)
    b = create_model("resnet8", 10)
    b.load_state_dict(a.state_dict())
    ours = SGD(a.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)
    ref = torch.optim.SGD(b.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)
    x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,))
    for step, lr in enumerate([0.1, 0.08, 0.05, 0.01]):
        ours.set_lr(lr)
        for group in ref.param_groups:
            group["lr"] = lr
        F.cross_entropy(a(x), y).backward()
        ours.step()
        ours.zero_grad()
        ref.zero_grad()
        F.cross_entropy(b(x), y).backward()
        ref.step()
        for pa, pb in zip(a.parameters(), b.parameters()):
            torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-6, msg=f"step {step}")


def test_sgd_state_round_trip_and_foreign_state_is_refused():
    model = create_model("resnet8", 10)
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    F.cross_entropy(model(torch.randn(4, 3, 8, 8)), torch.arange(4)).backward()
    opt.step()
    state = opt.state_dict()
    other = SGD(model.parameters(), lr=0.5, momentum=0.9)
    other.load_state_dict(state)
    assert float(other.lr) == pytest.approx(0.1)
    assert all(torch.equal(u, v) for u, v in zip(other.buffers, opt.buffers))
    with pytest.raises(ValueError):
        other.load_state_dict({"state": {}, "param_groups": []})  # torch.optim.SGD's format


def test_resident_batches_are_the_host_views_in_order():
    data = tiny_data()
    order = torch.randperm(len(data.y_train), generator=torch.Generator().manual_seed(1))
    batches = [slice(0, 40), slice(40, 80), slice(80, 96)]
    source = ResidentBatches(data, CPU, Accel())
    got = list(source.plan([order], batches, [torch.Generator().manual_seed(7)]))
    gen = torch.Generator().manual_seed(7)
    normalize = data.normalizer(CPU)
    for (idx, packed), part in zip(got, batches):
        top, left, flip = draw_views(len(order[part]), data.augmentation, gen)
        x, y = source.inputs(packed)
        assert torch.equal(idx, order[part])
        torch.testing.assert_close(x, normalize(crop_flip(data.x_train[order[part]], top, left, flip, data.augmentation)), rtol=0, atol=0)
        assert torch.equal(y, data.y_train[order[part]])


def test_resolve_accel():
    assert resolve_accel("auto", CPU) == Accel()
    assert resolve_accel("fast", CPU) == FAST_ON_CPU  # no CUDA graphs off CUDA
    assert resolve_accel({"mode": "fast", "channels_last": False}, CPU) == Accel(precision="bf16")
    assert resolve_accel("auto", torch.device("cuda")) == Accel("bf16", True, True)
    with pytest.raises(ValueError, match="precision"):
        resolve_accel({"precision": "fp8"}, CPU)


def test_fast_path_loss_and_gradients_on_a_fixed_batch_within_bf16_tolerance(cifar_subset):
    """Same weights, same CIFAR batch: bf16 autocast + channels_last vs fp32. The tolerance is what
    bf16's 8-bit mantissa allows through ~10 layers: 2% on the loss, gradient cosine > 0.99."""
    data = first_images(cifar_subset, 256)
    x = data.normalizer(CPU)(data.x_train[:64])
    y = data.y_train[:64]
    torch.manual_seed(0)
    student, teacher = create_model("resnet8", 10), create_model("resnet20", 10).eval()
    loss = make_loss("kd", alpha=0.9, temperature=4.0)
    out = {}
    for name, accel in {"plain": Accel(), "fast": FAST_ON_CPU}.items():
        s = accel.prepare(create_model("resnet8", 10), CPU)
        s.load_state_dict(student.state_dict())
        t = accel.prepare(teacher, CPU)
        with accel.autocast(CPU):
            with torch.no_grad():
                t_logits = t(accel.images(x)).float()
            logits = s(accel.images(x))
        terms = loss(logits.float(), y, t_logits)
        total = sum(terms.values())
        total.backward()
        out[name] = (total.item(), torch.cat([p.grad.flatten() for p in s.parameters()]))
    assert out["fast"][0] == pytest.approx(out["plain"][0], rel=0.02)
    assert F.cosine_similarity(out["fast"][1], out["plain"][1], dim=0) > 0.99


def test_fast_path_accuracy_matches_plain_on_the_cifar_subset(cifar_subset):
    """Same seeds, plain fp32 vs bf16 + channels_last, a short resnet8 run on 2000 CIFAR-10 images:
    the mean test accuracy over 3 seeds agrees within 3 points (seed-to-seed spread here is ~1-2)."""
    data = first_images(cifar_subset, 2000)
    recipe = Recipe(epochs=3, batch_size=64, lr=0.05, schedule="cosine", nesterov=True)
    acc = {}
    for name, accel in {"plain": Accel(), "fast": FAST_ON_CPU}.items():
        runs = []
        for seed in range(3):
            seed_everything(seed, CPU)
            model = create_model("resnet8", 10)
            runs.append(
                fit(model, data, np.arange(2000), recipe, make_loss("ce"), seed=seed, device=CPU, accel=accel, log=lambda m: None)["final_acc"]
            )
        acc[name] = runs
    plain, fast = np.mean(acc["plain"]), np.mean(acc["fast"])
    assert plain > 0.2, acc  # it learned something: the comparison means something
    assert abs(fast - plain) < 0.03, acc


@pytest.mark.parametrize("padding_mode", sorted(PADDING_MODES))
def test_teacher_views_are_the_teachers_forward_for_random_views(padding_mode):
    data = tiny_data(48, augmentation=Augmentation(2, True, padding_mode))
    torch.manual_seed(0)
    teacher = create_model("resnet8", 10).eval()
    table = compute_view_logits(teacher, data, CPU, batch_size=20)
    assert table.shape == (48, 5, 5, 2, 10) and table.dtype == torch.float32
    g = torch.Generator().manual_seed(3)
    idx = torch.randint(0, 48, (30,), generator=g)
    top, left, flip = draw_views(30, data.augmentation, g)
    with torch.no_grad():
        direct = teacher(data.normalizer(CPU)(crop_flip(data.x_train[idx], top, left, flip, data.augmentation)))
    torch.testing.assert_close(table[idx, top, left, flip.long()], direct, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("padding_mode", ["constant", "reflect"])
def test_a_student_steps_looked_up_teacher_logits_are_the_teachers_forward_on_its_views(padding_mode):
    """What the KD loss of a real step receives from the view table is the teacher's forward pass on
    the very images the student sees in that step, under zero and reflect padding."""
    data = tiny_data(64, augmentation=Augmentation(2, True, padding_mode))
    torch.manual_seed(0)
    teacher = create_model("resnet8", 10).eval()
    table = compute_view_logits(teacher, data, CPU)
    seen = []

    def objective(logits, y, teacher_logits):
        seen.append(teacher_logits)
        return {"ce": F.cross_entropy(logits, y)}

    student = create_model("resnet8", 10)
    runner = StepRunner(student, objective, SGD(student.parameters(), lr=0.01), Accel(), CPU, teacher_views=table)
    source = ResidentBatches(data, CPU, Accel())
    order = torch.randperm(64, generator=torch.Generator().manual_seed(1))
    for _, packed in source.plan([order], [slice(0, 32), slice(32, 64)], [torch.Generator().manual_seed(5)]):
        runner.run(source, packed, 32)
        with torch.no_grad():
            direct = teacher(source.inputs(packed)[0])
        torch.testing.assert_close(seen[-1], direct, rtol=1e-5, atol=1e-5)
        assert packed[0][1:3].any()  # crops were drawn: the test looks past the identity view


def test_a_view_table_of_other_views_than_the_student_draws_is_refused(tmp_path):
    """Same shape, other padding: the lookups would be silently wrong, so loading says so."""
    teacher = create_model("resnet8", 10)
    save_view_logits(tmp_path / "views.pt", torch.zeros(4, 9, 9, 2, 10), teacher, Accel(), "h", Augmentation(4, True, "constant"))
    table, meta = load_view_logits(tmp_path / "views.pt", CPU, Augmentation(4, True, "constant"))
    assert table.shape == (4, 9, 9, 2, 10) and meta["teacher_hash"] == "h"
    with pytest.raises(ValueError, match="views of augmentation .*'constant'.*the student draws .*'reflect'"):
        load_view_logits(tmp_path / "views.pt", CPU, Augmentation(4, True, "reflect"))


@pytest.mark.parametrize("dataset,shape", [("cifar10", (9, 9, 2)), ("svhn", (1, 1, 1)), ("digits", (3, 3, 1))])
def test_the_view_table_has_the_views_of_the_datasets_augmentation(dataset, shape):
    """DeepCore augments CIFAR with pad-4 crops and flips and SVHN not at all: a SVHN table has one
    view per image, a CIFAR one 162."""
    data = tiny_data(8, size=8, augmentation=augmentation_of(dataset))
    table = compute_view_logits(create_model("resnet8", 10), data, CPU)
    assert table.shape == (8, *shape, 10)


def test_kd_student_with_teacher_views_trains_exactly_as_with_the_teacher():
    data = tiny_data(96)
    torch.manual_seed(0)
    teacher = create_model("resnet8", 10).eval()
    views = compute_view_logits(teacher, data, CPU)
    recipe = Recipe(epochs=2, batch_size=32, lr=0.05)
    results = []
    for kwargs in ({"teacher": teacher}, {"teacher_views": views}):
        seed_everything(0, CPU)
        model = create_model("resnet8", 10)
        r = fit(model, data, np.arange(64), recipe, make_loss("kd"), seed=0, device=CPU, log=lambda m: None, **kwargs)
        results.append((r["history"], torch.cat([p.detach().flatten() for p in model.parameters()])))
    (h_teacher, w_teacher), (h_views, w_views) = results
    for a, b in zip(h_teacher, h_views):
        assert a["kd"] == pytest.approx(b["kd"], rel=1e-5) and a["ce"] == pytest.approx(b["ce"], rel=1e-5)
    torch.testing.assert_close(w_views, w_teacher, rtol=1e-4, atol=1e-5)


def test_kd_with_mdslr_reshape_trains_exactly_as_with_the_teacher_from_the_view_table():
    """The table stores raw teacher logits and the loss reshapes them (z / std(z) * k_y), so the two
    teacher paths stay one computation; and the reshape changes the training."""
    data = tiny_data(96)
    torch.manual_seed(0)
    teacher = create_model("resnet8", 10).eval()
    views = compute_view_logits(teacher, data, CPU)
    k = torch.linspace(0.5, 3.0, 10)  # k_y per class
    recipe = Recipe(epochs=2, batch_size=32, lr=0.05)
    results = {}
    for name, loss, kwargs in (
        ("teacher", make_loss("kd", reshape=True).with_class_scale(k), {"teacher": teacher}),
        ("views", make_loss("kd", reshape=True).with_class_scale(k), {"teacher_views": views}),
        ("plain", make_loss("kd"), {"teacher_views": views}),
    ):
        seed_everything(0, CPU)
        model = create_model("resnet8", 10)
        r = fit(model, data, np.arange(64), recipe, loss, seed=0, device=CPU, log=lambda m: None, **kwargs)
        results[name] = ([h["kd"] for h in r["history"]], torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert results["views"][0] == pytest.approx(results["teacher"][0], rel=1e-5)
    torch.testing.assert_close(results["views"][1], results["teacher"][1], rtol=1e-4, atol=1e-5)
    assert results["plain"][0] != pytest.approx(results["views"][0], rel=1e-3)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA GPU")
def test_cuda_graph_replay_equals_eager_steps():
    cuda = torch.device("cuda")
    data = tiny_data(640, size=32)
    recipe = Recipe(epochs=2, batch_size=64, lr=0.05)
    out = {}
    for name, accel in {"eager": Accel(), "graphs": Accel(cuda_graphs=True)}.items():
        seed_everything(0, cuda)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        model = create_model("resnet8", 10)
        r = fit(model, data, np.arange(600), recipe, make_loss("ce"), seed=0, device=cuda, accel=accel, log=lambda m: None)
        assert r["fast_path_fallback"] is None, r["fast_path_fallback"]  # the first replay's check accepted the graph
        out[name] = ([h["loss"] for h in r["history"]], torch.cat([p.detach().flatten().cpu() for p in model.parameters()]))
    assert out["graphs"][0] == pytest.approx(out["eager"][0], rel=1e-4)
    torch.testing.assert_close(out["graphs"][1], out["eager"][1], rtol=1e-3, atol=1e-4)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA GPU")
def test_the_fast_modes_real_capture_passes_its_check_and_replays(monkeypatch):
    """The default mode on CUDA (bf16 autocast, channels_last, graphs), KD from a teacher: the
    first replay agrees with an eager step within the check's tolerance (kdprune.train.step), so
    the graph is kept and every later full-size step replays it."""
    from kdprune.train.step import WARMUP_STEPS, CudaGraphs

    class Counted(CudaGraphs):
        replays = 0

        def capture(self, runner, source, static_in):
            replay = super().capture(runner, source, static_in)

            def counted():
                Counted.replays += 1
                return replay()

            return counted

    monkeypatch.setattr(StepRunner, "graphs", Counted())
    cuda = torch.device("cuda")
    data = tiny_data(640, size=32)
    seed_everything(0, cuda)
    teacher = create_model("resnet20", 10).eval()
    model = create_model("resnet8", 10)
    logs = []
    recipe, fast = Recipe(epochs=2, batch_size=64, lr=0.05), resolve_accel("auto", cuda)
    r = fit(model, data, np.arange(640), recipe, make_loss("kd"), seed=0, device=cuda, accel=fast, teacher=teacher, log=logs.append)
    assert r["accel"]["cuda_graphs"] and r["fast_path_fallback"] is None, logs
    assert Counted.replays == 2 * 640 // 64 - WARMUP_STEPS
