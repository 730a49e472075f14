"""Figures for docs/w1d6_kernels.md: the launch grid, the block tree reduction and matmul tiling.

Run from the repository root: `python docs/scripts/w1d6_kernels.py` (a few seconds, no GPU).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, Rectangle  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
IMG = ROOT / "docs" / "img"
BLUES = ["#c6dbef", "#9ecae1", "#6baed6", "#4292c6"]
IDLE, ACCENT, DARK = "#e0e0e0", "#fd8d3c", "#08519c"


def cell(ax, x, y, text, color, w=1.0, h=1.0, fontsize=8, hatch=None, edge="white"):
    ax.add_patch(Rectangle((x, y), w, h, facecolor=color, edgecolor=edge, lw=1.5, hatch=hatch))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fontsize)


def grid_figure() -> None:
    """n = 10 elements, blocks of 4 threads: 3 blocks, 2 threads past the end; Triton alike."""
    n, threads, blocks = 10, 4, 3
    fig, ax = plt.subplots(figsize=(9, 3.4))
    for b in range(blocks):
        x0 = b * (threads + 0.6)
        ax.text(x0 + threads / 2, 4.35, f"block {b}  (blockIdx.x = {b})", ha="center", fontsize=9)
        for t in range(threads):
            i = b * threads + t
            inside = i < n
            label = f"t={t}\ni={i}" if inside else f"t={t}\ni={i}\nidle"
            cell(ax, x0 + t, 3.0, label, BLUES[b] if inside else IDLE, h=1.2)
        ax.text(x0 + threads / 2, 1.85, f"program {b}  (program_id {b})", ha="center", fontsize=9)
        ax.add_patch(Rectangle((x0, 0.5), threads, 1.0, facecolor="none", edgecolor=DARK, lw=2))
        for t in range(threads):
            i = b * threads + t
            label = f"lane {t}\noffs={i}" if i < n else f"offs={i}\nmask=0"
            cell(ax, x0 + t, 0.5, label, BLUES[b] if i < n else IDLE, fontsize=7)
    ax.text(-0.3, 3.6, "Numba CUDA:\none thread\nper element", ha="right", va="center", fontsize=9)
    ax.text(-0.3, 1.0, "Triton:\none program\nper block", ha="right", va="center", fontsize=9)
    ax.set_title(
        "n = 10, THREADS = BLOCK = 4: cdiv(10, 4) = 3 blocks; i = blockIdx.x * 4 + threadIdx.x, "
        "guarded by i < n",
        fontsize=10,
    )
    ax.set_xlim(-3.2, blocks * (threads + 0.6))
    ax.set_ylim(0.2, 4.8)
    ax.axis("off")
    fig.savefig(IMG / "w1d6_kernels_grid.png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def reduction_figure() -> None:
    """Tree sum of 8 shared-memory slots: strides 4, 2, 1 with a syncthreads between steps."""
    values = [3, 1, 4, 1, 5, 9, 2, 6]
    fig, ax = plt.subplots(figsize=(8, 4.2))
    level, stride, y = list(values), len(values) // 2, 4.0
    for i, v in enumerate(level):
        cell(ax, i, y, str(v), BLUES[0])
    ax.text(-0.4, y + 0.5, "shared[]", ha="right", va="center", fontsize=9)
    while stride > 0:
        y_next = y - 1.4
        ax.plot([-0.2, 8.2], [y - 0.2, y - 0.2], ls="--", color=ACCENT, lw=1)
        ax.text(8.3, y - 0.2, "syncthreads()", va="center", fontsize=8, color=ACCENT)
        new = list(level)
        for t in range(stride):
            new[t] = level[t] + level[t + stride]
            for src in (t, t + stride):
                ax.add_patch(FancyArrowPatch((src + 0.5, y), (t + 0.5, y_next + 1),
                                             arrowstyle="->", mutation_scale=8, color=DARK, lw=0.8))  # fmt: skip
        for i, v in enumerate(new):
            active = i < stride
            cell(ax, i, y_next, str(v) if active else "", BLUES[2] if active else IDLE)
        ax.text(-0.4, y_next + 0.5, f"stride {stride}:\nthreads t < {stride}", ha="right",
                va="center", fontsize=8)  # fmt: skip
        level, stride, y = new, stride // 2, y_next
    ax.text(0.5, y - 0.35, f"thread 0 writes partial[blockIdx.x] = {level[0]}", fontsize=9)
    ax.set_title("Block reduction in shared memory: log2(THREADS) steps, a barrier after each",
                 fontsize=10)  # fmt: skip
    ax.set_xlim(-2.2, 10)
    ax.set_ylim(y - 0.6, 5.3)
    ax.axis("off")
    fig.savefig(IMG / "w1d6_kernels_reduction.png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def tiling_figure() -> None:
    """c = a @ b with TILE x TILE blocks: block (bx, by) walks the k-tiles of its row and column
    panels; tiles that stick out past the matrices are padded with zeros."""
    m, k, n, tile = 5, 7, 6, 2  # in units of elements; tiles of 2 to keep the picture readable
    by, bx, t = 1, 2, 1  # the block drawn, and the k-tile it is on
    fig, ax = plt.subplots(figsize=(9, 5.4))

    def matrix(x0, y0, rows, cols, name, panel_rows=None, panel_cols=None, hot=None):
        for r in range(-(-rows // tile) * tile):
            for c in range(-(-cols // tile) * tile):
                outside = r >= rows or c >= cols
                in_panel = (panel_rows, panel_cols) != (None, None) and (
                    (panel_rows is None or r // tile == panel_rows)
                    and (panel_cols is None or c // tile == panel_cols)
                )
                is_hot = hot is not None and (r // tile, c // tile) == hot
                color = ACCENT if is_hot else BLUES[1] if in_panel else BLUES[0]
                if outside:
                    color = "white"
                cell(ax, x0 + c, y0 - r - 1, "0" if outside and (in_panel or is_hot) else "",
                     color, edge="#999999", hatch="//" if outside else None, fontsize=7)  # fmt: skip
        for r in range(0, rows + 1, tile):
            ax.plot([x0, x0 + -(-cols // tile) * tile], [y0 - r, y0 - r], color=DARK, lw=1.2)
        for c in range(0, cols + 1, tile):
            ax.plot([x0 + c, x0 + c], [y0, y0 - -(-rows // tile) * tile], color=DARK, lw=1.2)
        ax.text(x0 + cols / 2, y0 + 0.4, name, ha="center", fontsize=10)

    matrix(0, 0, m, k, f"a  ({m} x {k})", panel_rows=by, hot=(by, t))
    matrix(k + 3, 9, k, n, f"b  ({k} x {n})", panel_cols=bx, hot=(t, bx))
    matrix(k + 3, 0, m, n, f"c  ({m} x {n})", hot=(by, bx))
    ax.text(0, -8.3, (
        f"TILE = {tile}: block (bx={bx}, by={by}) owns the orange tile of c. For k-tile t = 0, 1, ..."
        f" (t = {t} drawn) its threads copy\none element each of a's and b's orange tiles into "
        "shared memory (0 past the edges), syncthreads, accumulate TILE products, syncthreads."
    ), fontsize=9, va="top")  # fmt: skip
    ax.set_xlim(-0.5, k + 3 + n + 2)
    ax.set_ylim(-9.8, 9.8)
    ax.set_aspect("equal")
    ax.axis("off")
    fig.savefig(IMG / "w1d6_kernels_tiling.png", dpi=100, bbox_inches="tight")
    plt.close(fig)


def main() -> None:
    IMG.mkdir(parents=True, exist_ok=True)
    grid_figure()
    reduction_figure()
    tiling_figure()
    for name in ("grid", "reduction", "tiling"):
        path = IMG / f"w1d6_kernels_{name}.png"
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
