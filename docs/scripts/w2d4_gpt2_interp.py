"""Figures for docs/w2d4_gpt2_interp.md, from the reference solutions and the shipped model.

Run `python docs/scripts/w2d4_gpt2_interp.py` from the repo root (a few seconds on 2 CPU cores).
Writes docs/img/w2d4_gpt2_interp_{patterns,loss,composition}.png.
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
from mlab import w2d4_gpt2_interp as m  # noqa: E402

IMG = ROOT / "docs" / "img"
T = 20


def main() -> None:
    IMG.mkdir(parents=True, exist_ok=True)
    model = m.load_attn_only()
    tokens = m.repeated_tokens(50, T, model.cfg.d_vocab, torch.Generator().manual_seed(0))
    logits, cache = m.run_with_cache(model, tokens)

    n = model.cfg.n_heads
    fig, axes = plt.subplots(2, n, figsize=(3 * n, 6))
    for layer in range(2):
        pattern = cache[f"blocks.{layer}.attn.hook_pattern"]
        ind = m.induction_score(pattern, T)
        prev = m.previous_token_score(pattern)
        for head in range(n):
            ax = axes[layer, head]
            ax.imshow(pattern[0, head], cmap="viridis", vmin=0, vmax=1)
            ax.set_title(
                f"L{layer}H{head}: prev {prev[head]:.2f}, induction {ind[head]:.2f}", fontsize=8
            )
            ax.set_xlabel("key position", fontsize=7)
            ax.set_ylabel("query position", fontsize=7)
    fig.suptitle(f"Attention patterns on [BOS, r, r], T = {T}", fontsize=10)
    fig.tight_layout()
    fig.savefig(IMG / "w2d4_gpt2_interp_patterns.png", dpi=70)
    plt.close(fig)

    loss = m.per_token_loss(logits, tokens).mean(0)  # (2T,)
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot(range(1, 2 * T + 1), loss, marker=".", label="clean")
    for layer, head in [(0, 1), (1, 1)]:
        ablated = m.per_token_loss(m.ablate_head(model, tokens, layer, head, "mean"), tokens)
        ax.plot(
            range(1, 2 * T + 1), ablated.mean(0), marker=".", label=f"L{layer}H{head} mean-ablated"
        )
    ax.axvline(T + 0.5, color="gray", lw=0.8)
    ax.set_xlabel("position of the predicted token")
    ax.set_ylabel("loss (nats)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(IMG / "w2d4_gpt2_interp_loss.png", dpi=70)
    plt.close(fig)

    fig, axes = plt.subplots(1, 3, figsize=(9, 3))
    scores = {kind: m.composition_scores(model, kind) for kind in "QKV"}
    top = max(s.max().item() for s in scores.values())
    for ax, (kind, s) in zip(axes, scores.items(), strict=True):
        im = ax.imshow(s, cmap="Blues", vmin=0, vmax=top)
        ax.set_title(f"{kind}-composition", fontsize=9)
        ax.set_xlabel("layer 1 head")
        ax.set_ylabel("layer 0 head")
        ax.set_xticks(range(n))
        ax.set_yticks(range(n))
    fig.colorbar(im, ax=axes, shrink=0.8)
    fig.savefig(IMG / "w2d4_gpt2_interp_composition.png", dpi=70)
    plt.close(fig)


if __name__ == "__main__":
    main()
