"""Figures for docs/w3d4_policy_gradient.md, drawn with the reference solutions.

Run from the repository root: `python docs/scripts/w3d4_policy_gradient.py`. Trains PPO on
CartPole-v1 for three seeds and REINFORCE for one: about a minute on 2 cores.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "solutions"))
from mlab import w3d4_policy_gradient as m  # noqa: E402

IMG = ROOT / "docs" / "img"


def clip_figure() -> None:
    """The clipped surrogate min(r A, clip(r) A) as a function of the ratio r, for A > 0, A < 0."""
    r = torch.linspace(0.0, 2.0, 401)
    eps = 0.2
    fig, axes = plt.subplots(1, 2, figsize=(8, 3), sharey=False)
    for ax, a in zip(axes, (1.0, -1.0), strict=True):
        adv = torch.full_like(r, a)
        objective = torch.min(r * adv, r.clamp(1 - eps, 1 + eps) * adv)
        ax.plot(r, r * adv, "--", color="grey", label="r A (unclipped)")
        ax.plot(r, objective, color="tab:red", lw=2, label="min(r A, clip(r, 0.8, 1.2) A)")
        ax.axvline(1.0, color="k", lw=0.5)
        ax.set_title(f"A {'> 0' if a > 0 else '< 0'}", fontsize=10)
        ax.set_xlabel("ratio r = pi / pi_old")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(IMG / "w3d4_policy_gradient_clip.png", dpi=70)
    plt.close(fig)


def smooth(x: list[float], k: int = 20) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    return np.convolve(x, np.ones(k) / k, mode="valid") if len(x) >= k else x


def curves_figure() -> None:
    """Episode returns against environment steps, PPO (three seeds) and REINFORCE."""
    torch.set_num_threads(1)
    fig, ax = plt.subplots(figsize=(7, 3.4))
    for seed in range(3):
        args = m.PPOArgs(total_timesteps=32768, learning_rate=1e-3, seed=seed)
        _, returns = m.train_ppo("CartPole-v1", args)
        steps = np.cumsum(returns)  # CartPole pays 1 per step: a return is a length
        ax.plot(
            steps[19:],
            smooth(returns),
            color="tab:blue",
            alpha=0.8,
            label="PPO (seeds 0-2)" if seed == 0 else None,
        )
    _, returns = m.train_reinforce("CartPole-v1", n_episodes=400, gamma=0.99, lr=1e-3, seed=0)
    ax.plot(
        np.cumsum(returns)[19:], smooth(returns), color="tab:orange", label="REINFORCE + baseline"
    )
    ax.axhline(150, color="k", ls=":", lw=1, label="the grader's bar")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("episode return (mean of 20)")
    ax.set_title("CartPole-v1", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(IMG / "w3d4_policy_gradient_cartpole.png", dpi=70)
    plt.close(fig)


if __name__ == "__main__":
    clip_figure()
    curves_figure()
