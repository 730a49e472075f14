"""Figures for docs/w1d5_autograd.md, drawn with the reference solutions.

Run from the repository root: `python docs/scripts/w1d5_autograd.py` (or `nox -s figures`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "solutions"))
from mlab import w1d5_autograd as m  # noqa: E402

IMG = ROOT / "docs" / "img"


def all_gradients(loss: m.Tensor) -> dict[m.Tensor, np.ndarray]:
    """The gradient of `loss` with respect to every tensor of its graph (backprop's loop, keeping
    the intermediate gradients that backprop throws away)."""
    grads = {loss: np.ones_like(loss.array)}
    for node in m.sorted_computational_graph(loss):
        if node.recipe is None:
            continue
        r = node.recipe
        back = m.BACK_FUNCS[r.func](grads[node], node.array, *r.args, **r.kwargs)
        for i, parent in r.parents.items():
            grads[parent] = grads[parent] + back[i] if parent in grads else back[i]
    return grads


def graph_figure() -> None:
    """L = log(x * y + x) at x = 2, y = 3: forward values, backward gradients, and x's two paths."""
    x = m.Tensor(np.array(2.0), requires_grad=True)
    y = m.Tensor(np.array(3.0), requires_grad=True)
    u = x * y
    v = u + x
    loss = v.log()
    grads = all_gradients(loss)
    order = m.sorted_computational_graph(loss)
    nodes = {  # name: (tensor, position, label of the operation that made it)
        "x": (x, (0.0, 1.0), "leaf"),
        "y": (y, (0.0, 0.0), "leaf"),
        "u": (u, (1.3, 0.5), "u = x * y"),
        "v": (v, (2.6, 1.0), "v = u + x"),
        "L": (loss, (3.9, 1.0), "L = log(v)"),
    }
    edges = [("x", "u"), ("y", "u"), ("u", "v"), ("x", "v"), ("v", "L")]
    fig, ax = plt.subplots(figsize=(8, 3.2))
    for a, b in edges:
        (x0, y0), (x1, y1) = nodes[a][1], nodes[b][1]
        ax.annotate(
            "",
            xy=(x1 - 0.42, y1),
            xytext=(x0 + 0.42, y0),
            arrowprops={"arrowstyle": "->", "color": "0.4", "lw": 1.2},
        )
    for name, (t, (px, py), op) in nodes.items():
        leaf = t.recipe is None
        ax.add_patch(
            plt.Rectangle(
                (px - 0.42, py - 0.2),
                0.84,
                0.4,
                facecolor="#e8f0fb" if leaf else "#fdf1e3",
                edgecolor="0.3",
            )
        )
        ax.text(px, py + 0.07, f"{name} = {t.item():.3g}", ha="center", fontsize=10)
        ax.text(px, py - 0.11, f"dL/d{name} = {grads[t].item():.3g}", ha="center", color="#b22")
        ax.text(px, py + 0.27, op, ha="center", fontsize=8, color="0.35")
        step = [i for i, n in enumerate(order) if n is t][0]
        ax.text(px + 0.4, py - 0.3, f"#{step}", fontsize=7, color="0.5", ha="right")
    ax.text(
        0.0,
        -0.55,
        "forward: values left to right. backward: gradients (red) right to left, in topological "
        "order (#); x gets\n"
        "dL/du * y + dL/dv = 0.125 * 3 + 0.125 = 0.5, the sum over its two paths: backprop must "
        "add, not overwrite.",
        fontsize=8,
    )
    ax.set_xlim(-0.5, 4.4)
    ax.set_ylim(-0.7, 1.4)
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(IMG / "w1d5_autograd_graph.png", dpi=90)


def training_figure() -> None:
    """The clone and PyTorch, from the same initial weights, train identically on digits."""
    x_train, y_train, x_test, y_test = m.load_digits_data()
    model = m.MLP(64, 64, 10, rng=np.random.default_rng(0))
    fcs = [model.fc1, model.fc2, model.fc3]
    layers = []
    for fc in fcs:
        lin = torch.nn.Linear(*fc.weight.shape[::-1])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(fc.weight.array))
            lin.bias.copy_(torch.from_numpy(fc.bias.array))
        layers += [lin, torch.nn.ReLU()]
    net = torch.nn.Sequential(*layers[:-1])
    opt = m.SGD(model.parameters(), lr=0.1, momentum=0.9)
    t_opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    rng, t_rng = np.random.default_rng(1), np.random.default_rng(1)
    ours, theirs = {"loss": [], "acc": []}, {"loss": [], "acc": []}
    for _ in range(10):
        ours["loss"].append(m.train_epoch(model, opt, x_train, y_train, 64, rng))
        ours["acc"].append(m.evaluate(model, x_test, y_test))
        order, total = t_rng.permutation(len(y_train)), 0.0
        for start in range(0, len(y_train), 64):
            batch = order[start : start + 64]
            t_opt.zero_grad()
            loss = F.cross_entropy(
                net(torch.from_numpy(x_train[batch])), torch.from_numpy(y_train[batch])
            )
            loss.backward()
            t_opt.step()
            total += loss.item() * len(batch)
        theirs["loss"].append(total / len(y_train))
        with torch.no_grad():
            pred = net(torch.from_numpy(x_test)).argmax(-1).numpy()
        theirs["acc"].append(float((pred == y_test).mean()))
    epochs = np.arange(1, 11)
    fig, axes = plt.subplots(1, 2, figsize=(8, 2.8))
    for key, ax, label in [("loss", axes[0], "training loss"), ("acc", axes[1], "test accuracy")]:
        ax.plot(epochs, ours[key], "o-", lw=3, alpha=0.5, label="the clone (NumPy)")
        ax.plot(epochs, theirs[key], "k--", lw=1, label="PyTorch, same start")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
    axes[1].axhline(0.94, color="grey", lw=0.8)
    axes[1].text(4.5, 0.9, "graded: >= 0.94 after 10 epochs", fontsize=8)
    axes[0].set_yscale("log")
    axes[0].legend(fontsize=8)
    fig.suptitle("MLP 64-64-64-10 on 8x8 digits, SGD(lr=0.1, momentum=0.9), batch 64", fontsize=9)
    fig.tight_layout()
    fig.savefig(IMG / "w1d5_autograd_training.png", dpi=90)


if __name__ == "__main__":
    IMG.mkdir(parents=True, exist_ok=True)
    graph_figure()
    training_figure()
