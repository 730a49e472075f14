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
    raise NotImplementedError("conv1d_minimal: see docs/w1d2_resnet.md#conv1d_minimal")


def conv2d_minimal(
    x: Float[Tensor, "b ci h w"], weights: Float[Tensor, "co ci kh kw"]
) -> Float[Tensor, "b co oh ow"]:
    """2D cross-correlation, stride 1, no padding: oh = h - kh + 1, ow = w - kw + 1.

    The same idea with two window axes: windows[b, c, i, j, p, q] = x[b, c, i + p, j + q].
    """
    raise NotImplementedError("conv2d_minimal: see docs/w1d2_resnet.md#conv2d_minimal")


def pad1d(
    x: Float[Tensor, "b c w"], left: int, right: int, pad_value: float
) -> Float[Tensor, "b c wp"]:
    """x with `left` copies of pad_value before and `right` after, along the last axis.

    Make a new tensor full of pad_value (`x.new_full`) and write x into its middle.
    """
    raise NotImplementedError("pad1d: see docs/w1d2_resnet.md#pad1d")


def pad2d(
    x: Float[Tensor, "b c h w"], left: int, right: int, top: int, bottom: int, pad_value: float
) -> Float[Tensor, "b c hp wp"]:
    """x padded with pad_value: `top`/`bottom` rows above/below, `left`/`right` columns."""
    raise NotImplementedError("pad2d: see docs/w1d2_resnet.md#pad2d")


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
    raise NotImplementedError("conv1d: see docs/w1d2_resnet.md#conv1d")


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
    raise NotImplementedError("conv2d: see docs/w1d2_resnet.md#conv2d")


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
    raise NotImplementedError("maxpool2d: see docs/w1d2_resnet.md#maxpool2d")


# -- layers ------------------------------------------------------------------------------------


class Linear(nn.Module):
    """y = x @ weight.T + bias, like nn.Linear.

    Parameters `weight` (out_features, in_features) and `bias` (out_features,), or `bias` None
    when bias=False. Initialize both uniformly in [-1/sqrt(in_features), 1/sqrt(in_features)].
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        raise NotImplementedError("Linear.__init__: see docs/w1d2_resnet.md#linear")

    def forward(self, x: Float[Tensor, "... in_features"]) -> Float[Tensor, "... out_features"]:
        raise NotImplementedError("Linear.forward: see docs/w1d2_resnet.md#linear")

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
        raise NotImplementedError("Conv2d.__init__: see docs/w1d2_resnet.md#conv2d")

    def forward(self, x: Float[Tensor, "b ci h w"]) -> Float[Tensor, "b co oh ow"]:
        raise NotImplementedError("Conv2d.forward: see docs/w1d2_resnet.md#conv2d")

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
        raise NotImplementedError("MaxPool2d.__init__: see docs/w1d2_resnet.md#maxpool2d")

    def forward(self, x: Float[Tensor, "b c h w"]) -> Float[Tensor, "b c oh ow"]:
        raise NotImplementedError("MaxPool2d.forward: see docs/w1d2_resnet.md#maxpool2d")


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
        raise NotImplementedError("BatchNorm2d.__init__: see docs/w1d2_resnet.md#batchnorm2d")

    def forward(self, x: Float[Tensor, "b c h w"]) -> Float[Tensor, "b c h w"]:
        raise NotImplementedError("BatchNorm2d.forward: see docs/w1d2_resnet.md#batchnorm2d")

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={getattr(self, 'eps', '?')}"


class ReLU(nn.Module):
    """max(x, 0), elementwise."""

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError("ReLU.forward: see docs/w1d2_resnet.md#relu")


class Sequential(nn.Module):
    """Apply the modules in order. Register them as children named "0", "1", ... (with
    `self.add_module`), so the state dict keys read "0.weight", "1.running_mean" as in torch."""

    def __init__(self, *modules: nn.Module):
        super().__init__()
        raise NotImplementedError("Sequential.__init__: see docs/w1d2_resnet.md#sequential")

    def __getitem__(self, index: int) -> nn.Module:
        return list(self._modules.values())[index]

    def __len__(self) -> int:
        return len(self._modules)

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError("Sequential.forward: see docs/w1d2_resnet.md#sequential")


class Flatten(nn.Module):
    """Merge the axes start_dim..end_dim (inclusive; negative counts from the end) into one,
    like torch.flatten(x, start_dim, end_dim)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError("Flatten.forward: see docs/w1d2_resnet.md#flatten")


class AveragePool(nn.Module):
    """Global average pooling: the mean over height and width, (b, c, h, w) -> (b, c)."""

    def forward(self, x: Float[Tensor, "b c h w"]) -> Float[Tensor, "b c"]:
        raise NotImplementedError("AveragePool.forward: see docs/w1d2_resnet.md#averagepool")


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
        raise NotImplementedError("ResidualBlock.__init__: see docs/w1d2_resnet.md#residualblock")

    def forward(self, x: Float[Tensor, "b ci h w"]) -> Float[Tensor, "b co oh ow"]:
        raise NotImplementedError("ResidualBlock.forward: see docs/w1d2_resnet.md#residualblock")


class BlockGroup(Sequential):
    """n_blocks ResidualBlocks in a row (torchvision's `layer1` ... `layer4`): the first maps
    in_feats -> out_feats with stride first_stride, the others out_feats -> out_feats, stride 1.

    A Sequential of the blocks, so the keys read "0.conv1.weight", "1.bn2.bias", ...: build the
    list of blocks, then hand them to `super().__init__(*blocks)`.
    """

    def __init__(self, n_blocks: int, in_feats: int, out_feats: int, first_stride: int = 1):
        raise NotImplementedError("BlockGroup.__init__: see docs/w1d2_resnet.md#blockgroup")


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
        raise NotImplementedError("ResNet34.__init__: see docs/w1d2_resnet.md#resnet34")

    def forward(self, x: Float[Tensor, "b c h w"]) -> Float[Tensor, "b n_classes"]:
        raise NotImplementedError("ResNet34.forward: see docs/w1d2_resnet.md#resnet34")


def copy_weights(model: nn.Module, state_dict: dict[str, Tensor]) -> nn.Module:
    """Copy every tensor of a state dict (e.g. torchvision's resnet34().state_dict()) into the
    matching parameter or buffer of `model`, in place; return the model.

    Check first, copy after: the key sets must be equal and every shape must match, else raise
    a ValueError that names each missing key, unexpected key and shape mismatch (so a wrong
    layout is found in one go). Copy under torch.no_grad() with `.copy_`: parameters *and*
    buffers (running statistics, num_batches_tracked), keeping the model's own tensors.
    """
    raise NotImplementedError("copy_weights: see docs/w1d2_resnet.md#copy_weights")


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
    raise NotImplementedError("read_idx: see docs/w1d2_resnet.md#read_idx")


def load_fashion_mnist(
    split: str = "train", root: str | Path | None = None
) -> tuple[Float[Tensor, "n 1 28 28"], Int[Tensor, " n"]]:
    """Fashion-MNIST images as float32 in [0, 1], shape (n, 1, 28, 28), and int64 labels.

    split is "train" (60k) or "test" (10k, the "t10k" files). Look in `root` only when it is
    given, else in each of fashion_mnist_dirs() in order, for the directory holding both files
    of FASHION_MNIST_FILES[split]. When none has them, raise FileNotFoundError with a one-line
    message that names the directories searched and ends with FASHION_MNIST_INSTALL.
    """
    raise NotImplementedError("load_fashion_mnist: see docs/w1d2_resnet.md#load_fashion_mnist")


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
    raise NotImplementedError("train_classifier: see docs/w1d2_resnet.md#train_classifier")


@torch.no_grad()
def evaluate(
    model: nn.Module,
    images: Float[Tensor, "n c h w"],
    labels: Int[Tensor, " n"],
    batch_size: int = 500,
) -> float:
    """Accuracy (fraction of argmax predictions equal to the labels) in eval mode, so batch norm
    uses its running statistics; in batches of batch_size to bound memory."""
    raise NotImplementedError("evaluate: see docs/w1d2_resnet.md#evaluate")


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
    raise NotImplementedError("get_resnet_for_feature_extraction: see docs/w1d2_resnet.md#get_resnet_for_feature_extraction")


def small_resnet(n_classes: int = 10) -> ResNet34:
    """The small ResNet trained on Fashion-MNIST: two groups of one block, 16 and 32 wide."""
    return ResNet34(
        n_blocks_per_group=(1, 1),
        out_features_per_group=(16, 32),
        first_strides_per_group=(1, 2),
        n_classes=n_classes,
        in_channels=1,
    )
