"""Figures for docs/w1d2_resnet.md, drawn with the reference solutions.

Run from the repository root: `python docs/scripts/w1d2_resnet.py` (or `nox -s figures`). The
training figure trains the small ResNet on Fashion-MNIST (Debian's dataset-fashion-mnist), about
15 s on one core; without the dataset that figure is skipped with a message.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import FancyArrowPatch, Rectangle  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "solutions"))
from mlab import w1d2_resnet as m  # noqa: E402

IMG = ROOT / "docs" / "img"


def strided_windows_figure() -> None:
    """The windows view of conv1d and conv2d: which input element each view entry reads."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), gridspec_kw={"width_ratios": [1, 1.15]})

    # 1D: x of length 8 (stride 1) -> windows (6, 3) with strides (1, 1).
    ax = axes[0]
    w, kw = 8, 3
    ow = w - kw + 1
    colors = plt.cm.tab10.colors
    for i in range(w):
        ax.add_patch(Rectangle((i, 7.2), 1, 1, fc="white", ec="k"))
        ax.text(i + 0.5, 7.7, f"x{i}", ha="center", va="center", fontsize=8)
    ax.text(-0.2, 7.7, "x (memory)", ha="right", va="center", fontsize=8)
    for r in range(ow):
        for k in range(kw):
            ax.add_patch(Rectangle((k + 2.5, 5.2 - r), 1, 1, fc=colors[r], alpha=0.35, ec="k"))
            ax.text(k + 3, 5.7 - r, f"x{r + k}", ha="center", va="center", fontsize=8)
        ax.text(2.3, 5.7 - r, f"i={r}", ha="right", va="center", fontsize=8)
    ax.text(4.0, 6.5, "windows[i, k] = x[i + k]", ha="center", fontsize=8)
    ax.text(
        4.0,
        -1.3,
        "x.as_strided(size=(ow, kw), stride=(1, 1))\nno copy: both axes step 1 element",
        ha="center",
        fontsize=8,
    )
    ax.set_xlim(-2.2, 8.5)
    ax.set_ylim(-1.6, 8.5)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title("conv1d_minimal: a (6, 3) view of 8 numbers", fontsize=9)

    # 2D: 5x5 input padded by 1 -> 7x7, kernel 3, stride 2 -> 3x3 outputs.
    ax = axes[1]
    n, pad, k, s = 5, 1, 3, 2
    size = n + 2 * pad
    for r in range(size):
        for c in range(size):
            inside = pad <= r < pad + n and pad <= c < pad + n
            ax.add_patch(
                Rectangle((c, size - 1 - r), 1, 1, fc="white" if inside else "0.85", ec="0.5")
            )
    for idx, (i, j) in enumerate([(0, 0), (0, 1), (1, 2), (2, 0)]):
        r0, c0 = i * s, j * s
        ax.add_patch(
            Rectangle((c0, size - r0 - k), k, k, fc=colors[idx], alpha=0.18, ec=colors[idx], lw=2)
        )
        ax.text(
            size + 0.3,
            size - 0.6 - idx * 0.8,
            f"out[{i}, {j}]: rows {r0}..{r0 + k - 1}, cols {c0}..{c0 + k - 1}",
            color=colors[idx],
            fontsize=8,
            va="center",
        )
    ax.text(
        size + 0.3,
        1.2,
        "view (oh, ow, kh, kw) with strides\n(2*W, 2, W, 1) on the padded W-wide\n"
        "input: output axes step `stride`,\nkernel axes step 1. Grey = padding.",
        fontsize=8,
        va="center",
    )
    ax.set_xlim(-0.2, size + 6.2)
    ax.set_ylim(-0.2, size + 0.2)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title("conv2d: 3x3 kernel, stride 2, padding 1 on 5x5", fontsize=9)
    fig.tight_layout()
    fig.savefig(IMG / "w1d2_resnet_strided_windows.png", dpi=90)
    plt.close(fig)


def batchnorm_figure() -> None:
    """What batch norm does to a batch, and how the running statistics lag behind the data."""
    torch.manual_seed(0)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.0))
    ax = axes[0]
    x = (
        torch.randn(64, 3, 8, 8) * torch.tensor([0.5, 2.0, 1.0])[:, None, None]
        + torch.tensor([3.0, -2.0, 0.5])[:, None, None]
    )
    y = m.BatchNorm2d(3)(x).detach()
    for c in range(3):
        ax.hist(x[:, c].flatten(), bins=50, alpha=0.35, color=f"C{c}", density=True)
        ax.hist(y[:, c].flatten(), bins=50, histtype="step", color=f"C{c}", density=True, lw=1.5)
    ax.set_title("three channels before (filled) and after (lines) BatchNorm2d", fontsize=9)
    ax.set_xlabel("activation")

    ax = axes[1]
    true_mean = 2.0
    for momentum, style in [(0.1, "-"), (0.3, "--")]:
        bn = m.BatchNorm2d(1, momentum=momentum)
        trace = []
        g = torch.Generator().manual_seed(1)
        for _ in range(40):
            batch = torch.randn(8, 1, 4, 4, generator=g) + true_mean
            bn(batch)
            trace.append(bn.running_mean.item())
        ax.plot(trace, style, label=f"running_mean, momentum={momentum}")
    ax.axhline(true_mean, color="grey", lw=0.8)
    ax.text(20, true_mean - 0.35, "the data's mean", color="grey", fontsize=8)
    ax.set_xlabel("training batches")
    ax.set_title("running <- (1 - m) running + m batch  (eval mode uses these)", fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(IMG / "w1d2_resnet_batchnorm.png", dpi=90)
    plt.close(fig)


def _box(ax, xy, text, w=2.6, h=0.55, fc="white"):
    x, y = xy
    ax.add_patch(Rectangle((x - w / 2, y - h / 2), w, h, fc=fc, ec="k", lw=1))
    ax.text(x, y, text, ha="center", va="center", fontsize=8)


def _arrow(ax, a, b, **kw):
    ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=10, lw=1, **kw))


def residual_block_figure() -> None:
    """torchvision's BasicBlock with a projection shortcut, and the shapes through ResNet-34."""
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 4.4), gridspec_kw={"width_ratios": [1, 1.25]})
    ax = axes[0]
    left = [
        ("conv1: 3x3, stride s", 5.2, "#dbe9f6"),
        ("bn1", 4.4, "#fde8c8"),
        ("relu", 3.6, "white"),
        ("conv2: 3x3, stride 1", 2.8, "#dbe9f6"),
        ("bn2", 2.0, "#fde8c8"),
    ]
    ax.text(1.5, 6.35, "x: (b, c_in, h, w)", ha="center", fontsize=8)
    _arrow(ax, (1.5, 6.2), (1.5, 5.5))
    for (text, y, fc), nxt in zip(left, [*left[1:], None], strict=True):
        _box(ax, (0, y), text, fc=fc)
        if nxt:
            _arrow(ax, (0, y - 0.28), (0, nxt[1] + 0.28))
    _box(ax, (3.2, 3.9), "downsample.0: 1x1, stride s", w=2.9, fc="#dbe9f6")
    _box(ax, (3.2, 3.1), "downsample.1: bn", w=2.9, fc="#fde8c8")
    _arrow(ax, (1.5, 5.5), (0, 5.48))
    _arrow(ax, (1.5, 5.5), (3.2, 4.18))
    _arrow(ax, (3.2, 3.62), (3.2, 3.38))
    ax.add_patch(plt.Circle((1.5, 1.1), 0.22, fc="white", ec="k"))
    ax.text(1.5, 1.1, "+", ha="center", va="center", fontsize=11)
    _arrow(ax, (0, 1.72), (1.3, 1.2))
    ax.plot([3.2, 3.2], [2.82, 1.1], color="k", lw=1)
    _arrow(ax, (3.2, 1.1), (1.72, 1.1))
    _box(ax, (1.5, 0.3), "relu", w=1.2)
    _arrow(ax, (1.5, 0.88), (1.5, 0.58))
    ax.text(1.5, -0.4, "out: (b, c_out, h / s, w / s)", ha="center", fontsize=8)
    ax.text(
        3.35,
        2.1,
        "only when s != 1 or\nc_in != c_out; otherwise\nthe shortcut is x itself",
        ha="left",
        va="center",
        fontsize=7,
        style="italic",
    )
    ax.set_xlim(-1.6, 5.6)
    ax.set_ylim(-0.7, 6.6)
    ax.axis("off")
    ax.set_title("ResidualBlock (torchvision's BasicBlock)", fontsize=9)

    ax = axes[1]
    model = m.ResNet34()
    model.eval()
    shapes = []
    hooks = [
        getattr(model, name).register_forward_hook(
            lambda mod, inp, out, name=name: shapes.append((name, tuple(out.shape[1:])))
        )
        for name in ["conv1", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool", "fc"]
    ]
    with torch.no_grad():
        model(torch.randn(1, 3, 224, 224))
    for h in hooks:
        h.remove()
    blocks = {"layer1": 3, "layer2": 4, "layer3": 6, "layer4": 3}
    y = len(shapes)
    ax.text(0.0, y + 0.1, "input", fontsize=8, va="center")
    ax.text(2.6, y + 0.1, "(3, 224, 224)", fontsize=8, va="center", family="monospace")
    for i, (name, shape) in enumerate(shapes):
        yy = y - 1 - i
        label = f"{name} ({blocks[name]} blocks)" if name in blocks else name
        fc = "#dbe9f6" if name in blocks else "white"
        ax.add_patch(Rectangle((-0.1, yy - 0.35), 2.5, 0.7, fc=fc, ec="k", lw=0.8))
        ax.text(0.0, yy, label, fontsize=8, va="center")
        ax.text(2.6, yy, str(shape), fontsize=8, va="center", family="monospace")
    ax.text(
        0.0,
        -1.3,
        "218 state-dict keys, 21,797,672 parameters\n(3 + 4 + 6 + 3) blocks x 2 convolutions"
        " + stem + fc = 34 layers",
        fontsize=8,
    )
    ax.set_xlim(-0.3, 5.5)
    ax.set_ylim(-1.6, y + 0.6)
    ax.axis("off")
    ax.set_title("ResNet34 on a 224x224 image: output shape of each child", fontsize=9)
    fig.tight_layout()
    fig.savefig(IMG / "w1d2_resnet_architecture.png", dpi=90)
    plt.close(fig)


def training_figure() -> None:
    """Train the small ResNet as the slow grader does; plot the loss and some predictions."""
    try:
        images, labels = m.load_fashion_mnist("train")
        test_x, test_y = m.load_fashion_mnist("test")
    except FileNotFoundError as e:
        print(f"skipping the training figure: {e}")
        return
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = m.small_resnet()
    losses = m.train_classifier(model, images[:10000], labels[:10000])
    acc = m.evaluate(model, test_x[:2000], test_y[:2000])
    print(f"small_resnet: held-out accuracy {acc:.3f} on 2000 test images")
    with torch.no_grad():
        pred = model(test_x[:12]).argmax(-1)

    fig = plt.figure(figsize=(9.5, 3.2))
    ax = fig.add_axes((0.07, 0.16, 0.38, 0.72))
    smooth = torch.tensor(losses).unfold(0, 20, 1).mean(-1)
    ax.plot(losses, alpha=0.3, label="loss per step")
    ax.plot(range(19, len(losses)), smooth, label="mean of 20 steps")
    ax.set_xlabel("step (48 images each)")
    ax.set_ylabel("cross-entropy")
    ax.set_title(f"small_resnet on Fashion-MNIST: {acc:.1%} held out", fontsize=9)
    ax.legend(fontsize=8)
    for i in range(12):
        sub = fig.add_axes((0.5 + (i % 6) * 0.083, 0.52 - (i // 6) * 0.42, 0.075, 0.3))
        sub.imshow(test_x[i, 0], cmap="gray_r")
        ok = pred[i] == test_y[i]
        name = m.FASHION_MNIST_CLASSES[pred[i]].split("/")[0]
        if not ok:
            name += f"\n(is {m.FASHION_MNIST_CLASSES[test_y[i]].split('/')[0]})"
        sub.set_title(name, fontsize=7, color="green" if ok else "red")
        sub.axis("off")
    fig.savefig(IMG / "w1d2_resnet_training.png", dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    IMG.mkdir(parents=True, exist_ok=True)
    strided_windows_figure()
    batchnorm_figure()
    residual_block_figure()
    training_figure()
