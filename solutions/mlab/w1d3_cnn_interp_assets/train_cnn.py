"""Train day w1d3_cnn_interp's SmallCNN on Fashion-MNIST and write the graders' assets.

Run `python solutions/mlab/w1d3_cnn_interp_assets/train_cnn.py` from the repo root: 4 epochs,
~90% test accuracy; it took 25 min on 2 CPU cores shared with other jobs.

Writes `cnn.pt` (the state dict, ~120 KB) and `examples.npz` (16 test images: the first of each
class, then the next test images in order; uint8 pixels, labels, their indices in t10k, and the
model's accuracy on the 10k test images) to template/tests/data/w1d3_cnn_interp/ (or `--out`).
Fixed seeds; rerunning on another machine or torch version can change the last bits of the
weights, so re-record the day's snapshots after retraining (`cohort check snapshots --day ...`).

Fashion-MNIST comes from the Debian package `dataset-fashion-mnist` (or the same four gzip IDX
files under $MLAB_DATA_DIR/fashion-mnist or ~/.cache/mlab/fashion-mnist).
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[2]))  # the folder holding `mlab` (solutions/ or the template)
from mlab.w1d3_cnn_interp import SmallCNN  # noqa: E402

DAY = "w1d3_cnn_interp"
FILES = [
    f"{split}-{kind}-ubyte.gz"
    for split in ("train", "t10k")
    for kind in ("images-idx3", "labels-idx1")
]
ENV_DIR = os.environ.get("MLAB_DATA_DIR")
SEARCH = [
    *([Path(ENV_DIR) / "fashion-mnist", Path(ENV_DIR)] if ENV_DIR else []),
    Path.home() / ".cache" / "mlab" / "fashion-mnist",
    Path("/usr/share/datasets/fashion-mnist"),
]


def default_out() -> Path:
    root = HERE.parents[2]  # solutions/ in the organizer repo, the repo itself in a pair's copy
    for base in (root / "tests", root.parent / "template" / "tests"):
        if base.is_dir():
            return base / "data" / DAY
    return Path("data") / DAY


def find_dataset() -> Path:
    for folder in SEARCH:
        if all((folder / name).exists() for name in FILES):
            return folder
    sys.exit(
        "Fashion-MNIST not found: apt-get install dataset-fashion-mnist (or set MLAB_DATA_DIR)"
    )


def read_idx(path: Path) -> np.ndarray:
    """A gzip IDX file: magic (2 zero bytes, dtype 0x08 = uint8, ndim), big-endian dims, data."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    if data[:3] != b"\x00\x00\x08":
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_split(folder: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (n, 1, 28, 28) in [0, 1] and labels (n,) of split "train" or "t10k"."""
    images = read_idx(folder / f"{split}-images-idx3-ubyte.gz")
    labels = read_idx(folder / f"{split}-labels-idx1-ubyte.gz")
    x = torch.from_numpy(images.copy()).float()[:, None] / 255  # (n, 1, 28, 28)
    return x, torch.from_numpy(labels.copy()).long()


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        preds = torch.cat([model(chunk).argmax(-1) for chunk in x.split(1000)])
    return (preds == y).float().mean().item()


def choose_examples(labels: torch.Tensor, n: int = 16) -> list[int]:
    """The first test image of every class, then the next ones in order, n in all."""
    first = [int((labels == c).nonzero()[0]) for c in range(10)]
    rest = [i for i in range(len(labels)) if i not in first][: n - len(first)]
    return sorted(first + rest)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=default_out())
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    folder = find_dataset()
    x_train, y_train = load_split(folder, "train")
    x_test, y_test = load_split(folder, "t10k")
    torch.manual_seed(args.seed)
    model = SmallCNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    steps = args.epochs * (len(x_train) // 128)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=steps)
    gen = torch.Generator().manual_seed(args.seed)
    start = time.time()
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(x_train), generator=gen)
        for batch in order[: len(order) // 128 * 128].view(-1, 128):
            loss = F.cross_entropy(model(x_train[batch]), y_train[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        model.eval()
        acc = accuracy(model, x_test, y_test)
        print(
            f"epoch {epoch + 1}: loss {loss.item():.3f}, test accuracy {acc:.4f} ({time.time() - start:.0f} s)"
        )

    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), args.out / "cnn.pt")
    idx = choose_examples(y_test)
    np.savez_compressed(
        args.out / "examples.npz",
        images=(x_test[idx, 0] * 255).round().to(torch.uint8).numpy(),
        labels=y_test[idx].numpy().astype(np.int64),
        indices=np.array(idx, dtype=np.int64),
        test_accuracy=np.float32(acc),
    )
    print(f"wrote {args.out / 'cnn.pt'} and {args.out / 'examples.npz'}; test accuracy {acc:.4f}")


if __name__ == "__main__":
    main()
