"""Write resnet34_keys.json: every key of torchvision's `resnet34().state_dict()` with its shape.

Written out from torchvision's architecture (torchvision/models/resnet.py: `ResNet(BasicBlock,
[3, 4, 6, 3])`), not by importing it, so the graders know the layout where torchvision is not
installed. Run from the repository root: `python template/tests/data/w1d2_resnet/make_resnet34_keys.py`.

Layout: conv1 (7x7, 3 -> 64, no bias), bn1, then layer1..layer4 of BasicBlocks (conv1/bn1/conv2/bn2,
3x3 convolutions without bias) with 3, 4, 6, 3 blocks of width 64, 128, 256, 512; the first block
of layer2..layer4 halves the resolution and has a `downsample` = Sequential(1x1 conv, BatchNorm2d);
then fc (512 -> 1000). Every BatchNorm2d holds weight, bias, running_mean, running_var (all (c,))
and num_batches_tracked (a 0-d int64 tensor).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

OUT = Path(__file__).with_name("resnet34_keys.json")


def batchnorm(prefix: str, c: int) -> list[tuple[str, list[int]]]:
    return [
        (f"{prefix}.weight", [c]),
        (f"{prefix}.bias", [c]),
        (f"{prefix}.running_mean", [c]),
        (f"{prefix}.running_var", [c]),
        (f"{prefix}.num_batches_tracked", []),
    ]


def resnet34_keys() -> list[tuple[str, list[int]]]:
    keys = [("conv1.weight", [64, 3, 7, 7]), *batchnorm("bn1", 64)]
    inplanes = 64
    for g, (blocks, planes) in enumerate(
        zip((3, 4, 6, 3), (64, 128, 256, 512), strict=True), start=1
    ):
        for b in range(blocks):
            p = f"layer{g}.{b}"
            keys += [
                (f"{p}.conv1.weight", [planes, inplanes, 3, 3]),
                *batchnorm(f"{p}.bn1", planes),
            ]
            keys += [(f"{p}.conv2.weight", [planes, planes, 3, 3]), *batchnorm(f"{p}.bn2", planes)]
            if b == 0 and g > 1:  # stride 2 and a change of width: the shortcut needs a projection
                keys += [
                    (f"{p}.downsample.0.weight", [planes, inplanes, 1, 1]),
                    *batchnorm(f"{p}.downsample.1", planes),
                ]
            inplanes = planes
    keys += [("fc.weight", [1000, 512]), ("fc.bias", [1000])]
    return keys


if __name__ == "__main__":
    keys = resnet34_keys()
    header = {
        "model": "torchvision.models.resnet34",
        "note": "state_dict keys in order, with shapes; num_batches_tracked is int64, the rest float32",
    }
    lines = [f"  {json.dumps([name, shape])}" for name, shape in keys]  # one key per line
    body = ",\n".join(lines)
    head = json.dumps(header, indent=1)[:-2]
    OUT.write_text(f'{head},\n "keys": [\n{body}\n ]\n}}\n')
    assert [tuple(k) for k in json.loads(OUT.read_text())["keys"]] == [(n, s) for n, s in keys]
    buffers = ("running_mean", "running_var", "num_batches_tracked")
    n_params = sum(math.prod(shape) for name, shape in keys if not name.endswith(buffers))
    print(f"wrote {OUT} ({len(keys)} keys, {n_params:,} parameters)")
