"""Write `fortunes_split.json`: the day's fixed, stratified train / test split of the fortunes.

Run from the repository root: `python solutions/mlab/w2d3_finetune_assets/make_split.py`. It needs
Debian's `fortunes` package (the files under /usr/share/games/fortunes). For each category in
`CATEGORIES`, the entries (texts separated by lines holding only `%`) are shuffled with a fixed
seed and the first `N_TRAIN` go to train, the next `N_TEST` to test: every class has the same
share of each split (stratified). The JSON keeps entry numbers, not texts, so it stays small and
the loader reads the texts from the installed package.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
from mlab.w2d3_finetune import CATEGORIES, read_fortunes  # noqa: E402

SEED = 20261201
N_TRAIN, N_TEST = 96, 32


def main() -> None:
    rng = random.Random(SEED)
    split: dict = {"seed": SEED, "categories": list(CATEGORIES), "train": {}, "test": {}}
    for category in CATEGORIES:
        order = list(range(len(read_fortunes(category))))
        rng.shuffle(order)
        split["train"][category] = sorted(order[:N_TRAIN])
        split["test"][category] = sorted(order[N_TRAIN : N_TRAIN + N_TEST])
    (HERE / "fortunes_split.json").write_text(json.dumps(split) + "\n")
    print(f"wrote {HERE / 'fortunes_split.json'}: {N_TRAIN} + {N_TEST} per category")


if __name__ == "__main__":
    main()
