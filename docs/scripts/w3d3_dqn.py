"""Figures for docs/w3d3_dqn.md, drawn with the reference solutions.

Run from the repository root: `python docs/scripts/w3d3_dqn.py` (about a minute on one core).

- `w3d3_dqn_cartpole.png`: CartPole-v1 learning curves (episode return against step) for three
  seeds with the graders' configuration, with the epsilon schedule and the grading bar.
- `w3d3_dqn_probes.png`: the TD loss on each probe environment with the graders' configuration.
"""

from __future__ import annotations

import dataclasses
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
from mlab import w3d3_dqn as m  # noqa: E402
from test_w3d3_dqn import CARTPOLE, CARTPOLE_BAR, PROBES, probe_config  # noqa: E402

IMG = ROOT / "docs" / "img"


def smooth(x: np.ndarray, k: int) -> np.ndarray:
    return np.convolve(x, np.ones(k) / k, mode="valid") if len(x) >= k else x


def cartpole() -> None:
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=90)
    for seed in range(3):
        result = m.train_dqn(dataclasses.replace(CARTPOLE, seed=seed))
        steps, returns = map(np.array, zip(*result.episode_returns, strict=True))
        ax.plot(steps, returns, ".", ms=2, alpha=0.25, color=f"C{seed}")
        ax.plot(steps[9:], smooth(returns, 10), color=f"C{seed}", label=f"seed {seed}")
        greedy = np.mean(m.evaluate(result.q_network, "CartPole-v1", 10, seed=1000))
        print(f"seed {seed}: greedy mean return {greedy:.1f}")
    ax.axhline(CARTPOLE_BAR, color="k", ls="--", lw=1, label=f"bar (greedy) {CARTPOLE_BAR:g}")
    ax.axvline(CARTPOLE.learning_starts, color="gray", lw=1, ls=":")
    ax.text(CARTPOLE.learning_starts, 440, " learning starts", fontsize=8, color="gray")
    twin = ax.twinx()
    t = np.arange(CARTPOLE.total_timesteps)
    duration = int(CARTPOLE.exploration_fraction * CARTPOLE.total_timesteps)
    twin.plot(t, [m.linear_schedule(s, CARTPOLE.start_e, CARTPOLE.end_e, duration) for s in t],
              color="gray", lw=1)  # fmt: skip
    twin.set_ylabel("epsilon", color="gray")
    twin.set_ylim(0, 1.05)
    ax.set_xlabel("vector step (4 envs each)")
    ax.set_ylabel("episode return (exploring)")
    ax.set_ylim(0, 510)
    ax.set_title("DQN on CartPole-v1: episode returns while training (10-episode mean)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(IMG / "w3d3_dqn_cartpole.png")


def probes() -> None:
    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=90)
    for i, env_id in enumerate(PROBES):
        result = m.train_dqn(probe_config(env_id))
        steps, losses = map(np.array, zip(*result.losses, strict=True))
        ax.semilogy(steps[9:], smooth(losses, 10) + 1e-8, color=f"C{i}", label=env_id[5:-3])
    ax.set_xlabel("vector step")
    ax.set_ylabel("TD loss (10-step mean)")
    ax.set_title("Probe environments: the loss drops to ~0 when each Q-value is learned")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(IMG / "w3d3_dqn_probes.png")


if __name__ == "__main__":
    torch.set_num_threads(1)
    probes()
    cartpole()
