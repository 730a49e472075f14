"""Graders for day w1d2_resnet: layers against torch.nn.functional, the ResNet against
torchvision's layout (and torchvision itself where it is installed), training on Fashion-MNIST.

Run one exercise with `pytest tests/test_w1d2_resnet.py -k conv2d`.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from checks import assert_close, assert_equal, assert_vectorized
from mlab import w1d2_resnet as m
from torch import nn
from w1d2_resnet_helpers import (
    accuracy,
    block_keys,
    compare_keys,
    fashion_mnist_dir,
    fashion_subset,
    forbid_builtins,
    group_keys,
    random_state_dict,
    ref_block,
    ref_group,
    ref_resnet,
    resnet_keys,
    torchvision_manifest,
    write_idx,
)

points = pytest.mark.points

# -- convolutions as strided views -------------------------------------------------------------


@points(1)
@pytest.mark.parametrize("b,ci,co,w,kw", [(2, 3, 4, 10, 3), (1, 1, 2, 7, 7), (3, 2, 5, 9, 1)])
def test_conv1d_minimal(b, ci, co, w, kw):
    x, weights = torch.randn(b, ci, w), torch.randn(co, ci, kw)
    with forbid_builtins():
        got = m.conv1d_minimal(x, weights)
    assert_close(
        got, F.conv1d(x, weights), what=f"conv1d_minimal(x {(b, ci, w)}, weights {(co, ci, kw)})"
    )


@points(1)
def test_conv1d_minimal_of_a_view():
    base = torch.randn(3, 8, 2)
    x = base.transpose(1, 2)[:, :, 1:]  # (3, 2, 7), not contiguous, storage offset 2
    weights = torch.randn(4, 2, 3)
    with forbid_builtins():
        got = m.conv1d_minimal(x, weights)
    assert_close(
        got,
        F.conv1d(x, weights),
        what="conv1d_minimal of a transposed, sliced view (use x.stride())",
    )


@points(1)
@pytest.mark.parametrize(
    "shape,kernel", [((2, 3, 6, 7), (4, 3, 3, 3)), ((1, 2, 5, 9), (3, 2, 5, 2))]
)
def test_conv2d_minimal(shape, kernel):
    x, weights = torch.randn(shape), torch.randn(kernel)
    with forbid_builtins():
        got = m.conv2d_minimal(x, weights)
    assert_close(got, F.conv2d(x, weights), what=f"conv2d_minimal(x {shape}, weights {kernel})")


@points(1)
@pytest.mark.parametrize("left,right,value", [(2, 1, 0.0), (0, 3, -1.5), (1, 0, float("-inf"))])
def test_pad1d(left, right, value):
    x = torch.randn(2, 3, 5)
    with forbid_builtins():
        got = m.pad1d(x, left, right, value)
    expected = F.pad(x, (left, right), value=value)
    assert_close(
        got, expected, what=f"pad1d(x (2, 3, 5), left={left}, right={right}, pad_value={value})"
    )


@points(1)
@pytest.mark.parametrize("left,right,top,bottom", [(1, 2, 3, 0), (0, 0, 1, 1), (2, 0, 0, 2)])
def test_pad2d(left, right, top, bottom):
    x = torch.randn(2, 3, 4, 5)
    with forbid_builtins():
        got = m.pad2d(x, left, right, top, bottom, 2.5)
    expected = F.pad(x, (left, right, top, bottom), value=2.5)
    what = f"pad2d(x (2, 3, 4, 5), left={left}, right={right}, top={top}, bottom={bottom}, pad_value=2.5)"
    assert_close(got, expected, what=what)


@points(1)
@pytest.mark.parametrize(
    "w,kw,stride,padding", [(10, 3, 2, 1), (11, 4, 3, 2), (7, 3, 1, 0), (8, 5, 2, 3)]
)
def test_conv1d(w, kw, stride, padding):
    x, weights = torch.randn(2, 3, w), torch.randn(4, 3, kw)
    with forbid_builtins():
        got = m.conv1d(x, weights, stride=stride, padding=padding)
    expected = F.conv1d(x, weights, stride=stride, padding=padding)
    assert_close(
        got, expected, what=f"conv1d(x (2, 3, {w}), kw={kw}, stride={stride}, padding={padding})"
    )


CONV2D_CASES = [
    # (b, ci, co, h, w), (kh, kw), stride, padding
    ((2, 3, 4, 9, 9), (3, 3), 1, 1),
    ((2, 3, 4, 9, 9), (3, 3), 2, 1),
    ((1, 2, 3, 11, 8), (3, 3), 2, 0),
    ((2, 1, 2, 10, 7), (4, 2), 3, 2),
    ((1, 3, 5, 13, 12), (7, 7), 2, 3),
    ((2, 4, 3, 7, 9), (1, 1), 2, 0),
    ((1, 2, 3, 8, 11), (3, 5), (2, 1), (1, 2)),
    ((3, 2, 2, 5, 5), (5, 5), 1, (0, 1)),
]


@points(1)
@pytest.mark.parametrize("dims,kernel,stride,padding", CONV2D_CASES)
def test_conv2d(dims, kernel, stride, padding):
    b, ci, co, h, w = dims
    x, weights = torch.randn(b, ci, h, w), torch.randn(co, ci, *kernel)
    with forbid_builtins():
        got = m.conv2d(x, weights, stride=stride, padding=padding)
    expected = F.conv2d(x, weights, stride=stride, padding=padding)
    what = f"conv2d(x {(b, ci, h, w)}, weights {tuple(weights.shape)}, stride={stride}, padding={padding})"
    assert_close(got, expected, what=what)


@points(1)
def test_conv2d_of_a_view():
    x = torch.randn(2, 9, 8, 3).permute(0, 3, 1, 2)[:, 1:]  # (2, 2, 9, 8), channels-last, offset 1
    weights = torch.randn(3, 2, 3, 3)
    with forbid_builtins():
        got = m.conv2d(x, weights, stride=2, padding=1)
    expected = F.conv2d(x, weights, stride=2, padding=1)
    assert_close(got, expected, what="conv2d of a permuted, sliced view, stride 2, padding 1")


@points(2)
def test_conv2d_gradients():
    x = torch.randn(2, 3, 8, 7, requires_grad=True)
    weights = torch.randn(4, 3, 3, 3, requires_grad=True)
    x_ref, w_ref = x.detach().clone().requires_grad_(), weights.detach().clone().requires_grad_()
    upstream = torch.randn(2, 4, 4, 4)
    F.conv2d(x_ref, w_ref, stride=2, padding=1).backward(upstream)
    with forbid_builtins():
        m.conv2d(x, weights, stride=2, padding=1).backward(upstream)
    assert x.grad is not None and weights.grad is not None, (
        "conv2d: no gradient reached x or weights"
    )
    assert_close(x.grad, x_ref.grad, what="d(conv2d)/dx, stride 2, padding 1")
    assert_close(weights.grad, w_ref.grad, what="d(conv2d)/dweights, stride 2, padding 1")


@points(1)
def test_conv2d_vectorized():
    small = (torch.randn(1, 2, 6, 6), torch.randn(3, 2, 3, 3), 2, 1)
    large = (torch.randn(1, 2, 60, 60), torch.randn(3, 2, 3, 3), 2, 1)
    assert_vectorized(m.conv2d, small, large)


MAXPOOL_CASES = [
    # (h, w), kernel_size, stride, padding
    ((8, 8), 2, None, 0),
    ((9, 7), 3, 2, 1),
    ((10, 11), (3, 2), (2, 1), (1, 0)),
    ((7, 7), 3, 1, 1),
    ((12, 9), 4, 3, 2),
]


@points(1)
@pytest.mark.parametrize("hw,kernel,stride,padding", MAXPOOL_CASES)
def test_maxpool2d(hw, kernel, stride, padding):
    x = torch.randn(2, 3, *hw)
    with forbid_builtins():
        got = m.maxpool2d(x, kernel, stride, padding)
    expected = F.max_pool2d(x, kernel, stride, padding)
    what = f"maxpool2d(x (2, 3, {hw[0]}, {hw[1]}), kernel_size={kernel}, stride={stride}, padding={padding})"
    assert_close(got, expected, what=what)


@points(1)
def test_maxpool2d_negative_inputs():
    x = -torch.rand(2, 3, 7, 7) - 1  # every value below -1: padding must not win the max
    with forbid_builtins():
        got = m.maxpool2d(x, 3, 2, 1)
    assert_close(
        got,
        F.max_pool2d(x, 3, 2, 1),
        what="maxpool2d of all-negative x with padding 1 (pad with -inf)",
    )


@points(1)
def test_maxpool2d_vectorized():
    assert_vectorized(
        m.maxpool2d, (torch.randn(1, 2, 6, 6), 3, 2, 1), (torch.randn(1, 2, 60, 60), 3, 2, 1)
    )


# -- layers ------------------------------------------------------------------------------------


def check_uniform_init(param: torch.Tensor, bound: float, what: str) -> None:
    """Inside [-bound, bound] and spread over it (not all zeros, not a much narrower range)."""
    top = param.detach().abs().max().item()
    assert top <= bound + 1e-6, (
        f"{what}: |values| up to {top:.4g}, above 1/sqrt(fan_in) = {bound:.4g}"
    )
    assert top >= 0.8 * bound, (
        f"{what}: |values| only up to {top:.4g}; expected uniform in ±{bound:.4g}"
    )


@points(2)
def test_linear():
    layer = m.Linear(6, 4)
    assert isinstance(layer.weight, nn.Parameter) and isinstance(layer.bias, nn.Parameter), (
        "Linear: weight and bias must be nn.Parameter attributes named weight and bias"
    )
    assert_equal(
        torch.tensor(layer.weight.shape), torch.tensor([4, 6]), what="Linear(6, 4).weight shape"
    )
    assert_equal(torch.tensor(layer.bias.shape), torch.tensor([4]), what="Linear(6, 4).bias shape")
    check_uniform_init(layer.weight, 6**-0.5, "Linear(6, 4).weight at init")
    check_uniform_init(layer.bias, 6**-0.5, "Linear(6, 4).bias at init")
    x = torch.randn(3, 5, 6)
    with forbid_builtins():
        got = layer(x)
    assert_close(got, F.linear(x, layer.weight, layer.bias), what="Linear(6, 4) on x (3, 5, 6)")


@points(1)
def test_linear_no_bias():
    layer = m.Linear(5, 3, bias=False)
    assert layer.bias is None, "Linear(bias=False): bias must be None"
    assert [name for name, _ in layer.named_parameters()] == ["weight"], (
        "Linear(bias=False): only `weight`"
    )
    x = torch.randn(4, 5)
    assert_close(layer(x), x @ layer.weight.T, what="Linear(5, 3, bias=False) on x (4, 5)")


@points(2)
@pytest.mark.parametrize(
    "kernel,stride,padding", [(3, 1, 1), (3, 2, 1), (7, 2, 3), ((1, 3), (2, 1), (0, 1))]
)
def test_conv2d_module(kernel, stride, padding):
    layer = m.Conv2d(3, 5, kernel, stride=stride, padding=padding)
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    assert [name for name, _ in layer.named_parameters()] == ["weight"], (
        "Conv2d: one parameter named weight (no bias)"
    )
    assert_equal(
        torch.tensor(layer.weight.shape), torch.tensor([5, 3, kh, kw]), what="Conv2d weight shape"
    )
    check_uniform_init(
        layer.weight, (3 * kh * kw) ** -0.5, f"Conv2d(3, 5, {kernel}).weight at init"
    )
    x = torch.randn(2, 3, 11, 10)
    with forbid_builtins():
        got = layer(x)
    expected = F.conv2d(x, layer.weight, stride=stride, padding=padding)
    assert_close(
        got, expected, what=f"Conv2d(3, 5, kernel={kernel}, stride={stride}, padding={padding})"
    )


@points(1)
def test_maxpool2d_module():
    x = torch.randn(2, 3, 9, 9)
    with forbid_builtins():
        got = m.MaxPool2d(3, stride=2, padding=1)(x)
        default = m.MaxPool2d(2)(x)
    assert_close(got, F.max_pool2d(x, 3, 2, 1), what="MaxPool2d(3, stride=2, padding=1)")
    assert_close(default, F.max_pool2d(x, 2), what="MaxPool2d(2) (stride defaults to kernel_size)")


def make_batchnorms(c: int, **kwargs) -> tuple[nn.Module, nn.BatchNorm2d]:
    """Yours and torch's, with the same random scale and shift."""
    ours, ref = m.BatchNorm2d(c, **kwargs), nn.BatchNorm2d(c, **kwargs)
    with torch.no_grad():
        ref.weight.copy_(torch.rand(c) + 0.5)
        ref.bias.copy_(torch.randn(c))
        ours.weight.copy_(ref.weight)
        ours.bias.copy_(ref.bias)
    return ours, ref


@points(1)
def test_batchnorm2d_state():
    bn = m.BatchNorm2d(4)
    params = dict(bn.named_parameters())
    buffers = dict(bn.named_buffers())
    assert set(params) == {"weight", "bias"}, (
        f"BatchNorm2d parameters: {sorted(params)}, expected weight, bias"
    )
    assert set(buffers) == {"running_mean", "running_var", "num_batches_tracked"}, (
        f"BatchNorm2d buffers (register_buffer): {sorted(buffers)}, "
        "expected running_mean, running_var, num_batches_tracked"
    )
    ref = nn.BatchNorm2d(4).state_dict()
    for name, value in bn.state_dict().items():
        assert value.dtype == ref[name].dtype, (
            f"BatchNorm2d.{name}: dtype {value.dtype}, expected {ref[name].dtype}"
        )
        assert_close(value, ref[name], what=f"BatchNorm2d(4).{name} at init")


@points(3)
@pytest.mark.parametrize("momentum,eps", [(0.1, 1e-5), (0.3, 1e-2)])
def test_batchnorm2d_train(momentum, eps):
    """A few training steps on small batches (n = 2*3*3 = 18 values per channel, so biased and
    unbiased variances differ by 6%) from a shifted distribution."""
    ours, ref = make_batchnorms(3, momentum=momentum, eps=eps)
    ours.train(), ref.train()
    for step in range(3):
        x = torch.randn(2, 3, 3, 3) * torch.tensor([1.0, 2.0, 0.5])[:, None, None] + 3.0
        with forbid_builtins():
            got = ours(x)
        expected = ref(x)
        where = f"BatchNorm2d(momentum={momentum}, eps={eps}) in training mode, batch {step + 1}"
        assert_close(
            got, expected, what=f"{where}: output (normalize with the biased batch variance)"
        )
        assert_close(ours.running_mean, ref.running_mean, what=f"{where}: running_mean")
        assert_close(
            ours.running_var,
            ref.running_var,
            what=f"{where}: running_var (update with the unbiased variance)",
        )
        assert int(ours.num_batches_tracked) == step + 1, (
            f"{where}: num_batches_tracked is {int(ours.num_batches_tracked)}, expected {step + 1}"
        )


@points(2)
def test_batchnorm2d_eval():
    """After training steps the running statistics are far from the batch's: eval must use them."""
    ours, ref = make_batchnorms(3)
    for _ in range(2):
        x = torch.randn(4, 3, 5, 5) * 2 + 1
        with forbid_builtins():
            ours(x)
        ref(x)
    ours.eval(), ref.eval()
    x = torch.randn(2, 3, 4, 4) - 2
    with forbid_builtins():
        got = ours(x)
    assert_close(
        got, ref(x), what="BatchNorm2d in eval mode (normalize with the running statistics)"
    )
    assert_close(
        ours.running_mean,
        ref.running_mean,
        what="BatchNorm2d.running_mean after an eval-mode call (unchanged)",
    )
    assert int(ours.num_batches_tracked) == 2, "BatchNorm2d: eval mode must not count batches"


@points(1)
def test_batchnorm2d_gradients():
    ours, ref = make_batchnorms(3)
    x = torch.randn(2, 3, 4, 4)
    x_ours, x_ref = x.clone().requires_grad_(), x.clone().requires_grad_()
    upstream = torch.randn(2, 3, 4, 4)
    with forbid_builtins():
        ours(x_ours).backward(upstream)
    ref(x_ref).backward(upstream)
    assert_close(x_ours.grad, x_ref.grad, what="d(BatchNorm2d)/dx in training mode", atol=1e-4)
    assert_close(ours.weight.grad, ref.weight.grad, what="d(BatchNorm2d)/dweight", atol=1e-4)
    assert_close(ours.bias.grad, ref.bias.grad, what="d(BatchNorm2d)/dbias", atol=1e-4)


@points(1)
def test_relu():
    x = torch.randn(3, 4, 5)
    assert_close(m.ReLU()(x), F.relu(x), what="ReLU on x (3, 4, 5)")


@points(1)
def test_sequential():
    a, b = nn.Linear(4, 3), nn.Linear(3, 2)
    seq = m.Sequential(a, nn.ReLU(), b)
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"], (
        f"Sequential state dict keys {list(seq.state_dict())}: register the modules as children '0', '1', ..."
    )
    x = torch.randn(5, 4)
    assert_close(seq(x), b(F.relu(a(x))), what="Sequential(Linear, ReLU, Linear) on x (5, 4)")


@points(1)
@pytest.mark.parametrize("start,end", [(1, -1), (0, -1), (1, 2), (-3, -2), (2, 3)])
def test_flatten(start, end):
    x = torch.randn(2, 3, 4, 5)
    got = m.Flatten(start, end)(x)
    assert_close(
        got,
        torch.flatten(x, start, end),
        what=f"Flatten(start_dim={start}, end_dim={end}) on (2, 3, 4, 5)",
    )


@points(1)
def test_average_pool():
    x = torch.randn(2, 3, 5, 4)
    with forbid_builtins():
        got = m.AveragePool()(x)
    assert_close(
        got, x.mean(dim=(2, 3)), what="AveragePool on x (2, 3, 5, 4): mean over height and width"
    )


# -- ResNet ------------------------------------------------------------------------------------


def load_random(module: nn.Module, keys, seed: int, what: str) -> dict[str, torch.Tensor]:
    """Check the layout, then load random torchvision-layout weights with torch's own loader."""
    compare_keys(module.state_dict(), keys, what)
    sd = random_state_dict(keys, seed)
    module.load_state_dict(sd)
    return sd


@points(2)
@pytest.mark.parametrize("cin,cout,stride", [(8, 8, 1), (8, 16, 2), (6, 10, 1)])
def test_residual_block(cin, cout, stride):
    block = m.ResidualBlock(cin, cout, stride)
    what = f"ResidualBlock({cin}, {cout}, first_stride={stride})"
    sd = load_random(block, block_keys("", cin, cout, stride), seed=1, what=what)
    x = torch.randn(2, cin, 9, 8)
    with forbid_builtins():
        block.eval()
        got_eval = block(x)
        block.train()
        got_train = block(x)
    assert_close(
        got_eval, ref_block(x, sd, "", stride, train=False), what=f"{what} in eval mode", atol=1e-4
    )
    assert_close(
        got_train,
        ref_block(x, sd, "", stride, train=True),
        what=f"{what} in training mode",
        atol=1e-4,
    )


@points(2)
def test_block_group():
    group = m.BlockGroup(3, 8, 12, first_stride=2)
    what = "BlockGroup(n_blocks=3, in_feats=8, out_feats=12, first_stride=2)"
    sd = load_random(group, group_keys("", 3, 8, 12, 2), seed=2, what=what)
    x = torch.randn(2, 8, 10, 10)
    with forbid_builtins():
        group.eval()
        got = group(x)
    assert_close(got, ref_group(x, sd, "", 2, train=False), what=f"{what} in eval mode", atol=1e-4)


@points(2)
def test_resnet34_layout():
    """The default ResNet34 has torchvision's resnet34 keys, shapes and dtypes (the manifest in
    tests/data/w1d2_resnet/resnet34_keys.json)."""
    sd = m.ResNet34().state_dict()
    compare_keys(sd, torchvision_manifest(), "ResNet34()")
    longs = [k for k, v in sd.items() if v.dtype == torch.long]
    assert all(k.endswith("num_batches_tracked") for k in longs), (
        f"int64 tensors that should be float: {longs[:3]}"
    )


@points(3)
def test_resnet34_forward():
    model = m.ResNet34()
    sd = load_random(model, torchvision_manifest(), seed=3, what="ResNet34()")
    x = torch.randn(2, 3, 64, 64)
    model.eval()
    with torch.no_grad(), forbid_builtins():
        got = model(x)
    expected = ref_resnet(x, sd, strides=(1, 2, 2, 2))
    scale = expected.abs().max().item()
    assert_close(
        got,
        expected,
        what="ResNet34 in eval mode on x (2, 3, 64, 64), random weights",
        atol=1e-4 * scale,
    )


@points(2)
def test_small_resnet_forward():
    config = dict(
        n_blocks_per_group=(2, 1),
        out_features_per_group=(8, 16),
        first_strides_per_group=(1, 2),
        n_classes=10,
        in_channels=1,
    )
    model = m.ResNet34(**config)
    keys = resnet_keys((2, 1), (8, 16), (1, 2), n_classes=10, in_channels=1)
    sd = load_random(model, keys, seed=4, what=f"ResNet34({config})")
    x = torch.randn(4, 1, 28, 28)
    with forbid_builtins():
        model.eval()
        got_eval = model(x)
        model.train()
        got_train = model(x)
    what = "ResNet34(blocks (2, 1), widths (8, 16), strides (1, 2), 10 classes, 1 channel)"
    assert_close(got_eval, ref_resnet(x, sd, (1, 2)), what=f"{what} in eval mode", atol=1e-4)
    assert_close(
        got_train, ref_resnet(x, sd, (1, 2), train=True), what=f"{what} in training mode", atol=1e-4
    )


@points(3)
def test_copy_weights():
    model = m.ResNet34()
    before = {name: id(p) for name, p in model.named_parameters()}
    sd = random_state_dict(torchvision_manifest(), seed=5)
    returned = m.copy_weights(model, sd)
    assert returned is model, "copy_weights must return the model it was given"
    mine = model.state_dict()
    for name, value in sd.items():
        if not torch.equal(mine[name], value):
            assert_equal(mine[name], value, what=f"after copy_weights, {name}")
    after = {name: id(p) for name, p in model.named_parameters()}
    assert before == after, (
        "copy_weights must copy into the model's own parameters (.copy_), not replace them"
    )
    sd["fc.bias"].add_(1.0)
    assert not torch.equal(model.fc.bias, sd["fc.bias"]), (
        "copy_weights must copy the values, not share the tensors"
    )


@points(2)
def test_copy_weights_checks_layout():
    keys = resnet_keys((1, 1), (8, 16), (1, 2), n_classes=10, in_channels=1)
    config = dict(
        n_blocks_per_group=(1, 1),
        out_features_per_group=(8, 16),
        first_strides_per_group=(1, 2),
        n_classes=10,
        in_channels=1,
    )
    good = random_state_dict(keys, seed=6)
    bad = dict(good)
    del bad["layer2.0.downsample.1.running_var"]
    bad["layer2.0.shortcut.weight"] = torch.zeros(16, 8, 1, 1)
    bad["fc.weight"] = torch.zeros(16, 10)  # transposed
    with pytest.raises(ValueError) as info:
        m.copy_weights(m.ResNet34(**config), bad)
    message = str(info.value)
    for key in ("layer2.0.downsample.1.running_var", "layer2.0.shortcut.weight", "fc.weight"):
        assert key in message, (
            f"copy_weights: the ValueError should name {key} (got: {message[:300]})"
        )
    model = m.copy_weights(m.ResNet34(**config), good)
    assert_equal(
        model.layer2[0].downsample[1].running_var,
        good["layer2.0.downsample.1.running_var"],
        what="layer2.0.downsample.1.running_var after copy_weights",
    )


@points(3)
def test_resnet34_matches_torchvision():
    """Where torchvision is installed: its resnet34 (random init, perturbed batch-norm statistics)
    copied into yours gives the same logits."""
    torchvision = pytest.importorskip("torchvision", reason="torchvision is not installed here")
    reference = torchvision.models.resnet34(weights=None)
    with torch.no_grad():
        for module in reference.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.2)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.0)
                module.bias.normal_(0, 0.1)
    model = m.copy_weights(m.ResNet34(), reference.state_dict())
    model.eval(), reference.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = reference(x)
        got = model(x)
    scale = expected.abs().max().item()
    assert_close(
        got, expected, what="ResNet34 vs torchvision.models.resnet34 (eval mode)", atol=1e-4 * scale
    )


# -- Fashion-MNIST -----------------------------------------------------------------------------


@points(1)
@pytest.mark.parametrize("name", ["cube.idx", "cube.idx.gz"])
def test_read_idx(tmp_path, name):
    data = torch.randint(0, 256, (3, 4, 5), dtype=torch.uint8)
    write_idx(tmp_path / name, data)
    got = m.read_idx(tmp_path / name)
    assert got.dtype == torch.uint8, f"read_idx: dtype {got.dtype}, expected torch.uint8"
    assert_equal(got, data, what=f"read_idx of a (3, 4, 5) IDX file {name}")
    labels = torch.tensor([9, 0, 3, 255], dtype=torch.uint8)
    write_idx(tmp_path / f"labels-{name}", labels)
    assert_equal(m.read_idx(tmp_path / f"labels-{name}"), labels, what="read_idx of a 1-D IDX file")


@points(1)
def test_read_idx_rejects_other_files(tmp_path):
    path = tmp_path / "floats.idx"
    path.write_bytes(
        bytes([0, 0, 0x0D, 1]) + (2).to_bytes(4, "big") + bytes(8)
    )  # type 0x0D: float32
    with pytest.raises(ValueError):
        m.read_idx(path)


@points(2)
def test_load_fashion_mnist():
    images, labels = m.load_fashion_mnist("test", root=fashion_mnist_dir())
    assert tuple(images.shape) == (10000, 1, 28, 28), f"test images: shape {tuple(images.shape)}"
    assert images.dtype == torch.float32, (
        f"images: dtype {images.dtype}, expected float32 in [0, 1]"
    )
    assert labels.dtype == torch.int64, f"labels: dtype {labels.dtype}, expected int64"
    expected_x, expected_y = fashion_subset("test", 500)
    assert_close(
        images[:500], expected_x, what="the first 500 test images (divide the bytes by 255)"
    )
    assert_equal(labels[:500], expected_y, what="the first 500 test labels")
    assert_equal(
        torch.bincount(labels, minlength=10), torch.full((10,), 1000), what="test labels per class"
    )


@points(1)
def test_load_fashion_mnist_search_order(tmp_path, monkeypatch):
    """$MLAB_DATA_DIR/fashion-mnist comes first (here: a fake 5-image test split)."""
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    fake = torch.randint(0, 256, (5, 28, 28), dtype=torch.uint8)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", fake)
    write_idx(
        folder / "t10k-labels-idx1-ubyte.gz", torch.tensor([1, 2, 3, 4, 5], dtype=torch.uint8)
    )
    monkeypatch.setenv("MLAB_DATA_DIR", str(tmp_path))
    images, labels = m.load_fashion_mnist("test")
    assert_close(
        images, fake[:, None].float() / 255, what="images read from $MLAB_DATA_DIR/fashion-mnist"
    )
    assert_equal(
        labels, torch.tensor([1, 2, 3, 4, 5]), what="labels read from $MLAB_DATA_DIR/fashion-mnist"
    )


@points(1)
def test_load_fashion_mnist_missing(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        m.load_fashion_mnist("train", root=tmp_path)
    message = str(info.value)
    assert "\n" not in message.strip(), f"the error should be one line, got: {message[:300]}"
    assert "dataset-fashion-mnist" in message, (
        f"the error should say what to install, got: {message[:300]}"
    )
    assert str(tmp_path) in message, (
        f"the error should name the directories searched, got: {message[:300]}"
    )


# -- training ----------------------------------------------------------------------------------


@pytest.fixture
def one_thread():
    """These models are tiny: one thread trains them as fast as two, and a busy machine (other
    processes on the same cores) cannot make threads spin-wait for each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 5, stride=2),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * 12 * 12, 10),
    )


@points(2)
def test_train_classifier(one_thread):
    """On a torch-built CNN: 150 steps on 2000 images reach 70% on 1000 held-out images."""
    images, labels = fashion_subset("train", 2000)
    model = tiny_cnn()
    model.eval()  # train_classifier must switch to training mode itself
    losses = m.train_classifier(
        model, images, labels, m.TrainConfig(steps=150, batch_size=32, lr=3e-3)
    )
    assert isinstance(losses, list) and len(losses) == 150, (
        "train_classifier returns one loss per step"
    )
    assert all(isinstance(v, float) for v in losses), "losses should be Python floats (loss.item())"
    first, last = sum(losses[:20]) / 20, sum(losses[-20:]) / 20
    assert last < 0.7 * first, f"the loss fell only from {first:.3f} to {last:.3f} in 150 steps"
    assert int(model[1].num_batches_tracked) == 150, (
        "batch norm tracked no batches: call model.train() before training"
    )
    test_x, test_y = fashion_subset("test", 1000)
    acc = accuracy(model, test_x, test_y)
    assert acc >= 0.70, f"held-out accuracy {acc:.3f} after 150 steps, expected at least 0.70"


@points(1)
def test_train_classifier_is_seeded(one_thread):
    images, labels = fashion_subset("train", 500)
    config = m.TrainConfig(steps=5, batch_size=16, seed=3)
    a = m.train_classifier(tiny_cnn(), images, labels, config)
    b = m.train_classifier(tiny_cnn(), images, labels, config)
    assert a == b, (
        f"two runs with the same seed differ: {a} vs {b} (draw batches with the seeded generator)"
    )
    c = m.train_classifier(
        tiny_cnn(), images, labels, m.TrainConfig(steps=5, batch_size=16, seed=4)
    )
    assert a != c, "a different seed gave the same batches"


@points(1)
def test_train_classifier_schedule(one_thread, monkeypatch):
    """Adam, with the learning rate decayed linearly: config.lr * (1 - s / steps) at step s."""
    seen = []

    class RecordingAdam(torch.optim.Adam):
        def step(self, closure=None):
            seen.append(self.param_groups[0]["lr"])
            return super().step(closure)

    monkeypatch.setattr(torch.optim, "Adam", RecordingAdam)
    images, labels = fashion_subset("train", 200)
    m.train_classifier(tiny_cnn(), images, labels, m.TrainConfig(steps=4, batch_size=8, lr=0.01))
    assert seen, "no torch.optim.Adam step was taken (create the optimizer as torch.optim.Adam)"
    expected = torch.tensor([0.01, 0.0075, 0.005, 0.0025], dtype=torch.float64)
    assert_close(
        torch.tensor(seen, dtype=torch.float64), expected, what="learning rate at each step"
    )


@points(1)
def test_train_classifier_params(one_thread):
    """Fine-tuning the head only: params=model[-1].parameters() leaves the others alone."""
    images, labels = fashion_subset("train", 500)
    model = tiny_cnn()
    before = {k: v.clone() for k, v in model.named_parameters()}
    m.train_classifier(
        model, images, labels, m.TrainConfig(steps=3, batch_size=16), params=model[-1].parameters()
    )
    for name, value in model.named_parameters():
        changed = not torch.equal(value, before[name])
        assert changed == name.startswith("4."), (
            f"{name} {'changed' if changed else 'did not change'}"
        )


@points(1)
def test_evaluate():
    """Eval mode (running statistics, not updated) and batches that do not divide n."""
    images, labels = fashion_subset("test", 300)
    model = tiny_cnn()
    model.train()
    with torch.no_grad():
        model(images[:64] * 3)  # running statistics now differ from any batch's
    stats = model[1].running_mean.clone()
    expected = accuracy(model, images, labels)
    model.train()
    got = m.evaluate(model, images, labels, batch_size=128)
    assert isinstance(got, float), f"evaluate returns a float, got {type(got).__name__}"
    assert abs(got - expected) < 1e-9, (
        f"evaluate gave {got:.4f}, expected {expected:.4f} (eval mode, all 300 images)"
    )
    assert_equal(
        model[1].running_mean, stats, what="running_mean after evaluate (eval mode leaves it)"
    )


@points(4)
@pytest.mark.slow
def test_small_resnet_fashion_mnist(one_thread):
    """Your layers, your training loop: small_resnet() with the default TrainConfig (300 steps of
    48 images from the first 10000) reaches 80% on the first 2000 test images."""
    images, labels = fashion_subset("train", 10000)
    test_x, test_y = fashion_subset("test", 2000)
    torch.manual_seed(0)
    model = m.small_resnet()
    losses = m.train_classifier(model, images, labels)
    acc = accuracy(model, test_x, test_y)
    assert acc >= 0.80, (
        f"held-out accuracy {acc:.3f} after {len(losses)} steps (final loss {losses[-1]:.3f}); expected "
        "at least 0.80. Check each layer's test first."
    )


# -- feature extraction ------------------------------------------------------------------------


class TinyNet(nn.Module):
    """A small torch CNN laid out like a ResNet: a body, then the head `fc`."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 8, 5, stride=2)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8 * 12 * 12, 10)

    def forward(self, x):
        return self.fc(self.bn(self.conv(x)).relu().flatten(1))


def adam_steps(model: nn.Module, images, labels, steps: int, seed: int = 0) -> None:
    """Adam over *all* of model.parameters(): frozen ones get no gradient and stay as they are."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert trainable, "no parameter of the model requires grad: the new head must be trainable"
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(labels), (32,), generator=g)
        optimizer.zero_grad()
        F.cross_entropy(model(images[idx]), labels[idx]).backward()
        optimizer.step()


@points(2)
def test_get_resnet_for_feature_extraction_layout():
    model = TinyNet()
    old_fc = model.fc
    got = m.get_resnet_for_feature_extraction(5, model)
    assert got is model, "get_resnet_for_feature_extraction(5, model) should return model itself"
    head = dict(model.fc.named_parameters())
    assert model.fc is not old_fc and tuple(model.fc.weight.shape) == (5, 8 * 12 * 12), (
        f"model.fc should be a new Linear({8 * 12 * 12}, 5); got {model.fc} "
        f"{'(the old head)' if model.fc is old_fc else ''}"
    )
    trainable = sorted(n for n, p in model.named_parameters() if p.requires_grad)
    expected = sorted(f"fc.{n}" for n in head)
    assert trainable == expected, (
        f"parameters that require grad: {trainable}; expected only the new head's {expected} "
        "(freeze the body with requires_grad_(False), then attach the new head)"
    )
    out = model(torch.randn(3, 1, 28, 28))
    assert tuple(out.shape) == (3, 5), (
        f"the model now gives logits {tuple(out.shape)}, expected (3, 5)"
    )


@points(1)
def test_get_resnet_for_feature_extraction_default():
    """With no model: a ResNet34 with a new 7-class head on its 512 features, the rest frozen."""
    model = m.get_resnet_for_feature_extraction(7)
    assert isinstance(model, m.ResNet34), f"expected a ResNet34, got {type(model).__name__}"
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    assert tuple(model.fc.weight.shape) == (7, 512) and trainable == 7 * 512 + 7, (
        f"fc {tuple(model.fc.weight.shape)} and {trainable} trainable parameters; expected a "
        f"Linear(512, 7) head, {7 * 512 + 7} parameters"
    )
    assert frozen > 21_000_000, f"only {frozen} frozen parameters: the body is ResNet34's ~21.3M"


@points(2)
def test_feature_extraction_trains_only_the_head(one_thread):
    """A body trained on Fashion-MNIST, frozen; a new head trained by Adam over all parameters:
    only the head moves, and it reaches 70% on 1000 held-out images."""
    images, labels = fashion_subset("train", 2000)
    pretrained = TinyNet()
    adam_steps(pretrained, images, labels, 80)
    model = m.get_resnet_for_feature_extraction(10, pretrained)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    adam_steps(model, images, labels, 80, seed=1)
    for name, value in model.named_parameters():
        changed = not torch.equal(value, before[name])
        assert changed == name.startswith("fc."), (
            f"{name} {'changed' if changed else 'did not change'} while training after feature "
            "extraction: only the new head (fc) should"
        )
    test_x, test_y = fashion_subset("test", 1000)
    acc = accuracy(model, test_x, test_y)
    assert acc >= 0.70, (
        f"held-out accuracy {acc:.3f} after training the new head for 80 steps on frozen trained "
        "features; expected at least 0.70"
    )
