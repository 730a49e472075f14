"""Figures for docs/w2d2_gpt2.md, drawn with the reference solutions.

Run from the repository root: `python docs/scripts/w2d2_gpt2.py` (or `nox -s figures`).

- w2d2_gpt2_kv_cache.png: which attention scores one forward computes without and with the cache
  (the masks are the solution's, read from a hook), and the measured time per generated token of
  the solution's `generate` with and without the cache on a small random GPT2.
- w2d2_gpt2_sampling.png: one next-token distribution after temperature, top_k and top_p, each
  computed by the solution's functions.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "solutions"))
from mlab import w2d2_gpt2 as m  # noqa: E402

IMG = ROOT / "docs" / "img"


def visible_scores(attn: m.GPT2Attention, x: torch.Tensor, past=None) -> torch.Tensor:
    """Which (query, key) scores get a nonzero attention weight: captured from the softmax."""
    seen = {}
    original = torch.Tensor.softmax

    def spy(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        seen["weights"] = out
        return out

    torch.Tensor.softmax = spy
    try:
        with torch.no_grad():
            attn(x, past)
    finally:
        torch.Tensor.softmax = original
    return seen["weights"][0, 0] > 0  # (t, s)


def per_token_times(model: m.GPT2, new: int, use_cache: bool) -> list[float]:
    """Seconds per step of a greedy loop like generate's, step by step."""
    ids, past, times = torch.zeros(1, 1, dtype=torch.long), None, []
    with torch.no_grad():
        for _ in range(new):
            start = time.perf_counter()
            logits, present = model(ids if past is None else ids[:, -1:], past)
            past = present if use_cache else None
            ids = torch.cat([ids, m.greedy(logits[:, -1])[:, None]], 1)
            times.append(time.perf_counter() - start)
    return times


def kv_cache_figure() -> None:
    torch.manual_seed(0)
    config = m.GPT2Config(vocab_size=500, n_positions=600, n_embd=128, n_layer=4, n_head=4)
    attn = m.GPT2Attention(config)
    x = torch.randn(1, 8, config.n_embd)
    full = visible_scores(attn, x)
    _, past = attn(x[:, :7])
    step = visible_scores(attn, x[:, 7:], past)

    torch.set_num_threads(1)
    model = m.GPT2(config).eval()
    new = 512
    cached = per_token_times(model, new, True)
    uncached = per_token_times(model, new, False)

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), gridspec_kw={"width_ratios": [1, 1, 1.6]})
    for ax, mask, title in [
        (axes[0], full, "no cache: 8 queries x 8 keys"),
        (
            axes[1],
            torch.cat([torch.zeros(7, 8, dtype=torch.bool), step]),
            "cache: 1 query x 8 keys",
        ),
    ]:
        ax.imshow(mask.float(), cmap="Blues", vmin=0, vmax=1.3)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("key position")
        ax.set_ylabel("query position")
        ax.set_xticks(range(8))
        ax.set_yticks(range(8))
    axes[1].text(
        3.5,
        3,
        "rows 0..6 were computed\nin earlier steps:\ntheir K, V are cached",
        ha="center",
        va="center",
        fontsize=9,
    )
    ms = 1e3
    window = 16

    def smooth(ts: list[float]) -> list[float]:  # running mean over the last `window` steps
        return [
            ms * sum(ts[max(0, i - window) : i + 1]) / (i + 1 - max(0, i - window))
            for i in range(len(ts))
        ]

    axes[2].plot(smooth(uncached), label=f"no cache: {new / sum(uncached):.0f} tokens/s")
    axes[2].plot(smooth(cached), label=f"cache: {new / sum(cached):.0f} tokens/s")
    axes[2].set_xlabel("tokens generated so far")
    axes[2].set_ylabel("ms per new token")
    axes[2].set_title("generate on a random 4-layer, d 128 GPT2 (1 CPU thread)", fontsize=10)
    axes[2].legend()
    fig.tight_layout()
    fig.savefig(IMG / "w2d2_gpt2_kv_cache.png", dpi=80)


def sampling_figure() -> None:
    torch.manual_seed(3)
    logits = (torch.randn(1, 20) * 1.3).sort(descending=True).values
    panels = [
        ("softmax(logits)", logits),
        ("temperature 0.5", logits / 0.5),
        ("temperature 2", logits / 2.0),
        ("top_k, k = 5", m.top_k(logits, 5)),
        ("top_p, p = 0.8", m.top_p(logits, 0.8)),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(14, 2.8), sharey=True)
    for ax, (title, z) in zip(axes, panels, strict=True):
        probs = z.softmax(-1)[0]
        kept = torch.isfinite(z[0])
        ax.bar(range(20), probs, color=["#4c72b0" if k else "#cccccc" for k in kept])
        if title.startswith("top_p"):
            mass = logits.softmax(-1)[0].cumsum(0)
            ax.step(range(20), mass, where="mid", color="#c44e52", lw=1, label="cumulative mass")
            ax.axhline(0.8, color="#c44e52", ls=":", lw=1)
            ax.legend(fontsize=8, loc="center right")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("tokens, most likely first")
    axes[0].set_ylabel("probability")
    fig.tight_layout()
    fig.savefig(IMG / "w2d2_gpt2_sampling.png", dpi=80)


if __name__ == "__main__":
    IMG.mkdir(parents=True, exist_ok=True)
    kv_cache_figure()
    sampling_figure()
    print("wrote", *sorted(p.name for p in IMG.glob("w2d2_gpt2_*.png")))
