"""Figures for docs/w1d3_cnn_interp.md, from the reference solutions and the shipped CNN.

Run `python docs/scripts/w1d3_cnn_interp.py` from the repo root (~15 s on 2 CPU cores). Writes
docs/img/w1d3_cnn_interp_{attributions,completeness,features}.png.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "solutions"))
from mlab import w1d3_cnn_interp as m  # noqa: E402

DATA = ROOT / "template" / "tests" / "data" / "w1d3_cnn_interp"
IMG = ROOT / "docs" / "img"
SHOWN = [0, 1, 4, 8, 14]  # shipped test images: ankle boot, pullover, shirt, sandal, bag


def signed(ax, a: torch.Tensor, title: str) -> None:
    """A signed map in red (positive) / blue (negative), symmetric colour scale."""
    lim = a.abs().max().item() or 1.0
    ax.imshow(a, cmap="bwr", vmin=-lim, vmax=lim)
    ax.set_title(title, fontsize=8)


def overlay(ax, image: torch.Tensor, cam: torch.Tensor, title: str) -> None:
    """A Grad-CAM map, upsampled bilinearly to 28x28, over the image."""
    up = F.interpolate(cam[None, None], size=image.shape[-2:], mode="bilinear", align_corners=False)
    ax.imshow(image, cmap="gray")
    peak = cam.max().item()
    ax.imshow(up[0, 0], cmap="jet", alpha=0.45, vmin=0, vmax=peak or 1.0)
    ax.set_title(title + (" (all 0)" if peak == 0 else ""), fontsize=8)


def attributions(model, images, labels) -> None:
    x, target = images[SHOWN], labels[SHOWN]
    with torch.no_grad():
        pred = model(x).argmax(-1)
    sal = m.saliency_map(model, x, target)[:, 0]
    ig = m.integrated_gradients(model, x, target, steps=128)[:, 0]
    occ = m.occlusion_map(model, x, target, patch=6, stride=2)
    cam3 = m.grad_cam(model, x, target, "relu3")
    cam2 = m.grad_cam(model, x, target, "relu2")
    fig, axes = plt.subplots(len(SHOWN), 6, figsize=(9, 1.6 * len(SHOWN)))
    for row in range(len(SHOWN)):
        ax = axes[row]
        ax[0].imshow(x[row, 0], cmap="gray")
        ax[0].set_title(f"{m.CLASSES[target[row]]} (pred {m.CLASSES[pred[row]]})", fontsize=7)
        ax[1].imshow(sal[row].abs(), cmap="magma")
        ax[1].set_title("|saliency|", fontsize=8)
        signed(ax[2], ig[row], "integrated gradients")
        signed(ax[3], occ[row], "occlusion (6x6, drop)")
        overlay(ax[4], x[row, 0], cam3[row], "Grad-CAM relu3")
        overlay(ax[5], x[row, 0], cam2[row], "Grad-CAM relu2")
        for a in ax:
            a.axis("off")
    fig.tight_layout()
    fig.savefig(IMG / "w1d3_cnn_interp_attributions.png", dpi=80)
    plt.close(fig)


def completeness(model, images, labels) -> None:
    x, target = images[SHOWN], labels[SHOWN]
    with torch.no_grad():
        delta = m.class_scores(model(x), target) - m.class_scores(
            model(torch.zeros_like(x)), target
        )
    all_steps = [1, 2, 4, 8, 16, 32, 64, 128, 256]
    errors = []
    for steps in all_steps:
        total = m.integrated_gradients(model, x, target, steps=steps).sum(dim=(1, 2, 3))
        errors.append(((total - delta).abs() / delta.abs()).tolist())
    errors = torch.tensor(errors)  # (len(all_steps), len(SHOWN))
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for i, idx in enumerate(SHOWN):
        ax.loglog(all_steps, errors[:, i], marker="o", label=m.CLASSES[labels[idx]])
    ax.loglog(all_steps, [1 / s for s in all_steps], "k--", label="1 / steps")
    ax.set_xlabel("steps m")
    ax.set_ylabel("|sum IG - (F(x) - F(0))| / |F(x) - F(0)|")
    ax.set_title("Completeness of the Riemann sum", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(IMG / "w1d3_cnn_interp_completeness.png", dpi=80)
    plt.close(fig)


def features(model) -> None:
    units = [("conv3", c) for c in range(10)] + [("fc", c) for c in range(10)]
    fig, axes = plt.subplots(2, 10, figsize=(10, 2.6))
    for ax, (layer, channel) in zip(axes.flat, units, strict=True):
        image = m.feature_visualization(model, layer, channel, steps=256, seed=0)
        ax.imshow(image[0, 0], cmap="gray", vmin=0, vmax=1)
        name = f"conv3[{channel}]" if layer == "conv3" else m.CLASSES[channel]
        ax.set_title(name, fontsize=7)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(IMG / "w1d3_cnn_interp_features.png", dpi=80)
    plt.close(fig)


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)  # small batches: a second thread only waits
    IMG.mkdir(parents=True, exist_ok=True)
    model = m.load_cnn(DATA)
    images, labels = m.load_examples(DATA)
    attributions(model, images, labels)
    completeness(model, images, labels)
    features(model)
    for path in sorted(IMG.glob("w1d3_cnn_interp_*.png")):
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
