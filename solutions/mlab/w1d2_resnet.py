"""Day w1d2_resnet: ResNet from scratch, then real weights.

You build every layer of a ResNet-34 yourself: convolutions out of `as_strided` views and one
einsum, max pooling, batch normalization with running statistics, residual blocks. You name the
modules exactly as torchvision does, so a state dict saved from `torchvision.models.resnet34`
loads into your model key for key. Then you train a small ResNet made of your layers on
Fashion-MNIST. Read docs/w1d2_resnet.md for the ideas and the figures.

Allowed: `torch.nn.Module`, `torch.nn.Parameter`, tensor operations and `torch.einsum`. Not
allowed in the exercises: `torch.nn.functional` convolutions, pooling or batch norm, `unfold`,
and the ready-made layers of `torch.nn` (the graders compare your layers with exactly those).
"""

from __future__ import annotations

import gzip
import os
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn

IntOrPair = int | tuple[int, int]


def force_pair(v: IntOrPair) -> tuple[int, int]:
    """An int n becomes (n, n); a pair stays as it is (height first, then width)."""
    if isinstance(v, int):
        return (v, v)
    if len(v) != 2:
        raise ValueError(f"expected an int or a pair of ints, got {v!r}")
    return (int(v[0]), int(v[1]))


# -- convolutions as strided views -------------------------------------------------------------


def conv1d_minimal(
    x: Float[Tensor, "b ci w"], weights: Float[Tensor, "co ci kw"]
) -> Float[Tensor, "b co ow"]:
    """Cross-correlation (what deep learning calls convolution), stride 1, no padding.

    out[b, o, i] = sum over c, k of x[b, c, i + k] * weights[o, c, k], with ow = w - kw + 1.
    Build the view windows[b, c, i, k] = x[b, c, i + k] with `x.as_strided` (use `x.stride()`:
    x may be a non-contiguous view), then contract it with the weights in one einsum.
    """
    # BEGIN SOLUTION
    b, ci, w = x.shape
    co, ci_w, kw = weights.shape
    assert ci == ci_w, f"x has {ci} channels but the weights expect {ci_w}"
    ow = w - kw + 1
    s_b, s_c, s_w = x.stride()
    windows = x.as_strided((b, ci, ow, kw), (s_b, s_c, s_w, s_w))  # (b, ci, ow, kw)
    return torch.einsum("bcik,ock->boi", windows, weights)
    # END SOLUTION


def conv2d_minimal(
    x: Float[Tensor, "b ci h w"], weights: Float[Tensor, "co ci kh kw"]
) -> Float[Tensor, "b co oh ow"]:
    """2D cross-correlation, stride 1, no padding: oh = h - kh + 1, ow = w - kw + 1.

    The same idea with two window axes: windows[b, c, i, j, p, q] = x[b, c, i + p, j + q].
    """
    # BEGIN SOLUTION
    b, ci, h, w = x.shape
    co, ci_w, kh, kw = weights.shape
    assert ci == ci_w, f"x has {ci} channels but the weights expect {ci_w}"
    oh, ow = h - kh + 1, w - kw + 1
    s_b, s_c, s_h, s_w = x.stride()
    windows = x.as_strided((b, ci, oh, ow, kh, kw), (s_b, s_c, s_h, s_w, s_h, s_w))
    return torch.einsum("bcijpq,ocpq->boij", windows, weights)
    # END SOLUTION


def pad1d(
    x: Float[Tensor, "b c w"], left: int, right: int, pad_value: float
) -> Float[Tensor, "b c wp"]:
    """x with `left` copies of pad_value before and `right` after, along the last axis.

    Make a new tensor full of pad_value (`x.new_full`) and write x into its middle.
    """
    # BEGIN SOLUTION
    b, c, w = x.shape
    out = x.new_full((b, c, left + w + right), pad_value)
    out[..., left : left + w] = x
    return out
    # END SOLUTION


def pad2d(
    x: Float[Tensor, "b c h w"], left: int, right: int, top: int, bottom: int, pad_value: float
) -> Float[Tensor, "b c hp wp"]:
    """x padded with pad_value: `top`/`bottom` rows above/below, `left`/`right` columns."""
    # BEGIN SOLUTION
    b, c, h, w = x.shape
    out = x.new_full((b, c, top + h + bottom, left + w + right), pad_value)
    out[..., top : top + h, left : left + w] = x
    return out
    # END SOLUTION


def conv1d(
    x: Float[Tensor, "b ci w"],
    weights: Float[Tensor, "co ci kw"],
    stride: int = 1,
    padding: int = 0,
) -> Float[Tensor, "b co ow"]:
    """1D cross-correlation with stride and zero padding on both sides, like F.conv1d.

    ow = (w + 2 * padding - kw) // stride + 1. Pad first; then output position i starts at
    input position i * stride, so the window axis i steps `stride` elements while the kernel
    axis k steps one.
    """
    # BEGIN SOLUTION
    x = pad1d(x, padding, padding, 0.0)
    b, ci, w = x.shape
    co, ci_w, kw = weights.shape
    assert ci == ci_w, f"x has {ci} channels but the weights expect {ci_w}"
    ow = (w - kw) // stride + 1
    s_b, s_c, s_w = x.stride()
    windows = x.as_strided((b, ci, ow, kw), (s_b, s_c, s_w * stride, s_w))  # (b, ci, ow, kw)
    return torch.einsum("bcik,ock->boi", windows, weights)
    # END SOLUTION


def conv2d(
    x: Float[Tensor, "b ci h w"],
    weights: Float[Tensor, "co ci kh kw"],
    stride: IntOrPair = 1,
    padding: IntOrPair = 0,
) -> Float[Tensor, "b co oh ow"]:
    """2D cross-correlation with stride and zero padding, like F.conv2d (no bias, no groups).

    stride and padding are an int or a (height, width) pair:
    oh = (h + 2 * pad_h - kh) // stride_h + 1, and the same for ow.
    """
    # BEGIN SOLUTION
    stride_h, stride_w = force_pair(stride)
    pad_h, pad_w = force_pair(padding)
    x = pad2d(x, pad_w, pad_w, pad_h, pad_h, 0.0)
    b, ci, h, w = x.shape
    co, ci_w, kh, kw = weights.shape
    assert ci == ci_w, f"x has {ci} channels but the weights expect {ci_w}"
    oh, ow = (h - kh) // stride_h + 1, (w - kw) // stride_w + 1
    s_b, s_c, s_h, s_w = x.stride()
    windows = x.as_strided(
        (b, ci, oh, ow, kh, kw), (s_b, s_c, s_h * stride_h, s_w * stride_w, s_h, s_w)
    )  # (b, ci, oh, ow, kh, kw)
    return torch.einsum("bcijpq,ocpq->boij", windows, weights)
    # END SOLUTION


def maxpool2d(
    x: Float[Tensor, "b c h w"],
    kernel_size: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
) -> Float[Tensor, "b c oh ow"]:
    """Max over each kernel_size window, like F.max_pool2d; stride defaults to kernel_size.

    Pad with -inf (not 0: a window of negative numbers must not return 0), take strided windows
    as in conv2d, then the max over the two kernel axes.
    """
    # BEGIN SOLUTION
    kh, kw = force_pair(kernel_size)
    stride_h, stride_w = force_pair(kernel_size if stride is None else stride)
    pad_h, pad_w = force_pair(padding)
    x = pad2d(x, pad_w, pad_w, pad_h, pad_h, float("-inf"))
    b, c, h, w = x.shape
    oh, ow = (h - kh) // stride_h + 1, (w - kw) // stride_w + 1
    s_b, s_c, s_h, s_w = x.stride()
    windows = x.as_strided(
        (b, c, oh, ow, kh, kw), (s_b, s_c, s_h * stride_h, s_w * stride_w, s_h, s_w)
    )  # (b, c, oh, ow, kh, kw)
    return windows.amax(dim=(-2, -1))
    # END SOLUTION


# -- layers ------------------------------------------------------------------------------------


class Linear(nn.Module):
    """y = x @ weight.T + bias, like nn.Linear.

    Parameters `weight` (out_features, in_features) and `bias` (out_features,), or `bias` None
    when bias=False. Initialize both uniformly in [-1/sqrt(in_features), 1/sqrt(in_features)].
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        # BEGIN SOLUTION
        self.in_features, self.out_features = in_features, out_features
        bound = in_features**-0.5
        self.weight = nn.Parameter(torch.empty(out_features, in_features).uniform_(-bound, bound))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_features).uniform_(-bound, bound))
        else:
            self.register_parameter("bias", None)
        # END SOLUTION

    def forward(self, x: Float[Tensor, "... in_features"]) -> Float[Tensor, "... out_features"]:
        # BEGIN SOLUTION
        out = torch.einsum("...i,oi->...o", x, self.weight)
        return out if self.bias is None else out + self.bias
        # END SOLUTION

    def extra_repr(self) -> str:
        return f"in_features={self.weight.shape[1]}, out_features={self.weight.shape[0]}"


class Conv2d(nn.Module):
    """A convolution layer with no bias (in a ResNet every convolution feeds a BatchNorm2d, whose
    shift makes a bias redundant), built on your `conv2d`.

    Parameter `weight` (out_channels, in_channels, kh, kw), initialized uniformly in
    [-1/sqrt(fan_in), 1/sqrt(fan_in)] with fan_in = in_channels * kh * kw.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOrPair,
        stride: IntOrPair = 1,
        padding: IntOrPair = 0,
    ):
        super().__init__()
        # BEGIN SOLUTION
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = (
            force_pair(kernel_size),
            force_pair(stride),
            force_pair(padding),
        )
        kh, kw = self.kernel_size
        bound = (in_channels * kh * kw) ** -0.5
        weight = torch.empty(out_channels, in_channels, kh, kw).uniform_(-bound, bound)
        self.weight = nn.Parameter(weight)
        # END SOLUTION

    def forward(self, x: Float[Tensor, "b ci h w"]) -> Float[Tensor, "b co oh ow"]:
        # BEGIN SOLUTION
        return conv2d(x, self.weight, self.stride, self.padding)
        # END SOLUTION

    def extra_repr(self) -> str:
        return ", ".join(
            f"{k}={getattr(self, k, '?')}" for k in ("kernel_size", "stride", "padding")
        )


class MaxPool2d(nn.Module):
    """Your `maxpool2d` as a layer (no parameters)."""

    def __init__(
        self, kernel_size: IntOrPair, stride: IntOrPair | None = None, padding: IntOrPair = 0
    ):
        super().__init__()
        # BEGIN SOLUTION
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        # END SOLUTION

    def forward(self, x: Float[Tensor, "b c h w"]) -> Float[Tensor, "b c oh ow"]:
        # BEGIN SOLUTION
        return maxpool2d(x, self.kernel_size, self.stride, self.padding)
        # END SOLUTION


class BatchNorm2d(nn.Module):
    """Batch normalization over (batch, height, width) for each channel, like nn.BatchNorm2d.

    Parameters `weight` (ones) and `bias` (zeros), shape (num_features,). Buffers (saved in the
    state dict, not trained): `running_mean` (zeros), `running_var` (ones) and
    `num_batches_tracked` (a 0-d int64 tensor, 0).

    Training mode (`self.training`): normalize with the batch mean and the *biased* batch
    variance (divide by n = b * h * w), then update, with momentum m,
        running_mean <- (1 - m) * running_mean + m * mean
        running_var  <- (1 - m) * running_var  + m * var * n / (n - 1)   (the *unbiased* variance)
    and add 1 to num_batches_tracked. Eval mode: normalize with the running statistics.
    Either way: y = (x - mean) / sqrt(var + eps) * weight + bias.
    """

    running_mean: Tensor
    running_var: Tensor
    num_batches_tracked: Tensor

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        # BEGIN SOLUTION
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        # END SOLUTION

    def forward(self, x: Float[Tensor, "b c h w"]) -> Float[Tensor, "b c h w"]:
        # BEGIN SOLUTION
        if self.training:
            mean = x.mean(dim=(0, 2, 3))  # (c,)
            var = x.var(dim=(0, 2, 3), unbiased=False)  # (c,) biased: divides by n
            n = x.numel() // x.shape[1]
            with torch.no_grad():
                m = self.momentum
                self.running_mean.mul_(1 - m).add_(m * mean)
                self.running_var.mul_(1 - m).add_(m * var * n / (n - 1))
                self.num_batches_tracked += 1
        else:
            mean, var = self.running_mean, self.running_var
        scale = self.weight / torch.sqrt(var + self.eps)  # (c,)
        return (x - mean[:, None, None]) * scale[:, None, None] + self.bias[:, None, None]
        # END SOLUTION

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={getattr(self, 'eps', '?')}"


class ReLU(nn.Module):
    """max(x, 0), elementwise."""

    def forward(self, x: Tensor) -> Tensor:
        # BEGIN SOLUTION
        return torch.maximum(x, torch.zeros((), dtype=x.dtype, device=x.device))
        # END SOLUTION


class Sequential(nn.Module):
    """Apply the modules in order. Register them as children named "0", "1", ... (with
    `self.add_module`), so the state dict keys read "0.weight", "1.running_mean" as in torch."""

    def __init__(self, *modules: nn.Module):
        super().__init__()
        # BEGIN SOLUTION
        for i, module in enumerate(modules):
            self.add_module(str(i), module)
        # END SOLUTION

    def __getitem__(self, index: int) -> nn.Module:
        return list(self._modules.values())[index]

    def __len__(self) -> int:
        return len(self._modules)

    def forward(self, x: Tensor) -> Tensor:
        # BEGIN SOLUTION
        for module in self._modules.values():
            x = module(x)
        return x
        # END SOLUTION


class Flatten(nn.Module):
    """Merge the axes start_dim..end_dim (inclusive; negative counts from the end) into one,
    like torch.flatten(x, start_dim, end_dim)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        # BEGIN SOLUTION
        start = self.start_dim % x.ndim
        end = self.end_dim % x.ndim
        merged = 1
        for size in x.shape[start : end + 1]:
            merged *= size
        return x.reshape(*x.shape[:start], merged, *x.shape[end + 1 :])
        # END SOLUTION


class AveragePool(nn.Module):
    """Global average pooling: the mean over height and width, (b, c, h, w) -> (b, c)."""

    def forward(self, x: Float[Tensor, "b c h w"]) -> Float[Tensor, "b c"]:
        # BEGIN SOLUTION
        return x.mean(dim=(2, 3))
        # END SOLUTION


# -- ResNet ------------------------------------------------------------------------------------


class ResidualBlock(nn.Module):
    """torchvision's BasicBlock: out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)).

    Children, named as in torchvision so the state dict keys match:
      conv1: 3x3, in_feats -> out_feats, stride first_stride, padding 1;  bn1: BatchNorm2d
      relu:  ReLU
      conv2: 3x3, out_feats -> out_feats, stride 1, padding 1;  bn2: BatchNorm2d
      downsample: Sequential(1x1 Conv2d in_feats -> out_feats with stride first_stride,
                  BatchNorm2d) when first_stride != 1 or in_feats != out_feats (the shapes of x
                  and the left branch differ); otherwise None and the shortcut is x itself.
    """

    def __init__(self, in_feats: int, out_feats: int, first_stride: int = 1):
        super().__init__()
        # BEGIN SOLUTION
        self.conv1 = Conv2d(in_feats, out_feats, 3, stride=first_stride, padding=1)
        self.bn1 = BatchNorm2d(out_feats)
        self.relu = ReLU()
        self.conv2 = Conv2d(out_feats, out_feats, 3, stride=1, padding=1)
        self.bn2 = BatchNorm2d(out_feats)
        if first_stride != 1 or in_feats != out_feats:
            self.downsample = Sequential(
                Conv2d(in_feats, out_feats, 1, stride=first_stride), BatchNorm2d(out_feats)
            )
        else:
            self.downsample = None
        # END SOLUTION

    def forward(self, x: Float[Tensor, "b ci h w"]) -> Float[Tensor, "b co oh ow"]:
        # BEGIN SOLUTION
        shortcut = x if self.downsample is None else self.downsample(x)
        left = self.relu(self.bn1(self.conv1(x)))
        left = self.bn2(self.conv2(left))
        return self.relu(left + shortcut)
        # END SOLUTION


class BlockGroup(Sequential):
    """n_blocks ResidualBlocks in a row (torchvision's `layer1` ... `layer4`): the first maps
    in_feats -> out_feats with stride first_stride, the others out_feats -> out_feats, stride 1.

    A Sequential of the blocks, so the keys read "0.conv1.weight", "1.bn2.bias", ...: build the
    list of blocks, then hand them to `super().__init__(*blocks)`.
    """

    def __init__(self, n_blocks: int, in_feats: int, out_feats: int, first_stride: int = 1):
        # BEGIN SOLUTION
        blocks = [ResidualBlock(in_feats, out_feats, first_stride)]
        blocks += [ResidualBlock(out_feats, out_feats) for _ in range(n_blocks - 1)]
        super().__init__(*blocks)
        # END SOLUTION


class ResNet34(nn.Module):
    """torchvision's resnet34 with your layers; the defaults give exactly its architecture.

    Children, in order, named as in torchvision (width = out_features_per_group[0]):
      conv1:   7x7 Conv2d in_channels -> width, stride 2, padding 3;  bn1: BatchNorm2d;  relu
      maxpool: MaxPool2d(3, stride 2, padding 1)
      layer1 ... layerN: one BlockGroup per group (blocks, output features, first stride)
      avgpool: AveragePool
      fc:      Linear(out_features_per_group[-1], n_classes)
    Smaller settings (fewer blocks, narrower groups, in_channels=1) give a small ResNet for
    28x28 grey images with the same code.
    """

    def __init__(
        self,
        n_blocks_per_group: Sequence[int] = (3, 4, 6, 3),
        out_features_per_group: Sequence[int] = (64, 128, 256, 512),
        first_strides_per_group: Sequence[int] = (1, 2, 2, 2),
        n_classes: int = 1000,
        in_channels: int = 3,
    ):
        super().__init__()
        # BEGIN SOLUTION
        width = out_features_per_group[0]
        self.conv1 = Conv2d(in_channels, width, 7, stride=2, padding=3)
        self.bn1 = BatchNorm2d(width)
        self.relu = ReLU()
        self.maxpool = MaxPool2d(3, stride=2, padding=1)
        self.group_names = []
        in_feats = width
        groups = zip(
            n_blocks_per_group, out_features_per_group, first_strides_per_group, strict=True
        )
        for i, (n_blocks, out_feats, stride) in enumerate(groups, start=1):
            self.add_module(f"layer{i}", BlockGroup(n_blocks, in_feats, out_feats, stride))
            self.group_names.append(f"layer{i}")
            in_feats = out_feats
        self.avgpool = AveragePool()
        self.fc = Linear(in_feats, n_classes)
        # END SOLUTION

    def forward(self, x: Float[Tensor, "b c h w"]) -> Float[Tensor, "b n_classes"]:
        # BEGIN SOLUTION
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for name in self.group_names:
            x = getattr(self, name)(x)
        return self.fc(self.avgpool(x))
        # END SOLUTION


def copy_weights(model: nn.Module, state_dict: dict[str, Tensor]) -> nn.Module:
    """Copy every tensor of a state dict (e.g. torchvision's resnet34().state_dict()) into the
    matching parameter or buffer of `model`, in place; return the model.

    Check first, copy after: the key sets must be equal and every shape must match, else raise
    a ValueError that names each missing key, unexpected key and shape mismatch (so a wrong
    layout is found in one go). Copy under torch.no_grad() with `.copy_`: parameters *and*
    buffers (running statistics, num_batches_tracked), keeping the model's own tensors.
    """
    # BEGIN SOLUTION
    own = model.state_dict()  # tensors that share memory with the model's parameters and buffers
    problems = [f"missing {k}" for k in own if k not in state_dict]
    problems += [f"unexpected {k}" for k in state_dict if k not in own]
    problems += [
        f"{k}: shape {tuple(v.shape)} but the model has {tuple(own[k].shape)}"
        for k, v in state_dict.items()
        if k in own and v.shape != own[k].shape
    ]
    if problems:
        raise ValueError("copy_weights: " + "; ".join(problems))
    with torch.no_grad():
        for k, v in state_dict.items():
            own[k].copy_(v)
    return model
    # END SOLUTION


# -- Fashion-MNIST -----------------------------------------------------------------------------

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
FASHION_MNIST_INSTALL = (
    "install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or put "
    "the four *-ubyte.gz files in $MLAB_DATA_DIR/fashion-mnist"
)


def fashion_mnist_dirs() -> list[Path]:
    """Where the dataset is looked for, in order: $MLAB_DATA_DIR/fashion-mnist (when set),
    ~/.cache/mlab/fashion-mnist, then Debian's /usr/share/datasets/fashion-mnist."""
    dirs = []
    if os.environ.get("MLAB_DATA_DIR"):
        dirs.append(Path(os.environ["MLAB_DATA_DIR"]) / "fashion-mnist")
    dirs.append(Path.home() / ".cache" / "mlab" / "fashion-mnist")
    dirs.append(Path("/usr/share/datasets/fashion-mnist"))
    return dirs


def read_idx(path: str | Path) -> Int[Tensor, "..."]:
    """Read an IDX file of unsigned bytes (gzip-compressed when its name ends in .gz).

    Layout: two zero bytes; a type byte (0x08 = unsigned byte, the only one to support: raise a
    ValueError for any other or a bad magic); a byte ndim; ndim sizes as big-endian uint32
    (`struct.unpack(">...I", ...)`); then the data, row-major. Return a uint8 tensor of that shape.
    """
    # BEGIN SOLUTION
    path = Path(path)
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes (magic {data[:4].hex()})")
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = data[4 + 4 * ndim :]
    return torch.frombuffer(bytearray(body), dtype=torch.uint8).reshape(shape)
    # END SOLUTION


def load_fashion_mnist(
    split: str = "train", root: str | Path | None = None
) -> tuple[Float[Tensor, "n 1 28 28"], Int[Tensor, " n"]]:
    """Fashion-MNIST images as float32 in [0, 1], shape (n, 1, 28, 28), and int64 labels.

    split is "train" (60k) or "test" (10k, the "t10k" files). Look in `root` only when it is
    given, else in each of fashion_mnist_dirs() in order, for the directory holding both files
    of FASHION_MNIST_FILES[split]. When none has them, raise FileNotFoundError with a one-line
    message that names the directories searched and ends with FASHION_MNIST_INSTALL.
    """
    # BEGIN SOLUTION
    if split not in FASHION_MNIST_FILES:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    image_file, label_file = FASHION_MNIST_FILES[split]
    dirs = [Path(root)] if root is not None else fashion_mnist_dirs()
    for d in dirs:
        if (d / image_file).is_file() and (d / label_file).is_file():
            images = read_idx(d / image_file).float().div(255.0)[:, None]  # (n, 1, 28, 28)
            labels = read_idx(d / label_file).long()
            return images, labels
    searched = ", ".join(str(d) for d in dirs)
    raise FileNotFoundError(
        f"Fashion-MNIST {split} files not found in {searched}: {FASHION_MNIST_INSTALL}"
    )
    # END SOLUTION


# -- training ----------------------------------------------------------------------------------


@dataclass
class TrainConfig:
    """What train_classifier needs; the defaults train small_resnet() to ~83% in 300 steps."""

    steps: int = 300
    batch_size: int = 48
    lr: float = 3e-3  # peak learning rate, decayed linearly to 0 over the steps
    weight_decay: float = 0.0
    seed: int = 0


def train_classifier(
    model: nn.Module,
    images: Float[Tensor, "n c h w"],
    labels: Int[Tensor, " n"],
    config: TrainConfig | None = None,
    params: Iterable[nn.Parameter] | None = None,
) -> list[float]:
    """Train `model` (logits out) with Adam on the cross-entropy loss; return each step's loss.

    Put the model in training mode. Each of config.steps steps draws config.batch_size random
    indices with `torch.randint(..., generator=g)`, where g = torch.Generator().manual_seed(
    config.seed), so two runs with the same seed are identical. Step s (from 0) uses the learning
    rate config.lr * (1 - s / config.steps): a linear decay, which lets the weights (and batch
    norm's running statistics) settle at the end. `params` are the parameters to optimize
    (default: all of the model's); pass only the head's to fine-tune it alone.
    """
    # BEGIN SOLUTION
    config = config or TrainConfig()
    params = list(model.parameters() if params is None else params)
    optimizer = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    g = torch.Generator().manual_seed(config.seed)
    model.train()
    losses = []
    for step in range(config.steps):
        for group in optimizer.param_groups:
            group["lr"] = config.lr * (1 - step / config.steps)
        idx = torch.randint(0, images.shape[0], (config.batch_size,), generator=g)
        loss = F.cross_entropy(model(images[idx]), labels[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses
    # END SOLUTION


@torch.no_grad()
def evaluate(
    model: nn.Module,
    images: Float[Tensor, "n c h w"],
    labels: Int[Tensor, " n"],
    batch_size: int = 500,
) -> float:
    """Accuracy (fraction of argmax predictions equal to the labels) in eval mode, so batch norm
    uses its running statistics; in batches of batch_size to bound memory."""
    # BEGIN SOLUTION
    model.eval()
    correct = 0
    for start in range(0, images.shape[0], batch_size):
        logits = model(images[start : start + batch_size])
        correct += (logits.argmax(dim=-1) == labels[start : start + batch_size]).sum().item()
    return correct / images.shape[0]
    # END SOLUTION


def get_resnet_for_feature_extraction(n_classes: int, model: nn.Module | None = None) -> nn.Module:
    """Feature extraction: a trained network's body becomes a fixed feature extractor, and only
    a new head for the new task is trained.

    `model` (default: a fresh `ResNet34()`; `copy_weights` ImageNet weights into it first for real
    features) is any network whose last layer is a Linear called `fc`. Freeze every one of its
    parameters (`requires_grad_(False)`), then replace `fc` by a new, trainable
    `Linear(in_features of the old fc, n_classes)`. Return the model, changed in place. Any
    optimizer over `model.parameters()` then moves the head only: frozen parameters get no
    gradient, and optimizers skip parameters whose grad is None.
    """
    # BEGIN SOLUTION
    model = ResNet34() if model is None else model
    model.requires_grad_(False)  # every parameter of the body (and of the old head)
    in_features = model.fc.weight.shape[1]
    model.fc = Linear(in_features, n_classes)  # new parameters: requires_grad True
    return model
    # END SOLUTION


def small_resnet(n_classes: int = 10) -> ResNet34:
    """The small ResNet trained on Fashion-MNIST: two groups of one block, 16 and 32 wide."""
    return ResNet34(
        n_blocks_per_group=(1, 1),
        out_features_per_group=(16, 32),
        first_strides_per_group=(1, 2),
        n_classes=n_classes,
        in_channels=1,
    )
