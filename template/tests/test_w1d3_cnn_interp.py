"""Graders for day w1d3_cnn_interp: properties of each attribution method on the trained CNN.

The model and 16 Fashion-MNIST test images ship in tests/data/w1d3_cnn_interp/ (made by
mlab/w1d3_cnn_interp_assets/train_cnn.py). Run one exercise with
`pytest tests/test_w1d3_cnn_interp.py -k grad_cam`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from checks import assert_close
from mlab import w1d3_cnn_interp as m

points = pytest.mark.points
DATA = Path(__file__).parent / "data" / "w1d3_cnn_interp"
LAYERS = ("conv1", "relu1", "pool1", "conv2", "relu3", "flatten", "fc")


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: these batches are tiny, and on a busy 2-core machine two threads that
    wait for each other made feature visualization ~5x slower. Restored after each test."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def model() -> nn.Module:
    """A fresh copy for every test, so one test's side effects cannot fail another."""
    return m.load_cnn(DATA)


@pytest.fixture
def examples() -> tuple[torch.Tensor, torch.Tensor]:
    """The 16 test images (16, 1, 28, 28) in [0, 1] and their labels (16,)."""
    return m.load_examples(DATA)


def outputs_by_layer(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every child's output, by running the children one after the other (SmallCNN is a chain)."""
    out, h = {}, x
    for name, child in model.named_children():
        h = out[name] = child(h)
    return out


def scores(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return model(x).gather(1, target[:, None])[:, 0]


def assert_no_hooks(model: nn.Module, after: str) -> None:
    for name, module in model.named_modules():
        hooks = [
            kind
            for kind in (
                "_forward_hooks",
                "_forward_pre_hooks",
                "_backward_hooks",
                "_backward_pre_hooks",
            )
            if getattr(module, kind, None)
        ]
        assert not hooks, (
            f"after {after}, module {name or 'model'!r} still has {hooks}: remove your hook handles"
        )


def assert_params_untouched(model: nn.Module, before: dict[str, torch.Tensor], after: str) -> None:
    for name, p in model.named_parameters():
        assert torch.equal(p, before[name]), (
            f"after {after}, parameter {name} changed: only the input may move"
        )
        assert p.requires_grad, (
            f"after {after}, parameter {name} no longer requires grad: restore the model"
        )


# -- hooks -------------------------------------------------------------------------------------


@points(2)
def test_record_activations(model, examples):
    x = examples[0][:5]
    got = m.record_activations(model, x, LAYERS)
    assert isinstance(got, dict) and set(got) == set(LAYERS), (
        f"record_activations returned keys {sorted(got) if isinstance(got, dict) else type(got)}, expected {sorted(LAYERS)}"
    )
    with torch.no_grad():
        expected = outputs_by_layer(model, x)
    for name in LAYERS:
        assert_close(
            got[name], expected[name], what=f"record_activations(...)[{name!r}] on 5 test images"
        )
        assert not got[name].requires_grad, (
            f"record_activations[{name!r}] still requires grad: detach it"
        )
    assert_no_hooks(model, "record_activations")


@points(1)
def test_record_activations_removes_hooks_on_error(model):
    try:
        m.record_activations(model, torch.zeros(2, 3, 28, 28), ["relu1"])  # 3 channels: conv1 fails
    except NotImplementedError:
        raise
    except RuntimeError:
        pass
    else:
        pytest.fail(
            "record_activations on 3-channel images should raise conv1's RuntimeError",
            pytrace=False,
        )
    assert_no_hooks(model, "a record_activations whose forward pass raised")


@points(2)
def test_record_gradients(model, examples):
    x, target = examples[0][:5], torch.tensor([0, 3, 9, 1, 1])
    layers = ("conv1", "pool1", "relu2", "conv3", "relu3", "fc")
    got = m.record_gradients(model, x, target, layers)
    assert isinstance(got, dict) and set(got) == set(layers), (
        f"record_gradients returned keys {sorted(got) if isinstance(got, dict) else type(got)}, expected {sorted(layers)}"
    )
    outs = outputs_by_layer(model, x)
    score = outs["fc"].gather(1, target[:, None]).sum()
    expected = torch.autograd.grad(score, [outs[name] for name in layers])
    for name, grad in zip(layers, expected, strict=True):
        assert_close(
            got[name], grad, what=f"record_gradients(...)[{name!r}], targets {target.tolist()}"
        )
    assert_no_hooks(model, "record_gradients")
    bad = [n for n, p in model.named_parameters() if p.grad is not None]
    assert not bad, (
        f"record_gradients left .grad on parameters {bad}: use torch.autograd.grad on the input"
    )


# -- attribution maps --------------------------------------------------------------------------


@points(2)
def test_saliency_map(model, examples):
    images, labels = examples
    x, target = images[:6], labels[:6].roll(1)  # also classes other than the right one
    got = m.saliency_map(model, x, target)
    xr = x.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(scores(model, xr, target).sum(), xr)
    assert_close(got, expected, what=f"saliency_map(6 test images, targets {target.tolist()})")


@points(3)
@pytest.mark.parametrize("which", ["black", "gray", "other image"])
def test_integrated_gradients_completeness(model, examples, which):
    """sum(IG) = F(x) - F(x') up to the Riemann sum's error, which shrinks like 1/steps."""
    images, labels = examples
    x, target = images[:4], labels[:4]
    baseline = {
        "black": torch.zeros_like(x),
        "gray": torch.full_like(x, 0.5),
        "other image": images[4:8],
    }[which]
    got = m.integrated_gradients(model, x, target, baseline, steps=256)
    assert got.shape == x.shape, (
        f"integrated_gradients: shape {tuple(got.shape)}, expected {tuple(x.shape)}"
    )
    with torch.no_grad():
        delta = scores(model, x, target) - scores(model, baseline, target)
    total = got.sum(dim=(1, 2, 3))
    err = (total - delta).abs()
    bad = err > 0.02 * delta.abs() + 0.05
    assert not bad.any(), (
        f"integrated_gradients with a {which} baseline, steps=256: the attributions sum to "
        f"{[round(v, 3) for v in total.tolist()]} but F(x) - F(baseline) = "
        f"{[round(v, 3) for v in delta.tolist()]} (completeness). Did you multiply by (x - baseline)?"
    )


class Polynomial(nn.Module):
    """Two "logits" whose gradients are known: 0.5 * sum(x^2) (grad x) and sum(x^3) (grad 3x^2)."""

    def forward(self, x):
        return torch.stack([0.5 * x.pow(2).sum((1, 2, 3)), x.pow(3).sum((1, 2, 3))], dim=1)


@points(2)
@pytest.mark.parametrize("steps", [1, 4, 7])
def test_integrated_gradients_riemann_sum(steps):
    """On polynomials the right Riemann sum at alpha = k/m, k = 1..m, has a closed form."""
    x, baseline = torch.randn(3, 1, 4, 5), torch.randn(3, 1, 4, 5)
    target = torch.tensor([0, 1, 0])
    got = m.integrated_gradients(Polynomial(), x, target, baseline, steps=steps)
    alphas = torch.arange(1, steps + 1) / steps
    d = x - baseline
    # grad of target 0 at z is z; of target 1 is 3 z^2; z = baseline + alpha d, averaged over alphas
    mean_z = baseline + alphas.mean() * d
    mean_z2 = baseline**2 + 2 * alphas.mean() * baseline * d + alphas.pow(2).mean() * d**2
    expected = torch.where(target[:, None, None, None] == 0, d * mean_z, d * 3 * mean_z2)
    assert_close(
        got,
        expected,
        what=f"integrated_gradients on a polynomial, steps={steps} (alpha = k/steps, k = 1..steps)",
    )


@points(1)
def test_integrated_gradients_snapshot(model, examples, snapshot):
    images, labels = examples
    got = m.integrated_gradients(model, images[8:11], labels[8:11], steps=8)
    snapshot.check("ig", got, atol=1e-4, rtol=1e-3)


@points(3)
@pytest.mark.parametrize("patch,stride,fill", [(4, 4, 0.0), (5, 3, 0.0), (3, 2, 0.5)])
def test_occlusion_map(model, examples, patch, stride, fill):
    """Entry (i, j) is F(x) - F(x with the patch at rows i*stride.., cols j*stride.. set to fill)."""
    images, labels = examples
    x, target = images[:3], labels[:3]
    got = m.occlusion_map(model, x, target, patch=patch, stride=stride, fill=fill)
    n = (28 - patch) // stride + 1
    assert isinstance(got, torch.Tensor) and got.shape == (3, n, n), (
        f"occlusion_map(patch={patch}, stride={stride}) on (3, 1, 28, 28): shape "
        f"{tuple(got.shape) if isinstance(got, torch.Tensor) else type(got)}, expected (3, {n}, {n})"
    )
    gen = torch.Generator().manual_seed(patch)
    positions = [(0, 0), (n - 1, n - 1), (0, n - 1), (n // 2, n // 2)]
    positions += [tuple(torch.randint(0, n, (2,), generator=gen).tolist()) for _ in range(6)]
    with torch.no_grad():
        clean = scores(model, x, target)
        for i, j in positions:
            occluded = x.clone()
            occluded[..., i * stride : i * stride + patch, j * stride : j * stride + patch] = fill
            expected = clean - scores(model, occluded, target)
            assert_close(
                got[:, i, j],
                expected,
                what=f"occlusion_map(patch={patch}, stride={stride}, fill={fill})[:, {i}, {j}] "
                f"(rows and cols {i * stride}..{i * stride + patch - 1} x {j * stride}..{j * stride + patch - 1})",
                atol=1e-4,
            )


def grad_cam_reference(
    model: nn.Module, x: torch.Tensor, target: torch.Tensor, layer: str
) -> torch.Tensor:
    """Grad-CAM from a forward hook that keeps the layer's output A."""
    kept = {}
    handle = model.get_submodule(layer).register_forward_hook(
        lambda mod, inp, out: kept.setdefault("A", out)
    )
    try:
        score = scores(model, x, target).sum()
    finally:
        handle.remove()
    (grad,) = torch.autograd.grad(score, kept["A"])
    weights = grad.mean(dim=(2, 3), keepdim=True)  # (b, K, 1, 1)
    return F.relu((weights * kept["A"]).sum(dim=1)).detach()


@points(3)
@pytest.mark.parametrize("layer,size", [("relu3", 7), ("relu2", 14)])
def test_grad_cam(model, examples, layer, size):
    images, labels = examples
    x, target = images[:6], labels[:6]
    target[1] = (target[1] + 3) % 10  # one wrong class: its map is mostly empty
    got = m.grad_cam(model, x, target, layer)
    what = f"grad_cam(6 test images, targets {target.tolist()}, layer={layer!r})"
    assert isinstance(got, torch.Tensor) and got.shape == (6, size, size), (
        f"{what}: shape {tuple(got.shape) if isinstance(got, torch.Tensor) else type(got)}, "
        f"expected (6, {size}, {size}) (one map per image, at the layer's resolution)"
    )
    assert (got >= 0).all(), (
        f"{what}: {int((got < 0).sum())} negative entries; Grad-CAM ends with a ReLU"
    )
    assert_close(got, grad_cam_reference(model, x, target, layer), what=what, atol=1e-5, rtol=1e-3)
    assert_no_hooks(model, "grad_cam")


@points(1)
def test_grad_cam_targets_differ(model, examples):
    """The map depends on the class asked about: each example's own target, not one class for all."""
    images, labels = examples
    x = images[:1].expand(2, -1, -1, -1)
    target = torch.tensor([int(labels[0]), (int(labels[0]) + 5) % 10])
    got = m.grad_cam(model, x, target, "relu3")
    assert_close(
        got,
        grad_cam_reference(model, x, target, "relu3"),
        what="grad_cam of one image for two classes",
        atol=1e-5,
        rtol=1e-3,
    )


# -- feature visualization ---------------------------------------------------------------------


def unit_activation(model: nn.Module, x: torch.Tensor, layer: str, channel: int) -> torch.Tensor:
    """Mean over space of one channel (or one entry of a vector output), per image."""
    with torch.no_grad():
        out = outputs_by_layer(model, x)[layer][:, channel]
    return out.flatten(1).mean(1) if out.ndim > 1 else out


FACTOR = 1.5


@points(3)
@pytest.mark.parametrize("layer,channel", [("conv2", 11), ("conv3", 6), ("fc", 4)])
def test_feature_visualization(model, examples, layer, channel):
    """The image excites the unit at least FACTOR (1.5x) more than the best of the 16 test images.

    With the defaults (lr 0.1, l2 1e-3, jitter 2), 64 steps reach 1.8x to 3.9x on these units.
    """
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    got = m.feature_visualization(model, layer, channel, steps=64, seed=0)
    what = f"feature_visualization(layer={layer!r}, channel={channel}, steps=64)"
    assert isinstance(got, torch.Tensor) and got.shape == (1, 1, 28, 28), (
        f"{what}: got {tuple(got.shape) if isinstance(got, torch.Tensor) else type(got)}, expected (1, 1, 28, 28)"
    )
    assert got.min() >= 0 and got.max() <= 1, (
        f"{what}: pixels in [{got.min():.3g}, {got.max():.3g}], clamp to [0, 1]"
    )
    assert_params_untouched(model, before, "feature_visualization")
    assert_no_hooks(model, "feature_visualization")
    reached = unit_activation(model, got, layer, channel).item()
    best = unit_activation(model, examples[0], layer, channel).max().item()
    start = unit_activation(
        model, (0.5 + 0.1 * torch.randn(1, 1, 28, 28)).clamp(0, 1), layer, channel
    ).item()
    assert reached >= FACTOR * best, (
        f"{what}: the unit reaches {reached:.3g} (about {start:.3g} on the start noise), the best test image gives "
        f"{best:.3g}; expected at least {FACTOR}x that. Ascending (not descending) the activation?"
    )


@points(1)
def test_feature_visualization_seeded(model):
    a = m.feature_visualization(model, "conv3", 2, steps=16, seed=1)
    b = m.feature_visualization(model, "conv3", 2, steps=16, seed=1)
    c = m.feature_visualization(model, "conv3", 2, steps=16, seed=2)
    assert_close(a, b, what="feature_visualization twice with seed=1", atol=0, rtol=0)
    assert not torch.equal(a, c), (
        "feature_visualization gives the same image for seeds 1 and 2: draw the start noise and the "
        "jitter from a torch.Generator seeded by `seed`"
    )
