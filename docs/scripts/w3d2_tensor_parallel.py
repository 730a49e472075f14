"""Figures for docs/w3d2_tensor_parallel.md, drawn with the reference solutions.

Run from the repository root: `python docs/scripts/w3d2_tensor_parallel.py` (or `nox -s figures`).

The qkv figure runs the solution's `regroup_qkv` on a weight whose rows are labelled by
(q/k/v, head), so what is drawn is what the code does.
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
from mlab import w3d2_tensor_parallel as m  # noqa: E402

IMG = ROOT / "docs" / "img"
COLORS = ["#4c72b0", "#dd8452", "#55a868", "#c44e52"]
KINDS = "qkv"


def draw_qkv(n_head: int = 4, world_size: int = 2) -> None:
    """Rows of the fused weight before and after regroup_qkv, coloured by rank, hatched by q/k/v."""
    d = n_head  # one row per head is enough to show the order
    labels = torch.tensor(
        [[kind, head] for kind in range(3) for head in range(d)], dtype=torch.float64
    )
    regrouped, _ = m.regroup_qkv(labels, None, world_size)
    heads_per_rank = n_head // world_size
    fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.2))
    for ax, rows, title in [
        (axes[0], labels, "GPT-2's c_attn: [Q; K; V]\nnaive split: rank 0 gets Q and half of K"),
        (axes[1], regrouped, "after regroup_qkv\neach rank gets ITS heads' q, k, v"),
    ]:
        for i, (kind, head) in enumerate(rows.long().tolist()):
            rank = head // heads_per_rank
            ax.add_patch(Rectangle((i, 0), 0.95, 1, color=COLORS[rank], alpha=0.35 + 0.2 * kind))
            ax.text(i + 0.47, 0.5, f"{KINDS[kind]}{head}", ha="center", va="center", fontsize=9)
        per_rank = len(rows) // world_size
        for r in range(1, world_size):
            ax.axvline(r * per_rank - 0.025, color="black", lw=2)
        for r in range(world_size):
            ax.text((r + 0.5) * per_rank, -0.35, f"rank {r}'s block", ha="center", fontsize=9)
        ax.set_xlim(-0.2, len(rows) + 0.2)
        ax.set_ylim(-0.6, 1.2)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.suptitle(
        f"fused q/k/v rows, {n_head} heads on {world_size} ranks (colour: the head's rank)"
    )
    fig.tight_layout()
    fig.savefig(IMG / "w3d2_tensor_parallel_qkv.png", dpi=90)
    plt.close(fig)


def box(ax, x, y, w, h, text, color="#dddddd"):
    ax.add_patch(Rectangle((x, y), w, h, facecolor=color, edgecolor="black"))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=9)


def arrow(ax, a, b):
    ax.add_patch(FancyArrowPatch(a, b, arrowstyle="->", mutation_scale=10, color="black"))


def draw_mlp(world_size: int = 2) -> None:
    """The Megatron MLP: f, column-parallel A, GeLU, row-parallel B, g, per rank."""
    fig, ax = plt.subplots(figsize=(8, 3.2))
    for r in range(world_size):
        y = 1.8 - 1.5 * r
        box(ax, 1.4, y, 1.6, 0.8, f"X A$_{r}$ + a$_{r}$\n(.., 4d/{world_size})", COLORS[r])
        box(ax, 3.5, y, 1.2, 0.8, "GeLU", COLORS[r])
        box(ax, 5.2, y, 1.6, 0.8, f"Y$_{r}$ B$_{r}$\npartial (.., d)", COLORS[r])
        arrow(ax, (0.9, 1.5), (1.4, y + 0.4))
        arrow(ax, (3.0, y + 0.4), (3.5, y + 0.4))
        arrow(ax, (4.7, y + 0.4), (5.2, y + 0.4))
        arrow(ax, (6.8, y + 0.4), (7.3, 1.5))
    box(ax, 0.1, 1.1, 0.8, 0.8, "f\nX (.., d)", "#ffffff")
    box(ax, 7.3, 1.1, 1.1, 0.8, "g: all-reduce\n+ b", "#ffffff")
    ax.text(0.5, 0.75, "fwd: identity\nbwd: all-reduce", ha="center", va="top", fontsize=8)
    ax.text(7.85, 0.75, "fwd: all-reduce\nbwd: identity", ha="center", va="top", fontsize=8)
    ax.set_xlim(0, 8.6)
    ax.set_ylim(-0.1, 2.8)
    ax.axis("off")
    ax.set_title("Megatron MLP on 2 ranks: A split by columns, B by rows, one all-reduce each way")
    fig.tight_layout()
    fig.savefig(IMG / "w3d2_tensor_parallel_mlp.png", dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    IMG.mkdir(parents=True, exist_ok=True)
    draw_qkv()
    draw_mlp()
    print("wrote", IMG / "w3d2_tensor_parallel_qkv.png", IMG / "w3d2_tensor_parallel_mlp.png")
