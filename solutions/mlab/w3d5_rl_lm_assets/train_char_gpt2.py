"""Pretrain day w3d5_rl_lm's small character-level GPT-2 on Debian's `fortunes` texts.

Run `python solutions/mlab/w3d5_rl_lm_assets/train_char_gpt2.py` from the repo root (or
`python mlab/w3d5_rl_lm_assets/train_char_gpt2.py` in a pair's repository) with the Debian package
`fortunes` installed (texts under /usr/share/games/fortunes); a few minutes on 2 CPU cores.
Writes `char_gpt2.pt` (float16 weights and the config, ~250 KB) beside this script (or `--out`).

The data: every fortune, lower-cased, BOS first, concatenated into one stream of characters;
batches are random windows of 64 characters of it. Fixed seeds; another machine or torch version
can change the last bits, so re-record the day's snapshots after retraining
(`cohort check snapshots --day w3d5_rl_lm`).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[2]))  # the folder holding `mlab` (solutions/ or the template)
from mlab.w3d5_rl_lm import (  # noqa: E402
    CharTokenizer,
    char_gpt2_config,
    get_samples,
    save_pretrained,
)
from transformers import GPT2LMHeadModel  # noqa: E402

FORTUNES = Path("/usr/share/games/fortunes")


def corpus(tokenizer: CharTokenizer, root: Path = FORTUNES) -> torch.Tensor:
    """Every fortune of every file under `root` (not the `off/` folder), as one stream of ids."""
    files = sorted(p for p in root.iterdir() if p.is_file() and not p.suffix)
    if not files:
        raise SystemExit(f"no fortunes under {root}: apt-get install fortunes")
    ids: list[int] = []
    for path in files:
        for text in path.read_text(errors="replace").split("\n%\n"):
            text = " ".join(text.split())  # one line per fortune, spaces normalized
            if text:
                ids += tokenizer.encode(text)
    return torch.tensor(ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE.parent / "char_gpt2.pt")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)  # tiny matrices: one thread is fastest
    tokenizer = CharTokenizer()
    data = corpus(tokenizer)
    print(f"{len(data):,} characters of fortunes")
    cfg = char_gpt2_config(tokenizer.vocab_size)
    model = GPT2LMHeadModel(cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    warmup = 100
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda k: (
            min(1, (k + 1) / warmup)
            * 0.5
            * (1 + math.cos(math.pi * min(k, args.steps) / args.steps))
        ),
    )
    gen = torch.Generator().manual_seed(args.seed)
    n = cfg.n_positions
    start = time.time()
    model.train()
    for step in range(args.steps):
        offsets = torch.randint(0, len(data) - n, (args.batch,), generator=gen)
        batch = data[offsets[:, None] + torch.arange(n)]  # (batch, n)
        loss = model(batch, labels=batch).loss
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        if step % 250 == 0 or step == args.steps - 1:
            print(
                f"step {step:5d}  loss {loss.item():.3f}  {time.time() - start:.0f} s", flush=True
            )
    model.eval()
    save_pretrained(model, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e3:.0f} KB)")
    _, texts = get_samples(model, tokenizer, "the ", 4, 48, generator=gen)
    for text in texts:
        print("  the " + text)


if __name__ == "__main__":
    main()
