"""Train day w3d6_transformer_interp's two models: the brackets classifier and the toy model.

Run `python solutions/mlab/w3d6_transformer_interp_assets/train.py` from the repo root (or
`python mlab/w3d6_transformer_interp_assets/train.py` in a pair's repository); about two minutes of
CPU time on one thread. Writes `brackets.pt` and `toy_model.pt` (float32 weights and settings, small)
beside this script (or in `--out-dir`).

Brackets data: strings of 16 brackets, half balanced, a quarter with equal counts but a prefix
that dips below zero (many from `corrupt`, one swapped pair), a quarter with unequal counts.
Fixed seeds; another machine or torch version can change the last bits, so re-record the day's
snapshots after retraining (`cohort check snapshots --day w3d6_transformer_interp`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[2]))  # the folder holding `mlab` (solutions/ or the template)
from mlab.w3d6_transformer_interp import (  # noqa: E402
    BracketsConfig,
    BracketTransformer,
    ToyModel,
    corrupt,
    is_balanced,
    random_balanced,
    save_brackets_model,
    save_toy_model,
    tokenize,
    train_toy_model,
)

N = 16


def bracket_strings(n: int, gen: torch.Generator) -> list[str]:
    out = []
    for i in range(n):
        kind = i % 4
        if kind < 2:
            out.append(random_balanced(N, gen))
        elif kind == 2:
            s = random_balanced(N, gen)
            c = corrupt(s)
            if c is None or torch.rand((), generator=gen) < 0.5:  # or any equal-count shuffle
                while True:
                    order = torch.randperm(N, generator=gen) < N // 2
                    c = "".join("(" if o else ")" for o in order.tolist())
                    if not is_balanced(c):
                        break
            out.append(c)
        else:
            k = int(torch.randint(0, N // 2, (), generator=gen)) * 2 + 1  # odd: counts differ
            k = k if torch.rand((), generator=gen) < 0.5 else N - k
            order = torch.randperm(N, generator=gen) < k
            out.append("".join("(" if o else ")" for o in order.tolist()))
    return out


def train_brackets(args: argparse.Namespace) -> None:
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    strings = bracket_strings(args.n_train, gen)
    tokens = tokenize(strings)
    labels = torch.tensor([is_balanced(s) for s in strings]).long()
    test_strings = bracket_strings(2000, torch.Generator().manual_seed(args.seed + 1))
    test_tokens = tokenize(test_strings)
    test_labels = torch.tensor([is_balanced(s) for s in test_strings]).long()

    model = BracketTransformer(BracketsConfig(n_brackets=N))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=args.steps)
    start = time.time()
    for step in range(args.steps):
        idx = torch.randint(0, len(strings), (256,), generator=gen)
        loss = F.cross_entropy(model(tokens[idx]), labels[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 200 == 0 or step == args.steps - 1:
            with torch.no_grad():
                acc = (model(test_tokens).argmax(-1) == test_labels).float().mean()
            print(
                f"step {step}: loss {loss.item():.3f}, test accuracy {acc:.3f} "
                f"({time.time() - start:.0f} s)",
                flush=True,
            )
    save_brackets_model(model.eval(), args.out_dir / "brackets.pt")


def train_toy(args: argparse.Namespace) -> None:
    torch.manual_seed(args.seed)
    n_features, n_hidden = 5, 2
    feature_probability = torch.tensor([1.0, 0.3, 0.1, 0.05, 0.02])
    importance = 0.9 ** torch.arange(n_features).float()
    model = ToyModel(len(feature_probability), n_features, n_hidden)
    losses = train_toy_model(model, feature_probability, importance, steps=4000, seed=args.seed)
    print(f"toy model: loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    info = {
        "n_instances": len(feature_probability),
        "n_features": n_features,
        "n_hidden": n_hidden,
        "feature_probability": feature_probability,
        "importance": importance,
    }
    save_toy_model(model.eval(), info, args.out_dir / "toy_model.pt")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=HERE.parent)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--n-train", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=["brackets", "toy"], default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    if args.only != "toy":
        train_brackets(args)
    if args.only != "brackets":
        train_toy(args)
    print(f"wrote {args.out_dir}")


if __name__ == "__main__":
    main()
