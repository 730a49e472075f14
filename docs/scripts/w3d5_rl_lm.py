"""Figures for docs/w3d5_rl_lm.md, drawn with the reference solutions.

Run from the repository root: `python docs/scripts/w3d5_rl_lm.py`. Three PPO runs on the toy
reward (beta 0.03, beta 0.3, and the adaptive controller) of 30 rollouts each: about two minutes
on 2 cores. Prints sample completions before and after for the docs page.
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
from mlab import w3d5_rl_lm as m  # noqa: E402

IMG = ROOT / "docs" / "img"
RUNS = {
    "beta 0.03": m.RLHFArgs(n_steps=30, init_kl_coef=0.03),
    "beta 0.3 (default)": m.RLHFArgs(n_steps=30),
    "adaptive from 0.03, target KL 5": m.RLHFArgs(
        n_steps=30, init_kl_coef=0.03, adaptive_kl=True, target_kl=5.0, kl_horizon=2
    ),
}


def completions(policy, n: int = 4) -> list[str]:
    _, texts = m.get_samples(
        policy.base, m.CharTokenizer(), "the ", n, 16, generator=torch.Generator().manual_seed(1)
    )
    return texts


def curves_figure() -> None:
    """Mean reward, KL to the reference and beta against PPO steps for each run."""
    torch.set_num_threads(1)
    fig, axes = plt.subplots(1, 3, figsize=(10, 3))
    for label, args in RUNS.items():
        policy, ref, history = m.train_rlhf(args)
        for ax, key in zip(axes, ("reward", "kl", "kl_coef"), strict=True):
            ax.plot([row[key] for row in history], label=label)
        print(
            f"{label}: reward {history[0]['reward']:.3f} -> {history[-1]['reward']:.3f}, "
            f"KL {history[-1]['kl']:.2f}"
        )
        for text in completions(policy):
            print(f"    the {text!r}")
    print("reference:")
    for text in completions(m.TransformerWithValueHead(m.load_pretrained())):
        print(f"    the {text!r}")
    titles = ("mean reward (frequency of 'e')", "KL(pi || pi_ref) per completion", "beta")
    for ax, title in zip(axes, titles, strict=True):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("PPO step (rollout)")
    axes[2].set_yscale("log")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(IMG / "w3d5_rl_lm_curves.png", dpi=70)
    plt.close(fig)


if __name__ == "__main__":
    IMG.mkdir(parents=True, exist_ok=True)
    curves_figure()
