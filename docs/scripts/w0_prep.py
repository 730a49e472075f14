"""Figures for docs/w0_prep.md, drawn with the reference solutions.

Run from the repository root: `python docs/scripts/w0_prep.py` (or `nox -s figures`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "solutions"))
from mlab import w0_prep as m  # noqa: E402

IMG = ROOT / "docs" / "img"


def image_grid_figure() -> None:
    """Six synthetic 'images' (gradients in different directions) tiled by image_grid."""
    h = w = 16
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    images = torch.stack(
        [
            torch.stack([xx, yy, 1 - xx]),
            torch.stack([yy, 1 - yy, xx]),
            torch.stack([1 - xx, xx, yy]),
            torch.stack([xx * yy, 1 - xx * yy, xx]),
            torch.stack([yy, xx, 1 - yy]),
            torch.stack([1 - yy, yy * xx, xx]),
        ]
    )
    fig, axes = plt.subplots(1, 2, figsize=(7, 2.6), gridspec_kw={"width_ratios": [1, 1.6]})
    axes[0].imshow(m.image_grid(images, 6).permute(1, 2, 0))
    axes[0].set_title("nrow=6: '(rows cols) c h w -> c (rows h) (cols w)'", fontsize=8)
    axes[1].imshow(m.image_grid(images, 3).permute(1, 2, 0))
    axes[1].set_title("nrow=3", fontsize=8)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(IMG / "w0_prep_image_grid.png", dpi=90)


def stability_figure() -> None:
    """Naive softmax overflows to NaN as the logits grow; the max-shifted one does not."""
    scales = torch.logspace(0, 3.2, 60)
    base = torch.tensor([1.0, 0.5, -0.3])
    naive, stable = [], []
    for s in scales:
        x = base * s
        naive.append((x.exp() / x.exp().sum())[0].item())
        stable.append(m.softmax(x)[0].item())
    fig, ax = plt.subplots(figsize=(6, 2.6))
    ax.semilogx(scales, stable, label="softmax(x - max x)", lw=3, alpha=0.6)
    ax.semilogx(scales, naive, "--", label="exp(x) / sum exp(x)")
    ax.axvline(88.7, color="grey", lw=0.8)
    ax.text(
        100,
        0.7,
        "exp overflows float32 (x > 88.7):\nthe naive softmax is NaN from here",
        fontsize=8,
    )
    ax.set_xlabel("scale of the logits")
    ax.set_ylabel("p(first class)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(IMG / "w0_prep_softmax_stability.png", dpi=90)


if __name__ == "__main__":
    IMG.mkdir(parents=True, exist_ok=True)
    image_grid_figure()
    stability_figure()
