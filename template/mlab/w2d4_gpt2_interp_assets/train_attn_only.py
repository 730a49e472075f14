"""Train day w2d4_gpt2_interp's 2-layer attention-only transformer until it has induction heads.

Run `python solutions/mlab/w2d4_gpt2_interp_assets/train_attn_only.py` from the repo root (or
`python mlab/w2d4_gpt2_interp_assets/train_attn_only.py` in a pair's repository); about a minute
on 2 CPU cores. Writes `attn_only_2l.pt` (float16 weights and the config, ~65 KB) beside this
script (or `--out`).

The data: [BOS, then a random segment of T tokens repeated until the context is full], with T
drawn from 6 .. 24 for every sequence. The period varies, so no head can find the earlier copy
from positions alone: the model has to learn induction (a previous-token head in layer 0, then
a layer-1 head whose keys read it). Fixed seeds; another machine or torch version can change the
last bits, so re-record the day's snapshots after retraining (`cohort check snapshots --day ...`).
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
from mlab.w2d4_gpt2_interp import (  # noqa: E402
    BOS,
    AttnOnlyConfig,
    AttnOnlyTransformer,
    repeated_tokens,
    save_attn_only,
)


def periodic_batch(
    batch: int, length: int, d_vocab: int, gen: torch.Generator, periods: tuple[int, int]
) -> torch.Tensor:
    """(batch, length + 1): BOS, then r_1 .. r_T r_1 .. r_T r_1 ... truncated to `length`."""
    T = torch.randint(periods[0], periods[1] + 1, (batch, 1), generator=gen)  # (batch, 1)
    r = torch.randint(1, d_vocab, (batch, periods[1]), generator=gen)  # (batch, max T)
    idx = torch.arange(length)[None] % T  # (batch, length): position in the segment
    body = r.gather(1, idx)
    return torch.cat([torch.full((batch, 1), BOS), body], dim=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE.parent / "attn_only_2l.pt")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--heads", type=int, default=2)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    cfg = AttnOnlyConfig(n_heads=args.heads)
    model = AttnOnlyTransformer(cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=args.steps)
    gen = torch.Generator().manual_seed(args.seed)
    start = time.time()
    for step in range(args.steps):
        tokens = periodic_batch(64, 48, cfg.d_vocab, gen, (6, 24))
        logits = model(tokens)
        loss = F.cross_entropy(logits[:, :-1].flatten(0, 1), tokens[:, 1:].flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 100 == 0 or step == args.steps - 1:
            print(f"step {step}: loss {loss.item():.3f} ({time.time() - start:.0f} s)", flush=True)

    model.eval()
    test = repeated_tokens(200, 20, cfg.d_vocab, torch.Generator().manual_seed(1))
    with torch.no_grad():
        losses = F.cross_entropy(model(test)[:, :-1].mT, test[:, 1:], reduction="none")
    first, second = losses[:, :20].mean().item(), losses[:, 21:].mean().item()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_attn_only(model, args.out)
    print(
        f"wrote {args.out}: loss on [BOS, r, r] (T = 20) {first:.3f} first half, {second:.3f} second"
    )


if __name__ == "__main__":
    main()
