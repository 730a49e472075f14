"""Helpers for the w1d2_resnet graders: torchvision's ResNet layout written as plain functions of
a state dict (torch.nn.functional only), random state dicts, and a Fashion-MNIST reader of
their own, so each grader depends on the one exercise it grades."""

from __future__ import annotations

import contextlib
import functools
import gzip
import json
import os
import struct
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

DATA = Path(__file__).parent / "data" / "w1d2_resnet"
Keys = list[tuple[str, tuple[int, ...]]]

# -- no built-in shortcuts ---------------------------------------------------------------------

FORBIDDEN = {
    torch.nn.functional: (
        "conv1d",
        "conv2d",
        "unfold",
        "fold",
        "max_pool1d",
        "max_pool2d",
        "max_pool2d_with_indices",
        "avg_pool2d",
        "adaptive_avg_pool2d",
        "batch_norm",
    ),
    torch: ("conv1d", "conv2d", "max_pool1d", "max_pool2d", "batch_norm", "convolution"),
}


@contextlib.contextmanager
def forbid_builtins(also: tuple[str, ...] = ()):
    """Within the block, the torch built-ins that would do the exercise for you raise instead."""
    with pytest.MonkeyPatch.context() as mp:
        for module, names in FORBIDDEN.items():
            for name in (*names, *also):
                if hasattr(module, name):
                    mp.setattr(module, name, _refuse(f"{module.__name__}.{name}"))
        yield


def _refuse(name: str):
    def refuse(*args, **kwargs):
        raise AssertionError(
            f"{name} is the reference the graders compare with: build it yourself "
            "from as_strided views (see the docs)"
        )

    return refuse


# -- torchvision's layout ----------------------------------------------------------------------


def batchnorm_keys(prefix: str, c: int) -> Keys:
    return [(f"{prefix}.{n}", (c,)) for n in ("weight", "bias", "running_mean", "running_var")] + [
        (f"{prefix}.num_batches_tracked", ())
    ]


def block_keys(prefix: str, cin: int, cout: int, stride: int) -> Keys:
    """torchvision BasicBlock keys (prefix "" for a block on its own)."""
    p = f"{prefix}." if prefix else ""
    keys = [(f"{p}conv1.weight", (cout, cin, 3, 3)), *batchnorm_keys(f"{p}bn1", cout)]
    keys += [(f"{p}conv2.weight", (cout, cout, 3, 3)), *batchnorm_keys(f"{p}bn2", cout)]
    if stride != 1 or cin != cout:
        keys += [
            (f"{p}downsample.0.weight", (cout, cin, 1, 1)),
            *batchnorm_keys(f"{p}downsample.1", cout),
        ]
    return keys


def group_keys(prefix: str, n_blocks: int, cin: int, cout: int, stride: int) -> Keys:
    p = f"{prefix}." if prefix else ""
    keys = block_keys(f"{p}0", cin, cout, stride)
    for b in range(1, n_blocks):
        keys += block_keys(f"{p}{b}", cout, cout, 1)
    return keys


def resnet_keys(blocks, widths, strides, n_classes: int, in_channels: int) -> Keys:
    keys = [("conv1.weight", (widths[0], in_channels, 7, 7)), *batchnorm_keys("bn1", widths[0])]
    cin = widths[0]
    for g, (n, cout, s) in enumerate(zip(blocks, widths, strides, strict=True), start=1):
        keys += group_keys(f"layer{g}", n, cin, cout, s)
        cin = cout
    return keys + [("fc.weight", (n_classes, cin)), ("fc.bias", (n_classes,))]


@functools.cache
def torchvision_manifest() -> Keys:
    """resnet34_keys.json (made by data/w1d2_resnet/make_resnet34_keys.py)."""
    raw = json.loads((DATA / "resnet34_keys.json").read_text())
    return [(name, tuple(shape)) for name, shape in raw["keys"]]


def random_state_dict(keys: Keys, seed: int) -> dict[str, Tensor]:
    """Values that keep a deep net's activations O(1) and make every running statistic matter."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for name, shape in keys:
        leaf = name.rsplit(".", 1)[-1]
        if leaf == "num_batches_tracked":
            sd[name] = torch.randint(1, 1000, (), generator=g)
        elif leaf == "running_var":
            sd[name] = torch.rand(shape, generator=g) + 0.5
        elif leaf == "running_mean":
            sd[name] = torch.randn(shape, generator=g) * 0.2
        elif leaf == "weight" and len(shape) == 1:  # batch norm scale
            sd[name] = torch.rand(shape, generator=g) * 0.5 + 0.5
        elif leaf == "bias":
            sd[name] = torch.randn(shape, generator=g) * 0.1
        else:  # conv or linear weight, He-scaled by fan-in
            fan_in = int(torch.tensor(shape[1:]).prod())
            sd[name] = torch.randn(shape, generator=g) * (2 / fan_in) ** 0.5
    return sd


def compare_keys(actual: dict[str, Tensor], expected: Keys, what: str) -> None:
    """Same keys and shapes as torchvision's layout, with a message that lists the differences."""
    want = dict(expected)
    got = {k: tuple(v.shape) for k, v in actual.items()}
    missing = [k for k in want if k not in got]
    unexpected = [k for k in got if k not in want]
    shapes = [f"{k} {got[k]} (expected {want[k]})" for k in want if k in got and got[k] != want[k]]
    if missing or unexpected or shapes:
        parts = [f"{what}: the state dict does not follow torchvision's layout."]
        for label, items in (
            ("Missing", missing),
            ("Unexpected", unexpected),
            ("Wrong shape", shapes),
        ):
            if items:
                more = f" and {len(items) - 4} more" if len(items) > 4 else ""
                parts.append(f"{label} ({len(items)}): {', '.join(items[:4])}{more}.")
        pytest.fail(" ".join(parts), pytrace=False)


# -- the reference forward pass ----------------------------------------------------------------


def ref_bn(x: Tensor, sd: dict[str, Tensor], p: str, train: bool) -> Tensor:
    return F.batch_norm(
        x,
        sd[f"{p}.running_mean"].clone(),
        sd[f"{p}.running_var"].clone(),
        sd[f"{p}.weight"],
        sd[f"{p}.bias"],
        training=train,
        momentum=0.1,
        eps=1e-5,
    )


def ref_block(x: Tensor, sd: dict[str, Tensor], p: str, stride: int, train: bool) -> Tensor:
    q = f"{p}." if p else ""
    out = F.relu(
        ref_bn(F.conv2d(x, sd[f"{q}conv1.weight"], stride=stride, padding=1), sd, f"{q}bn1", train)
    )
    out = ref_bn(F.conv2d(out, sd[f"{q}conv2.weight"], padding=1), sd, f"{q}bn2", train)
    if f"{q}downsample.0.weight" in sd:
        shortcut = ref_bn(
            F.conv2d(x, sd[f"{q}downsample.0.weight"], stride=stride), sd, f"{q}downsample.1", train
        )
    else:
        shortcut = x
    return F.relu(out + shortcut)


def ref_group(x: Tensor, sd: dict[str, Tensor], p: str, stride: int, train: bool) -> Tensor:
    q = f"{p}." if p else ""
    b = 0
    while f"{q}{b}.conv1.weight" in sd:
        x = ref_block(x, sd, f"{q}{b}", stride if b == 0 else 1, train)
        b += 1
    return x


def ref_resnet(x: Tensor, sd: dict[str, Tensor], strides, train: bool = False) -> Tensor:
    """torchvision's ResNet.forward, written with torch.nn.functional on a state dict."""
    x = F.relu(ref_bn(F.conv2d(x, sd["conv1.weight"], stride=2, padding=3), sd, "bn1", train))
    x = F.max_pool2d(x, 3, stride=2, padding=1)
    for g, s in enumerate(strides, start=1):
        x = ref_group(x, sd, f"layer{g}", s, train)
    return F.linear(x.mean(dim=(2, 3)), sd["fc.weight"], sd["fc.bias"])


# -- Fashion-MNIST, read independently of the exercises ----------------------------------------

FILES = {"train": "train", "test": "t10k"}


def fashion_mnist_dir() -> Path:
    dirs = (
        [Path(os.environ["MLAB_DATA_DIR"]) / "fashion-mnist"]
        if os.environ.get("MLAB_DATA_DIR")
        else []
    )
    dirs += [
        Path.home() / ".cache" / "mlab" / "fashion-mnist",
        Path("/usr/share/datasets/fashion-mnist"),
    ]
    for d in dirs:
        if all(
            (d / f"{p}-{kind}-ubyte.gz").is_file()
            for p in FILES.values()
            for kind in ("images-idx3", "labels-idx1")
        ):
            return d
    pytest.fail(
        f"Fashion-MNIST not found in {', '.join(map(str, dirs))}: install Debian's "
        "dataset-fashion-mnist (apt-get install dataset-fashion-mnist)",
        pytrace=False,
    )


@functools.cache
def fashion_subset(split: str, n: int) -> tuple[Tensor, Tensor]:
    """The first n images (float in [0, 1], (n, 1, 28, 28)) and labels (int64) of a split."""
    d = fashion_mnist_dir()
    with gzip.open(d / f"{FILES[split]}-images-idx3-ubyte.gz") as f:
        magic, count, rows, cols = struct.unpack(">4I", f.read(16))
        images = f.read(n * rows * cols)
    with gzip.open(d / f"{FILES[split]}-labels-idx1-ubyte.gz") as f:
        f.read(8)
        labels = f.read(n)
    x = (
        torch.frombuffer(bytearray(images), dtype=torch.uint8).reshape(n, 1, rows, cols).float()
        / 255
    )
    return x, torch.frombuffer(bytearray(labels), dtype=torch.uint8).long()


def write_idx(path: Path, array: Tensor) -> None:
    """An IDX file of unsigned bytes, gzip-compressed when the name ends in .gz."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.to(torch.uint8).contiguous().numpy().tobytes()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


@torch.no_grad()
def accuracy(model: torch.nn.Module, images: Tensor, labels: Tensor) -> float:
    model.eval()
    return (model(images).argmax(-1) == labels).sum().item() / len(labels)
