"""Figures for docs/w3d6_transformer_interp.md, from the reference solutions and shipped models.

Run `python docs/scripts/w3d6_transformer_interp.py` from the repo root (about 20 s on 2 CPU
cores). Writes docs/img/w3d6_transformer_interp_{patching,toy_model,sae}.png.
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
from mlab import w3d6_transformer_interp as m  # noqa: E402

IMG = ROOT / "docs" / "img"


def patching_figure() -> None:
    model = m.load_brackets_model()
    clean, corrupted = m.clean_corrupted_pairs(12, 16, torch.Generator().manual_seed(0))
    clean_tokens, corrupted_tokens = m.tokenize(clean), m.tokenize(corrupted)
    clean_logits, clean_cache = m.run_with_cache(model, clean_tokens)
    corrupted_logits, _ = m.run_with_cache(model, corrupted_tokens)
    c, r = m.logit_diff(clean_logits).item(), m.logit_diff(corrupted_logits).item()

    def metric(logits):
        return m.normalized_metric(logits, c, r)

    act = m.patch_resid_by_position(model, corrupted_tokens, clean_cache, metric)
    attr = m.attribution_patch_resid(model, corrupted_tokens, clean_cache, metric)
    heads = m.patch_heads(model, corrupted_tokens, clean_cache, metric)
    heads_attr = m.attribution_patch_heads(model, corrupted_tokens, clean_cache, metric)
    fig, axes = plt.subplots(1, 3, figsize=(12, 2.8), gridspec_kw={"width_ratios": [3, 3, 1.4]})
    for ax, values, title in [
        (axes[0], act, "activation patching"),
        (axes[1], attr, "attribution"),
    ]:
        im = ax.imshow(values, cmap="RdBu", vmin=-1, vmax=1, aspect="auto")
        ax.set_title(f"resid_pre, {title}", fontsize=9)
        ax.set_xlabel("position (0 = START)", fontsize=8)
        ax.set_ylabel("layer", fontsize=8)
        ax.set_yticks(range(model.cfg.n_layers))
    fig.colorbar(im, ax=axes[1], fraction=0.04)
    labels = [f"L{a}H{h}" for a in range(model.cfg.n_layers) for h in range(model.cfg.n_heads)]
    x = torch.arange(len(labels))
    axes[2].bar(x - 0.2, heads.flatten(), 0.4, label="patching")
    axes[2].bar(x + 0.2, heads_attr.flatten(), 0.4, label="attribution")
    axes[2].set_xticks(x, labels, fontsize=7)
    axes[2].set_title("heads (hook_z)", fontsize=9)
    axes[2].legend(fontsize=7)
    fig.suptitle(
        "Clean (balanced) into corrupted (one '()' swapped), normalized metric", fontsize=10
    )
    fig.tight_layout()
    fig.savefig(IMG / "w3d6_transformer_interp_patching.png", dpi=70)
    plt.close(fig)


def toy_model_figure() -> None:
    toy, info = m.load_toy_model()
    W = toy.W.detach()
    norms, sup = m.feature_geometry(W)
    n = W.shape[0]
    fig, axes = plt.subplots(1, n, figsize=(2.4 * n, 2.6))
    colors = plt.cm.viridis(torch.linspace(0, 0.9, W.shape[-1]).numpy())
    for i, ax in enumerate(axes):
        for f in range(W.shape[-1]):
            ax.arrow(
                0, 0, *W[i, :, f].tolist(), color=colors[f], width=0.02, length_includes_head=True
            )
        ax.set_xlim(-1.4, 1.4)
        ax.set_ylim(-1.4, 1.4)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        shown = int((norms[i] > 0.5).sum())
        ax.set_title(f"p = {info['feature_probability'][i]:.2f}: {shown} features", fontsize=8)
    fig.suptitle(
        "Toy model: columns W_i (5 features, 2 hidden dims; darker = more important)", fontsize=9
    )
    fig.tight_layout()
    fig.savefig(IMG / "w3d6_transformer_interp_toy_model.png", dpi=70)
    plt.close(fig)


def sae_figure() -> None:
    toy, info = m.load_toy_model()
    inst = 3
    W = toy.W.detach()[inst]
    p = info["feature_probability"][inst : inst + 1]
    gen = torch.Generator().manual_seed(1)

    def sample(batch: int) -> torch.Tensor:
        return m.generate_batch(batch, p, 5, gen)[:, 0] @ W.T

    torch.manual_seed(0)
    sae = m.SparseAutoencoder(2, 10, torch.Generator().manual_seed(0))
    m.train_sae(sae, sample, steps=1000, batch=256, lr=1e-2, l1_coeff=0.1, resample_every=250)
    fig, ax = plt.subplots(figsize=(3.4, 3.4))
    h = sample(2000)
    ax.scatter(h[:, 0], h[:, 1], s=2, color="lightgray", label="h = W x")
    for f in range(W.shape[1]):
        u = W[:, f] / W[:, f].norm()
        ax.plot([0, u[0]], [0, u[1]], color="black", lw=3, alpha=0.4)
    for k, row in enumerate(sae.W_dec.detach()):
        ax.arrow(
            0,
            0,
            *(0.9 * row).tolist(),
            color="tab:red",
            width=0.01,
            label="W_dec rows" if k == 0 else None,
        )
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title(f"SAE (10 features) on the toy model, p = {p.item():.2f}", fontsize=8)
    fig.tight_layout()
    fig.savefig(IMG / "w3d6_transformer_interp_sae.png", dpi=70)
    plt.close(fig)


def main() -> None:
    IMG.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    patching_figure()
    toy_model_figure()
    sae_figure()
    print(f"wrote {IMG}/w3d6_transformer_interp_*.png")


if __name__ == "__main__":
    main()
