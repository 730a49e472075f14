"""Figures for docs/w1d4_optim.md, drawn with the reference solutions.

Run from the repository root: `python docs/scripts/w1d4_optim.py` (or `nox -s figures`). The
search figure trains about 60 small MLPs on two worker processes (about a minute on 2 cores), or
on a Dask cluster when MLAB_DASK_SCHEDULER holds its scheduler's address (see search_executor).
"""

from __future__ import annotations

import math
import random
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "solutions"))
from mlab import w1d4_optim as m  # noqa: E402

IMG = ROOT / "docs" / "img"
START = torch.tensor([-1.6, 2.4])
ROSENBROCK_STEPS = 400
OPTIMIZERS = [
    ("SGD lr=1e-3", lambda ps: m.SGD(ps, lr=1e-3)),
    ("SGD lr=1e-3, momentum=0.9", lambda ps: m.SGD(ps, lr=1e-3, momentum=0.9)),
    ("SGD lr=1e-3, Nesterov 0.9", lambda ps: m.SGD(ps, lr=1e-3, momentum=0.9, nesterov=True)),
    ("RMSprop lr=1e-2", lambda ps: m.RMSprop(ps, lr=1e-2)),
    ("Adam lr=0.1", lambda ps: m.Adam(ps, lr=0.1)),
    ("AdamW lr=0.1, weight_decay=0.5", lambda ps: m.AdamW(ps, lr=0.1, weight_decay=0.5)),
]


def rosenbrock_figure() -> None:
    """Each optimizer's path over Rosenbrock's valley from the same start."""
    xs, ys = torch.linspace(-2.0, 2.0, 200), torch.linspace(-1.0, 3.0, 200)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # (200, 200, 2)
    z = m.rosenbrock(grid).log10()
    fig, axes = plt.subplots(2, 3, figsize=(10, 6.2), sharex=True, sharey=True)
    for ax, (name, make) in zip(axes.flat, OPTIMIZERS, strict=True):
        path = m.trajectory(m.rosenbrock, START, make, ROSENBROCK_STEPS)
        ax.contourf(xs, ys, z, levels=30, cmap="Greys")
        ax.plot(path[:, 0], path[:, 1], ".-", color="tab:red", ms=2, lw=0.8)
        ax.plot(*START, "o", color="tab:blue", ms=5)
        ax.plot(1, 1, "*", color="gold", ms=12, mec="k")
        final = m.rosenbrock(path[-1]).item()
        ax.set_title(f"{name}\nf after {ROSENBROCK_STEPS} steps: {final:.2g}", fontsize=9)
        ax.set_xlim(-2, 2)
        ax.set_ylim(-1, 3)
    fig.suptitle(
        "Rosenbrock's valley (log10 f, darker is higher); the minimum is the star at (1, 1)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(IMG / "w1d4_optim_rosenbrock.png", dpi=70)
    plt.close(fig)


def schedule_figure() -> None:
    """warmup_cosine_lr for a few settings."""
    fig, ax = plt.subplots(figsize=(6.5, 2.6))
    total = 200
    for warmup, min_lr in [(20, 0.0), (50, 0.0), (20, 0.2), (0, 0.0)]:
        lrs = [m.warmup_cosine_lr(s, 1.0, warmup, total, min_lr) for s in range(total + 40)]
        ax.plot(lrs, label=f"warmup_steps={warmup}, min_lr={min_lr}")
    ax.axvline(total, color="grey", ls=":", lw=1)
    ax.text(total + 2, 0.9, "total_steps", fontsize=8, color="grey")
    ax.set_xlabel("step")
    ax.set_ylabel("lr / base_lr")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(IMG / "w1d4_optim_schedule.png", dpi=80)
    plt.close(fig)


def search_figure() -> None:
    """Random search over optimizer and lr; successive halving over the same kind of configs."""
    space = {"optimizer": ["sgd", "rmsprop", "adam", "adamw"], "lr": m.LogUniform(1e-4, 1.0)}
    with m.search_executor(2) as executor:  # a Dask cluster when MLAB_DASK_SCHEDULER is set
        found = m.random_search(m.train_trial, space, 40, 150, seed=0, executor=executor)
        rng = random.Random(1)
        configs = [m.sample_config(space, rng) for _ in range(16)]
        halving = m.successive_halving(m.train_trial, configs, 25, 2, executor)

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    colors = {"sgd": "tab:blue", "rmsprop": "tab:green", "adam": "tab:orange", "adamw": "tab:red"}
    for name, color in colors.items():
        ts = [t for t in found.trials if t.config["optimizer"] == name and t.ok]
        left.scatter(
            [t.config["lr"] for t in ts], [t.value for t in ts], color=color, label=name, s=18
        )
    failed = [t for t in found.trials if not t.ok]
    if failed:
        left.scatter(
            [t.config["lr"] for t in failed],
            [2.4] * len(failed),
            marker="x",
            color="k",
            label="diverged (NaN)",
        )
    best = found.best
    left.set_xscale("log")
    left.set_ylim(0, 2.5)
    left.set_xlabel("lr (LogUniform(1e-4, 1))")
    left.set_ylabel("validation loss after 150 steps")
    left.set_title(
        f"random search, 40 trials: best {best.config['optimizer']} lr={best.config['lr']:.2g}",
        fontsize=9,
    )
    left.legend(fontsize=7)

    by_config: dict[str, list] = {}
    for t in halving.trials:
        by_config.setdefault(repr(t.config), []).append(t)
    for ts in by_config.values():
        c = ts[0].config
        values = [t.value if t.ok else math.nan for t in ts]
        right.plot([t.budget for t in ts], values, "o-", color=colors[c["optimizer"]], ms=3, lw=1)
    spent = sum(t.budget for t in halving.trials)
    right.set_xscale("log", base=2)
    right.set_ylim(0, 2.5)
    right.set_xlabel("budget (training steps)")
    right.set_ylabel("validation loss")
    right.set_title(
        f"successive halving, 16 configs, eta=2: {spent} steps in all\n"
        f"(16 x 400 = 6400 to train all fully); winner {halving.best.config['optimizer']} "
        f"lr={halving.best.config['lr']:.2g}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(IMG / "w1d4_optim_search.png", dpi=80)
    plt.close(fig)


if __name__ == "__main__":
    IMG.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    rosenbrock_figure()
    schedule_figure()
    search_figure()
    for path in sorted(IMG.glob("w1d4_optim_*.png")):
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size // 1024} KB")
